//! What the client knows: contacts and their presence, rooms,
//! conversations with their messages (deduplicated by `(conv, seq)`) and
//! unread counts, who is typing, files seen in attachments, and the
//! full-screen view's own state (selection, input, scrolling, a log).
//!
//! [`State::apply`] updates it from one server frame. Frames are hostile
//! input: a frame with missing or mistyped fields changes nothing.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::commands::{conv_target, dm_conv, To};

/// How long a `typing` event is shown.
pub const TYPING_SHOWN: Duration = Duration::from_secs(5);
/// How many lines the log keeps.
const LOG_LINES: usize = 500;
/// How many messages a conversation keeps in memory.
const MESSAGES_KEPT: usize = 2000;

/// A file as described in a message's `attachment`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Attachment {
    /// The file id (`f-...`).
    pub file: String,
    /// Its name, as the sender gave it (shown only, never a path as is).
    pub name: String,
    /// MIME type.
    pub mime: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256, lowercase hex.
    pub sha256: String,
}

impl Attachment {
    /// Reads an `attachment` object; `None` without a string `file`.
    pub fn from_value(v: &Value) -> Option<Attachment> {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or("").to_string();
        let file = v.get("file")?.as_str()?.to_string();
        Some(Attachment {
            file,
            name: s("name"),
            mime: s("mime"),
            size: v.get("size").and_then(Value::as_u64).unwrap_or(0),
            sha256: s("sha256"),
        })
    }
}

/// One message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    /// Its number in the conversation.
    pub seq: u64,
    /// The sender.
    pub from: String,
    /// The text (may be empty with an attachment).
    pub body: String,
    /// Server time, ms since the epoch.
    pub ts: i64,
    /// The attached file.
    pub attachment: Option<Attachment>,
}

impl Message {
    /// Reads a `msg` frame: its conversation and the message, or `None`
    /// when a required field is missing or mistyped.
    pub fn from_frame(v: &Value) -> Option<(String, Message)> {
        let conv = v.get("conv")?.as_str()?.to_string();
        let seq = v.get("seq")?.as_u64()?;
        let from = v.get("from")?.as_str()?.to_string();
        let body = v
            .get("body")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let ts = v.get("ts").and_then(Value::as_i64).unwrap_or(0);
        let attachment = v.get("attachment").and_then(Attachment::from_value);
        Some((
            conv,
            Message {
                seq,
                from,
                body,
                ts,
                attachment,
            },
        ))
    }
}

/// A contact (or contact request).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Contact {
    /// `mutual`, `pending_in` or `pending_out`.
    pub state: String,
    /// `online`, `away`, `busy` or `offline` (mutual contacts).
    pub presence: Option<String>,
    /// The presence note.
    pub note: Option<String>,
}

/// One conversation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Conversation {
    /// Its messages by `seq`.
    pub messages: BTreeMap<u64, Message>,
    /// Messages from others not read yet.
    pub unread: u64,
    /// The history page was asked for (full-screen view).
    pub history_loaded: bool,
}

impl Conversation {
    /// The highest `seq` held.
    pub fn last_seq(&self) -> Option<u64> {
        self.messages.keys().next_back().copied()
    }
}

/// An entry of the left pane.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Entry {
    /// The client's log (command results, errors).
    Log,
    /// A contact, request or other direct conversation.
    User(String),
    /// A room the user is in.
    Room(String),
}

/// An upload in progress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Progress {
    /// The file name.
    pub name: String,
    /// Bytes sent.
    pub done: u64,
    /// Bytes in all.
    pub total: u64,
}

/// Everything the client shows.
#[derive(Debug, Clone)]
pub struct State {
    /// The logged-in user.
    pub me: String,
    /// Own presence (`online` at login).
    pub my_presence: String,
    /// Contacts by name.
    pub contacts: BTreeMap<String, Contact>,
    /// Rooms the user is in.
    pub rooms: BTreeSet<String>,
    /// Conversations by id.
    pub convs: HashMap<String, Conversation>,
    /// Files seen in attachments, by id.
    pub files: HashMap<String, Attachment>,
    /// Who is typing where, until when.
    pub typing: HashMap<String, Vec<(String, Instant)>>,
    /// The replay is over.
    pub synced: bool,
    /// The connection is up.
    pub connected: bool,
    /// The selected entry (full-screen view).
    pub selected: Entry,
    /// The input line.
    pub input: String,
    /// Lines scrolled up from the newest message.
    pub scroll: u16,
    /// Command results and errors, newest last.
    pub log: Vec<String>,
    /// An upload in progress.
    pub progress: Option<Progress>,
}

