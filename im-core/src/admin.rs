//! Operator tasks on a store, without a running hub: what an admin command
//! line needs. The rules (name normalisation, password limits, bcrypt) are
//! the same as the protocol's `register`.

use crate::error::StoreError;
use crate::ids::UserId;
use crate::store::{Store, UserRecord};

/// Why an account could not be created.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AdminError {
    /// The name is not a valid username.
    #[error("{0:?} is not a valid username")]
    InvalidUsername(String),
    /// The password breaks the protocol's rule (8 to 72 bytes, no NUL).
    #[error("the password must be 8 to 72 bytes of UTF-8 without NUL")]
    WeakPassword,
    /// The name is taken.
    #[error("{0} already exists")]
    Taken(UserId),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates an account with a bcrypt hash of `password` at `cost`. Blocking:
/// call it from a thread that may block (an admin command, not an actor).
pub fn add_user(
    store: &dyn Store,
    name: &str,
    password: &str,
    cost: u32,
) -> Result<UserId, AdminError> {
    let user = UserId::parse(name).ok_or_else(|| AdminError::InvalidUsername(name.to_owned()))?;
    if !crate::auth::password_ok(password) {
        return Err(AdminError::WeakPassword);
    }
    let hash = crate::auth::hash_password(password, cost).ok_or(AdminError::WeakPassword)?;
    let record = UserRecord::new(user.clone(), hash);
    match store.create_user(&record) {
        Ok(()) => Ok(user),
        Err(StoreError::Conflict) => Err(AdminError::Taken(user)),
        Err(e) => Err(e.into()),
    }
}
