//! Protocol error codes and the error a request is answered with.

use serde::Serialize;

/// The closed set of protocol error codes (docs/PROTOCOL.md, "Requests and replies").
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

impl ErrorCode {
    /// The code as on the wire (`not_found`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::BadRequest => "bad_request",
            ErrorCode::Unauthenticated => "unauthenticated",
            ErrorCode::InvalidCredentials => "invalid_credentials",
            ErrorCode::AccountSuspended => "account_suspended",
            ErrorCode::UsernameTaken => "username_taken",
            ErrorCode::InvalidUsername => "invalid_username",
            ErrorCode::WeakPassword => "weak_password",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Conflict => "conflict",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::Internal => "internal",
        }
    }
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

impl ProtoError {
    /// What every failed login gets, whichever part was wrong.
    pub fn bad_credentials() -> ProtoError {
        ProtoError::invalid_credentials("invalid username, password or token")
    }

    /// An `account_suspended` error.
    pub fn suspended() -> ProtoError {
        ProtoError::new(ErrorCode::AccountSuspended, "account suspended")
    }
}

#[cfg(test)]
mod code_tests {
    use super::ErrorCode;

    #[test]
    fn as_str_is_the_wire_name() {
        use ErrorCode::*;
        for c in [
            BadRequest,
            Unauthenticated,
            InvalidCredentials,
            AccountSuspended,
            UsernameTaken,
            InvalidUsername,
            WeakPassword,
            NotFound,
            Forbidden,
            RateLimited,
            TooLarge,
            Conflict,
            Unavailable,
            Internal,
        ] {
            assert_eq!(serde_json::to_value(c).unwrap(), c.as_str());
        }
    }
}