impl State {
    /// A fresh state for `me`.
    pub fn new(me: &str) -> State {
        State {
            me: me.to_string(),
            my_presence: "online".into(),
            contacts: BTreeMap::new(),
            rooms: BTreeSet::new(),
            convs: HashMap::new(),
            files: HashMap::new(),
            typing: HashMap::new(),
            synced: false,
            connected: true,
            selected: Entry::Log,
            input: String::new(),
            scroll: 0,
            log: Vec::new(),
            progress: None,
        }
    }

    /// Adds a line to the log.
    pub fn note(&mut self, line: impl Into<String>) {
        self.log.push(line.into());
        if self.log.len() > LOG_LINES {
            let extra = self.log.len() - LOG_LINES;
            self.log.drain(..extra);
        }
    }

    /// Adds a message; `false` when `(conv, seq)` was already there.
    /// Counts it as unread unless it is the user's own or its
    /// conversation is selected (`viewing`).
    pub fn add_message(&mut self, conv: &str, msg: Message, viewing: bool) -> bool {
        if let Some(a) = &msg.attachment {
            self.files.insert(a.file.clone(), a.clone());
        }
        if let Some(To::Room(r)) = conv_target(conv, &self.me) {
            self.rooms.insert(r);
        }
        let mine = msg.from == self.me;
        let from = msg.from.clone();
        let c = self.convs.entry(conv.to_string()).or_default();
        if c.messages.contains_key(&msg.seq) {
            return false;
        }
        c.messages.insert(msg.seq, msg);
        if c.messages.len() > MESSAGES_KEPT {
            c.messages.pop_first();
        }
        if !mine && !viewing {
            c.unread += 1;
        }
        // A message ends its sender's typing.
        if let Some(t) = self.typing.get_mut(conv) {
            t.retain(|(u, _)| *u != from);
        }
        true
    }

    /// The conversation of an entry.
    pub fn conv_of(&self, e: &Entry) -> Option<String> {
        match e {
            Entry::Log => None,
            Entry::User(u) => Some(dm_conv(&self.me, u)),
            Entry::Room(r) => Some(format!("room:{r}")),
        }
    }

    /// The selected conversation.
    pub fn selected_conv(&self) -> Option<String> {
        self.conv_of(&self.selected)
    }

