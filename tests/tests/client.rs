//! The terminal client (`examples/client.rs`) in line mode, driven through
//! pipes against the real example server: two users over TCP and
//! WebSocket, contacts, messages, presence, rooms, history, a file sent
//! and fetched back, devices, reconnection with replay; a file name chosen
//! by a hostile sender; TLS and WSS with a private CA (`--ca`); failures.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{channel, Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use im_tests::process::{example_binary, ServerProcess};
use serde_json::json;

/// The password every user here gets.
const PASSWORD: &str = "correct horse battery";
/// How long a line that must come may take.
const WAIT: Duration = Duration::from_secs(20);

/// The client executable, built from the current sources once per test
/// process, with the profile of this test binary.
fn client_binary() -> PathBuf {
    example_binary("client")
}

/// A client process in line mode: what it prints, line by line.
struct LineClient {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    /// Every line read so far (for failure messages).
    seen: Vec<String>,
}

impl LineClient {
    /// Starts the client in `dir` with `args`; writes the password line.
    fn start(name: &str, dir: &Path, args: &[&str]) -> LineClient {
        let mut child = Command::new(client_binary())
            .args(args)
            .current_dir(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the client");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut c = LineClient {
            name: name.to_string(),
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
        };
        c.send(PASSWORD);
        c
    }

    /// `user` with `--register` at `url`, and its first lines checked.
    fn login(user: &str, dir: &Path, url: &str, extra: &[&str]) -> LineClient {
        let mut args = vec!["--url", url, "--user", user, "--register"];
        args.extend_from_slice(extra);
        let mut c = LineClient::start(user, dir, &args);
        c.expect_line(&format!("registered {user}"));
        c.expect_line(&format!("logged in as {user}"));
        c.expect_line("synced");
        c
    }

    fn send(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{line}").expect("write to the client");
        stdin.flush().expect("flush");
    }

    /// The next line that `pred` accepts (lines before it are skipped).
    fn expect_by(&mut self, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + WAIT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.seen.push(line.clone());
                    if pred(&line) {
                        return line;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "{}: no line {what} within {WAIT:?}; saw {:#?}",
                        self.name, self.seen
                    )
                }
                Err(RecvTimeoutError::Disconnected) => {
                    panic!(
                        "{}: output ended before {what}; saw {:#?}",
                        self.name, self.seen
                    )
                }
            }
        }
    }

    /// The next line equal to `line`.
    fn expect_line(&mut self, line: &str) -> String {
        self.expect_by(&format!("{line:?}"), |l| l == line)
    }

    /// The next line that starts with `prefix`.
    fn expect_prefix(&mut self, prefix: &str) -> String {
        self.expect_by(&format!("starting {prefix:?}"), |l| l.starts_with(prefix))
    }

    /// Runs a command and returns the lines it printed up to and including
    /// its final `ok`/`error` line. (Events that arrive meanwhile are
    /// printed only after that line, so nothing else is in between.)
    fn command(&mut self, cmd: &str) -> Vec<String> {
        self.send(cmd);
        let mut out = Vec::new();
        loop {
            let l = self.expect_by("of a result", |_| true);
            let last = l == "ok" || l.starts_with("ok ") || l.starts_with("error ");
            out.push(l);
            if last {
                return out;
            }
        }
    }

    /// Runs a command whose final line must be `ok` or start with `ok `.
    fn ok(&mut self, cmd: &str) -> Vec<String> {
        let out = self.command(cmd);
        let last = out.last().map(String::as_str).unwrap_or("");
        assert!(
            last == "ok" || last.starts_with("ok "),
            "{}: {cmd} -> {out:?}",
            self.name
        );
        out
    }

    /// Waits for the process to exit.
    fn wait_exit(&mut self) -> ExitStatus {
        let deadline = Instant::now() + WAIT;
        loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                return s;
            }
            assert!(
                Instant::now() < deadline,
                "{}: still running; saw {:#?}",
                self.name,
                self.seen
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `/quit`: prints `ok` and exits 0.
    fn quit(mut self) {
        self.send("/quit");
        self.expect_line("ok");
        let status = self.wait_exit();
        assert!(
            status.success(),
            "{}: /quit exited with {status}",
            self.name
        );
    }
}

