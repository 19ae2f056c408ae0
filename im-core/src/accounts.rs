//! Account requests: register, login, devices, passwords, logout.

use std::collections::HashSet;

use crate::auth;
use crate::error::{ErrorCode, ProtoError};
use crate::hub::Hub;
use crate::ids::{now_millis, UserId};
use crate::protocol::{DeviceEntry, Reply};
use crate::reply::ReplyTo;
use crate::session::Me;
use crate::store::UserRecord;
use crate::transport::PeerInfo;
use crate::user::{KickSessions, OnlineDevices};

/// Longest device name, in characters.
pub const MAX_DEVICE_CHARS: usize = 64;
const DEFAULT_DEVICE: &str = "default";

/// A successful credential check.
pub(crate) struct LoginOk {
    pub user: UserId,
    pub device: String,
    pub token: String,
}

fn weak() -> ProtoError {
    ProtoError::new(
        ErrorCode::WeakPassword,
        "password must be 8 to 72 bytes of UTF-8 without NUL",
    )
}

fn bad_credentials() -> ProtoError {
    ProtoError::invalid_credentials("invalid username, password or token")
}

fn rate_limited() -> ProtoError {
    ProtoError::rate_limited("too many attempts, try again later")
}

/// `register`.
pub(crate) async fn register(
    hub: &Hub,
    peer: &PeerInfo,
    username: &str,
    password: &str,
) -> Result<Reply, ProtoError> {
    let h = &hub.inner;
    if h.throttles
        .register_per_peer
        .check_and_record(&peer.throttle_key())
    {
        return Err(rate_limited());
    }
    let user = UserId::parse(username).ok_or_else(|| {
        ProtoError::new(
            ErrorCode::InvalidUsername,
            "usernames are 3 to 32 characters of a-z 0-9 _ . - starting with a letter or digit",
        )
    })?;
    if !auth::password_ok(password) {
        return Err(weak());
    }
    let taken = || ProtoError::new(ErrorCode::UsernameTaken, "username taken");
    let store = h.store.clone();
    let u = user.clone();
    if h.pool.run(move || store.user(&u)).await??.is_some() {
        return Err(taken());
    }
    let cost = h.config.auth.bcrypt_cost;
    let pw = password.to_owned();
    let hash = h
        .bcrypt
        .run(move || auth::hash_password(&pw, cost))
        .await?
        .ok_or_else(weak)?;
    let record = UserRecord {
        name: user.clone(),
        password_hash: hash,
        suspended: false,
        created_at: now_millis(),
        last_seen: None,
    };
    let store = h.store.clone();
    match h.pool.run(move || store.create_user(&record)).await? {
        Ok(()) => Ok(Reply::Registered { user }),
        Err(crate::error::StoreError::Conflict) => Err(taken()),
        Err(e) => Err(e.into()),
    }
}

/// The field checks of `login`, which come before every other check
/// (also before `conflict` on a connection already logged in).
pub(crate) fn check_login_fields(
    password: &Option<String>,
    token: &Option<String>,
    device: &Option<String>,
) -> Result<(), ProtoError> {
    if password.is_some() == token.is_some() {
        return Err(ProtoError::bad_request(
            "give exactly one of password and token",
        ));
    }
    if device
        .as_ref()
        .is_some_and(|d| d.is_empty() || d.chars().count() > MAX_DEVICE_CHARS)
    {
        return Err(ProtoError::bad_request("device must be 1 to 64 characters"));
    }
    Ok(())
}

