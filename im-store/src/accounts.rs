//! [`AccountStore`](im_core::store::AccountStore), written once for every
//! backend: users, devices and tokens, the server secret.

use diesel::sql_types::{BigInt, Binary, Bool, Nullable, Text};
use diesel::QueryableByName;

use im_core::error::{StoreError, StoreResult};
use im_core::ids::{Millis, UserId};
use im_core::store::{DeviceRecord, Granted, TokenGrant, UserRecord};

use crate::db::Db;
use crate::error::DbError;
use crate::sql::{sql, statements, Conn, Exec, Reads, TextRow};

/// What the account statements need of a connection: the rows they read.
pub(crate) trait AccountsConn:
    Conn<
    Backend: Reads<UserRow>
                 + Reads<DeviceRow>
                 + Reads<TokenRow>
                 + Reads<TextRow>
                 + Reads<SecretRow>,
>
{
}

impl<C> AccountsConn for C where
    C: Conn<
        Backend: Reads<UserRow>
                     + Reads<DeviceRow>
                     + Reads<TokenRow>
                     + Reads<TextRow>
                     + Reads<SecretRow>,
    >
{
}

/// A `users` row.
#[derive(QueryableByName)]
pub(crate) struct UserRow {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    password_hash: String,
    #[diesel(sql_type = Bool)]
    suspended: bool,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
    #[diesel(sql_type = Nullable<BigInt>)]
    last_seen: Option<i64>,
}

impl From<UserRow> for UserRecord {
    fn from(r: UserRow) -> UserRecord {
        UserRecord {
            name: UserId::from_stored(&r.name),
            password_hash: r.password_hash,
            suspended: r.suspended,
            created_at: r.created_at,
            last_seen: r.last_seen,
        }
    }
}

/// A `devices` row without its user.
#[derive(QueryableByName)]
pub(crate) struct DeviceRow {
    #[diesel(sql_type = Text)]
    device: String,
    #[diesel(sql_type = Nullable<Text>)]
    token_hash: Option<String>,
    #[diesel(sql_type = BigInt)]
    token_issued_at: i64,
    #[diesel(sql_type = BigInt)]
    last_login: i64,
}

impl From<DeviceRow> for DeviceRecord {
    fn from(r: DeviceRow) -> DeviceRecord {
        DeviceRecord {
            device: r.device,
            token_hash: r.token_hash,
            token_issued_at: r.token_issued_at,
            last_login: r.last_login,
        }
    }
}

/// A `devices` row with its user.
#[derive(QueryableByName)]
pub(crate) struct TokenRow {
    #[diesel(sql_type = Text)]
    user_name: String,
    #[diesel(embed)]
    device: DeviceRow,
}

/// The server secret's row.
#[derive(QueryableByName)]
pub(crate) struct SecretRow {
    #[diesel(sql_type = Binary)]
    value: Vec<u8>,
}

