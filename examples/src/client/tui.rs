//! The full-screen chat (ratatui with its crossterm backend).
//!
//! ```text
//! ┌ alice · online ────────┐┌ bob · away: at lunch ──────────────────────┐
//! │≡ log                   ││12:01 bob: hi                               │
//! │● bob away (2)          ││12:02 alice: hello                          │
//! │○ carol offline         ││12:03 bob: [file cat.png 48213 bytes f-9c1e]│
//! │# rust (5)              ││                                            │
//! └────────────────────────┘└────────────────────────────────────────────┘
//! bob is typing…
//! ┌ message to bob ─────────────────────────────────────────────────────┐
//! │> hello_                                                             │
//! └─────────────────────────────────────────────────────────────────────┘
//! ```
//!
//! Left: the log (command results), contacts with their presence and
//! unread counts, rooms. Right: the selected conversation, newest at the
//! bottom (times are UTC). Below: who is typing (or upload progress, or
//! the last command result), and the input line.
//!
//! Keys: Tab/Down and Shift-Tab/Up change the conversation (its history
//! is fetched the first time), PageUp/PageDown scroll, Enter sends the
//! input to the selected conversation or runs a `/` command, Esc clears
//! the input, Ctrl-C (or `/quit`) exits.
//!
//! [`draw`] is a pure function of the [`State`], so tests render it into
//! ratatui's `TestBackend`.

use std::collections::HashMap;
use std::io::Write;
use std::time::{Duration, Instant};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::crossterm::terminal;
use ratatui::layout::{Constraint, Layout, Position};
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, List, ListItem, ListState, Paragraph};
use ratatui::Frame;
use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::commands::{self, history_frame, typing_frame, Command};
use super::conn::{self, Client, Incoming};
use super::exec::{self, Report};
use super::format::{self, clean};
use super::state::{Entry, Message, State};
use super::Options;

/// How many messages are fetched when a conversation is first opened.
const HISTORY_PAGE: u32 = 50;
/// `typing` is sent at most this often per conversation.
const TYPING_EVERY: Duration = Duration::from_secs(3);

/// Asks for a password on the terminal without echoing it.
pub fn read_password(prompt: &str) -> std::io::Result<String> {
    let mut err = std::io::stderr();
    write!(err, "{prompt}")?;
    err.flush()?;
    terminal::enable_raw_mode()?;
    let mut password = String::new();
    let result = loop {
        match event::read() {
            Err(e) => break Err(e),
            Ok(Event::Key(k)) if k.kind != KeyEventKind::Release => match k.code {
                KeyCode::Enter => break Ok(()),
                KeyCode::Char('c') | KeyCode::Char('d')
                    if k.modifiers.contains(KeyModifiers::CONTROL) =>
                {
                    break Err(std::io::Error::new(
                        std::io::ErrorKind::Interrupted,
                        "cancelled",
                    ))
                }
                KeyCode::Char(c) => password.push(c),
                KeyCode::Backspace => {
                    password.pop();
                }
                _ => {}
            },
            Ok(_) => {}
        }
    };
    let _ = terminal::disable_raw_mode();
    let _ = writeln!(err);
    result.map(|()| password)
}

/// The presence mark and its color.
fn presence_mark(p: Option<&str>) -> (&'static str, Color) {
    match p {
        Some("online") => ("●", Color::Green),
        Some("away") => ("◐", Color::Yellow),
        Some("busy") => ("⊘", Color::Red),
        Some("offline") => ("○", Color::DarkGray),
        _ => ("?", Color::Gray),
    }
}

/// One left-pane line.
fn entry_line<'a>(s: &State, e: &Entry) -> Line<'a> {
    let unread = s.conv_of(e).map_or(0, |c| s.unread(&c));
    let mut spans = match e {
        Entry::Log => vec![Span::raw("≡ log")],
        Entry::User(u) => {
            let c = s.contacts.get(u);
            let presence = c.and_then(|c| c.presence.as_deref());
            let (mark, color) = presence_mark(presence);
            let what = match (c.map(|c| c.state.as_str()), presence) {
                (_, Some(p)) => p.to_string(),
                (Some("pending_in"), _) => "wants to add you".into(),
                (Some("pending_out"), _) => "request sent".into(),
                (None, _) => "not a contact".into(),
                _ => String::new(),
            };
            vec![
                Span::styled(mark, Style::new().fg(color)),
                Span::raw(format!(" {} ", clean(u))),
                Span::styled(clean(&what), Style::new().fg(Color::DarkGray)),
            ]
        }
        Entry::Room(r) => vec![Span::raw(format!("# {}", clean(r)))],
    };
    if unread > 0 {
        spans.push(Span::styled(
            format!(" ({unread})"),
            Style::new().fg(Color::Cyan).add_modifier(Modifier::BOLD),
        ));
    }
    Line::from(spans)
}

