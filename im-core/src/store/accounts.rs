//! Accounts: users, their devices and login tokens, and the server secret.

use crate::error::StoreResult;
use crate::ids::{Millis, UserId};

/// A user account.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserRecord {
    /// Normalised name, unique.
    pub name: UserId,
    /// bcrypt hash of the password.
    pub password_hash: String,
    /// Suspended accounts cannot log in.
    pub suspended: bool,
    /// Creation time.
    pub created_at: Millis,
    /// When the user's last session ended, if ever.
    pub last_seen: Option<Millis>,
}

impl UserRecord {
    /// A new account in good standing, created now, never online.
    pub fn new(name: UserId, password_hash: String) -> UserRecord {
        UserRecord {
            name,
            password_hash,
            suspended: false,
            created_at: crate::ids::now_millis(),
            last_seen: None,
        }
    }
}

/// One device of a user: its token hash and last login.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeviceRecord {
    /// Device name, unique per user.
    pub device: String,
    /// SHA-256 (hex) of the device's current token; `None` once revoked.
    pub token_hash: Option<String>,
    /// When the current token was issued.
    pub token_issued_at: Millis,
    /// Last successful login of this device.
    pub last_login: Millis,
}

/// What a password login checked, for [`AccountStore::grant_token`].
#[derive(Clone, Debug)]
pub struct TokenGrant {
    /// The account.
    pub user: UserId,
    /// The device the token is for.
    pub device: String,
    /// SHA-256 (hex) of the new token.
    pub token_hash: String,
    /// The password hash the login was checked against.
    pub password_hash: String,
    /// Most devices that may hold a live token at once.
    pub max_devices: usize,
    /// The login's time.
    pub now: Millis,
}

/// What [`AccountStore::grant_token`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granted {
    /// The token is issued.
    Issued,
    /// The password changed since the login read it: nothing issued.
    PasswordChanged,
    /// The account is suspended: nothing issued.
    Suspended,
    /// `max_devices` other devices hold a live token: nothing issued.
    TooManyDevices,
}

/// Users, devices, tokens and the server secret.
pub trait AccountStore {
    /// Creates an account; `StoreError::Conflict` when the name is taken.
    fn create_user(&self, user: &UserRecord) -> StoreResult<()>;
    /// Looks an account up.
    fn user(&self, name: &UserId) -> StoreResult<Option<UserRecord>>;
    /// Lists every account, by name.
    fn list_users(&self) -> StoreResult<Vec<UserRecord>>;
    /// Replaces the password hash; `StoreError::NotFound` if unknown.
    fn set_password_hash(&self, name: &UserId, hash: &str) -> StoreResult<()>;
    /// Suspends or reinstates an account; `StoreError::NotFound` if unknown.
    fn set_suspended(&self, name: &UserId, suspended: bool) -> StoreResult<()>;
    /// Records when the user's last session ended (nothing if unknown).
    fn set_last_seen(&self, name: &UserId, at: Millis) -> StoreResult<()>;
    /// Every suspended account, by name; polled by the hub so that a
    /// suspension made by another process closes live sessions, so stores
    /// should answer it from an index.
    fn suspended_users(&self) -> StoreResult<Vec<UserId>>;
    /// Issues a token as [`AccountStore::issue_token`] does, only while
    /// what the login checked still holds: the account still has
    /// `password_hash`, is not suspended, and fewer than `max_devices`
    /// other devices hold a live token. Check and issue are one step (SQL:
    /// one transaction holding the user's row), so a password change, a
    /// suspension or a parallel login cannot come between them.
    /// `StoreError::NotFound` if the account is gone.
    fn grant_token(&self, grant: &TokenGrant) -> StoreResult<Granted>;
    /// Creates or updates a device with a new token hash (revoking the old
    /// one) and records a login at `now`.
    fn issue_token(
        &self,
        user: &UserId,
        device: &str,
        token_hash: &str,
        now: Millis,
    ) -> StoreResult<()>;
    /// The user's device whose current token hashes to `token_hash`.
    fn device_by_token(&self, user: &UserId, token_hash: &str)
        -> StoreResult<Option<DeviceRecord>>;
    /// The user and device whose current token hashes to `token_hash`.
    fn user_by_token(&self, token_hash: &str) -> StoreResult<Option<(UserId, DeviceRecord)>>;
    /// Records a token login of a device.
    fn touch_device(&self, user: &UserId, device: &str, now: Millis) -> StoreResult<()>;
    /// Records many token logins, in one transaction where the store has
    /// them; a `last_login` never moves back.
    fn touch_devices(&self, touches: &[(UserId, String, Millis)]) -> StoreResult<()> {
        for (user, device, at) in touches {
            self.touch_device(user, device, *at)?;
        }
        Ok(())
    }
    /// Lists a user's devices, by name.
    fn devices(&self, user: &UserId) -> StoreResult<Vec<DeviceRecord>>;
    /// Revokes one device's token; false when the device is unknown.
    fn revoke_device(&self, user: &UserId, device: &str) -> StoreResult<bool>;
    /// Revokes every token of the user except `keep`'s.
    fn revoke_all_devices(&self, user: &UserId, keep: Option<&str>) -> StoreResult<()>;
    /// A 32-byte secret created on first use and kept, so that signed
    /// download links stay valid across restarts and server processes.
    fn server_secret(&self) -> StoreResult<Vec<u8>>;
}