statements! {
    /// Parameters: name, password_hash, suspended, created_at, last_seen.
    InsertUser = "INSERT INTO users (name, password_hash, suspended, created_at, last_seen) \
        VALUES (?, ?, ?, ?, ?)";
    /// Parameter: name.
    SelectUser = "SELECT name, password_hash, suspended, created_at, last_seen FROM users \
        WHERE name = ?";
    AllUsers = "SELECT name, password_hash, suspended, created_at, last_seen FROM users \
        ORDER BY name";
    /// `WHERE suspended`, word for word the predicate of the partial index
    /// `users_suspended`.
    SuspendedUsers = "SELECT name AS v FROM users WHERE suspended ORDER BY name";
    /// Parameters: hash, name.
    SetPasswordHash = "UPDATE users SET password_hash = ? WHERE name = ?";
    /// Parameters: suspended, name.
    SetSuspended = "UPDATE users SET suspended = ? WHERE name = ?";
    /// A no-op write that locks the user's row until the transaction ends,
    /// so one user's checked writes take turns (PostgreSQL; on SQLite the
    /// write transaction already excludes every other writer). Parameter:
    /// name.
    LockUser = "UPDATE users SET suspended = suspended WHERE name = ?";
    /// Parameters: at, name.
    SetLastSeen = "UPDATE users SET last_seen = ? WHERE name = ?";
    /// Parameters: user, device, token hash, now.
    IssueToken = "INSERT INTO devices (user_name, device, token_hash, token_issued_at, last_login) \
        VALUES (?, ?, ?, ?, ?) ON CONFLICT (user_name, device) DO UPDATE SET \
        token_hash = excluded.token_hash, token_issued_at = excluded.token_issued_at, \
        last_login = excluded.last_login";
    /// Parameters: user, token hash.
    DeviceByToken = "SELECT device, token_hash, token_issued_at, last_login FROM devices \
        WHERE user_name = ? AND token_hash = ? ORDER BY device LIMIT 1";
    /// Parameter: token hash (answered from the partial index `devices_by_token`).
    UserByToken = "SELECT user_name, device, token_hash, token_issued_at, last_login \
        FROM devices WHERE token_hash = ? ORDER BY user_name, device LIMIT 1";
    /// Parameters: now, user, device.
    TouchDevice = "UPDATE devices SET last_login = ? WHERE user_name = ? AND device = ?";
    /// Parameters: at, user, device, at (never moves `last_login` back).
    TouchDeviceLater = "UPDATE devices SET last_login = ? \
        WHERE user_name = ? AND device = ? AND last_login < ?";
    /// Parameter: user.
    Devices = "SELECT device, token_hash, token_issued_at, last_login FROM devices \
        WHERE user_name = ? ORDER BY device";
    /// Parameters: user, device.
    RevokeDevice = "UPDATE devices SET token_hash = NULL WHERE user_name = ? AND device = ?";
    /// Parameters: user, the device to keep.
    RevokeOthers = "UPDATE devices SET token_hash = NULL WHERE user_name = ? AND device <> ?";
    /// Parameter: user.
    RevokeAll = "UPDATE devices SET token_hash = NULL WHERE user_name = ?";
    /// Parameter: key.
    SelectSetting = "SELECT value FROM server_settings WHERE key = ?";
    /// Parameters: key, value. Whoever inserts first wins.
    InsertSetting = "INSERT INTO server_settings (key, value) VALUES (?, ?) \
        ON CONFLICT DO NOTHING";
}

/// `Err(NotFound)` when an update changed no row.
pub(crate) fn changed(n: usize) -> StoreResult<()> {
    if n == 0 {
        return Err(StoreError::NotFound);
    }
    Ok(())
}

/// `Conflict` for a uniqueness violation, else the error itself.
pub(crate) fn conflict_or(e: DbError) -> StoreError {
    if e.is_unique_violation() {
        StoreError::Conflict
    } else {
        e.into()
    }
}

/// Creates an account; `Conflict` when the name is taken.
pub(crate) fn create_user(db: &impl Db, user: &UserRecord) -> StoreResult<()> {
    db.write(|c| {
        sql::<InsertUser>()
            .bind::<Text, _>(user.name.as_str())
            .bind::<Text, _>(user.password_hash.as_str())
            .bind::<Bool, _>(user.suspended)
            .bind::<BigInt, _>(user.created_at)
            .bind::<Nullable<BigInt>, _>(user.last_seen)
            .run(c)?;
        Ok(())
    })
    .map_err(conflict_or)
}

/// Looks an account up.
pub(crate) fn user(db: &impl Db, name: &UserId) -> StoreResult<Option<UserRecord>> {
    let row = db.read(|c| {
        Ok(sql::<SelectUser>()
            .bind::<Text, _>(name.as_str())
            .row::<UserRow, _>(c)?)
    })?;
    Ok(row.map(UserRecord::from))
}

/// Every account, by name.
pub(crate) fn list_users(db: &impl Db) -> StoreResult<Vec<UserRecord>> {
    let rows = db.read(|c| Ok(sql::<AllUsers>().rows::<UserRow, _>(c)?))?;
    Ok(rows.into_iter().map(UserRecord::from).collect())
}

/// Every suspended account, by name.
pub(crate) fn suspended_users(db: &impl Db) -> StoreResult<Vec<UserId>> {
    let rows = db.read(|c| Ok(sql::<SuspendedUsers>().rows::<TextRow, _>(c)?))?;
    Ok(rows.iter().map(|r| UserId::from_stored(&r.v)).collect())
}

