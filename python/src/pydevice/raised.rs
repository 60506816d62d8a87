//! The exceptions a Python device raises: kept as raised, so the plan and
//! `RE()` get them back unchanged, as Bluesky gives them; and skyrun's own
//! error for an answer it cannot take.

use pyo3::prelude::*;
use skyrun_actors::{Cause, DeviceError};

/// A Python exception as raised, shown as its `repr` (`OSError('cable
/// unplugged')`), which names its type.
#[derive(Debug)]
pub struct Raised {
    /// The exception.
    pub err: PyErr,
    repr: String,
}

impl Raised {
    pub(crate) fn new(py: Python<'_>, err: PyErr) -> Self {
        let repr = err
            .value(py)
            .repr()
            .map(|r| r.to_string())
            .unwrap_or_else(|_| err.to_string());
        Raised { err, repr }
    }
}

impl std::fmt::Display for Raised {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.repr)
    }
}

impl std::error::Error for Raised {}

/// `method` of `device` answered what skyrun cannot take (a `read()`
/// returning None, ...): skyrun's error (a RuntimeError in Python, as
/// Bluesky's for a `read()` returning None), not an exception of the device's.
pub(super) fn ill_answer(
    device: &str,
    py: Python<'_>,
    method: &'static str,
    answer: &Bound<'_, PyAny>,
    e: PyErr,
) -> DeviceError {
    DeviceError::Failed {
        device: device.to_owned(),
        operation: method,
        reason: format!(
            "{method}() returned {}: {}",
            answer.repr().map(|r| r.to_string()).unwrap_or_default(),
            e.value(py)
        ),
    }
}

/// The exception a device method raised, kept as raised: the plan and
/// `RE()` get it back unchanged, as Bluesky gives it.
pub(super) fn py_err(
    device: &str,
    operation: &'static str,
    py: Python<'_>,
    e: PyErr,
) -> DeviceError {
    DeviceError::Raised {
        device: device.to_owned(),
        operation,
        cause: Cause::new(Raised::new(py, e)),
    }
}

/// The Python exception a device error keeps, if it is one.
pub(crate) fn raised(e: &DeviceError) -> Option<&PyErr> {
    match e {
        DeviceError::Raised { cause, .. } => cause.downcast_ref::<Raised>().map(|r| &r.err),
        _ => None,
    }
}