/// `HH:MM` (UTC) of a time in ms since the epoch.
fn clock(ts: i64) -> String {
    let mins = ts.div_euclid(60_000);
    format!(
        "{:02}:{:02}",
        mins.div_euclid(60).rem_euclid(24),
        mins.rem_euclid(60)
    )
}

/// The text of a message as shown.
fn message_text(m: &Message) -> String {
    let mut text = clean(&m.body);
    if let Some(a) = &m.attachment {
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(&format!(
            "[file {} {} bytes {}]",
            clean(&a.name),
            a.size,
            clean(&a.file)
        ));
    }
    text
}

/// Cuts a line into pieces of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let chars: Vec<char> = text.chars().collect();
    if chars.is_empty() {
        return vec![String::new()];
    }
    chars
        .chunks(width)
        .map(|c| c.iter().collect::<String>())
        .collect()
}

/// The lines of the right pane, already wrapped to `width`.
fn conversation_lines<'a>(s: &State, width: usize) -> Vec<Line<'a>> {
    let mut lines = Vec::new();
    match s.selected_conv() {
        None => {
            for l in &s.log {
                for piece in wrap(&clean(l), width) {
                    lines.push(Line::raw(piece));
                }
            }
        }
        Some(conv) => {
            let Some(c) = s.convs.get(&conv) else {
                return lines;
            };
            for m in c.messages.values() {
                let head = format!("{} {}: ", clock(m.ts), clean(&m.from));
                let text = format!("{head}{}", message_text(m));
                let style = if m.from == s.me {
                    Style::new().fg(Color::Cyan)
                } else {
                    Style::new().fg(Color::Yellow)
                };
                for (i, piece) in wrap(&text, width).into_iter().enumerate() {
                    let hl = head.chars().count();
                    if i == 0 && piece.chars().count() >= hl {
                        let (a, b) = piece
                            .split_at(piece.char_indices().nth(hl).map_or(piece.len(), |(i, _)| i));
                        lines.push(Line::from(vec![
                            Span::styled(a.to_string(), style),
                            Span::raw(b.to_string()),
                        ]));
                    } else {
                        lines.push(Line::raw(piece));
                    }
                }
            }
        }
    }
    lines
}

/// The title of the right pane.
fn conversation_title(s: &State) -> String {
    match &s.selected {
        Entry::Log => " log ".into(),
        Entry::Room(r) => format!(" #{} ", clean(r)),
        Entry::User(u) => {
            let c = s.contacts.get(u);
            let mut t = format!(" {}", clean(u));
            if let Some(p) = c.and_then(|c| c.presence.as_deref()) {
                t.push_str(&format!(" · {}", clean(p)));
            }
            if let Some(n) = c.and_then(|c| c.note.as_deref()) {
                t.push_str(&format!(": {}", clean(n)));
            }
            t.push(' ');
            t
        }
    }
}

/// The status line: who is typing, else upload progress, else the last
/// log line.
fn status_line<'a>(s: &State) -> Line<'a> {
    if !s.connected {
        return Line::styled("disconnected — Ctrl-C exits", Style::new().fg(Color::Red));
    }
    if let Some(conv) = s.selected_conv() {
        let who = s.typing_in(&conv);
        if !who.is_empty() {
            let names: Vec<String> = who.iter().map(|u| clean(u)).collect();
            let verb = if names.len() == 1 { "is" } else { "are" };
            return Line::styled(
                format!("{} {verb} typing…", names.join(", ")),
                Style::new().add_modifier(Modifier::ITALIC),
            );
        }
    }
    if let Some(p) = &s.progress {
        let pct = (p.done * 100).checked_div(p.total).unwrap_or(100);
        return Line::raw(format!(
            "uploading {} {pct}% ({}/{} bytes)",
            clean(&p.name),
            p.done,
            p.total
        ));
    }
    if !s.synced {
        return Line::raw("syncing…");
    }
    Line::styled(
        s.log.last().map(|l| clean(l)).unwrap_or_default(),
        Style::new().fg(Color::DarkGray),
    )
}