/// Replaces the password hash; `NotFound` if unknown.
pub(crate) fn set_password_hash(db: &impl Db, name: &UserId, hash: &str) -> StoreResult<()> {
    changed(db.write(|c| {
        Ok(sql::<SetPasswordHash>()
            .bind::<Text, _>(hash)
            .bind::<Text, _>(name.as_str())
            .run(c)?)
    })?)
}

/// Suspends or reinstates an account; `NotFound` if unknown.
pub(crate) fn set_suspended(db: &impl Db, name: &UserId, suspended: bool) -> StoreResult<()> {
    changed(db.write(|c| {
        let n = sql::<SetSuspended>()
            .bind::<Bool, _>(suspended)
            .bind::<Text, _>(name.as_str())
            .run(c)?;
        crate::rights::bump(c)?;
        Ok(n)
    })?)
}

/// Records when the user's last session ended.
pub(crate) fn set_last_seen(db: &impl Db, name: &UserId, at: Millis) -> StoreResult<()> {
    db.write(|c| {
        sql::<SetLastSeen>()
            .bind::<Nullable<BigInt>, _>(Some(at))
            .bind::<Text, _>(name.as_str())
            .run(c)?;
        Ok(())
    })?;
    Ok(())
}

/// Issues a token if what the login checked still holds, in one
/// transaction holding the user's row.
pub(crate) fn grant_token(db: &impl Db, g: &TokenGrant) -> StoreResult<Granted> {
    let user = g.user.as_str();
    let granted = db.txn(|c| {
        sql::<LockUser>().bind::<Text, _>(user).run(c)?;
        let Some(u) = sql::<SelectUser>()
            .bind::<Text, _>(user)
            .row::<UserRow, _>(c)?
        else {
            return Ok(None);
        };
        if u.password_hash != g.password_hash {
            return Ok(Some(Granted::PasswordChanged));
        }
        if u.suspended {
            return Ok(Some(Granted::Suspended));
        }
        let devices = sql::<Devices>()
            .bind::<Text, _>(user)
            .rows::<DeviceRow, _>(c)?;
        let others = devices
            .iter()
            .filter(|d| d.token_hash.is_some() && d.device != g.device)
            .count();
        if others >= g.max_devices {
            return Ok(Some(Granted::TooManyDevices));
        }
        insert_token(c, user, &g.device, &g.token_hash, g.now)?;
        Ok(Some(Granted::Issued))
    })?;
    granted.ok_or(StoreError::NotFound)
}

/// Creates or updates a device with a new token hash and a login at `now`.
pub(crate) fn issue_token(
    db: &impl Db,
    user: &UserId,
    device: &str,
    token_hash: &str,
    now: Millis,
) -> StoreResult<()> {
    Ok(db.write(|c| insert_token(c, user.as_str(), device, token_hash, now))?)
}

/// The write behind [`issue_token`] and [`grant_token`], on `c`.
fn insert_token(
    c: &mut impl AccountsConn,
    user: &str,
    device: &str,
    token_hash: &str,
    now: Millis,
) -> Result<(), DbError> {
    sql::<IssueToken>()
        .bind::<Text, _>(user)
        .bind::<Text, _>(device)
        .bind::<Nullable<Text>, _>(Some(token_hash))
        .bind::<BigInt, _>(now)
        .bind::<BigInt, _>(now)
        .run(c)?;
    Ok(())
}

/// The user's device whose current token hashes to `token_hash`.
pub(crate) fn device_by_token(
    db: &impl Db,
    user: &UserId,
    token_hash: &str,
) -> StoreResult<Option<DeviceRecord>> {
    let row = db.read(|c| {
        Ok(sql::<DeviceByToken>()
            .bind::<Text, _>(user.as_str())
            .bind::<Text, _>(token_hash)
            .row::<DeviceRow, _>(c)?)
    })?;
    Ok(row.map(DeviceRecord::from))
}

/// The user and device whose current token hashes to `token_hash`.
pub(crate) fn user_by_token(
    db: &impl Db,
    token_hash: &str,
) -> StoreResult<Option<(UserId, DeviceRecord)>> {
    let row = db.read(|c| {
        Ok(sql::<UserByToken>()
            .bind::<Text, _>(token_hash)
            .row::<TokenRow, _>(c)?)
    })?;
    Ok(row.map(|r| (UserId::from_stored(&r.user_name), r.device.into())))
}

