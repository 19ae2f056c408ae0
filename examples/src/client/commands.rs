//! The `/` commands: parsing a line into a [`Command`], and the protocol
//! frame of each simple command. Pure functions.
//!
//! | command | does |
//! |---|---|
//! | `/msg TARGET TEXT` | sends a message (`TARGET`: `bob`, or `#rust` for a room) |
//! | `/room ROOM TEXT` | sends a message to a room |
//! | `/add USER`, `/accept USER`, `/decline USER`, `/remove USER` | contact requests |
//! | `/contacts` | lists contacts with presence |
//! | `/rooms [TEXT]` | lists public rooms (whose name or topic contains TEXT) |
//! | `/create ROOM [TOPIC]` | creates a public room |
//! | `/join ROOM`, `/leave ROOM` | joins or leaves a room |
//! | `/history TARGET [N]` | the last N (default 20) messages with `bob` or in `#rust` |
//! | `/send TARGET PATH` | uploads a file and sends it as an attachment |
//! | `/get FILE [PATH]` | downloads a file (`f-...`) to PATH or, by default, to its name in the current directory |
//! | `/status online\|away\|busy [NOTE]` | sets your presence |
//! | `/typing TARGET` | tells TARGET you are typing |
//! | `/devices` | lists your devices |
//! | `/help` | lists the commands |
//! | `/quit` | closes the connection and exits |
//!
//! Names are normalised like the server does (NFKC, lowercase), so the
//! client can name a direct conversation (`dm:<a>:<b>`) itself.

use std::path::PathBuf;

use serde_json::{json, Value};
use unicode_normalization::UnicodeNormalization;

/// Who a message, upload or history is for.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum To {
    /// A user (direct conversation).
    User(String),
    /// A room.
    Room(String),
}

impl To {
    /// `#rust` is a room, anything else a user; the name is normalised.
    pub fn parse(s: &str) -> To {
        match s.strip_prefix('#') {
            Some(room) => To::Room(normalize(room)),
            None => To::User(normalize(s)),
        }
    }

    /// The conversation id, seen by user `me`.
    pub fn conv(&self, me: &str) -> String {
        match self {
            To::User(u) => dm_conv(me, u),
            To::Room(r) => format!("room:{r}"),
        }
    }

    /// The `to`/`room` field pair of `msg.send` and `typing`.
    fn add_to(&self, frame: &mut Value) {
        match self {
            To::User(u) => frame["to"] = json!(u),
            To::Room(r) => frame["room"] = json!(r),
        }
    }
}

impl std::fmt::Display for To {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            To::User(u) => f.write_str(u),
            To::Room(r) => write!(f, "#{r}"),
        }
    }
}

/// Unicode NFKC, then lowercase (the server's rule for names).
pub fn normalize(name: &str) -> String {
    name.nfkc().collect::<String>().to_lowercase()
}

/// The direct conversation of two users: `dm:<a>:<b>`, byte order.
pub fn dm_conv(a: &str, b: &str) -> String {
    if a.as_bytes() <= b.as_bytes() {
        format!("dm:{a}:{b}")
    } else {
        format!("dm:{b}:{a}")
    }
}

/// The other member of a direct conversation `conv` seen by `me`, or the
/// room of a room conversation.
pub fn conv_target(conv: &str, me: &str) -> Option<To> {
    if let Some(room) = conv.strip_prefix("room:") {
        return Some(To::Room(room.to_string()));
    }
    let (a, b) = conv.strip_prefix("dm:")?.split_once(':')?;
    Some(To::User(if a == me { b } else { a }.to_string()))
}

/// A parsed command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `/msg TARGET TEXT` and `/room ROOM TEXT`.
    Msg {
        /// Recipient.
        to: To,
        /// Text.
        body: String,
    },
    /// `/add USER`.
    Add(String),
    /// `/accept USER`.
    Accept(String),
    /// `/decline USER`.
    Decline(String),
    /// `/remove USER`.
    Remove(String),
    /// `/contacts`.
    Contacts,
    /// `/rooms [TEXT]`.
    Rooms(Option<String>),
    /// `/create ROOM [TOPIC]`.
    Create {
        /// Room name.
        room: String,
        /// Topic.
        topic: Option<String>,
    },
    /// `/join ROOM`.
    Join(String),
    /// `/leave ROOM`.
    Leave(String),
    /// `/history TARGET [N]`.
    History {
        /// Whose conversation.
        to: To,
        /// How many messages.
        limit: u32,
    },
    /// `/send TARGET PATH`.
    Send {
        /// Recipient.
        to: To,
        /// The file to upload.
        path: PathBuf,
    },
    /// `/get FILE [PATH]`.
    Get {
        /// The file id.
        file: String,
        /// Where to write it.
        path: Option<PathBuf>,
    },
    /// `/status STATUS [NOTE]`.
    Status {
        /// `online`, `away` or `busy`.
        status: String,
        /// The note.
        note: Option<String>,
    },
    /// `/typing TARGET`.
    Typing(To),
    /// `/devices`.
    Devices,
    /// `/help`.
    Help,
    /// `/quit`.
    Quit,
}