/// Renders the whole screen from the state.
pub fn draw(f: &mut Frame, s: &State) {
    let [main, status, input] = Layout::vertical([
        Constraint::Min(3),
        Constraint::Length(1),
        Constraint::Length(3),
    ])
    .areas(f.area());
    let [left, right] =
        Layout::horizontal([Constraint::Length(30), Constraint::Min(10)]).areas(main);

    // Contacts and rooms.
    let entries = s.entries();
    let items: Vec<ListItem> = entries
        .iter()
        .map(|e| ListItem::new(entry_line(s, e)))
        .collect();
    let (mark, color) = presence_mark(Some(&s.my_presence));
    let title = Line::from(vec![
        Span::raw(format!(" {} ", clean(&s.me))),
        Span::styled(mark, Style::new().fg(color)),
        Span::raw(format!(" {} ", clean(&s.my_presence))),
    ]);
    let mut list_state =
        ListState::default().with_selected(entries.iter().position(|e| *e == s.selected));
    f.render_stateful_widget(
        List::new(items)
            .block(Block::bordered().title(title))
            .highlight_style(Style::new().add_modifier(Modifier::REVERSED)),
        left,
        &mut list_state,
    );

    // The selected conversation, newest at the bottom.
    let block = Block::bordered().title(conversation_title(s));
    let inner = block.inner(right);
    let lines = conversation_lines(s, inner.width as usize);
    let height = inner.height as usize;
    let scroll = (s.scroll as usize).min(lines.len().saturating_sub(height));
    let end = lines.len() - scroll;
    let start = end.saturating_sub(height);
    let shown: Vec<Line> = lines[start..end].to_vec();
    f.render_widget(Paragraph::new(shown).block(block), right);

    f.render_widget(Paragraph::new(status_line(s)), status);

    // The input line, showing its end when it is long.
    let title = match s.selected_target() {
        Some(to) => format!(" message to {} (or /command) ", clean(&to.to_string())),
        None => " /command (/help lists them; Tab selects a conversation) ".into(),
    };
    let block = Block::bordered().title(title);
    let inner = block.inner(input);
    let text = format!("> {}", clean(&s.input));
    let width = inner.width as usize;
    let chars: Vec<char> = text.chars().collect();
    let visible: String = chars[chars.len().saturating_sub(width.saturating_sub(1))..]
        .iter()
        .collect();
    let cursor_x = inner.x + visible.chars().count() as u16;
    f.render_widget(Paragraph::new(visible).block(block), input);
    f.set_cursor_position(Position::new(
        cursor_x.min(inner.right().saturating_sub(1)),
        inner.y,
    ));
}

/// Updates from tasks the view started.
enum Update {
    /// From a running command.
    Report(Report),
    /// Unread counts from `convs`: (conv, unread, last message).
    Convs(Vec<(String, u64, Option<Value>)>),
    /// A history page for a conversation the user opened.
    History(String, Vec<Value>),
}

/// The view's bookkeeping beyond [`State`].
struct View {
    client: Client,
    state: State,
    updates: mpsc::UnboundedSender<Update>,
    /// Highest `seq` to acknowledge as delivered / read, per conversation.
    delivered: HashMap<String, u64>,
    read: HashMap<String, u64>,
    last_typing: HashMap<String, Instant>,
}

impl View {
    /// Marks the selected conversation read and fetches its history the
    /// first time it is opened.
    fn opened(&mut self) {
        let Some(conv) = self.state.selected_conv() else {
            return;
        };
        let c = self.state.convs.entry(conv.clone()).or_default();
        if let Some(seq) = c.last_seq() {
            self.read.insert(conv.clone(), seq);
        }
        if !c.history_loaded {
            c.history_loaded = true;
            let client = self.client.clone();
            let tx = self.updates.clone();
            tokio::spawn(async move {
                if let Ok(r) = client
                    .request(history_frame(&conv, HISTORY_PAGE, None))
                    .await
                {
                    let msgs = r
                        .get("messages")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default();
                    let _ = tx.send(Update::History(conv, msgs));
                }
            });
        }
    }