impl Drop for LineClient {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Makes `a` and `b` mutual contacts through their clients.
fn befriend(a: &mut LineClient, b: &mut LineClient) {
    let (an, bn) = (a.name.clone(), b.name.clone());
    assert_eq!(a.ok(&format!("/add {bn}")), ["ok"]);
    b.expect_line(&format!("contact.request from {an}"));
    assert_eq!(b.ok(&format!("/accept {an}")), ["ok"]);
    b.expect_line(&format!("contact.added {an}"));
    a.expect_line(&format!("contact.added {bn}"));
    a.expect_line(&format!("presence {bn} online"));
    b.expect_line(&format!("presence {an} online"));
}

/// The file id in a `[file f-... N bytes ...]` line.
fn file_id(line: &str) -> String {
    line.split("[file ")
        .nth(1)
        .and_then(|s| s.split_whitespace().next())
        .unwrap_or_else(|| panic!("no file in {line:?}"))
        .to_string()
}

/// Bytes that are not text, deterministic.
fn bytes(n: usize) -> Vec<u8> {
    let mut x: u32 = 0x1234_5678;
    (0..n)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 17;
            x ^= x << 5;
            (x >> 24) as u8
        })
        .collect()
}

#[test]
fn line_mode_over_tcp_and_websocket() {
    let dir = tempfile::tempdir().unwrap();
    let srv = ServerProcess::start(dir.path(), &[]);
    let (alice_dir, bob_dir) = (dir.path().join("alice"), dir.path().join("bob"));
    std::fs::create_dir_all(&alice_dir).unwrap();
    std::fs::create_dir_all(&bob_dir).unwrap();
    let tcp = format!("tcp://{}", srv.addr);
    let ws = format!("ws://{}/ws", srv.http);
    let mut alice = LineClient::login("alice", &alice_dir, &tcp, &[]);
    let mut bob = LineClient::login("bob", &bob_dir, &ws, &[]);

    // Contacts.
    let out = alice.command("/add nobody_here");
    assert!(
        out.len() == 1 && out[0].starts_with("error not_found: "),
        "{out:?}"
    );
    befriend(&mut alice, &mut bob);
    assert_eq!(
        alice.ok("/contacts"),
        ["contact bob mutual online", "ok 1 contacts"]
    );

    // Direct messages, both ways.
    assert_eq!(alice.ok("/msg bob hello bob"), ["ok dm:alice:bob #1"]);
    bob.expect_line("msg dm:alice:bob #1 alice: hello bob");
    assert_eq!(bob.ok("/msg alice hi alice"), ["ok dm:alice:bob #2"]);
    alice.expect_line("msg dm:alice:bob #2 bob: hi alice");
    // Plain text is not sent.
    let out = alice.command("just text");
    assert_eq!(out.len(), 1);
    assert!(
        out[0].starts_with("error usage: use /msg or /room"),
        "{out:?}"
    );
    // Typing.
    assert_eq!(bob.ok("/typing alice"), ["ok"]);
    alice.expect_line("typing dm:alice:bob bob");

    // Presence.
    assert_eq!(alice.ok("/status away at lunch"), ["ok"]);
    bob.expect_line("presence alice away at lunch");
    assert_eq!(
        bob.ok("/contacts"),
        ["contact alice mutual away at lunch", "ok 1 contacts"]
    );
    assert_eq!(alice.ok("/status online"), ["ok"]);
    bob.expect_line("presence alice online");

    // Rooms.
    assert_eq!(alice.ok("/create rust Rust talk"), ["ok room:rust"]);
    let rooms = bob.ok("/rooms");
    assert!(
        rooms[0].starts_with("room rust 1 members") && rooms[0].ends_with(": Rust talk"),
        "{rooms:?}"
    );
    assert_eq!(rooms[1], "ok 1 rooms");
    assert_eq!(bob.ok("/join rust"), ["ok room:rust"]);
    // The joiner hears of the join too, after its reply.
    bob.expect_line("room.joined rust bob");
    alice.expect_line("room.joined rust bob");
    assert_eq!(bob.ok("/room rust hi rustaceans"), ["ok room:rust #1"]);
    alice.expect_line("msg room:rust #1 bob: hi rustaceans");
    assert_eq!(alice.ok("/msg #rust welcome"), ["ok room:rust #2"]);
    bob.expect_line("msg room:rust #2 alice: welcome");

    // History.
    assert_eq!(
        alice.ok("/history bob"),
        [
            "history dm:alice:bob #1 alice: hello bob",
            "history dm:alice:bob #2 bob: hi alice",
            "ok 2 messages"
        ]
    );
    assert_eq!(
        bob.ok("/history #rust 1"),
        ["history room:rust #2 alice: welcome", "ok 1 messages, more"]
    );
    let out = bob.command("/history #nosuchroom");
    assert!(
        out.len() == 1 && out[0].starts_with("error not_found: "),
        "{out:?}"
    );

    // A file of a few chunks, sent by path and fetched back.
    let data = bytes(100_000);
    std::fs::write(alice_dir.join("cat.png"), &data).unwrap();
    let out = alice.ok("/send bob ./cat.png");
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(
        out[0].starts_with("sent file f-") && out[0].ends_with(" 100000 bytes cat.png"),
        "{out:?}"
    );
    assert_eq!(out[1], "ok dm:alice:bob #3");
    let id = file_id(&out[0].replace("sent file ", "[file "));
    let msg = bob.expect_prefix("msg dm:alice:bob #3 alice: [file ");
    assert_eq!(
        msg,
        format!("msg dm:alice:bob #3 alice: [file {id} 100000 bytes image/png cat.png]")
    );
    assert_eq!(
        bob.ok(&format!("/get {id}")),
        ["saved cat.png 100000 bytes", "ok"]
    );
    assert_eq!(std::fs::read(bob_dir.join("cat.png")).unwrap(), data);
    // Again: an existing file is never replaced.
    assert_eq!(
        bob.ok(&format!("/get {id}")),
        ["saved cat-1.png 100000 bytes", "ok"]
    );
    assert_eq!(std::fs::read(bob_dir.join("cat-1.png")).unwrap(), data);
    // To a path of one's own choosing.
    let chosen = dir.path().join("chosen.bin");
    assert_eq!(
        bob.ok(&format!("/get {id} {}", chosen.display())),
        [
            format!("saved {} 100000 bytes", chosen.display()),
            "ok".into()
        ]
    );
    assert_eq!(std::fs::read(&chosen).unwrap(), data);
    let out = bob.command("/get f-doesnotexist");
    assert!(
        out.len() == 1 && out[0].starts_with("error not_found: "),
        "{out:?}"
    );
    assert!(!bob_dir.join("f-doesnotexist").exists());
    assert_eq!(
        alice.command("/send bob ./missing.png")[0]
            .split(':')
            .next()
            .unwrap(),
        "error io"
    );

    // Devices.
    let devices = alice.ok("/devices");
    assert_eq!(devices.len(), 2, "{devices:?}");
    assert!(
        devices[0].starts_with("device terminal online last_login "),
        "{devices:?}"
    );
    assert_eq!(devices[1], "ok 1 devices");

    // Bob leaves; what he misses is replayed at his next login.
    bob.quit();
    alice.expect_line("presence bob offline");
    assert_eq!(
        alice.ok("/msg bob while you were away"),
        ["ok dm:alice:bob #4"]
    );
    let mut bob = LineClient::start("bob", &bob_dir, &["--url", &ws, "--user", "bob"]);
    bob.expect_line("logged in as bob");
    bob.expect_line("contact alice mutual online");
    bob.expect_line("msg dm:alice:bob #4 alice: while you were away");
    bob.expect_line("synced");
    alice.expect_line("presence bob online");
    bob.quit();
    alice.quit();
}

