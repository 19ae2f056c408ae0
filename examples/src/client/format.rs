//! How line mode prints things: one line per event or result.
//!
//! # Events
//! ```text
//! logged in as alice
//! registered alice                      (with --register)
//! contact bob mutual online             (the roster at login, and /contacts)
//! contact bob mutual away at lunch
//! contact dave pending_in
//! msg dm:alice:bob #3 bob: hello
//! msg room:rust #7 carol: look [file f-9c1e 48213 bytes image/png cat.png]
//! gap room:rust before 412
//! synced
//! presence bob away at lunch
//! presence bob offline
//! contact.request from bob
//! contact.added bob
//! contact.removed bob
//! receipt dm:alice:bob bob read #3      (or: delivered #3)
//! typing dm:alice:bob bob
//! room.joined rust bob
//! room.left rust bob                    (kicked: room.left rust bob kicked)
//! room.invited rust from bob
//! room.topic rust Rust talk
//! closing shutdown
//! error account_suspended: ...          (an error the server sent on its own)
//! disconnected                          (the connection ended; the client exits 1)
//! ```
//! A message already printed (replayed, then live) is not printed again.
//!
//! # Command results
//! Each command prints zero or more result lines, then exactly one line
//! that starts with `ok` or `error` (`error CODE: TEXT`; `CODE` is the
//! server's error code, `usage` for a command that could not be parsed,
//! `io` for a local file problem, `closed` when the connection is gone).
//! ```text
//! /msg bob hello        ok dm:alice:bob #4
//! /room rust hi         ok room:rust #2
//! hello                 error usage: use /msg or /room to send a message (/help lists the commands)
//! /add bob              ok
//! /contacts             contact bob mutual online ... then: ok 1 contacts
//! /rooms                room rust 2 members 1 online: Rust talk ... then: ok 1 rooms
//! /create rust Topic    ok room:rust
//! /join rust            ok room:rust
//! /history bob          history dm:alice:bob #1 alice: hi ... then: ok 2 messages (or: ok 20 messages, more)
//! /send bob ./cat.png   sent file f-9c1e 48213 bytes cat.png   then: ok dm:alice:bob #5
//! /get f-9c1e [PATH]    saved ./cat.png 48213 bytes   then: ok
//! /status away at lunch ok
//! /devices              device phone online last_login 1732500000000 ... then: ok 1 devices
//! /quit                 ok   (then the client exits 0; end of input does the same)
//! ```
//!
//! Text from the server (bodies, names, notes, topics, error messages) is
//! printed with line breaks, other control characters and bidirectional
//! overrides escaped (`\n`, `\u{1b}`), so one event is always one line
//! and nothing can drive the terminal.

use serde_json::Value;

use super::state::{Attachment, Message};

/// Escapes what could break a line or drive a terminal.
pub fn clean(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() || is_bidi_control(c) => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

/// Characters that reorder the text shown around them.
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}')
}

fn field<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("?")
}

/// `[file f-1 3 bytes text/plain a.txt]`.
pub fn attachment(a: &Attachment) -> String {
    let mime = if a.mime.is_empty() {
        String::new()
    } else {
        format!("{} ", clean(&a.mime))
    };
    format!(
        "[file {} {} bytes {}{}]",
        clean(&a.file),
        a.size,
        mime,
        clean(&a.name)
    )
}

/// `#3 bob: hello [file ...]`.
fn message_tail(m: &Message) -> String {
    let mut s = format!("#{} {}: {}", m.seq, clean(&m.from), clean(&m.body));
    if let Some(a) = &m.attachment {
        if !m.body.is_empty() {
            s.push(' ');
        }
        s.push_str(&attachment(a));
    }
    s
}

/// `msg dm:alice:bob #3 bob: hello`.
pub fn message(conv: &str, m: &Message) -> String {
    format!("msg {} {}", clean(conv), message_tail(m))
}

/// `history dm:alice:bob #3 bob: hello`.
pub fn history(conv: &str, m: &Message) -> String {
    format!("history {} {}", clean(conv), message_tail(m))
}

/// ` away at lunch` (a status and its note).
fn status(v: &Value, key: &str) -> String {
    let mut s = String::new();
    if let Some(p) = v.get(key).and_then(Value::as_str) {
        s.push(' ');
        s.push_str(&clean(p));
    }
    if let Some(n) = v.get("note").and_then(Value::as_str) {
        s.push(' ');
        s.push_str(&clean(n));
    }
    s
}

/// `contact bob mutual away at lunch` from a roster or `contact.list` entry.
pub fn contact(c: &Value) -> String {
    format!(
        "contact {} {}{}",
        clean(field(c, "user")),
        clean(field(c, "state")),
        status(c, "presence")
    )
}

/// `room rust 2 members 1 online: Rust talk` from a `room.list` entry.
pub fn room(r: &Value) -> String {
    let n = |k: &str| r.get(k).and_then(Value::as_u64).unwrap_or(0);
    let mut s = format!(
        "room {} {} members {} online",
        clean(field(r, "name")),
        n("members"),
        n("online")
    );
    if let Some(t) = r
        .get("topic")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
    {
        s.push_str(": ");
        s.push_str(&clean(t));
    }
    s
}

/// `device phone online last_login 1732500000000` from a `devices` entry.
pub fn device(d: &Value) -> String {
    let online = d.get("online").and_then(Value::as_bool).unwrap_or(false);
    let mut s = format!(
        "device {} {}",
        clean(field(d, "device")),
        if online { "online" } else { "offline" }
    );
    if let Some(t) = d.get("last_login").and_then(Value::as_i64) {
        s.push_str(&format!(" last_login {t}"));
    }
    s
}

