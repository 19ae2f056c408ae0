//! Passwords, device tokens and login throttling.
//!
//! Every function here that hashes is blocking and must run on the bcrypt
//! pool ([`crate::pool::BlockingPool`]).

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use rand::RngCore;
use sha2::{Digest, Sha256};

/// Shortest accepted password, in bytes.
pub const MIN_PASSWORD: usize = 8;
/// Longest accepted password, in bytes (bcrypt's limit; never truncated).
pub const MAX_PASSWORD: usize = 72;

/// Whether a password meets the protocol's rules (8..=72 bytes, no NUL).
pub fn password_ok(pw: &str) -> bool {
    (MIN_PASSWORD..=MAX_PASSWORD).contains(&pw.len()) && !pw.contains('\0')
}

/// Hashes a password with bcrypt (blocking). `None` only if bcrypt refuses
/// the input, which [`password_ok`] rules out.
///
/// bcrypt reads at most 72 bytes. Rather than its `non_truncating_*`
/// variants (which count a terminating NUL and so refuse a 72-byte
/// password the protocol allows), every caller refuses longer passwords
/// first: registration and `password.change` with `weak_password`, and
/// [`verify_password`] as a mismatch, so nothing is ever silently truncated.
pub fn hash_password(pw: &str, cost: u32) -> Option<String> {
    if !password_ok(pw) {
        return None;
    }
    bcrypt::hash(pw, cost.clamp(4, 31)).ok()
}

/// Verifies a password against a hash (blocking). With no hash (unknown
/// user) it verifies against a dummy hash of the same cost, so both cases
/// take comparable time, and returns false. A password over 72 bytes never
/// matches (it would match its own 72-byte prefix if bcrypt truncated it).
pub fn verify_password(pw: &str, hash: Option<&str>, cost: u32) -> bool {
    let fits = pw.len() <= MAX_PASSWORD;
    match hash {
        Some(h) => bcrypt::verify(pw, h).unwrap_or(false) && fits,
        None => {
            static DUMMY: OnceLock<Option<String>> = OnceLock::new();
            if let Some(d) = DUMMY.get_or_init(|| hash_password("dummy-password-for-timing", cost))
            {
                let _ = bcrypt::verify(pw, d);
            }
            false
        }
    }
}