/// The help text: one line per command.
pub const HELP: &[&str] = &[
    "/msg USER|#ROOM TEXT   send a message",
    "/room ROOM TEXT        send a message to a room",
    "/add USER              ask USER to be your contact",
    "/accept USER           accept a contact request",
    "/decline USER          decline a contact request",
    "/remove USER           remove a contact",
    "/contacts              list contacts with presence",
    "/rooms [TEXT]          list public rooms",
    "/create ROOM [TOPIC]   create a public room",
    "/join ROOM             join a room",
    "/leave ROOM            leave a room",
    "/history USER|#ROOM [N] show the last N messages (default 20)",
    "/send USER|#ROOM PATH  send a file",
    "/get FILE [PATH]       download a file (f-...)",
    "/status online|away|busy [NOTE]  set your presence",
    "/typing USER|#ROOM     say you are typing",
    "/devices               list your devices",
    "/quit                  exit",
];

/// The default number of messages `/history` shows.
pub const HISTORY_DEFAULT: u32 = 20;

/// Splits off the first word; the rest has its leading white space removed.
fn word(s: &str) -> (&str, &str) {
    let s = s.trim_start();
    match s.find(char::is_whitespace) {
        Some(i) => (&s[..i], s[i..].trim_start()),
        None => (s, ""),
    }
}

/// Parses a line that starts with `/`. `Err` carries a usage message.
pub fn parse(line: &str) -> Result<Command, String> {
    let line = line.trim_end_matches(['\r', '\n']);
    let Some(rest) = line.trim_start().strip_prefix('/') else {
        return Err("use /msg or /room to send a message (/help lists the commands)".into());
    };
    let (name, args) = word(rest);
    let one = |usage: &str| -> Result<String, String> {
        let (a, more) = word(args);
        if a.is_empty() || !more.is_empty() {
            Err(format!("usage: {usage}"))
        } else {
            Ok(a.to_string())
        }
    };
    let none = |cmd: Command| -> Result<Command, String> {
        if args.trim().is_empty() {
            Ok(cmd)
        } else {
            Err(format!("/{name} takes no arguments"))
        }
    };
    let text = |usage: &str| -> Result<(String, String), String> {
        let (a, body) = word(args);
        if a.is_empty() || body.trim().is_empty() {
            Err(format!("usage: {usage}"))
        } else {
            Ok((a.to_string(), body.to_string()))
        }
    };
    Ok(match name.to_ascii_lowercase().as_str() {
        "msg" | "m" => {
            let (to, body) = text("/msg USER|#ROOM TEXT")?;
            Command::Msg {
                to: To::parse(&to),
                body,
            }
        }
        "room" | "r" => {
            let (room, body) = text("/room ROOM TEXT")?;
            Command::Msg {
                to: To::Room(normalize(room.trim_start_matches('#'))),
                body,
            }
        }
        "add" => Command::Add(normalize(&one("/add USER")?)),
        "accept" => Command::Accept(normalize(&one("/accept USER")?)),
        "decline" => Command::Decline(normalize(&one("/decline USER")?)),
        "remove" => Command::Remove(normalize(&one("/remove USER")?)),
        "contacts" => none(Command::Contacts)?,
        "rooms" => Command::Rooms(Some(args.trim().to_string()).filter(|q| !q.is_empty())),
        "create" => {
            let (room, topic) = word(args);
            if room.is_empty() {
                return Err("usage: /create ROOM [TOPIC]".into());
            }
            Command::Create {
                room: normalize(room.trim_start_matches('#')),
                topic: Some(topic.trim().to_string()).filter(|t| !t.is_empty()),
            }
        }
        "join" => Command::Join(normalize(one("/join ROOM")?.trim_start_matches('#'))),
        "leave" => Command::Leave(normalize(one("/leave ROOM")?.trim_start_matches('#'))),
        "history" => {
            let (to, n) = word(args);
            if to.is_empty() {
                return Err("usage: /history USER|#ROOM [N]".into());
            }
            let limit = match n.trim() {
                "" => HISTORY_DEFAULT,
                n => match n.parse::<u32>() {
                    Ok(n) if (1..=200).contains(&n) => n,
                    _ => return Err("usage: /history USER|#ROOM [N], N from 1 to 200".into()),
                },
            };
            Command::History {
                to: To::parse(to),
                limit,
            }
        }
        "send" => {
            let (to, path) = text("/send USER|#ROOM PATH")?;
            Command::Send {
                to: To::parse(&to),
                path: PathBuf::from(path.trim_end()),
            }
        }
        "get" => {
            let (file, path) = word(args);
            if file.is_empty() {
                return Err("usage: /get FILE [PATH]".into());
            }
            Command::Get {
                file: file.to_string(),
                path: Some(path.trim_end())
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from),
            }
        }
        "status" => {
            let (status, note) = word(args);
            let status = status.to_ascii_lowercase();
            if !matches!(status.as_str(), "online" | "away" | "busy") {
                return Err("usage: /status online|away|busy [NOTE]".into());
            }
            Command::Status {
                status,
                note: Some(note.trim().to_string()).filter(|n| !n.is_empty()),
            }
        }
        "typing" => Command::Typing(To::parse(&one("/typing USER|#ROOM")?)),
        "devices" => none(Command::Devices)?,
        "help" | "?" => Command::Help,
        "quit" | "exit" | "q" => Command::Quit,
        other => {
            return Err(format!(
                "unknown command /{other} (/help lists the commands)"
            ))
        }
    })
}