    fn flush_acks(&mut self) {
        for (conv, seq) in self.read.drain() {
            self.delivered.remove(&conv);
            self.client
                .send_ignored(json!({"type": "msg.ack", "conv": conv, "seq": seq, "read": true}));
        }
        for (conv, seq) in self.delivered.drain() {
            self.client
                .send_ignored(json!({"type": "msg.ack", "conv": conv, "seq": seq}));
        }
    }

    fn on_frame(&mut self, v: &Value) {
        let now = Instant::now();
        let ty = v.get("type").and_then(Value::as_str).unwrap_or("");
        let new = self.state.apply(v, now);
        match ty {
            "msg" if new => {
                if let (Some(conv), Some(seq)) = (
                    v.get("conv").and_then(Value::as_str),
                    v.get("seq").and_then(Value::as_u64),
                ) {
                    let map = if self.state.selected_conv().as_deref() == Some(conv) {
                        &mut self.read
                    } else {
                        &mut self.delivered
                    };
                    let e = map.entry(conv.to_string()).or_insert(0);
                    *e = (*e).max(seq);
                }
            }
            "synced" => {
                self.flush_acks();
                let client = self.client.clone();
                let tx = self.updates.clone();
                tokio::spawn(async move {
                    if let Ok(r) = client.request(json!({"type": "convs"})).await {
                        let list = r
                            .get("convs")
                            .and_then(Value::as_array)
                            .into_iter()
                            .flatten()
                            .filter_map(|c| {
                                Some((
                                    c.get("conv")?.as_str()?.to_string(),
                                    c.get("unread").and_then(Value::as_u64).unwrap_or(0),
                                    c.get("last").cloned(),
                                ))
                            })
                            .collect();
                        let _ = tx.send(Update::Convs(list));
                    }
                });
            }
            "msg" | "pong" | "hello" | "roster" | "typing" | "presence" => {}
            _ => {
                if let Some(line) = format::event(v) {
                    self.state.note(line);
                }
            }
        }
    }

    fn on_update(&mut self, u: Update) {
        match u {
            Update::Report(r) => match r {
                Report::Line(l) => self.state.note(l),
                Report::Done(l) => {
                    self.state.progress = None;
                    self.state.note(l);
                }
                Report::Sent { conv, msg } => {
                    self.state.add_message(&conv, msg, true);
                }
                Report::History { conv, messages } => {
                    for m in messages {
                        self.state.add_message(&conv, m, true);
                    }
                }
                Report::Progress(p) => self.state.progress = Some(p),
            },
            Update::Convs(list) => {
                let selected = self.state.selected_conv();
                for (conv, unread, last) in list {
                    if let Some(mut last) = last {
                        if last.get("conv").is_none() {
                            last["conv"] = json!(conv);
                        }
                        if let Some((_, m)) = Message::from_frame(&last) {
                            self.state.add_message(&conv, m, true);
                        }
                    }
                    if let Some(r) = conv.strip_prefix("room:") {
                        self.state.rooms.insert(r.to_string());
                    }
                    if selected.as_deref() != Some(conv.as_str()) {
                        self.state.convs.entry(conv).or_default().unread = unread;
                    }
                }
            }
            Update::History(conv, msgs) => {
                for mut m in msgs {
                    if m.get("conv").is_none() {
                        m["conv"] = json!(conv);
                    }
                    if let Some((_, msg)) = Message::from_frame(&m) {
                        self.state.add_message(&conv, msg, true);
                    }
                }
            }
        }
    }

    /// Runs a command in the background; its reports come back as updates.
    fn spawn_command(&mut self, cmd: Command) {
        if let Command::History { to, .. } = &cmd {
            self.state.select(match to {
                commands::To::User(u) => Entry::User(u.clone()),
                commands::To::Room(r) => Entry::Room(r.clone()),
            });
            self.opened();
        }
        let known = match &cmd {
            Command::Get { file, .. } => self.state.files.get(file).cloned(),
            _ => None,
        };
        // History shows in its conversation, not line by line in the log.
        let quiet = matches!(cmd, Command::History { .. });
        let client = self.client.clone();
        let me = self.state.me.clone();
        let tx = self.updates.clone();
        tokio::spawn(async move {
            let mut report = |r: Report| {
                if !(quiet && matches!(r, Report::Line(_))) {
                    let _ = tx.send(Update::Report(r));
                }
            };
            exec::run(&client, &me, cmd, known, &mut report).await;
        });
    }