/// A fresh device token: 256 random bits, hex.
pub fn new_token() -> String {
    let mut b = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// What the store keeps of a token: its SHA-256, hex. A token has 256 bits
/// of entropy, so a fast hash is enough and a token login costs microseconds.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Fixed-window counters per key (a username or a peer address).
///
/// Memory is bounded: keys are short (a normalised username or an address),
/// expired windows are dropped when the map grows past [`PRUNE_AT`] (at
/// most once a second, so a full map is not scanned on every call), and a
/// map still full after that takes no new keys until windows expire.
#[derive(Debug)]
pub struct RateLimiter {
    limit: u32,
    window: Duration,
    map: Mutex<Counters>,
}

#[derive(Debug)]
struct Counters {
    by_key: HashMap<String, (Instant, u32)>,
    pruned: Instant,
}

/// Keys past which expired windows are dropped.
const PRUNE_AT: usize = 100_000;
/// Keys past which no new key is counted.
const MAX_KEYS: usize = 200_000;

impl RateLimiter {
    /// At most `limit` events per `window` per key.
    pub fn new(limit: u32, window: Duration) -> RateLimiter {
        RateLimiter {
            limit,
            window,
            map: Mutex::new(Counters {
                by_key: HashMap::new(),
                pruned: Instant::now(),
            }),
        }
    }

    /// Takes back one event counted by [`RateLimiter::check_and_record`]
    /// (an attempt counted up front that turned out to succeed).
    pub fn forgive(&self, key: &str) {
        let Ok(mut map) = self.map.lock() else { return };
        if let Some(e) = map.by_key.get_mut(key) {
            e.1 = e.1.saturating_sub(1);
        }
    }

    /// Counts one event unless the key has used up its window, and tells
    /// whether it had. The check and the count are one step under one lock,
    /// so sessions on different threads cannot both take the last place.
    pub fn check_and_record(&self, key: &str) -> bool {
        let Ok(mut map) = self.map.lock() else {
            return false;
        };
        match self.counter(&mut map, key) {
            Some(e) if e.1 >= self.limit => true,
            Some(e) => {
                e.1 += 1;
                false
            }
            None => false,
        }
    }

    /// Whether `key` has used up its window; counts nothing.
    pub fn is_limited(&self, key: &str) -> bool {
        let Ok(map) = self.map.lock() else {
            return false;
        };
        map.by_key
            .get(key)
            .is_some_and(|(start, n)| start.elapsed() < self.window && *n >= self.limit)
    }

    /// Counts one event for `key` (a failure found after the fact).
    pub fn record(&self, key: &str) {
        let Ok(mut map) = self.map.lock() else { return };
        if let Some(e) = self.counter(&mut map, key) {
            e.1 = e.1.saturating_add(1);
        }
    }

    /// `key`'s counter in its current window, dropping expired windows
    /// when the map is large; `None` for a new key when the map is full.
    fn counter<'m>(&self, map: &'m mut Counters, key: &str) -> Option<&'m mut (Instant, u32)> {
        let now = Instant::now();
        if map.by_key.len() >= PRUNE_AT && now.duration_since(map.pruned) >= Duration::from_secs(1)
        {
            let w = self.window;
            map.by_key.retain(|_, (start, _)| start.elapsed() < w);
            map.pruned = now;
        }
        if map.by_key.len() >= MAX_KEYS && !map.by_key.contains_key(key) {
            return None;
        }
        let e = map.by_key.entry(key.to_owned()).or_insert((now, 0));
        if e.0.elapsed() >= self.window {
            *e = (now, 0);
        }
        Some(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords() {
        assert!(!password_ok("short"));
        assert!(password_ok("12345678"));
        assert!(!password_ok(&"x".repeat(73)));
        assert!(password_ok(&"x".repeat(72)));
        assert!(!password_ok("1234567\0"));
        let h = hash_password("correct horse", 4).unwrap();
        assert!(verify_password("correct horse", Some(&h), 4));
        assert!(!verify_password("wrong horse", Some(&h), 4));
        assert!(!verify_password("x", None, 4));
        // 72 bytes is allowed; one more never matches its 72-byte prefix.
        let long = "p".repeat(72);
        let h = hash_password(&long, 4).unwrap();
        assert!(verify_password(&long, Some(&h), 4));
        assert!(!verify_password(&format!("{long}x"), Some(&h), 4));
        assert!(hash_password(&format!("{long}x"), 4).is_none());
    }

    #[test]
    fn tokens_hash_stably() {
        let t = new_token();
        assert_eq!(t.len(), 64);
        assert_eq!(token_hash(&t), token_hash(&t));
        assert_ne!(token_hash(&t), token_hash(&new_token()));
    }

    #[test]
    fn limiter_memory_is_bounded() {
        let l = RateLimiter::new(1, Duration::from_secs(60));
        for i in 0..MAX_KEYS + 1000 {
            l.check_and_record(&format!("k{i}"));
        }
        let len = l.map.lock().map(|m| m.by_key.len()).unwrap_or(0);
        assert_eq!(len, MAX_KEYS, "no key past the cap");
        // Keys already counted keep counting.
        assert!(l.check_and_record("k0"));
    }

    #[test]
    fn limiter_windows() {
        let l = RateLimiter::new(2, Duration::from_millis(50));
        assert!(!l.check_and_record("a"));
        assert!(!l.check_and_record("a"));
        assert!(l.check_and_record("a"));
        assert!(!l.check_and_record("b"), "keys count apart");
        std::thread::sleep(Duration::from_millis(60));
        assert!(!l.check_and_record("a"));
    }

    #[test]
    fn threads_racing_for_the_last_places_take_exactly_the_limit() {
        use std::sync::{Arc, Barrier};
        for _ in 0..20 {
            let l = Arc::new(RateLimiter::new(3, Duration::from_secs(60)));
            let start = Arc::new(Barrier::new(8));
            let passed: usize = (0..8)
                .map(|_| {
                    let (l, start) = (l.clone(), start.clone());
                    std::thread::spawn(move || {
                        start.wait();
                        (0..50).filter(|_| !l.check_and_record("alice")).count()
                    })
                })
                .collect::<Vec<_>>()
                .into_iter()
                .map(|t| t.join().unwrap_or(0))
                .sum();
            assert_eq!(passed, 3);
        }
    }
}