impl Command {
    /// The frame of a command that is a single request, or `None` for
    /// the ones that take several steps or none (`/send`, `/get`,
    /// `/help`, `/quit`).
    pub fn frame(&self) -> Option<Value> {
        let user = |ty: &str, u: &str| json!({"type": ty, "user": u});
        Some(match self {
            Command::Msg { to, body } => {
                let mut f = json!({"type": "msg.send", "body": body});
                to.add_to(&mut f);
                f
            }
            Command::Add(u) => user("contact.add", u),
            Command::Accept(u) => user("contact.accept", u),
            Command::Decline(u) => user("contact.decline", u),
            Command::Remove(u) => user("contact.remove", u),
            Command::Contacts => json!({"type": "contact.list"}),
            Command::Rooms(None) => json!({"type": "room.list"}),
            Command::Rooms(Some(q)) => json!({"type": "room.list", "q": q}),
            Command::Create { room, topic } => {
                let mut f = json!({"type": "room.create", "name": room, "public": true});
                if let Some(t) = topic {
                    f["topic"] = json!(t);
                }
                f
            }
            Command::Join(r) => json!({"type": "room.join", "name": r}),
            Command::Leave(r) => json!({"type": "room.leave", "name": r}),
            Command::Status { status, note } => {
                let mut f = json!({"type": "presence.set", "status": status});
                if let Some(n) = note {
                    f["note"] = json!(n);
                }
                f
            }
            Command::Typing(to) => typing_frame(to),
            Command::Devices => json!({"type": "devices"}),
            Command::History { .. }
            | Command::Send { .. }
            | Command::Get { .. }
            | Command::Help
            | Command::Quit => return None,
        })
    }
}

/// `typing` for a recipient.
pub fn typing_frame(to: &To) -> Value {
    let mut f = json!({"type": "typing"});
    to.add_to(&mut f);
    f
}

/// `msg.send` of an attachment.
pub fn attachment_frame(to: &To, file: &str) -> Value {
    let mut f = json!({"type": "msg.send", "body": "", "attachment": file});
    to.add_to(&mut f);
    f
}