    /// Handles a key; `false` to exit.
    fn on_key(&mut self, k: KeyEvent) -> bool {
        if k.kind == KeyEventKind::Release {
            return true;
        }
        let ctrl = k.modifiers.contains(KeyModifiers::CONTROL);
        match k.code {
            KeyCode::Char('c') | KeyCode::Char('d') if ctrl => return false,
            KeyCode::Tab | KeyCode::Down => {
                self.state.select_step(1);
                self.opened();
            }
            KeyCode::BackTab | KeyCode::Up => {
                self.state.select_step(-1);
                self.opened();
            }
            KeyCode::PageUp => self.state.scroll = self.state.scroll.saturating_add(10),
            KeyCode::PageDown => self.state.scroll = self.state.scroll.saturating_sub(10),
            KeyCode::Esc => self.state.input.clear(),
            KeyCode::Backspace => {
                self.state.input.pop();
            }
            KeyCode::Enter => return self.submit(),
            KeyCode::Char(c) if !ctrl => {
                self.state.input.push(c);
                self.typing();
            }
            _ => {}
        }
        true
    }

    /// Sends `typing` to the selected conversation, at most every few
    /// seconds, while the user types a message (not a command).
    fn typing(&mut self) {
        if self.state.input.starts_with('/') {
            return;
        }
        let Some(to) = self.state.selected_target() else {
            return;
        };
        let conv = to.conv(&self.state.me);
        let now = Instant::now();
        if self
            .last_typing
            .get(&conv)
            .is_some_and(|t| now.duration_since(*t) < TYPING_EVERY)
        {
            return;
        }
        self.last_typing.insert(conv, now);
        self.client.send_ignored(typing_frame(&to));
    }

    /// Enter: a command, or a message to the selected conversation.
    fn submit(&mut self) -> bool {
        let line = std::mem::take(&mut self.state.input);
        if line.trim().is_empty() {
            return true;
        }
        if line.trim_start().starts_with('/') {
            match commands::parse(&line) {
                Ok(Command::Quit) => return false,
                Ok(cmd) => self.spawn_command(cmd),
                Err(usage) => self.state.note(format::error("usage", &usage)),
            }
        } else if let Some(to) = self.state.selected_target() {
            if let Some(conv) = self.state.selected_conv() {
                self.last_typing.remove(&conv);
            }
            self.spawn_command(Command::Msg { to, body: line });
        } else {
            self.state
                .note("select a conversation with Tab, or use /msg USER TEXT");
        }
        self.state.scroll = 0;
        true
    }
}

