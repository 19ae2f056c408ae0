//! Internal failures (store, blocking pool) and the one place that turns
//! them into protocol error codes.

pub use crate::protocol::error::{ErrorCode, ProtoError};

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
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The backend returned something that breaks an invariant.
    #[error("store corrupt: {0}")]
    Corrupt(String),
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

impl From<StoreError> for ProtoError {
    fn from(e: StoreError) -> ProtoError {
        match e {
            StoreError::Conflict => ProtoError::conflict("already exists"),
            StoreError::NotFound => ProtoError::not_found("not found"),
            StoreError::Unavailable(m) => {
                tracing::warn!(error = %m, "store unavailable");
                ProtoError::new(ErrorCode::Unavailable, "storage unavailable, try again")
            }
            StoreError::Corrupt(m) => {
                tracing::error!(error = %m, "store corrupt");
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
