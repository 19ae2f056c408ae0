//! Errors: what the store can fail with, and the one place that turns any
//! internal failure into a protocol error code.

use serde::Serialize;

/// The closed set of protocol error codes (PROTOCOL.md, "Requests and replies").
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorCode {
    /// Malformed frame or field.
    BadRequest,
    /// Not logged in.
    Unauthenticated,
    /// Wrong username, password or token.
    InvalidCredentials,
    /// The account is suspended.
    AccountSuspended,
    /// Registration with a taken name.
    UsernameTaken,
    /// Registration with an invalid name.
    InvalidUsername,
    /// Password outside the accepted rules.
    WeakPassword,
    /// The target does not exist or is not visible to the caller.
    NotFound,
    /// The caller may not do this.
    Forbidden,
    /// Too many attempts.
    RateLimited,
    /// Over a size limit.
    TooLarge,
    /// The request conflicts with current state.
    Conflict,
    /// The store is failing; nothing was done.
    Unavailable,
    /// A bug.
    Internal,
}

/// A protocol-level failure: a code and a human-readable message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ProtoError {
    /// The code clients act on.
    pub code: ErrorCode,
    /// Text for people; clients must not parse it.
    pub message: String,
}

impl ProtoError {
    /// Builds an error with a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> ProtoError {
        ProtoError {
            code,
            message: message.into(),
        }
    }
}

/// Shorthand constructors, one per code used by handlers.
macro_rules! ctor {
    ($($name:ident => $code:ident),* $(,)?) => {
        impl ProtoError {
            $(
                #[doc = concat!("A `", stringify!($name), "` error.")]
                pub fn $name(message: impl Into<String>) -> ProtoError {
                    ProtoError::new(ErrorCode::$code, message)
                }
            )*
        }
    };
}

ctor! {
    bad_request => BadRequest,
    unauthenticated => Unauthenticated,
    invalid_credentials => InvalidCredentials,
    not_found => NotFound,
    forbidden => Forbidden,
    rate_limited => RateLimited,
    too_large => TooLarge,
    conflict => Conflict,
    internal => Internal,
}

/// The underlying cause of a [`StoreError`], kept for logs and callers that
/// walk [`std::error::Error::source`].
pub type StoreErrorSource = Box<dyn std::error::Error + Send + Sync + 'static>;

/// What a [`crate::store::Store`] can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A uniqueness constraint was hit (e.g. a taken username).
    #[error("already exists")]
    Conflict,
    /// The referenced row does not exist.
    #[error("not found")]
    NotFound,
    /// The backend failed (connection, I/O, timeout); the operation had no effect.
    #[error("store unavailable: {context}")]
    Unavailable {
        /// What the store was doing.
        context: String,
        /// The backend's error, when there is one.
        #[source]
        source: Option<StoreErrorSource>,
    },
    /// The backend returned something that breaks an invariant.
    #[error("store corrupt: {context}")]
    Corrupt {
        /// What is wrong.
        context: String,
        /// The backend's error, when there is one.
        #[source]
        source: Option<StoreErrorSource>,
    },
}

impl StoreError {
    /// An `Unavailable` error without an underlying cause.
    pub fn unavailable(context: impl Into<String>) -> StoreError {
        StoreError::Unavailable {
            context: context.into(),
            source: None,
        }
    }

    /// An `Unavailable` error caused by `source`.
    pub fn unavailable_from(
        context: impl Into<String>,
        source: impl Into<StoreErrorSource>,
    ) -> StoreError {
        StoreError::Unavailable {
            context: context.into(),
            source: Some(source.into()),
        }
    }

    /// A `Corrupt` error without an underlying cause.
    pub fn corrupt(context: impl Into<String>) -> StoreError {
        StoreError::Corrupt {
            context: context.into(),
            source: None,
        }
    }

    /// A `Corrupt` error caused by `source`.
    pub fn corrupt_from(
        context: impl Into<String>,
        source: impl Into<StoreErrorSource>,
    ) -> StoreError {
        StoreError::Corrupt {
            context: context.into(),
            source: Some(source.into()),
        }
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// An error and its chain of causes, `: `-separated, for logs.
fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        out.push_str(": ");
        out.push_str(&c.to_string());
        cause = c.source();
    }
    out
}

impl From<StoreError> for ProtoError {
    fn from(e: StoreError) -> ProtoError {
        match e {
            StoreError::Conflict => ProtoError::conflict("already exists"),
            StoreError::NotFound => ProtoError::not_found("not found"),
            StoreError::Unavailable { .. } => {
                tracing::warn!(error = %with_causes(&e), "store unavailable");
                ProtoError::new(ErrorCode::Unavailable, "storage unavailable, try again")
            }
            StoreError::Corrupt { .. } => {
                tracing::error!(error = %with_causes(&e), "store corrupt");
                ProtoError::internal("internal error")
            }
        }
    }
}

/// The blocking pool was shut down or its task panicked.
#[derive(Debug, thiserror::Error)]
#[error("blocking pool unavailable")]
pub struct PoolError;

impl From<PoolError> for ProtoError {
    fn from(_: PoolError) -> ProtoError {
        ProtoError::new(ErrorCode::Unavailable, "server busy, try again")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_errors_keep_their_cause_and_map_to_one_code() {
        let io = std::io::Error::new(std::io::ErrorKind::TimedOut, "read timed out");
        let e = StoreError::unavailable_from("loading a user", io);
        let cause = std::error::Error::source(&e).map(|c| c.to_string());
        assert_eq!(cause.as_deref(), Some("read timed out"));
        assert_eq!(
            with_causes(&e),
            "store unavailable: loading a user: read timed out"
        );
        assert_eq!(ProtoError::from(e).code, ErrorCode::Unavailable);
        assert_eq!(
            ProtoError::from(StoreError::corrupt("bad row")).code,
            ErrorCode::Internal
        );
        assert_eq!(
            ProtoError::from(StoreError::Conflict).code,
            ErrorCode::Conflict
        );
    }
}
