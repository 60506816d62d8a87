//! A device's representation (ophyd's `repr`, the `msg.obj` span attribute),
//! kept compact: the text around the device name is interned and shared by
//! every device of the same kind, and the full string is built once, on first
//! use, so idle devices and untraced runs never pay for it.

use std::collections::HashSet;
use std::sync::{Arc, LazyLock, OnceLock};

use parking_lot::Mutex;

static INTERNED: LazyLock<Mutex<HashSet<Arc<str>>>> = LazyLock::new(Default::default);

fn intern(s: &str) -> Arc<str> {
    let mut set = INTERNED.lock();
    if let Some(found) = set.get(s) {
        return found.clone();
    }
    let new: Arc<str> = Arc::from(s);
    set.insert(new.clone());
    new
}

/// The name and representation of one device.
#[derive(Debug)]
pub(crate) struct Repr {
    name: Arc<str>,
    head: Arc<str>,
    tail: Arc<str>,
    full: OnceLock<Arc<str>>,
}

impl Repr {
    /// Splits `repr` around the first occurrence of `name`.
    pub fn new(name: Arc<str>, repr: &str) -> Arc<Repr> {
        let (head, tail) = match repr.find(&*name) {
            Some(i) => (&repr[..i], &repr[i + name.len()..]),
            None => (repr, ""),
        };
        let found = repr.contains(&*name);
        let r = Repr {
            head: intern(head),
            tail: intern(tail),
            full: OnceLock::new(),
            name,
        };
        if !found {
            let _ = r.full.set(Arc::from(repr));
        }
        Arc::new(r)
    }

    pub fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The full representation.
    pub fn get(&self) -> &Arc<str> {
        self.full
            .get_or_init(|| format!("{}{}{}", self.head, self.name, self.tail).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rebuilds_the_representation_and_shares_the_parts() {
        let a = Repr::new("m1".into(), "SynAxis(prefix='', name='m1', read_attrs=[])");
        let b = Repr::new("m2".into(), "SynAxis(prefix='', name='m2', read_attrs=[])");
        assert_eq!(&**a.get(), "SynAxis(prefix='', name='m1', read_attrs=[])");
        assert!(Arc::ptr_eq(&a.head, &b.head) && Arc::ptr_eq(&a.tail, &b.tail));
        let odd = Repr::new("x".into(), "<device>");
        assert_eq!(&**odd.get(), "<device>");
    }
}
