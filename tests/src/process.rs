//! The real example server binary as a child process, for tests that
//! restart or `kill -9` it.

use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

/// Path of the example server binary, built from the current sources the
/// first time a test asks (once per test process), with the profile this
/// test binary was built with: a binary left over from an older build
/// would test old code.
pub fn server_binary() -> PathBuf {
    example_binary("server")
}

/// Path of example `name` (`server`, `loadgen`, ...), built from the
/// current sources once per test process, like [`server_binary`].
pub fn example_binary(name: &str) -> PathBuf {
    example_binary_with(name, &[])
}

/// Like [`example_binary`], built with the examples' cargo `features`.
pub fn example_binary_with(name: &str, features: &[&str]) -> PathBuf {
    type Built = std::collections::HashMap<(String, Vec<String>), PathBuf>;
    static BINS: OnceLock<std::sync::Mutex<Built>> = OnceLock::new();
    let bins = BINS.get_or_init(Default::default);
    let mut bins = bins
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let features: Vec<String> = features.iter().map(|f| f.to_string()).collect();
    bins.entry((name.to_owned(), features.clone()))
        .or_insert_with(|| build_example(name, &features))
        .clone()
}

/// The cargo profile of the running test binary, from its path
/// (`<target>/<profile dir>/deps/<test>`).
fn profile_args() -> Vec<String> {
    let exe = std::env::current_exe().expect("current exe");
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .and_then(Path::file_name)
        .and_then(|d| d.to_str())
        .expect("target/<profile>/deps");
    match dir {
        "debug" => vec![],
        "release" => vec!["--release".into()],
        other => vec!["--profile".into(), other.into()],
    }
}

/// `cargo build -p im-examples --example NAME`; returns the executable
/// cargo reports.
fn build_example(name: &str, features: &[String]) -> PathBuf {
    let mut cmd = Command::new(env!("CARGO"));
    cmd.args(["build", "-p", "im-examples", "--example", name]);
    if !features.is_empty() {
        cmd.args(["--features", &features.join(",")]);
    }
    let out = cmd
        .args([
            "--manifest-path",
            concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml"),
        ])
        .args(["--message-format", "json-render-diagnostics"])
        .args(profile_args())
        .stderr(Stdio::inherit())
        .output()
        .expect("run cargo build");
    assert!(out.status.success(), "building the example {name} failed");
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|m| m["reason"] == "compiler-artifact" && m["target"]["name"] == name)
        // The build's own file (`filenames`), not the copy at
        // `examples/NAME` that a build with other features replaces.
        .find_map(|m| {
            m["filenames"][0]
                .as_str()
                .or(m["executable"].as_str())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| panic!("cargo reported no executable for the example {name}"))
}

/// A running example server process. Killed (SIGKILL) on drop.
pub struct ServerProcess {
    child: Child,
    /// Its TCP address.
    pub addr: SocketAddr,
    /// Its HTTP/WebSocket address.
    pub http: SocketAddr,
    /// Every line it wrote to stderr so far (its logs).
    logs: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            for d in chars.by_ref() {
                if d.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// `key=ADDR` in a text log line, or `"key":"ADDR"` in a JSON one.
fn field(line: &str, key: &str) -> Option<SocketAddr> {
    if let Some(at) = line.find(&format!("{key}=")) {
        return line[at + key.len() + 1..]
            .split_whitespace()
            .next()?
            .parse()
            .ok();
    }
    let at = line.find(&format!("\"{key}\":\""))? + key.len() + 4;
    line[at..].split('"').next()?.parse().ok()
}

impl ServerProcess {
    /// Starts the server in `dir` with `store.url = sqlite://im.db`, ports
    /// chosen by the OS, bcrypt cost 4, plus `env` overrides.
    pub fn start(dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        Self::start_binary(&server_binary(), dir, env)
    }

    /// Like [`ServerProcess::start`] with another build of the server
    /// (from [`example_binary_with`]).
    pub fn start_binary(bin: &Path, dir: &Path, env: &[(&str, &str)]) -> ServerProcess {
        let mut cmd = Command::new(bin);
        cmd.current_dir(dir)
            .env("IM__TCP__LISTEN", "127.0.0.1:0")
            .env("IM__HTTP__LISTEN", "127.0.0.1:0")
            .env("IM__STORE__URL", "sqlite://im.db")
            .env("IM__AUTH__BCRYPT_COST", "4")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn server");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        let logs = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let kept = logs.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                let line = strip_ansi(&line);
                if let Ok(mut k) = kept.lock() {
                    k.push(line.clone());
                }
                if !sent {
                    if let (Some(t), Some(h)) = (field(&line, "tcp"), field(&line, "http")) {
                        let _ = tx.send((t, h));
                        sent = true;
                    }
                }
                // Keep draining so the server never blocks on a full pipe.
            }
        });
        let (addr, http) = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("server did not report its addresses");
        ServerProcess {
            child,
            addr,
            http,
            logs,
        }
    }

    /// The lines it logged so far.
    pub fn logs(&self) -> Vec<String> {
        self.logs.lock().map(|l| l.clone()).unwrap_or_default()
    }

    /// The process id (to send it signals).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends signal `name` (`TERM`, `HUP`, ...) with `kill -s`.
    pub fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args(["-s", name, &self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(ok.success(), "kill -s {name} failed");
    }

    /// Waits up to `within` for the process to exit; its status, or `None`
    /// if it is still running.
    pub fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + within;
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            if std::time::Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// `kill -9`.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs the admin CLI (`server user ...`) in `dir` and returns its stdout;
/// panics if it fails.
pub fn admin(dir: &Path, args: &[&str], stdin: &str) -> String {
    use std::io::Write;
    let mut child = Command::new(server_binary())
        .current_dir(dir)
        .env("IM__STORE__URL", "sqlite://im.db")
        .env("IM__AUTH__BCRYPT_COST", "4")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn admin");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("admin output");
    assert!(
        out.status.success(),
        "server {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}