    /// Applies one server frame (an event, not a reply). Returns `false`
    /// for a message already seen (a duplicate from replay and live) or a
    /// malformed one, which are not to be shown again.
    pub fn apply(&mut self, v: &Value, now: Instant) -> bool {
        let s = |k: &str| v.get(k).and_then(Value::as_str);
        match s("type").unwrap_or("") {
            "msg" => {
                let Some((conv, msg)) = Message::from_frame(v) else {
                    return false;
                };
                let viewing = self.selected_conv().as_deref() == Some(conv.as_str());
                return self.add_message(&conv, msg, viewing);
            }
            "roster" => {
                self.contacts.clear();
                for c in v
                    .get("contacts")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    if let Some(user) = c.get("user").and_then(Value::as_str) {
                        let f = |k: &str| c.get(k).and_then(Value::as_str).map(str::to_string);
                        self.contacts.insert(
                            user.to_string(),
                            Contact {
                                state: f("state").unwrap_or_default(),
                                presence: f("presence"),
                                note: f("note"),
                            },
                        );
                    }
                }
            }
            "synced" => self.synced = true,
            "presence" => {
                let (Some(user), Some(status)) = (s("user"), s("status")) else {
                    return true;
                };
                if user == self.me {
                    self.my_presence = status.to_string();
                } else if let Some(c) = self.contacts.get_mut(user) {
                    c.presence = Some(status.to_string());
                    c.note = s("note").map(str::to_string);
                    if c.state != "mutual" {
                        c.state = "mutual".into();
                    }
                }
                if status == "offline" {
                    for t in self.typing.values_mut() {
                        t.retain(|(u, _)| u != user);
                    }
                }
            }
            "contact.request" => {
                if let Some(from) = s("from") {
                    let c = self.contacts.entry(from.to_string()).or_default();
                    if c.state != "mutual" {
                        c.state = "pending_in".into();
                    }
                }
            }
            "contact.added" => {
                if let Some(user) = s("user") {
                    let c = self.contacts.entry(user.to_string()).or_default();
                    c.state = "mutual".into();
                    c.presence.get_or_insert_with(|| "offline".into());
                }
            }
            "contact.removed" => {
                if let Some(user) = s("user") {
                    self.contacts.remove(user);
                }
            }
            "typing" => {
                if let (Some(conv), Some(user)) = (s("conv"), s("user")) {
                    if user != self.me {
                        let t = self.typing.entry(conv.to_string()).or_default();
                        t.retain(|(u, _)| u != user);
                        t.push((user.to_string(), now + TYPING_SHOWN));
                    }
                }
            }
            "room.joined" => {
                if let (Some(room), Some(user)) = (s("room"), s("user")) {
                    if user == self.me {
                        self.rooms.insert(room.to_string());
                    }
                }
            }
            "room.left" => {
                if let (Some(room), Some(user)) = (s("room"), s("user")) {
                    if user == self.me {
                        self.rooms.remove(room);
                        self.convs.remove(&format!("room:{room}"));
                        if self.selected == Entry::Room(room.to_string()) {
                            self.selected = Entry::Log;
                        }
                    }
                }
            }
            "closing" => self.connected = false,
            _ => {}
        }
        true
    }

    /// Forgets typing indicators that are over.
    pub fn tick(&mut self, now: Instant) {
        for t in self.typing.values_mut() {
            t.retain(|(_, until)| *until > now);
        }
        self.typing.retain(|_, t| !t.is_empty());
    }

    /// Who is typing in `conv`.
    pub fn typing_in(&self, conv: &str) -> Vec<&str> {
        self.typing
            .get(conv)
            .map(|t| t.iter().map(|(u, _)| u.as_str()).collect())
            .unwrap_or_default()
    }

    /// The unread count of a conversation.
    pub fn unread(&self, conv: &str) -> u64 {
        self.convs.get(conv).map_or(0, |c| c.unread)
    }

    /// The entries of the left pane: the log, then contacts and other
    /// direct conversations by name, then rooms by name.
    pub fn entries(&self) -> Vec<Entry> {
        let mut users: BTreeSet<String> = self.contacts.keys().cloned().collect();
        for conv in self.convs.keys() {
            if let Some(To::User(u)) = conv_target(conv, &self.me) {
                if conv.starts_with("dm:") && u != self.me {
                    users.insert(u);
                }
            }
        }
        let mut rooms = self.rooms.clone();
        for conv in self.convs.keys() {
            if let Some(r) = conv.strip_prefix("room:") {
                rooms.insert(r.to_string());
            }
        }
        std::iter::once(Entry::Log)
            .chain(users.into_iter().map(Entry::User))
            .chain(rooms.into_iter().map(Entry::Room))
            .collect()
    }

    /// Selects the entry `delta` places away (wrapping), and marks its
    /// conversation read. Returns the conversation now selected.
    pub fn select_step(&mut self, delta: isize) -> Option<String> {
        let entries = self.entries();
        let at = entries
            .iter()
            .position(|e| *e == self.selected)
            .unwrap_or(0) as isize;
        let n = entries.len() as isize;
        let next = (at + delta).rem_euclid(n.max(1)) as usize;
        let entry = entries.get(next).cloned().unwrap_or(Entry::Log);
        self.select(entry)
    }

    /// Selects an entry and marks its conversation read.
    pub fn select(&mut self, entry: Entry) -> Option<String> {
        self.selected = entry;
        self.scroll = 0;
        let conv = self.selected_conv()?;
        if let Some(c) = self.convs.get_mut(&conv) {
            c.unread = 0;
        }
        Some(conv)
    }

    /// The recipient of the selected entry.
    pub fn selected_target(&self) -> Option<To> {
        match &self.selected {
            Entry::Log => None,
            Entry::User(u) => Some(To::User(u.clone())),
            Entry::Room(r) => Some(To::Room(r.clone())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn msg(conv: &str, seq: u64, from: &str, body: &str) -> Value {
        json!({"type":"msg","conv":conv,"seq":seq,"from":from,"body":body,"ts":1})
    }

    #[test]
    fn messages_are_deduplicated_and_counted() {
        let now = Instant::now();
        let mut s = State::new("alice");
        assert!(s.apply(&msg("dm:alice:bob", 1, "bob", "hi"), now));
        assert!(s.apply(&msg("dm:alice:bob", 2, "bob", "there"), now));
        assert!(!s.apply(&msg("dm:alice:bob", 1, "bob", "hi"), now));
        assert!(s.apply(&msg("dm:alice:bob", 3, "alice", "mine"), now));
        assert_eq!(s.unread("dm:alice:bob"), 2);
        assert_eq!(s.convs["dm:alice:bob"].messages.len(), 3);
        assert_eq!(s.convs["dm:alice:bob"].last_seq(), Some(3));
        // Malformed messages change nothing.
        assert!(!s.apply(&json!({"type":"msg","conv":"dm:alice:bob","seq":"x"}), now));
        assert!(!s.apply(&json!({"type":"msg","seq":9,"from":"bob"}), now));
        // Selecting reads it; new messages there are not unread.
        assert_eq!(
            s.select(Entry::User("bob".into())).as_deref(),
            Some("dm:alice:bob")
        );
        assert_eq!(s.unread("dm:alice:bob"), 0);
        s.apply(&msg("dm:alice:bob", 4, "bob", "seen"), now);
        assert_eq!(s.unread("dm:alice:bob"), 0);
        // A room message adds the room.
        s.apply(&msg("room:rust", 1, "carol", "hey"), now);
        assert!(s.rooms.contains("rust"));
        assert_eq!(s.unread("room:rust"), 1);
    }

    #[test]
    fn contacts_and_presence() {
        let now = Instant::now();
        let mut s = State::new("alice");
        s.apply(
            &json!({"type":"roster","contacts":[
                {"user":"bob","state":"mutual","presence":"away","note":"at lunch"},
                {"user":"dave","state":"pending_in"},
                {"state":"mutual"}, 7]}),
            now,
        );
        assert_eq!(s.contacts.len(), 2);
        assert_eq!(s.contacts["bob"].presence.as_deref(), Some("away"));
        assert_eq!(s.contacts["bob"].note.as_deref(), Some("at lunch"));
        s.apply(
            &json!({"type":"presence","user":"bob","status":"online"}),
            now,
        );
        assert_eq!(s.contacts["bob"].presence.as_deref(), Some("online"));
        assert_eq!(s.contacts["bob"].note, None);
        s.apply(&json!({"type":"contact.request","from":"carol"}), now);
        assert_eq!(s.contacts["carol"].state, "pending_in");
        s.apply(&json!({"type":"contact.added","user":"carol"}), now);
        assert_eq!(s.contacts["carol"].state, "mutual");
        s.apply(&json!({"type":"contact.removed","user":"dave"}), now);
        assert!(!s.contacts.contains_key("dave"));
        s.apply(
            &json!({"type":"presence","user":"alice","status":"busy"}),
            now,
        );
        assert_eq!(s.my_presence, "busy");
        // Mistyped fields are ignored.
        s.apply(&json!({"type":"presence","user":5,"status":"online"}), now);
        s.apply(&json!({"type":"contact.added"}), now);
        assert_eq!(s.contacts.len(), 2);
    }

    #[test]
    fn typing_expires() {
        let now = Instant::now();
        let mut s = State::new("alice");
        s.apply(
            &json!({"type":"typing","conv":"dm:alice:bob","user":"bob"}),
            now,
        );
        s.apply(
            &json!({"type":"typing","conv":"dm:alice:bob","user":"bob"}),
            now,
        );
        assert_eq!(s.typing_in("dm:alice:bob"), vec!["bob"]);
        s.tick(now + Duration::from_secs(1));
        assert_eq!(s.typing_in("dm:alice:bob"), vec!["bob"]);
        s.tick(now + TYPING_SHOWN + Duration::from_millis(1));
        assert!(s.typing_in("dm:alice:bob").is_empty());
        // A message from the typist ends it at once.
        s.apply(
            &json!({"type":"typing","conv":"dm:alice:bob","user":"bob"}),
            now,
        );
        s.apply(&msg("dm:alice:bob", 1, "bob", "done"), now);
        assert!(s.typing_in("dm:alice:bob").is_empty());
    }

    #[test]
    fn entries_and_selection() {
        let now = Instant::now();
        let mut s = State::new("alice");
        s.apply(
            &json!({"type":"roster","contacts":[{"user":"bob","state":"mutual","presence":"online"}]}),
            now,
        );
        s.apply(
            &json!({"type":"room.joined","room":"rust","user":"alice"}),
            now,
        );
        s.apply(&msg("dm:alice:zed", 1, "zed", "hello"), now);
        assert_eq!(
            s.entries(),
            vec![
                Entry::Log,
                Entry::User("bob".into()),
                Entry::User("zed".into()),
                Entry::Room("rust".into())
            ]
        );
        assert_eq!(s.select_step(1).as_deref(), Some("dm:alice:bob"));
        assert_eq!(s.select_step(2).as_deref(), Some("room:rust"));
        assert_eq!(s.select_step(1), None);
        assert_eq!(s.selected, Entry::Log);
        assert_eq!(s.select_step(-1).as_deref(), Some("room:rust"));
        assert_eq!(s.selected_target(), Some(To::Room("rust".into())));
        s.apply(
            &json!({"type":"room.left","room":"rust","user":"alice"}),
            now,
        );
        assert!(!s.rooms.contains("rust"));
    }

    #[test]
    fn attachments_are_remembered() {
        let mut s = State::new("bob");
        let mut m = msg("dm:alice:bob", 1, "alice", "");
        m["attachment"] =
            json!({"file":"f-1","name":"cat.png","mime":"image/png","size":3,"sha256":"ab"});
        s.apply(&m, Instant::now());
        assert_eq!(s.files["f-1"].name, "cat.png");
        assert_eq!(s.files["f-1"].size, 3);
    }
}