/// `login` with a password or a token; attaching the session is the
/// caller's job.
pub(crate) async fn login(
    hub: &Hub,
    peer: &PeerInfo,
    username: &str,
    password: Option<String>,
    token: Option<String>,
    device: Option<String>,
) -> Result<LoginOk, ProtoError> {
    let h = &hub.inner;
    check_login_fields(&password, &token, &device)?;
    let device = device.unwrap_or_else(|| DEFAULT_DEVICE.to_owned());
    let peer_key = peer.throttle_key();
    match (password, token) {
        (Some(pw), None) => {
            let user_key = name_key(username);
            let (peer_limit, user_limit) =
                (&h.throttles.login_per_peer, &h.throttles.login_per_user);
            if peer_limit.is_limited(&peer_key) || user_limit.is_limited(&user_key) {
                return Err(rate_limited());
            }
            // Count the attempt before checking it, so parallel guesses
            // cannot all slip under the limit; a success gives it back.
            peer_limit.record(&peer_key);
            user_limit.record(&user_key);
            let user = UserId::parse(username);
            let record = match &user {
                Some(u) => {
                    let store = h.store.clone();
                    let u = u.clone();
                    h.pool.run(move || store.user(&u)).await??
                }
                None => None,
            };
            let cost = h.config.auth.bcrypt_cost;
            let hash = record.as_ref().map(|r| r.password_hash.clone());
            let ok = h
                .bcrypt
                .run(move || auth::verify_password(&pw, hash.as_deref(), cost))
                .await?;
            let (Some(record), true) = (record, ok) else {
                return Err(bad_credentials());
            };
            peer_limit.forgive(&peer_key);
            user_limit.forgive(&user_key);
            if record.suspended {
                return Err(ProtoError::new(
                    ErrorCode::AccountSuspended,
                    "account suspended",
                ));
            }
            let token = auth::new_token();
            let hash = auth::token_hash(&token);
            let store = h.store.clone();
            let (u, d) = (record.name.clone(), device.clone());
            h.pool
                .run(move || store.issue_token(&u, &d, &hash, now_millis()))
                .await??;
            Ok(LoginOk {
                user: record.name,
                device,
                token,
            })
        }
        (None, Some(token)) => {
            if h.throttles.login_per_peer.is_limited(&peer_key) {
                return Err(rate_limited());
            }
            let fail = || {
                h.throttles.login_per_peer.record(&peer_key);
                bad_credentials()
            };
            let Some(user) = UserId::parse(username) else {
                return Err(fail());
            };
            let hash = auth::token_hash(&token);
            let ttl_ms = i64::from(h.config.auth.token_ttl_days) * 86_400_000;
            let store = h.store.clone();
            let u = user.clone();
            let found = h
                .pool
                .run(move || -> Result<_, crate::error::StoreError> {
                    let Some(dev) = store.device_by_token(&u, &hash)? else {
                        return Ok(None);
                    };
                    let rec = store.user(&u)?;
                    let now = now_millis();
                    if now - dev.token_issued_at > ttl_ms {
                        return Ok(None);
                    }
                    if rec.as_ref().is_some_and(|r| !r.suspended) {
                        store.touch_device(&u, &dev.device, now)?;
                    }
                    Ok(rec.map(|r| (r, dev)))
                })
                .await??;
            let Some((record, dev)) = found else {
                return Err(fail());
            };
            if record.suspended {
                return Err(ProtoError::new(
                    ErrorCode::AccountSuspended,
                    "account suspended",
                ));
            }
            Ok(LoginOk {
                user: record.name,
                device: dev.device,
                token,
            })
        }
        _ => Err(ProtoError::bad_request(
            "give exactly one of password and token",
        )),
    }
}

/// Failures per username are counted under the normalised name when there
/// is one, so `Alice` and `alice` share a budget.
fn name_key(raw: &str) -> String {
    UserId::parse(raw).map_or_else(|| format!("raw:{raw}"), |u| u.as_str().to_owned())
}

/// `devices`.
pub(crate) async fn devices(me: &Me) -> Result<Reply, ProtoError> {
    let h = &me.hub.inner;
    let store = h.store.clone();
    let u = me.user.clone();
    let list = h.pool.run(move || store.devices(&u)).await??;
    let online: HashSet<String> = me.user_addr.send(OnlineDevices).await.unwrap_or_default();
    Ok(Reply::Devices {
        devices: list
            .into_iter()
            .map(|d| DeviceEntry {
                online: online.contains(&d.device),
                device: d.device,
                last_login: d.last_login,
            })
            .collect(),
    })
}

/// `device.revoke`: replies, then closes that device's sessions.
pub(crate) async fn revoke_device(me: &Me, device: &str, reply: ReplyTo) {
    let h = &me.hub.inner;
    let store = h.store.clone();
    let (u, d) = (me.user.clone(), device.to_owned());
    match h.pool.run(move || store.revoke_device(&u, &d)).await {
        Ok(Ok(true)) => {
            reply.ok(Reply::Empty);
            me.user_addr.do_send(KickSessions {
                device: Some(device.to_owned()),
                keep_device: None,
                frame: None,
            });
        }
        Ok(Ok(false)) => reply.err(ProtoError::not_found("no such device")),
        Ok(Err(e)) => reply.err(e.into()),
        Err(e) => reply.err(e.into()),
    }
}

/// `password.change`: signs every other device out.
pub(crate) async fn change_password(me: &Me, old: &str, new: &str) -> Result<Reply, ProtoError> {
    let h = &me.hub.inner;
    let store = h.store.clone();
    let u = me.user.clone();
    let record = h
        .pool
        .run(move || store.user(&u))
        .await??
        .ok_or_else(|| ProtoError::internal("account vanished"))?;
    let cost = h.config.auth.bcrypt_cost;
    let (old_pw, hash) = (old.to_owned(), record.password_hash);
    if !h
        .bcrypt
        .run(move || auth::verify_password(&old_pw, Some(&hash), cost))
        .await?
    {
        return Err(bad_credentials());
    }
    if !auth::password_ok(new) {
        return Err(weak());
    }
    let new_pw = new.to_owned();
    let hash = h
        .bcrypt
        .run(move || auth::hash_password(&new_pw, cost))
        .await?
        .ok_or_else(weak)?;
    let store = h.store.clone();
    let (u, d) = (me.user.clone(), me.device.clone());
    h.pool
        .run(move || {
            store.set_password_hash(&u, &hash)?;
            store.revoke_all_devices(&u, Some(&d))
        })
        .await??;
    me.user_addr.do_send(KickSessions {
        device: None,
        keep_device: Some(me.device.clone()),
        frame: None,
    });
    Ok(Reply::Empty)
}

/// `logout`: revokes this device's token; the caller closes the connection.
pub(crate) async fn logout(me: &Me) -> Result<Reply, ProtoError> {
    let h = &me.hub.inner;
    let store = h.store.clone();
    let (u, d) = (me.user.clone(), me.device.clone());
    h.pool.run(move || store.revoke_device(&u, &d)).await??;
    Ok(Reply::Empty)
}