/// Runs the full-screen client; returns the process exit status.
pub async fn run(opts: &Options) -> i32 {
    let password = match read_password(&format!("password for {}: ", opts.user)) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("error: {e}");
            return 2;
        }
    };
    let (client, mut events) = match conn::connect(&opts.url, opts.ca.as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{}", format::error("connect", &e));
            return 1;
        }
    };
    let logged = conn::login(
        &client,
        &opts.user,
        &password,
        &opts.device,
        opts.register,
        |r| match r {
            Ok(user) => eprintln!("registered {}", clean(&user)),
            Err(e) => eprintln!("{}", format::error(e.code(), &e.to_string())),
        },
    )
    .await;
    let me = match logged {
        Ok(l) => l.user,
        Err(e) => {
            eprintln!("error {e}");
            return 1;
        }
    };
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            ratatui::restore();
            eprintln!("error: cannot set up the terminal: {e}");
            return 1;
        }
    };
    let (keys_tx, mut keys) = mpsc::channel(64);
    std::thread::spawn(move || {
        while let Ok(ev) = event::read() {
            if keys_tx.blocking_send(ev).is_err() {
                break;
            }
        }
    });
    let (updates, mut updates_rx) = mpsc::unbounded_channel();
    let mut view = View {
        client: client.clone(),
        state: State::new(&me),
        updates,
        delivered: HashMap::new(),
        read: HashMap::new(),
        last_typing: HashMap::new(),
    };
    view.state.note(format!("logged in as {}", clean(&me)));
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    let mut acks_at = Instant::now();
    loop {
        if terminal.draw(|f| draw(f, &view.state)).is_err() {
            break;
        }
        tokio::select! {
            ev = events.recv() => match ev {
                Some(Incoming::Frame(v)) => view.on_frame(&v),
                Some(Incoming::Closed(reason)) => {
                    view.state.connected = false;
                    view.state.note(match reason {
                        Some(r) => format!("disconnected: {}", clean(&r)),
                        None => "disconnected".into(),
                    });
                }
                None => view.state.connected = false,
            },
            Some(u) = updates_rx.recv() => view.on_update(u),
            key = keys.recv() => match key {
                Some(Event::Key(k)) => {
                    if !view.on_key(k) {
                        break;
                    }
                }
                Some(Event::Paste(text)) => view.state.input.push_str(&text.replace(['\n', '\r'], " ")),
                Some(_) => {}
                None => break,
            },
            _ = tick.tick() => {
                view.state.tick(Instant::now());
                if acks_at.elapsed() >= Duration::from_secs(1) {
                    view.flush_acks();
                    acks_at = Instant::now();
                }
            }
        }
    }
    view.flush_acks();
    client.close();
    ratatui::restore();
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(ev) = events.recv().await {
            if matches!(ev, Incoming::Closed(_)) {
                break;
            }
        }
    })
    .await;
    0
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::Terminal;
    use serde_json::json;

    fn screen(s: &State, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| draw(f, s)).unwrap();
        let buf = t.backend().buffer();
        let mut out = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                out.push_str(buf[(x, y)].symbol());
            }
            out.push('\n');
        }
        out
    }

    fn sample() -> State {
        let now = Instant::now();
        let mut s = State::new("alice");
        s.apply(
            &json!({"type":"roster","contacts":[
                {"user":"bob","state":"mutual","presence":"away","note":"at lunch"},
                {"user":"carol","state":"mutual","presence":"online"},
                {"user":"dave","state":"pending_in"}]}),
            now,
        );
        s.apply(
            &json!({"type":"msg","conv":"dm:alice:bob","seq":1,"from":"bob","body":"hi alice","ts":45_000_000}),
            now,
        );
        s.apply(
            &json!({"type":"msg","conv":"dm:alice:carol","seq":1,"from":"carol","body":"one","ts":1}),
            now,
        );
        s.apply(
            &json!({"type":"msg","conv":"dm:alice:carol","seq":2,"from":"carol","body":"two","ts":2}),
            now,
        );
        s.apply(
            &json!({"type":"room.joined","room":"rust","user":"alice"}),
            now,
        );
        s.apply(&json!({"type":"synced"}), now);
        s
    }

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[tokio::test]
    async fn keys_select_type_send_and_quit() {
        let (client, mut out) = conn::detached();
        let (updates, _rx) = mpsc::unbounded_channel();
        let mut v = View {
            client,
            state: sample(),
            updates,
            delivered: HashMap::new(),
            read: HashMap::new(),
            last_typing: HashMap::new(),
        };
        let mut sent = || -> Vec<Value> {
            std::iter::from_fn(|| out.try_recv().ok())
                .filter_map(|s| serde_json::from_str(&s).ok())
                .collect()
        };
        // Tab selects bob: his history is asked for, his unread count cleared.
        assert!(v.on_key(key(KeyCode::Tab)));
        assert_eq!(v.state.selected, Entry::User("bob".into()));
        assert_eq!(v.state.unread("dm:alice:bob"), 0);
        tokio::task::yield_now().await;
        let frames = sent();
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["type"], "history");
        assert_eq!(frames[0]["conv"], "dm:alice:bob");
        // Typing a message sends `typing` once, not per key.
        for c in "hey".chars() {
            assert!(v.on_key(key(KeyCode::Char(c))));
        }
        let frames = sent();
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(
            (&frames[0]["type"], &frames[0]["to"]),
            (&json!("typing"), &json!("bob"))
        );
        // Enter sends it to the selected conversation.
        assert!(v.on_key(key(KeyCode::Enter)));
        assert!(v.state.input.is_empty());
        tokio::task::yield_now().await;
        let frames = sent();
        assert_eq!(frames.len(), 1, "{frames:?}");
        assert_eq!(frames[0]["type"], "msg.send");
        assert_eq!(
            (&frames[0]["to"], &frames[0]["body"]),
            (&json!("bob"), &json!("hey"))
        );
        // Acknowledgements: bob's conversation was read.
        v.flush_acks();
        let frames = sent();
        assert_eq!(frames[0]["type"], "msg.ack");
        assert_eq!(
            (&frames[0]["seq"], &frames[0]["read"]),
            (&json!(1), &json!(true))
        );
        // A bad command is logged; /quit and Ctrl-C exit.
        for c in "/nope".chars() {
            v.on_key(key(KeyCode::Char(c)));
        }
        assert!(v.on_key(key(KeyCode::Enter)));
        assert!(v
            .state
            .log
            .last()
            .unwrap()
            .starts_with("error usage: unknown command"));
        for c in "/quit".chars() {
            v.on_key(key(KeyCode::Char(c)));
        }
        assert!(!v.on_key(key(KeyCode::Enter)));
        assert!(!v.on_key(KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL)));
        // Shift-Tab goes back; PageUp scrolls.
        v.on_key(key(KeyCode::BackTab));
        assert_eq!(v.state.selected, Entry::Log);
        v.on_key(key(KeyCode::PageUp));
        assert_eq!(v.state.scroll, 10);
    }

    #[test]
    fn contacts_presence_and_unread_counts() {
        let s = sample();
        let text = screen(&s, 100, 20);
        assert!(text.contains("alice ● online"), "{text}");
        assert!(text.contains("≡ log"), "{text}");
        assert!(text.contains("◐ bob away (1)"), "{text}");
        assert!(text.contains("● carol online (2)"), "{text}");
        assert!(text.contains("? dave wants to add you"), "{text}");
        assert!(text.contains("# rust"), "{text}");
    }

    #[test]
    fn messages_input_and_typing() {
        let mut s = sample();
        s.select(Entry::User("bob".into()));
        s.add_message(
            "dm:alice:bob",
            Message {
                seq: 2,
                from: "alice".into(),
                body: "hello\u{1b}[2J bob".into(),
                ts: 45_060_000,
                attachment: None,
            },
            true,
        );
        s.input = "see you".into();
        s.apply(
            &json!({"type":"typing","conv":"dm:alice:bob","user":"bob"}),
            Instant::now(),
        );
        let text = screen(&s, 100, 20);
        assert!(text.contains("bob · away: at lunch"), "{text}");
        assert!(text.contains("12:30 bob: hi alice"), "{text}");
        // Control characters are shown escaped, never sent to the terminal.
        assert!(text.contains("12:31 alice: hello\\u{1b}[2J bob"), "{text}");
        assert!(text.contains("bob is typing…"), "{text}");
        assert!(text.contains("message to bob"), "{text}");
        assert!(text.contains("> see you"), "{text}");
        // Reading it cleared the unread count.
        assert!(!text.contains("bob away (1)"), "{text}");
    }

    #[test]
    fn the_view_scrolls_and_shows_the_newest() {
        let mut s = sample();
        s.select(Entry::User("carol".into()));
        for seq in 3..40 {
            s.apply(
                &json!({"type":"msg","conv":"dm:alice:carol","seq":seq,"from":"carol","body":format!("line {seq}"),"ts":1}),
                Instant::now(),
            );
        }
        let text = screen(&s, 80, 16);
        assert!(text.contains("line 39"), "{text}");
        assert!(!text.contains("line 5 "), "{text}");
        s.scroll = 30;
        let text = screen(&s, 80, 16);
        assert!(!text.contains("line 39"), "{text}");
        assert!(text.contains("line 5"), "{text}");
        // Too far up stops at the oldest.
        s.scroll = 1000;
        let text = screen(&s, 80, 16);
        assert!(text.contains("00:00 carol: one"), "{text}");
    }

    #[test]
    fn the_log_attachments_and_progress() {
        let mut s = sample();
        s.note("ok 2 rooms");
        let text = screen(&s, 100, 20);
        assert!(text.contains("ok 2 rooms"), "{text}");
        assert!(text.contains(" log "), "{text}");
        s.progress = Some(super::super::state::Progress {
            name: "cat.png".into(),
            done: 50,
            total: 200,
        });
        let text = screen(&s, 100, 20);
        assert!(
            text.contains("uploading cat.png 25% (50/200 bytes)"),
            "{text}"
        );
        s.select(Entry::Room("rust".into()));
        s.apply(
            &json!({"type":"msg","conv":"room:rust","seq":1,"from":"bob","body":"","ts":0,
                "attachment":{"file":"f-1","name":"cat.png","size":3}}),
            Instant::now(),
        );
        let text = screen(&s, 100, 20);
        assert!(text.contains("#rust"), "{text}");
        assert!(text.contains("[file cat.png 3 bytes f-1]"), "{text}");
        // A tiny terminal does not panic.
        screen(&s, 10, 4);
        screen(&s, 1, 1);
    }
}