/// Records a token login of a device.
pub(crate) fn touch_device(
    db: &impl Db,
    user: &UserId,
    device: &str,
    now: Millis,
) -> StoreResult<()> {
    db.write(|c| {
        sql::<TouchDevice>()
            .bind::<BigInt, _>(now)
            .bind::<Text, _>(user.as_str())
            .bind::<Text, _>(device)
            .run(c)?;
        Ok(())
    })?;
    Ok(())
}

/// Many token logins in one transaction.
pub(crate) fn touch_devices(db: &impl Db, touches: &[(UserId, String, Millis)]) -> StoreResult<()> {
    db.txn(|c| {
        for (user, device, at) in touches {
            sql::<TouchDeviceLater>()
                .bind::<BigInt, _>(*at)
                .bind::<Text, _>(user.as_str())
                .bind::<Text, _>(device.as_str())
                .bind::<BigInt, _>(*at)
                .run(c)?;
        }
        Ok(())
    })?;
    Ok(())
}

/// A user's devices, by name.
pub(crate) fn devices(db: &impl Db, user: &UserId) -> StoreResult<Vec<DeviceRecord>> {
    let rows = db.read(|c| {
        Ok(sql::<Devices>()
            .bind::<Text, _>(user.as_str())
            .rows::<DeviceRow, _>(c)?)
    })?;
    Ok(rows.into_iter().map(DeviceRecord::from).collect())
}

/// Revokes one device's token; false when the device is unknown.
pub(crate) fn revoke_device(db: &impl Db, user: &UserId, device: &str) -> StoreResult<bool> {
    let n = db.write(|c| {
        let n = sql::<RevokeDevice>()
            .bind::<Text, _>(user.as_str())
            .bind::<Text, _>(device)
            .run(c)?;
        crate::rights::bump(c)?;
        Ok(n)
    })?;
    Ok(n > 0)
}

/// Revokes every token of the user except `keep`'s.
pub(crate) fn revoke_all_devices(
    db: &impl Db,
    user: &UserId,
    keep: Option<&str>,
) -> StoreResult<()> {
    db.write(|c| {
        match keep {
            Some(k) => sql::<RevokeOthers>()
                .bind::<Text, _>(user.as_str())
                .bind::<Text, _>(k)
                .run(c)?,
            None => sql::<RevokeAll>().bind::<Text, _>(user.as_str()).run(c)?,
        };
        crate::rights::bump(c)?;
        Ok(())
    })?;
    Ok(())
}

/// The `server_settings` key of the server secret.
const SECRET_KEY: &str = "link_secret";
/// Bytes in the server secret.
const SECRET_LEN: usize = 32;

/// The server secret, created by whichever process asks first.
pub(crate) fn server_secret(db: &impl Db) -> StoreResult<Vec<u8>> {
    let secret = match db.read(stored_secret)? {
        Some(v) => v,
        None => {
            let fresh = fresh_secret()?;
            // Whoever inserts first wins; everyone reads the winner's.
            db.write(|c| {
                sql::<InsertSetting>()
                    .bind::<Text, _>(SECRET_KEY)
                    .bind::<Binary, _>(fresh.as_slice())
                    .run(c)?;
                stored_secret(c)?.ok_or_else(|| DbError::Corrupt("server secret vanished".into()))
            })?
        }
    };
    if secret.len() != SECRET_LEN {
        return Err(StoreError::corrupt(format!(
            "server secret is {} bytes, not {SECRET_LEN}",
            secret.len()
        )));
    }
    Ok(secret)
}

/// The stored server secret, if any.
fn stored_secret<C: AccountsConn>(c: &mut C) -> Result<Option<Vec<u8>>, DbError> {
    Ok(sql::<SelectSetting>()
        .bind::<Text, _>(SECRET_KEY)
        .row::<SecretRow, _>(c)?
        .map(|r| r.value))
}

/// A new server secret from the operating system's generator.
fn fresh_secret() -> StoreResult<Vec<u8>> {
    use rand::RngCore;
    let mut b = vec![0u8; SECRET_LEN];
    rand::rngs::OsRng
        .try_fill_bytes(&mut b)
        .map_err(|e| StoreError::unavailable_from("no randomness for the server secret", e))?;
    Ok(b)
}
