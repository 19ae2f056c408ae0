//! Account requests: register, login, devices, passwords, logout.

use std::collections::HashSet;

use super::{After, Ctx};
use crate::actors::user::{KickSessions, OnlineDevices};
use crate::auth;
use crate::error::{ErrorCode, ProtoError, StoreError};
use crate::ids::{now_millis, UserId};
use crate::protocol::{DeviceEntry, Reply};
use crate::reply::ReplyTo;
use crate::services::Services;
use crate::store::{Change, Granted, TokenGrant, UserRecord};
use crate::transport::PeerInfo;

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

fn rate_limited() -> ProtoError {
    crate::telemetry::login_throttled();
    ProtoError::rate_limited("too many attempts, try again later")
}

/// `register`.
pub(crate) async fn register(
    svc: &Services,
    peer: &PeerInfo,
    username: &str,
    password: &str,
) -> Result<Reply, ProtoError> {
    if svc
        .throttles
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
    let u = user.clone();
    if svc.db(move |s| s.user(&u)).await?.is_some() {
        return Err(taken());
    }
    let cost = svc.config.auth.bcrypt_cost;
    let pw = password.to_owned();
    let hash = svc
        .bcrypt
        .run(move || auth::hash_password(&pw, cost))
        .await?
        .ok_or_else(weak)?;
    let record = UserRecord::new(user.clone(), hash);
    let created = svc
        .db(move |s| match s.create_user(&record) {
            Err(StoreError::Conflict) => Ok(false),
            other => other.map(|()| true),
        })
        .await?;
    if created {
        Ok(Reply::Registered { user })
    } else {
        Err(taken())
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

/// A `login` on a session already logged in: the field checks, else
/// `conflict`.
pub(crate) fn relogin(
    password: &Option<String>,
    token: &Option<String>,
    device: &Option<String>,
) -> ProtoError {
    check_login_fields(password, token, device)
        .err()
        .unwrap_or_else(|| ProtoError::conflict("already logged in"))
}

/// `login` with a password or a token; attaching the session is the
/// caller's job.
pub(crate) async fn login(
    svc: &Services,
    peer: &PeerInfo,
    username: &str,
    password: Option<String>,
    token: Option<String>,
    device: Option<String>,
) -> Result<LoginOk, ProtoError> {
    check_login_fields(&password, &token, &device)?;
    let device = device.unwrap_or_else(|| DEFAULT_DEVICE.to_owned());
    match (password, token) {
        (Some(pw), None) => logged(
            "password",
            username,
            password_login(svc, peer, username, pw, device).await,
        ),
        (None, Some(token)) => logged(
            "token",
            username,
            token_login(svc, peer, username, token).await,
        ),
        _ => Err(ProtoError::bad_request(
            "give exactly one of password and token",
        )),
    }
}

/// Counts and logs a login's outcome: the method, the device and the
/// user, never a password or a token. A name tried is logged only when it
/// is a valid username (one typed into the wrong field stays out).
fn logged(
    method: &'static str,
    username: &str,
    r: Result<LoginOk, ProtoError>,
) -> Result<LoginOk, ProtoError> {
    match &r {
        Ok(ok) => {
            crate::telemetry::login(method);
            tracing::info!(user = %ok.user, method, device = ?ok.device, "logged in");
        }
        Err(e) => {
            let name = UserId::parse(username);
            let user = name.as_ref().map_or("(not a valid name)", |u| u.as_str());
            tracing::info!(user, method, code = e.code.as_str(), "login refused");
        }
    }
    r
}

/// A password login: throttled per peer and per name, verified with
/// bcrypt (against a dummy hash for unknown users), and a new token for
/// the device.
async fn password_login(
    svc: &Services,
    peer: &PeerInfo,
    username: &str,
    pw: String,
    device: String,
) -> Result<LoginOk, ProtoError> {
    let peer_key = peer.throttle_key();
    let user = UserId::parse(username);
    // Failures per username are counted under the normalised name, so
    // `Alice` and `alice` share a budget; a name that is not valid can
    // never log in and is counted per peer only (so random names cannot
    // grow the per-user counters).
    let user_key = user.as_ref().map(|u| u.as_str().to_owned());
    let (peer_limit, user_limit) = (&svc.throttles.login_per_peer, &svc.throttles.login_per_user);
    // Count the attempt before checking it, in the same step as the limit
    // check, so parallel guesses (on any thread) cannot slip under the
    // limit; a success gives it back.
    if peer_limit.check_and_record(&peer_key) {
        return Err(rate_limited());
    }
    if let Some(k) = &user_key {
        if user_limit.check_and_record(k) {
            peer_limit.forgive(&peer_key);
            return Err(rate_limited());
        }
    }
    // Given back on success, and when the password could not be checked
    // at all (store or bcrypt pool unavailable).
    let give_back = || {
        peer_limit.forgive(&peer_key);
        if let Some(k) = &user_key {
            user_limit.forgive(k);
        }
    };
    let record = match user {
        Some(u) => svc
            .db(move |s| s.user(&u))
            .await
            .inspect_err(|_| give_back())?,
        None => None,
    };
    let cost = svc.config.auth.bcrypt_cost;
    let hash = record.as_ref().map(|r| r.password_hash.clone());
    let ok = svc
        .bcrypt
        .run(move || auth::verify_password(&pw, hash.as_deref(), cost))
        .await
        .inspect_err(|_| give_back())?;
    let (Some(record), true) = (record, ok) else {
        return Err(ProtoError::bad_credentials());
    };
    give_back();
    if record.suspended {
        return Err(ProtoError::suspended());
    }
    let token = auth::new_token();
    let max = svc.config.limits.max_devices;
    // Issued only if the password checked is still the password and the
    // account still in good standing: a password change or a suspension
    // during the bcrypt check must not leave a fresh token behind.
    let grant = TokenGrant {
        user: record.name.clone(),
        device: device.clone(),
        token_hash: auth::token_hash(&token),
        password_hash: record.password_hash,
        max_devices: max,
        now: now_millis(),
    };
    match svc.db(move |s| s.grant_token(&grant)).await? {
        Granted::Issued => {}
        Granted::PasswordChanged => return Err(ProtoError::bad_credentials()),
        Granted::Suspended => return Err(ProtoError::suspended()),
        Granted::TooManyDevices => {
            return Err(ProtoError::conflict(format!(
                "{max} devices are signed in: revoke one first"
            )))
        }
    }
    Ok(LoginOk {
        user: record.name,
        device,
        token,
    })
}

/// A token login: a hash comparison, throttled per peer only.
async fn token_login(
    svc: &Services,
    peer: &PeerInfo,
    username: &str,
    token: String,
) -> Result<LoginOk, ProtoError> {
    let peer_key = peer.throttle_key();
    let limit = &svc.throttles.login_per_peer;
    // Only failures count, after the fact: many good reconnects from one
    // address (a NAT, a proxy) must not use up its budget. Logins in
    // flight may pass the limit together, which a 256-bit token makes
    // harmless.
    if limit.is_limited(&peer_key) {
        return Err(rate_limited());
    }
    let checked = check_token(svc, username, token).await;
    if checked
        .as_ref()
        .is_err_and(|e| e.code == ErrorCode::InvalidCredentials)
    {
        limit.record(&peer_key);
    }
    checked
}

/// Checks a token and notes the login; `invalid_credentials` when the
/// token is wrong or expired.
async fn check_token(svc: &Services, username: &str, token: String) -> Result<LoginOk, ProtoError> {
    let Some(user) = UserId::parse(username) else {
        return Err(ProtoError::bad_credentials());
    };
    let now = now_millis();
    let (record, dev) = svc
        .token_holder(user, auth::token_hash(&token), now)
        .await?;
    // Read only: `last_login` is written with others' about once a
    // second, so a reconnect storm is not one commit per login.
    svc.touch_later(&record.name, &dev.device, now);
    Ok(LoginOk {
        user: record.name,
        device: dev.device,
        token,
    })
}

/// `devices`.
pub(crate) async fn devices(me: &Ctx) -> Result<Reply, ProtoError> {
    let u = me.user.clone();
    let pending = me.svc.pending_touches(&me.user);
    let mut list = me.svc.db(move |s| s.devices(&u)).await?;
    for d in &mut list {
        if let Some(at) = pending.get(&d.device) {
            d.last_login = d.last_login.max(*at);
        }
    }
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
pub(crate) async fn revoke_device(me: &Ctx, device: &str, reply: ReplyTo) {
    let (u, d, origin) = (me.user.clone(), device.to_owned(), me.svc.origin);
    let revoked = me.svc.db(move |s| {
        let token = s.devices(&u)?.into_iter().find(|x| x.device == d);
        let revoked = s.revoke_device(&u, &d)?;
        if let Some(token_hash) = token.and_then(|x| x.token_hash) {
            let change = Change::TokenRevoked {
                user: u,
                token_hash,
            };
            Services::publish(origin, s, &change)?;
        }
        Ok(revoked)
    });
    match revoked.await {
        Ok(true) => {
            me.svc.changed().await;
            reply.ok(Reply::Empty);
            me.svc
                .kick_sessions(&me.user, KickSessions::device(device.to_owned()));
        }
        Ok(false) => reply.err(ProtoError::not_found("no such device")),
        Err(e) => reply.err(e),
    }
}

/// `password.change`: signs out every session but this one and revokes
/// every token but the one this session holds (device names are labels,
/// not proof: another session under this device name goes too). Wrong
/// `old` passwords count against `auth.login_failures_per_user`.
pub(crate) async fn change_password(me: &Ctx, old: &str, new: &str) -> Result<Reply, ProtoError> {
    let limit = &me.svc.throttles.login_per_user;
    let key = me.user.as_str();
    // Counted before the check, as logins are; given back on success.
    if limit.check_and_record(key) {
        return Err(rate_limited());
    }
    let changed = set_password(me, old, new).await;
    if changed.is_ok()
        || changed
            .as_ref()
            .is_err_and(|e| e.code != ErrorCode::InvalidCredentials)
    {
        limit.forgive(key);
    }
    changed?;
    me.svc
        .kick_sessions(&me.user, KickSessions::password_changed(me.session));
    Ok(Reply::Empty)
}

/// Checks `old`, stores a hash of `new` and revokes the other tokens.
async fn set_password(me: &Ctx, old: &str, new: &str) -> Result<(), ProtoError> {
    let u = me.user.clone();
    let record = me
        .svc
        .db(move |s| s.user(&u))
        .await?
        .ok_or_else(|| ProtoError::internal("account vanished"))?;
    let cost = me.svc.config.auth.bcrypt_cost;
    let (old_pw, hash) = (old.to_owned(), record.password_hash);
    let bcrypt = &me.svc.bcrypt;
    if !bcrypt
        .run(move || auth::verify_password(&old_pw, Some(&hash), cost))
        .await?
    {
        return Err(ProtoError::bad_credentials());
    }
    if !auth::password_ok(new) {
        return Err(weak());
    }
    let new_pw = new.to_owned();
    let hash = bcrypt
        .run(move || auth::hash_password(&new_pw, cost))
        .await?
        .ok_or_else(weak)?;
    let (u, d, mine) = (me.user.clone(), me.device.clone(), me.token_hash.clone());
    let origin = me.svc.origin;
    me.svc
        .db(move |s| {
            s.set_password_hash(&u, &hash)?;
            // Keep this device's token only if it is still the one this
            // session holds.
            let keep = s
                .devices(&u)?
                .into_iter()
                .any(|dev| dev.device == d && dev.token_hash.as_deref() == Some(&*mine));
            s.revoke_all_devices(&u, keep.then_some(d.as_str()))?;
            let keep = keep.then(|| mine.to_string());
            Services::publish(origin, s, &Change::TokensRevoked { user: u, keep })
        })
        .await?;
    me.svc.changed().await;
    Ok(())
}

/// `logout`: revokes this device's token, replies, and has the session
/// close the connection.
pub(crate) async fn logout(me: Ctx, reply: ReplyTo) -> After {
    let (u, d) = (me.user.clone(), me.device.clone());
    match me.svc.db(move |s| s.revoke_device(&u, &d)).await {
        Ok(_) => {
            reply.ok(Reply::Empty);
            After::Close
        }
        Err(e) => {
            reply.err(e);
            After::Continue
        }
    }
}
