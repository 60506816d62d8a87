//! Who may use the service: static bearer tokens from a token file
//! (`--token-file`), checked on every route but the two blueapi's client
//! calls before it has a token (`/config/oidc`, `/healthz`), and the rule
//! that a service reachable from the network either checks tokens or was
//! told, explicitly, that anyone on the network may run plans.
//!
//! A token is compared in constant time: each presented token and each
//! known one are hashed (SHA-256, so the length leaks nothing either) and
//! the digests compared with `subtle`, against every known token without
//! stopping at the first match.
//!
//! ```
//! use skyrun::service::Tokens;
//! let tokens = Tokens::from_lines("s3cret-token\n\nother-token\n").unwrap();
//! assert_eq!(tokens.len(), 2);
//! assert!(tokens.accepts("other-token"));
//! assert!(!tokens.accepts("s3cret"));
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// The bearer tokens the service accepts (their SHA-256 digests).
#[derive(Clone)]
pub struct Tokens {
    digests: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Tokens({} tokens)", self.digests.len())
    }
}

/// Why a token file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    /// The file does not exist.
    #[error("token file {}: no such file", .0.display())]
    Missing(PathBuf),
    /// The file cannot be read.
    #[error("token file {}: cannot be read: {source}", path.display())]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file holds no token (only blank lines).
    #[error("token file {}: holds no token (one token a line)", .0.display())]
    Empty(PathBuf),
    /// Anyone on the machine may read the file.
    #[error(
        "token file {}: readable by every user of this machine (mode {mode:o}): `chmod o-rwx {}`",
        path.display(),
        path.display()
    )]
    WorldReadable {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
}

impl Tokens {
    /// The tokens of `text`, one a line (surrounding white space trimmed,
    /// blank lines skipped); `None` when there is none.
    pub fn from_lines(text: &str) -> Option<Tokens> {
        let digests: Vec<[u8; 32]> = text
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty())
            .map(digest)
            .collect();
        (!digests.is_empty()).then_some(Tokens { digests })
    }

    /// The tokens of the file at `path`, which must exist, be readable, hold
    /// a token and (on Unix) not be readable by every user.
    pub fn load(path: &Path) -> Result<Tokens, TokenFileError> {
        let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => TokenFileError::Missing(path.to_owned()),
            _ => TokenFileError::Unreadable {
                path: path.to_owned(),
                source: e,
            },
        })?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o7777;
            if mode & 0o004 != 0 {
                return Err(TokenFileError::WorldReadable {
                    path: path.to_owned(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Unreadable {
            path: path.to_owned(),
            source,
        })?;
        Tokens::from_lines(&text).ok_or_else(|| TokenFileError::Empty(path.to_owned()))
    }

    /// How many tokens there are.
    pub fn len(&self) -> usize {
        self.digests.len()
    }

    /// Whether there is none (never, for tokens made by `load` or `from_lines`).
    pub fn is_empty(&self) -> bool {
        self.digests.is_empty()
    }

    /// Whether `token` is one of them (constant time in the token and in
    /// which one matches).
    pub fn accepts(&self, token: &str) -> bool {
        let presented = digest(token);
        let mut found = subtle::Choice::from(0);
        for d in &self.digests {
            found |= d.ct_eq(&presented);
        }
        found.into()
    }
}

fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// What the service says when it will be reachable from the network
/// without tokens, and was told that is fine.
pub fn open_warning(bind: SocketAddr) -> String {
    format!(
        "skyrun service: WARNING: listening on {bind} without authentication: \
         anyone on the network who can reach it may run plans"
    )
}

/// Whether binding `bind` is allowed: a non-loopback address needs tokens
/// or `allow_unauthenticated`. `Ok(Some(warning))` when it is allowed but
/// open to anyone.
pub fn check_exposure(
    bind: SocketAddr,
    tokens: bool,
    allow_unauthenticated: bool,
) -> Result<Option<String>, super::ServiceError> {
    if bind.ip().is_loopback() || tokens {
        Ok(None)
    } else if allow_unauthenticated {
        Ok(Some(open_warning(bind)))
    } else {
        Err(super::ServiceError::Unprotected { addr: bind })
    }
}

/// The middleware of the protected routes: 401 with `WWW-Authenticate:
/// Bearer` unless the request carries `Authorization: Bearer TOKEN` with a
/// known token (the WebSocket handshake included: it is refused before the
/// upgrade).
pub async fn require_token(
    State(tokens): State<Arc<Tokens>>,
    req: Request,
    next: Next,
) -> Response {
    match bearer(req.headers().get(header::AUTHORIZATION)) {
        Some(t) if tokens.accepts(t) => next.run(req).await,
        Some(_) => unauthorized("Invalid token", "Bearer error=\"invalid_token\""),
        None => unauthorized("Not authenticated", "Bearer"),
    }
}

/// The token of an `Authorization: Bearer TOKEN` header (scheme in any case).
fn bearer(value: Option<&HeaderValue>) -> Option<&str> {
    let v = value?.to_str().ok()?.trim();
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

fn unauthorized(detail: &str, challenge: &'static str) -> Response {
    (
        StatusCode::UNAUTHORIZED,
        [(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(challenge),
        )],
        Json(json!({ "detail": detail })),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_header_is_parsed() {
        let h = |s: &'static str| HeaderValue::from_static(s);
        assert_eq!(bearer(Some(&h("Bearer abc"))), Some("abc"));
        assert_eq!(bearer(Some(&h("bearer  abc "))), Some("abc"));
        assert_eq!(bearer(Some(&h("Basic abc"))), None);
        assert_eq!(bearer(Some(&h("Bearer "))), None);
        assert_eq!(bearer(None), None);
    }

    #[test]
    fn only_known_tokens_are_accepted() {
        let t = Tokens::from_lines("  one \ntwo\n").unwrap();
        assert!(t.accepts("one") && t.accepts("two"));
        assert!(!t.accepts("on") && !t.accepts("one ") && !t.accepts(""));
        assert!(Tokens::from_lines("\n \n").is_none());
    }

    #[test]
    fn exposure_needs_tokens_or_consent() {
        let lan: SocketAddr = "0.0.0.0:8000".parse().unwrap();
        let lo: SocketAddr = "127.0.0.1:8000".parse().unwrap();
        assert!(matches!(check_exposure(lo, false, false), Ok(None)));
        assert!(matches!(check_exposure(lan, true, false), Ok(None)));
        let w = check_exposure(lan, false, true).unwrap().unwrap();
        assert!(w.contains("anyone on the network"), "{w}");
        let e = check_exposure(lan, false, false).unwrap_err().to_string();
        assert!(
            e.contains("--token-file") && e.contains("0.0.0.0:8000"),
            "{e}"
        );
    }
}
