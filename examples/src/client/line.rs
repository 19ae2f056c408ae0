//! Line mode: for scripts, pipes and tests.
//!
//! The first input line is the password. The client then (registers with
//! `--register`,) logs in, prints `logged in as USER`, the roster as
//! `contact ...` lines, the replayed messages and `synced`, and from then
//! on runs one command per input line while printing every event on a line
//! of its own ([`super::format`] has the format). Commands are read only
//! once `synced` is printed (so `/get` knows the files of replayed
//! messages), and run one at a time, in order; events that arrive while a command runs are printed
//! after its final `ok`/`error` line. Empty lines are ignored; a line
//! that is not a `/` command is an `error usage: ...`.
//!
//! Messages printed are acknowledged as delivered and read (`msg.ack`,
//! batched per conversation, at most once a second), so the next login
//! does not replay them.
//!
//! `/quit` or the end of input closes the connection and exits with
//! status 0. A failed connection or login exits with 1, and so does a
//! connection the server ends (after a `disconnected` line); a missing
//! password exits with 2.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::mpsc;

use super::commands::{self, Command};
use super::conn::{self, Client, Incoming};
use super::exec::{self, Report};
use super::format;
use super::state::State;
use super::Options;

/// Reads standard input line by line on a thread of its own (line breaks
/// removed, invalid UTF-8 replaced); the channel ends with the input.
pub fn stdin_lines() -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel(64);
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut lock = stdin.lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match lock.read_until(b'\n', &mut buf) {
                Ok(0) | Err(_) => break,
                Ok(_) => {}
            }
            let line = String::from_utf8_lossy(&buf)
                .trim_end_matches(['\n', '\r'])
                .to_string();
            if tx.blocking_send(line).is_err() {
                break;
            }
        }
    });
    rx
}

fn say(out: &mut (dyn Write + Send), line: &str) {
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}

/// Runs line mode; returns the process exit status.
pub async fn run(
    opts: &Options,
    mut input: mpsc::Receiver<String>,
    out: &mut (dyn Write + Send),
) -> i32 {
    let Some(password) = input.recv().await else {
        say(
            out,
            "error usage: the first input line must be the password",
        );
        return 2;
    };
    let (client, mut events) = match conn::connect(&opts.url, opts.ca.as_deref()).await {
        Ok(c) => c,
        Err(e) => {
            say(out, &format::error("connect", &e));
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
            Ok(user) => say(out, &format!("registered {}", format::clean(&user))),
            Err(e) => say(out, &format::error(e.code(), &e.to_string())),
        },
    )
    .await;
    let me = match logged {
        Ok(l) => l.user,
        Err(e) => {
            let (code, message) = match &e {
                conn::RequestError::Server { code, message } => (code.as_str(), message.as_str()),
                conn::RequestError::Closed => ("closed", "connection closed"),
            };
            say(out, &format::error(code, message));
            return 1;
        }
    };
    say(out, &format!("logged in as {}", format::clean(&me)));
    let mut state = State::new(&me);
    let mut acks: HashMap<String, u64> = HashMap::new();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tokio::select! {
            biased;
            ev = events.recv() => match ev {
                Some(Incoming::Frame(v)) => {
                    on_event(&mut state, &v, &mut acks, out);
                    if v.get("type").and_then(Value::as_str) == Some("synced") {
                        flush_acks(&client, &mut acks);
                    }
                }
                Some(Incoming::Closed(_)) | None => {
                    say(out, "disconnected");
                    return 1;
                }
            },
            line = input.recv(), if state.synced => {
                let Some(line) = line else {
                    return quit(&client, &mut acks, &mut events).await;
                };
                if line.trim().is_empty() {
                    continue;
                }
                match commands::parse(&line) {
                    Err(usage) => say(out, &format::error("usage", &usage)),
                    Ok(Command::Quit) => {
                        say(out, "ok");
                        return quit(&client, &mut acks, &mut events).await;
                    }
                    Ok(cmd) => {
                        let known = match &cmd {
                            Command::Get { file, .. } => state.files.get(file).cloned(),
                            _ => None,
                        };
                        let mut report = |r: Report| match r {
                            Report::Line(l) | Report::Done(l) => say(out, &l),
                            Report::Sent { conv, msg } => {
                                state.add_message(&conv, msg, true);
                            }
                            Report::History { .. } | Report::Progress(_) => {}
                        };
                        exec::run(&client, &me, cmd, known, &mut report).await;
                    }
                }
            }
            _ = tick.tick() => flush_acks(&client, &mut acks),
        }
    }
}

/// Prints an event unless it is a message already printed, and notes
/// messages to acknowledge.
fn on_event(
    state: &mut State,
    v: &Value,
    acks: &mut HashMap<String, u64>,
    out: &mut (dyn Write + Send),
) {
    if !state.apply(v, Instant::now()) {
        return;
    }
    if v.get("type").and_then(Value::as_str) == Some("msg") {
        if let (Some(conv), Some(seq)) = (
            v.get("conv").and_then(Value::as_str),
            v.get("seq").and_then(Value::as_u64),
        ) {
            let a = acks.entry(conv.to_string()).or_insert(0);
            *a = (*a).max(seq);
        }
    }
    if let Some(line) = format::event(v) {
        say(out, &line);
    }
}

/// Sends the pending acknowledgements (replies ignored).
fn flush_acks(client: &Client, acks: &mut HashMap<String, u64>) {
    for (conv, seq) in acks.drain() {
        client.send_ignored(json!({"type": "msg.ack", "conv": conv, "seq": seq, "read": true}));
    }
}

/// Sends what is pending, closes the connection and waits (briefly) for
/// it to end, so nothing queued is lost.
async fn quit(
    client: &Client,
    acks: &mut HashMap<String, u64>,
    events: &mut mpsc::UnboundedReceiver<Incoming>,
) -> i32 {
    flush_acks(client, acks);
    client.close();
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        while let Some(ev) = events.recv().await {
            if matches!(ev, Incoming::Closed(_)) {
                break;
            }
        }
    })
    .await;
    0
}