#[test]
fn a_hostile_file_name_is_saved_where_asked() {
    let dir = tempfile::tempdir().unwrap();
    let srv = ServerProcess::start(dir.path(), &[]);
    let bob_dir = dir.path().join("bob");
    std::fs::create_dir_all(&bob_dir).unwrap();
    let mut bob = LineClient::login("bob", &bob_dir, &format!("tcp://{}", srv.addr), &[]);

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut m = im_tests::Client::connect(srv.addr).await;
        m.ok(json!({"type":"register","username":"mallory","password":PASSWORD}))
            .await;
        m.login("mallory", PASSWORD).await;
        m.ok(json!({"type":"contact.add","user":"bob"})).await;
        bob.expect_line("contact.request from mallory");
        assert_eq!(bob.ok("/accept mallory"), ["ok"]);
        let data = b"#!/bin/sh\necho pwned\n".to_vec();
        let file = m.upload("../../.profile\n\u{1b}[2J", None, &data).await;
        m.ok(json!({"type":"msg.send","to":"bob","body":"","attachment":file}))
            .await;
        let line = bob.expect_prefix("msg dm:bob:mallory #1 mallory: [file ");
        // The name is shown escaped, on one line.
        assert!(line.ends_with("../../.profile\\n\\u{1b}[2J]"), "{line}");
        assert_eq!(
            bob.ok(&format!("/get {file}")),
            ["saved profile__[2J 21 bytes", "ok"]
        );
        assert_eq!(std::fs::read(bob_dir.join("profile__[2J")).unwrap(), data);
        assert!(!dir.path().join(".profile").exists());
        // Into a directory: the sanitised name inside it.
        let into = dir.path().join("downloads");
        std::fs::create_dir_all(&into).unwrap();
        bob.ok(&format!("/get {file} {}", into.display()));
        assert_eq!(std::fs::read(into.join("profile__[2J")).unwrap(), data);
        assert_eq!(std::fs::read_dir(&into).unwrap().count(), 1);
    });
    bob.quit();
}

