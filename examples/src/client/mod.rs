//! The terminal client behind `examples/client.rs`.
//!
//! ```text
//! cargo run --example client -- --url tcp://127.0.0.1:7878 --user alice
//! cargo run --example client -- --url ws://127.0.0.1:8080/ws --user bob --register
//! cargo run --example client -- --url tls://localhost:7878 --user alice --ca ca.pem
//! ```
//!
//! On a terminal it is a full-screen chat ([`tui`]); when standard input is
//! not a terminal it runs in line mode ([`line`](mod@line)): the first line of input
//! is the password, every further line a command, and every event is
//! printed on a line of its own ([`format`](mod@format) documents the format).
//!
//! # Modules
//! - [`conn`]: connecting by URL (`tcp://`, `tls://`, `ws://`, `wss://`), the
//!   reader and writer tasks, replies matched to requests by `id`, login.
//! - [`commands`]: the `/` commands, parsed into protocol frames (pure).
//! - [`exec`]: running a command against the server (uploads, downloads,
//!   lists), reporting what happened as [`exec::Report`]s.
//! - [`state`]: contacts, presence, conversations, unread counts, messages
//!   (deduplicated by `(conv, seq)`), typing.
//! - [`format`](mod@format): how events and results are printed in line mode.
//! - [`line`](mod@line): line mode.
//! - [`tui`]: the full-screen view (ratatui).
//!
//! # Options
//! - `--url URL`: `tcp://HOST:PORT` (default `tcp://127.0.0.1:7878`),
//!   `tls://HOST:PORT`, `ws://HOST:PORT/ws`, `wss://HOST:PORT/ws`.
//! - `--user NAME`: who to log in as (required).
//! - `--register`: register the user first (a `username_taken` reply is
//!   reported and the login goes ahead).
//! - `--ca FILE`: also trust the CA certificates of this PEM file (besides
//!   Mozilla's roots) for `tls://` and `wss://`.
//! - `--device NAME`: the device name sent with `login` (default `terminal`).
//!
//! The client keeps no token: every start logs in with the password, and
//! `/quit` simply closes the connection.

pub mod commands;
pub mod conn;
pub mod exec;
pub mod format;
pub mod line;
pub mod state;
pub mod tui;

use std::path::PathBuf;

/// The command-line options.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// Where to connect.
    pub url: String,
    /// The user to log in as.
    pub user: String,
    /// Register the user before logging in.
    pub register: bool,
    /// A PEM file of extra CA certificates to trust.
    pub ca: Option<PathBuf>,
    /// The device name for `login`.
    pub device: String,
}

/// The usage text printed by `--help` and after a bad argument.
pub const USAGE: &str = "\
usage: client --user NAME [--url URL] [--register] [--ca FILE] [--device NAME]

  --url URL      tcp://HOST:PORT (default tcp://127.0.0.1:7878), tls://HOST:PORT,
                 ws://HOST:PORT/ws or wss://HOST:PORT/ws
  --user NAME    the user to log in as
  --register     register the user first
  --ca FILE      also trust the CA certificates in this PEM file
  --device NAME  the device name sent at login (default: terminal)

On a terminal the client is a full-screen chat and asks for the password.
Otherwise it runs in line mode: the first input line is the password, each
further line a command (/help lists them), and events print one per line.";

/// What the command line asked for.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run with these options.
    Run(Options),
    /// Print [`USAGE`] and exit successfully.
    Help,
}

impl Options {
    /// Parses the arguments (without the program name). `--opt value` and
    /// `--opt=value` are both accepted.
    pub fn parse<I: IntoIterator<Item = String>>(args: I) -> Result<Parsed, String> {
        let mut url = None;
        let mut user = None;
        let mut register = false;
        let mut ca = None;
        let mut device = None;
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let (name, inline) = match arg.split_once('=') {
                Some((n, v)) if n.starts_with("--") => (n.to_string(), Some(v.to_string())),
                _ => (arg.clone(), None),
            };
            let mut value = |what: &str| -> Result<String, String> {
                match inline.clone().or_else(|| args.next()) {
                    Some(v) => Ok(v),
                    None => Err(format!("{what} needs a value")),
                }
            };
            match name.as_str() {
                "--help" | "-h" => return Ok(Parsed::Help),
                "--url" => url = Some(value("--url")?),
                "--user" | "-u" => user = Some(value("--user")?),
                "--ca" => ca = Some(PathBuf::from(value("--ca")?)),
                "--device" => device = Some(value("--device")?),
                "--register" if inline.is_none() => register = true,
                other => return Err(format!("unknown argument {other}")),
            }
        }
        let user = user.ok_or("--user is required")?;
        if user.trim().is_empty() {
            return Err("--user must not be empty".into());
        }
        let url = url.unwrap_or_else(|| "tcp://127.0.0.1:7878".into());
        conn::Target::parse(&url)?;
        Ok(Parsed::Run(Options {
            url,
            user,
            register,
            ca,
            device: device.unwrap_or_else(|| "terminal".into()),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        Options::parse(args.iter().map(|s| s.to_string()))
    }

    #[test]
    fn options() {
        let Parsed::Run(o) = parse(&["--user", "alice"]).unwrap() else {
            panic!()
        };
        assert_eq!(o.url, "tcp://127.0.0.1:7878");
        assert_eq!(o.device, "terminal");
        assert!(!o.register);
        let Parsed::Run(o) = parse(&[
            "--url=ws://h:1/ws",
            "--user",
            "bob",
            "--register",
            "--ca",
            "c.pem",
            "--device",
            "phone",
        ])
        .unwrap() else {
            panic!()
        };
        assert_eq!(o.url, "ws://h:1/ws");
        assert_eq!(o.user, "bob");
        assert!(o.register);
        assert_eq!(o.ca, Some(PathBuf::from("c.pem")));
        assert_eq!(o.device, "phone");
        assert_eq!(parse(&["--help"]).unwrap(), Parsed::Help);
        assert!(parse(&[]).is_err());
        assert!(parse(&["--user"]).is_err());
        assert!(parse(&["--user", "a", "--bogus"]).is_err());
        assert!(parse(&["--user", "a", "--register=yes"]).is_err());
        assert!(parse(&["--user", "a", "--url", "http://x"]).is_err());
    }
}