/// `error CODE: TEXT`.
pub fn error(code: &str, message: &str) -> String {
    format!("error {}: {}", clean(code), clean(message))
}

/// The line of an event, or `None` for frames line mode does not print
/// (`hello`, `pong`, unknown types).
pub fn event(v: &Value) -> Option<String> {
    let f = |k: &str| clean(field(v, k));
    Some(match v.get("type")?.as_str()? {
        "msg" => {
            let (conv, m) = Message::from_frame(v)?;
            message(&conv, &m)
        }
        "gap" => format!(
            "gap {} before {}",
            f("conv"),
            v.get("before").and_then(Value::as_u64).unwrap_or(0)
        ),
        "synced" => "synced".into(),
        "presence" => format!("presence {}{}", f("user"), status(v, "status")),
        "contact.request" => format!("contact.request from {}", f("from")),
        "contact.added" => format!("contact.added {}", f("user")),
        "contact.removed" => format!("contact.removed {}", f("user")),
        "receipt" => {
            let read = v.get("read").and_then(Value::as_bool).unwrap_or(false);
            format!(
                "receipt {} {} {} #{}",
                f("conv"),
                f("user"),
                if read { "read" } else { "delivered" },
                v.get("seq").and_then(Value::as_u64).unwrap_or(0)
            )
        }
        "typing" => format!("typing {} {}", f("conv"), f("user")),
        "room.joined" => format!("room.joined {} {}", f("room"), f("user")),
        "room.left" => {
            let kicked = v.get("kicked").and_then(Value::as_bool) == Some(true);
            format!(
                "room.left {} {}{}",
                f("room"),
                f("user"),
                if kicked { " kicked" } else { "" }
            )
        }
        "room.invited" => format!("room.invited {} from {}", f("room"), f("from")),
        "room.topic" => format!("room.topic {} {}", f("room"), f("topic")),
        "closing" => format!("closing {}", f("reason")),
        "error" => error(field(v, "code"), field(v, "message")),
        "roster" => {
            let lines: Vec<String> = v
                .get("contacts")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(contact)
                .collect();
            if lines.is_empty() {
                return None;
            }
            lines.join("\n")
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events() {
        let cases = [
            (
                json!({"type":"msg","conv":"dm:alice:bob","seq":3,"from":"alice","body":"hello","ts":1}),
                "msg dm:alice:bob #3 alice: hello",
            ),
            (
                json!({"type":"msg","conv":"room:rust","seq":7,"from":"carol","body":"","ts":1,
                       "attachment":{"file":"f-9","name":"cat.png","mime":"image/png","size":5,"sha256":"x"}}),
                "msg room:rust #7 carol: [file f-9 5 bytes image/png cat.png]",
            ),
            (
                json!({"type":"presence","user":"bob","status":"away","note":"at lunch"}),
                "presence bob away at lunch",
            ),
            (
                json!({"type":"presence","user":"bob","status":"offline","last_seen":5}),
                "presence bob offline",
            ),
            (
                json!({"type":"contact.request","from":"bob"}),
                "contact.request from bob",
            ),
            (
                json!({"type":"contact.added","user":"bob"}),
                "contact.added bob",
            ),
            (
                json!({"type":"receipt","conv":"dm:alice:bob","user":"bob","seq":5,"read":true}),
                "receipt dm:alice:bob bob read #5",
            ),
            (
                json!({"type":"typing","conv":"room:rust","user":"bob"}),
                "typing room:rust bob",
            ),
            (
                json!({"type":"room.left","room":"rust","user":"m","kicked":true}),
                "room.left rust m kicked",
            ),
            (
                json!({"type":"gap","conv":"room:rust","before":412}),
                "gap room:rust before 412",
            ),
            (json!({"type":"synced"}), "synced"),
            (
                json!({"type":"closing","reason":"shutdown"}),
                "closing shutdown",
            ),
            (
                json!({"type":"error","code":"not_found","message":"no such user"}),
                "error not_found: no such user",
            ),
            (
                json!({"type":"roster","contacts":[{"user":"bob","state":"mutual","presence":"online"},{"user":"dave","state":"pending_in"}]}),
                "contact bob mutual online\ncontact dave pending_in",
            ),
        ];
        for (v, line) in cases {
            assert_eq!(event(&v).as_deref(), Some(line));
        }
        assert_eq!(event(&json!({"type":"hello","protocol":1})), None);
        assert_eq!(event(&json!({"type":"roster","contacts":[]})), None);
        assert_eq!(event(&json!({"type":"msg","conv":"x"})), None);
        // Mistyped fields do not panic.
        assert_eq!(
            event(&json!({"type":"presence","user":1})).as_deref(),
            Some("presence ?")
        );
    }

    #[test]
    fn hostile_text_stays_on_one_line() {
        let v = json!({"type":"msg","conv":"dm:a:b","seq":1,"from":"a",
            "body":"line1\nline2\u{1b}[2J\u{202e}gnp.exe","ts":1});
        let line = event(&v).unwrap();
        assert_eq!(
            line,
            "msg dm:a:b #1 a: line1\\nline2\\u{1b}[2J\\u{202e}gnp.exe"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn lists() {
        assert_eq!(
            room(&json!({"name":"rust","topic":"Rust talk","members":2,"online":1})),
            "room rust 2 members 1 online: Rust talk"
        );
        assert_eq!(
            room(&json!({"name":"x","members":1,"online":0})),
            "room x 1 members 0 online"
        );
        assert_eq!(
            device(&json!({"device":"phone","online":true,"last_login":17})),
            "device phone online last_login 17"
        );
        assert_eq!(
            contact(&json!({"user":"bob","state":"mutual","presence":"away","note":"at lunch"})),
            "contact bob mutual away at lunch"
        );
    }
}