/// A self-signed certificate for `localhost`, written as PEM files.
fn tls_server(dir: &Path) -> (ServerProcess, PathBuf) {
    let c = rcgen::generate_simple_self_signed(vec!["localhost".into()]).expect("rcgen");
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    std::fs::write(&cert, c.cert.pem()).unwrap();
    std::fs::write(&key, c.key_pair.serialize_pem()).unwrap();
    let (cs, ks) = (cert.display().to_string(), key.display().to_string());
    let srv = ServerProcess::start(
        dir,
        &[
            ("IM__TCP__TLS_CERT", &cs),
            ("IM__TCP__TLS_KEY", &ks),
            ("IM__HTTP__TLS_CERT", &cs),
            ("IM__HTTP__TLS_KEY", &ks),
        ],
    );
    (srv, cert)
}

#[test]
fn tls_and_wss_with_a_private_ca() {
    let dir = tempfile::tempdir().unwrap();
    let (srv, ca) = tls_server(dir.path());
    let ca = ca.display().to_string();
    let tls = format!("tls://localhost:{}", srv.addr.port());
    let wss = format!("wss://localhost:{}/ws", srv.http.port());

    // Without the CA the server is not trusted.
    let mut stranger = LineClient::start("stranger", dir.path(), &["--url", &tls, "--user", "x"]);
    let line = stranger.expect_prefix("error connect: ");
    assert!(line.contains("TLS handshake"), "{line}");
    assert_eq!(stranger.wait_exit().code(), Some(1));

    let mut alice = LineClient::login("alice", dir.path(), &tls, &["--ca", &ca]);
    let mut bob = LineClient::login("bob", dir.path(), &wss, &["--ca", &ca]);
    befriend(&mut alice, &mut bob);
    assert_eq!(alice.ok("/msg bob over tls"), ["ok dm:alice:bob #1"]);
    bob.expect_line("msg dm:alice:bob #1 alice: over tls");
    assert_eq!(bob.ok("/msg alice over wss"), ["ok dm:alice:bob #2"]);
    alice.expect_line("msg dm:alice:bob #2 bob: over wss");
    bob.quit();
    alice.quit();
}

#[test]
fn failures_are_reported_with_an_exit_status() {
    let dir = tempfile::tempdir().unwrap();
    let srv = ServerProcess::start(dir.path(), &[]);
    let tcp = format!("tcp://{}", srv.addr);

    // A wrong password.
    let alice = LineClient::login("alice", dir.path(), &tcp, &[]);
    alice.quit();
    let mut c = Command::new(client_binary())
        .args(["--url", &tcp, "--user", "alice"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    c.stdin
        .take()
        .unwrap()
        .write_all(b"not the password\n")
        .unwrap();
    let out = c.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.lines()
            .any(|l| l.starts_with("error invalid_credentials: ")),
        "{text}"
    );

    // Registering a taken name is reported, and the login goes ahead.
    let mut again = LineClient::start(
        "alice",
        dir.path(),
        &["--url", &tcp, "--user", "alice", "--register"],
    );
    again.expect_prefix("error username_taken: ");
    again.expect_line("logged in as alice");
    again.expect_line("synced");
    // The end of input closes the client like /quit.
    again.stdin = None;
    assert!(again.wait_exit().success());

    // No password at all.
    let out = Command::new(client_binary())
        .args(["--url", &tcp, "--user", "alice"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // Nobody listening.
    let mut c = LineClient::start(
        "x",
        dir.path(),
        &["--url", "tcp://127.0.0.1:1", "--user", "x"],
    );
    c.expect_prefix("error connect: cannot connect to 127.0.0.1:1");
    assert_eq!(c.wait_exit().code(), Some(1));

    // Bad arguments.
    let out = Command::new(client_binary())
        .args(["--url", "http://x", "--user", "alice"])
        .stdin(Stdio::piped())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown scheme http"));
    let out = Command::new(client_binary())
        .arg("--bogus")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // The server going away ends the client with a line and status 1.
    let mut bob = LineClient::login("bob", dir.path(), &tcp, &[]);
    srv.kill();
    bob.expect_line("disconnected");
    assert_eq!(bob.wait_exit().code(), Some(1));
}
