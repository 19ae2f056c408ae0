//! Internal failures (store, blocking pool) and the one place that turns
//! them into protocol error codes.

pub use crate::protocol::error::{ErrorCode, ProtoError};

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

/// Why a blocking pool did not run a job.
#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    /// The pool was shut down or the job panicked.
    #[error("blocking pool unavailable")]
    Closed,
    /// The job would have waited longer than the pool's bound for a
    /// thread.
    #[error("blocking pool busy")]
    Busy,
}

impl From<PoolError> for ProtoError {
    fn from(e: PoolError) -> ProtoError {
        match e {
            PoolError::Closed => ProtoError::new(ErrorCode::Unavailable, "server busy, try again"),
            PoolError::Busy => ProtoError::new(
                ErrorCode::Unavailable,
                "too many password checks queued; try again in a few seconds",
            ),
        }
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