/// `history` of the newest `limit` messages of `conv` (below `before`).
pub fn history_frame(conv: &str, limit: u32, before: Option<u64>) -> Value {
    let mut f = json!({"type": "history", "conv": conv, "limit": limit});
    if let Some(b) = before {
        f["before"] = json!(b);
    }
    f
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages() {
        let c = parse("/msg bob hello there ").unwrap();
        assert_eq!(
            c,
            Command::Msg {
                to: To::User("bob".into()),
                body: "hello there ".into()
            }
        );
        assert_eq!(
            c.frame().unwrap(),
            json!({"type":"msg.send","to":"bob","body":"hello there "})
        );
        assert_eq!(
            parse("/room rust hi").unwrap().frame().unwrap(),
            json!({"type":"msg.send","room":"rust","body":"hi"})
        );
        assert_eq!(
            parse("/msg #Rust hi").unwrap().frame().unwrap(),
            json!({"type":"msg.send","room":"rust","body":"hi"})
        );
        assert!(parse("/msg bob").is_err());
        assert!(parse("/msg bob    ").is_err());
        assert!(parse("/msg").is_err());
        assert!(parse("hello").unwrap_err().contains("/msg or /room"));
        assert!(parse("/frobnicate")
            .unwrap_err()
            .contains("unknown command"));
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(parse("/add BOB").unwrap(), Command::Add("bob".into()));
        // Fullwidth letters become ASCII under NFKC.
        assert_eq!(parse("/add ｂｏｂ").unwrap(), Command::Add("bob".into()));
        assert_eq!(To::parse("Bob").conv("alice"), "dm:alice:bob");
        assert_eq!(To::parse("alice").conv("bob"), "dm:alice:bob");
        assert_eq!(To::parse("#rust").conv("bob"), "room:rust");
        assert_eq!(
            conv_target("dm:alice:bob", "bob"),
            Some(To::User("alice".into()))
        );
        assert_eq!(
            conv_target("dm:alice:bob", "alice"),
            Some(To::User("bob".into()))
        );
        assert_eq!(
            conv_target("room:rust", "alice"),
            Some(To::Room("rust".into()))
        );
        assert_eq!(conv_target("weird", "alice"), None);
    }

    #[test]
    fn contacts_and_rooms() {
        for (line, frame) in [
            ("/add bob", json!({"type":"contact.add","user":"bob"})),
            ("/accept bob", json!({"type":"contact.accept","user":"bob"})),
            (
                "/decline bob",
                json!({"type":"contact.decline","user":"bob"}),
            ),
            ("/remove bob", json!({"type":"contact.remove","user":"bob"})),
            ("/contacts", json!({"type":"contact.list"})),
            ("/rooms", json!({"type":"room.list"})),
            ("/rooms rust", json!({"type":"room.list","q":"rust"})),
            ("/join rust", json!({"type":"room.join","name":"rust"})),
            ("/join #rust", json!({"type":"room.join","name":"rust"})),
            ("/leave rust", json!({"type":"room.leave","name":"rust"})),
            (
                "/create rust Rust talk",
                json!({"type":"room.create","name":"rust","topic":"Rust talk","public":true}),
            ),
            ("/devices", json!({"type":"devices"})),
            (
                "/status away at lunch",
                json!({"type":"presence.set","status":"away","note":"at lunch"}),
            ),
            (
                "/status busy",
                json!({"type":"presence.set","status":"busy"}),
            ),
            ("/typing bob", json!({"type":"typing","to":"bob"})),
        ] {
            assert_eq!(parse(line).unwrap().frame().unwrap(), frame, "{line}");
        }
        assert!(parse("/add").is_err());
        assert!(parse("/add bob carol").is_err());
        assert!(parse("/contacts now").is_err());
        assert!(parse("/status sleeping").is_err());
    }

    #[test]
    fn files_history_and_quit() {
        assert_eq!(
            parse("/send bob ./my cat.png").unwrap(),
            Command::Send {
                to: To::User("bob".into()),
                path: "./my cat.png".into()
            }
        );
        assert!(parse("/send bob").is_err());
        assert_eq!(
            parse("/get f-1").unwrap(),
            Command::Get {
                file: "f-1".into(),
                path: None
            }
        );
        assert_eq!(
            parse("/get f-1 /tmp/x y").unwrap(),
            Command::Get {
                file: "f-1".into(),
                path: Some("/tmp/x y".into())
            }
        );
        assert_eq!(
            parse("/history #rust 5").unwrap(),
            Command::History {
                to: To::Room("rust".into()),
                limit: 5
            }
        );
        assert_eq!(
            parse("/history bob").unwrap(),
            Command::History {
                to: To::User("bob".into()),
                limit: HISTORY_DEFAULT
            }
        );
        assert!(parse("/history bob 0").is_err());
        assert!(parse("/history bob many").is_err());
        assert_eq!(parse("/quit").unwrap(), Command::Quit);
        assert_eq!(parse("  /QUIT\r").unwrap(), Command::Quit);
        assert_eq!(parse("/quit").unwrap().frame(), None);
        assert_eq!(
            history_frame("dm:a:b", 5, Some(9)),
            json!({"type":"history","conv":"dm:a:b","limit":5,"before":9})
        );
        assert_eq!(
            attachment_frame(&To::Room("rust".into()), "f-1"),
            json!({"type":"msg.send","room":"rust","body":"","attachment":"f-1"})
        );
    }
}
