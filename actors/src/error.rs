//! Errors at the device boundary: what a device, its actor or a [`Status`](crate::Status) can report.

use std::sync::Arc;

use thiserror::Error;

/// The error a device's own code raised (a Python exception, a client
/// library's error), kept as it was raised so a front end can give it back
/// unchanged ([`DeviceError::Raised`]): a Bluesky plan catches the
/// exception its device raised, not a wrapper.
///
/// ```
/// use skyrun_actors::Cause;
/// let c = Cause::new(std::io::Error::other("no beam"));
/// assert_eq!(c.to_string(), "no beam");
/// assert!(c.downcast_ref::<std::io::Error>().is_some());
/// assert!(c.downcast_ref::<std::fmt::Error>().is_none());
/// ```
#[derive(Clone)]
pub struct Cause(Arc<dyn std::error::Error + Send + Sync>);

impl Cause {
    /// Keeps `error`.
    pub fn new(error: impl std::error::Error + Send + Sync + 'static) -> Self {
        Cause(Arc::new(error))
    }

    /// The error as raised, if it is an `E`.
    pub fn downcast_ref<E: std::error::Error + 'static>(&self) -> Option<&E> {
        let e: &(dyn std::error::Error + 'static) = self.0.as_ref();
        e.downcast_ref::<E>()
    }
}

impl std::fmt::Debug for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(&self.0, f)
    }
}

impl std::fmt::Display for Cause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Display::fmt(&self.0, f)
    }
}

impl std::error::Error for Cause {}

/// Two causes are equal when they are the same error (one raise).
impl PartialEq for Cause {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// Why a [`Status`](crate::Status) finished unsuccessfully.
///
/// ```
/// use skyrun_actors::StatusError;
/// let e = StatusError::Timeout { after: 0.5 };
/// assert_eq!(e.to_string(), "status timed out after 0.5 s");
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
pub enum StatusError {
    /// The device reported a failure (for example a move outside the limits).
    #[error("{0}")]
    Failed(String),
    /// The status did not complete within the timeout it was created with.
    #[error("status timed out after {after} s")]
    Timeout {
        /// The timeout, in seconds.
        after: f64,
    },
    /// The device was stopped before the operation completed.
    #[error("{device} was stopped before the operation completed")]
    Stopped {
        /// The name of the device.
        device: String,
    },
    /// The status was dropped by its device without ever being completed.
    #[error("the status was abandoned by {0} without completing")]
    Abandoned(String),
}

/// An error reported by a device or by the actor hosting it.
///
/// ```
/// use skyrun_actors::DeviceError;
/// let e = DeviceError::Unsupported { device: "motor".into(), device_type: "SynAxis", operation: "trigger" };
/// assert_eq!(e.to_string(), "device 'motor' (SynAxis) does not support trigger");
/// ```
#[derive(Debug, Clone, PartialEq, Error)]
pub enum DeviceError {
    /// The device does not implement the operation (e.g. `trigger` on a motor).
    #[error("device '{device}' ({device_type}) does not support {operation}")]
    Unsupported {
        /// The device name.
        device: String,
        /// The device type name.
        device_type: &'static str,
        /// The requested operation.
        operation: &'static str,
    },
    /// The device rejected the arguments of an operation.
    #[error("device '{device}' rejected {operation}: {reason}")]
    InvalidArgument {
        /// The device name.
        device: String,
        /// The requested operation.
        operation: &'static str,
        /// What is wrong with the argument.
        reason: String,
    },
    /// The device failed while carrying out an operation.
    #[error("device '{device}' failed during {operation}: {reason}")]
    Failed {
        /// The device name.
        device: String,
        /// The requested operation.
        operation: &'static str,
        /// What went wrong.
        reason: String,
    },
    /// The device's own code raised an error while carrying out an
    /// operation (as [`DeviceError::Failed`]), kept as raised in `cause`.
    #[error("device '{device}' failed during {operation}: {cause}")]
    Raised {
        /// The device name.
        device: String,
        /// The requested operation.
        operation: &'static str,
        /// The error as raised.
        #[source]
        cause: Cause,
    },
    /// The device's actor panicked while handling the operation; the actor has stopped.
    #[error("device '{device}' panicked during {operation}: {reason}")]
    Panicked {
        /// The device name.
        device: String,
        /// The requested operation.
        operation: &'static str,
        /// The panic message.
        reason: String,
    },
    /// The device did not answer a request within the engine's request timeout.
    #[error("device '{device}' did not answer {operation} within {after} s")]
    NoReply {
        /// The device name.
        device: String,
        /// The requested operation.
        operation: &'static str,
        /// The timeout, in seconds.
        after: f64,
    },
    /// The device's actor is no longer running (it stopped or panicked earlier).
    #[error("device '{device}' is not running (its actor has stopped); cannot {operation}")]
    Gone {
        /// The device name.
        device: String,
        /// The requested operation.
        operation: &'static str,
    },
}
