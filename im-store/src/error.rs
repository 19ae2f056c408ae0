//! Errors: [`OpenError`] for opening a store, and the crate-internal mapping
//! of backend failures onto [`im_core::error::StoreError`].

#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) use db::*;

/// Why a store could not be opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The URL names no store this crate knows (`memory:`, `sqlite://PATH`,
    /// `postgres://...`).
    #[error("unsupported store url {0:?} (expected memory:, sqlite://PATH or postgres://...)")]
    UnsupportedUrl(String),
    /// The URL names a backend whose cargo feature is not enabled.
    #[error("store url {url:?} needs im-store's cargo feature {feature:?}")]
    FeatureDisabled {
        /// The URL as given.
        url: String,
        /// The cargo feature that would support it.
        feature: &'static str,
    },
    /// An option is out of range or malformed (e.g. an invalid schema name).
    #[error("invalid store option: {0}")]
    InvalidOption(String),
    /// The database could not be reached or opened.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// A connection was made but setting it up (pragmas, schema) failed.
    #[error("cannot set up the database: {0}")]
    Setup(String),
    /// Running the embedded migrations failed.
    #[error("database migration failed: {0}")]
    Migration(String),
}

/// Backend failures, before they become [`im_core::error::StoreError`]s.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod db {
    use im_core::error::StoreError;

    use super::OpenError;

    /// A failure inside the crate, before it becomes a [`StoreError`].
    #[derive(Debug)]
    pub(crate) enum DbError {
        /// The query failed.
        Query(diesel::result::Error),
        /// No pooled connection could be had.
        Pool(diesel::r2d2::PoolError),
        /// A connection could not be established again.
        #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
        Reconnect(OpenError),
        /// No connection, for a reason without an underlying error.
        #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
        Unavailable(String),
        /// The database holds something that breaks an invariant.
        Corrupt(String),
        /// The transaction must be rolled back and run again.
        #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
        Retry(String),
    }

    impl From<diesel::result::Error> for DbError {
        fn from(e: diesel::result::Error) -> DbError {
            DbError::Query(e)
        }
    }

    impl From<DbError> for StoreError {
        fn from(e: DbError) -> StoreError {
            use diesel::result::Error as E;
            match e {
                DbError::Query(E::DeserializationError(e)) => {
                    StoreError::corrupt_from("a stored value cannot be read", e)
                }
                DbError::Query(e) => StoreError::unavailable_from("database query failed", e),
                DbError::Pool(e) => StoreError::unavailable_from("no database connection", e),
                DbError::Reconnect(e) => {
                    StoreError::unavailable_from("cannot reconnect to the database", e)
                }
                DbError::Unavailable(m) | DbError::Retry(m) => StoreError::unavailable(m),
                DbError::Corrupt(m) => StoreError::corrupt(m),
            }
        }
    }

    impl DbError {
        /// Whether a uniqueness constraint was hit.
        pub(crate) fn is_unique_violation(&self) -> bool {
            matches!(
                self,
                DbError::Query(diesel::result::Error::DatabaseError(
                    diesel::result::DatabaseErrorKind::UniqueViolation,
                    _
                ))
            )
        }

        /// Whether retrying the whole transaction may succeed (PostgreSQL
        /// serialization failures and deadlocks).
        #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
        pub(crate) fn is_retryable(&self) -> bool {
            match self {
                DbError::Retry(_) => true,
                DbError::Query(diesel::result::Error::DatabaseError(kind, info)) => {
                    matches!(
                        kind,
                        diesel::result::DatabaseErrorKind::SerializationFailure
                    ) || info.message().contains("deadlock detected")
                }
                _ => false,
            }
        }
    }

    /// A stored sequence number as `u64`; negative means corruption.
    pub(crate) fn seq_u64(v: i64) -> Result<u64, DbError> {
        u64::try_from(v).map_err(|_| DbError::Corrupt(format!("negative sequence number {v}")))
    }

    /// A `u64` from the API as a database integer, saturating.
    pub(crate) fn seq_i64(v: u64) -> i64 {
        i64::try_from(v).unwrap_or(i64::MAX)
    }

    /// A `usize` limit as a database integer, saturating.
    pub(crate) fn limit_i64(v: usize) -> i64 {
        i64::try_from(v).unwrap_or(i64::MAX)
    }
}
