//! Running a [`Command`] against the server: single requests, lists,
//! history, uploads (`/send`) and downloads (`/get`). What happens is told
//! through [`Report`]s, the last one always [`Report::Done`] with a line
//! that starts with `ok` or `error` (see [`super::format`]); line mode
//! prints them, the full-screen view logs them and updates its state.
//!
//! Downloads never write outside the place the user named: a file's name
//! comes from the sender and is hostile, so [`sanitize_file_name`] keeps
//! only a plain, visible file name, and a name chosen by the client never
//! replaces an existing file (`cat-1.png` is used instead).

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::commands::{attachment_frame, history_frame, Command, To, HELP};
use super::conn::{str_field, Client, PendingReply, Reply, RequestError};
use super::format;
use super::state::{Attachment, Message, Progress};

/// Bytes per `file.chunk` and `file.read`.
pub const CHUNK: usize = 32 * 1024;
/// Chunks sent ahead of their `ok`.
const WINDOW: usize = 8;
/// The most a download of a file of unknown size may write.
const MAX_DOWNLOAD: u64 = 1 << 30;
/// Retries of an upload or download step refused with `rate_limited`.
const RATE_RETRIES: u32 = 120;
/// The pause before such a retry.
const RATE_PAUSE: Duration = Duration::from_millis(500);

/// What a running command tells its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Report {
    /// A result line (list entries, `sent file ...`, `saved ...`).
    Line(String),
    /// A message the user sent (the server does not echo it to this
    /// session).
    Sent {
        /// Its conversation.
        conv: String,
        /// The message.
        msg: Message,
    },
    /// A page of history.
    History {
        /// Its conversation.
        conv: String,
        /// The messages, oldest first.
        messages: Vec<Message>,
    },
    /// Upload progress.
    Progress(Progress),
    /// The final line: `ok ...` or `error CODE: TEXT`.
    Done(String),
}

/// Where reports go.
pub type Reporter<'a> = &'a mut (dyn FnMut(Report) + Send);

/// Why a command failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// An error code: the server's, or `io`, `usage`, `closed`.
    pub code: String,
    /// The human text.
    pub message: String,
}

impl Failure {
    fn new(code: &str, message: impl Into<String>) -> Failure {
        Failure {
            code: code.into(),
            message: message.into(),
        }
    }
}

impl From<RequestError> for Failure {
    fn from(e: RequestError) -> Failure {
        match e {
            RequestError::Server { code, message } => Failure { code, message },
            RequestError::Closed => Failure::new("closed", "connection closed"),
        }
    }
}

/// Runs `cmd` as user `me`; `known` is what the client knows of the file
/// a `/get` asks for (its name, size and hash, from an attachment).
pub async fn run(
    client: &Client,
    me: &str,
    cmd: Command,
    known: Option<Attachment>,
    report: Reporter<'_>,
) {
    let done = match execute(client, me, cmd, known, report).await {
        Ok(line) => line,
        Err(f) => format::error(&f.code, &f.message),
    };
    report(Report::Done(done));
}

fn array<'a>(r: &'a Reply, key: &str) -> &'a [Value] {
    r.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

async fn execute(
    client: &Client,
    me: &str,
    cmd: Command,
    known: Option<Attachment>,
    report: Reporter<'_>,
) -> Result<String, Failure> {
    match cmd {
        Command::Msg { to, body } => {
            let frame = Command::Msg {
                to: to.clone(),
                body: body.clone(),
            }
            .frame()
            .unwrap_or(Value::Null);
            let r = client.request(frame).await?;
            sent(me, &to, &r, body, None, report)
        }
        Command::Contacts => {
            let r = client.request(json!({"type": "contact.list"})).await?;
            let list = array(&r, "contacts");
            for c in list {
                report(Report::Line(format::contact(c)));
            }
            Ok(format!("ok {} contacts", list.len()))
        }
        Command::Rooms(_) => {
            let r = client.request(cmd.frame().unwrap_or(Value::Null)).await?;
            let list = array(&r, "rooms");
            for room in list {
                report(Report::Line(format::room(room)));
            }
            Ok(format!("ok {} rooms", list.len()))
        }
        Command::Devices => {
            let r = client.request(json!({"type": "devices"})).await?;
            let list = array(&r, "devices");
            for d in list {
                report(Report::Line(format::device(d)));
            }
            Ok(format!("ok {} devices", list.len()))
        }
        Command::Create { .. } | Command::Join(_) => {
            let r = client.request(cmd.frame().unwrap_or(Value::Null)).await?;
            Ok(match str_field(&r, "conv") {
                Some(conv) => format!("ok {}", format::clean(conv)),
                None => "ok".into(),
            })
        }
        Command::History { to, limit } => {
            let conv = to.conv(me);
            let r = client.request(history_frame(&conv, limit, None)).await?;
            let mut messages = Vec::new();
            for m in array(&r, "messages") {
                let mut m = m.clone();
                if m.get("conv").is_none() {
                    if let Some(o) = m.as_object_mut() {
                        o.insert("conv".into(), json!(conv));
                    }
                }
                if let Some((_, msg)) = Message::from_frame(&m) {
                    report(Report::Line(format::history(&conv, &msg)));
                    messages.push(msg);
                }
            }
            let more = r.get("more").and_then(Value::as_bool) == Some(true);
            let n = messages.len();
            report(Report::History {
                conv: conv.clone(),
                messages,
            });
            Ok(format!(
                "ok {n} messages{}",
                if more { ", more" } else { "" }
            ))
        }
        Command::Send { to, path } => {
            let a = upload(client, &path, report).await?;
            report(Report::Line(format!(
                "sent file {} {} bytes {}",
                format::clean(&a.file),
                a.size,
                format::clean(&a.name)
            )));
            let r = client.request(attachment_frame(&to, &a.file)).await?;
            sent(me, &to, &r, String::new(), Some(a), report)
        }
        Command::Get { file, path } => {
            let (saved, size) = download(client, &file, known.as_ref(), path.as_deref()).await?;
            report(Report::Line(format!(
                "saved {} {size} bytes",
                format::clean(&saved.display().to_string())
            )));
            Ok("ok".into())
        }
        Command::Help => {
            for h in HELP {
                report(Report::Line((*h).to_string()));
            }
            Ok("ok".into())
        }
        Command::Quit => Ok("ok".into()),
        Command::Add(_)
        | Command::Accept(_)
        | Command::Decline(_)
        | Command::Remove(_)
        | Command::Leave(_)
        | Command::Status { .. }
        | Command::Typing(_) => {
            client.request(cmd.frame().unwrap_or(Value::Null)).await?;
            Ok("ok".into())
        }
    }
}

/// Reports a message the user sent and returns `ok CONV #SEQ`.
fn sent(
    me: &str,
    to: &To,
    r: &Reply,
    body: String,
    attachment: Option<Attachment>,
    report: Reporter<'_>,
) -> Result<String, Failure> {
    let conv = str_field(r, "conv")
        .map(str::to_string)
        .unwrap_or_else(|| to.conv(me));
    let Some(seq) = r.get("seq").and_then(Value::as_u64) else {
        return Ok(format!("ok {}", format::clean(&conv)));
    };
    let ts = r.get("ts").and_then(Value::as_i64).unwrap_or(0);
    report(Report::Sent {
        conv: conv.clone(),
        msg: Message {
            seq,
            from: me.to_string(),
            body,
            ts,
            attachment,
        },
    });
    Ok(format!("ok {} #{seq}", format::clean(&conv)))
}

/// A MIME type from a file name's extension, when it is a common one.
pub fn guess_mime(name: &str) -> Option<&'static str> {
    let ext = name.rsplit_once('.')?.1.to_ascii_lowercase();
    Some(match ext.as_str() {
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "svg" => "image/svg+xml",
        "txt" | "md" => "text/plain",
        "pdf" => "application/pdf",
        "json" => "application/json",
        "zip" => "application/zip",
        "mp3" => "audio/mpeg",
        "ogg" | "oga" => "audio/ogg",
        "wav" => "audio/wav",
        "mp4" => "video/mp4",
        "webm" => "video/webm",
        _ => return None,
    })
}

fn io_failure(what: &str, path: &Path, e: std::io::Error) -> Failure {
    Failure::new("io", format!("cannot {what} {}: {e}", path.display()))
}

/// Uploads the file at `path` in chunks (several in flight; a
/// `rate_limited` refusal waits and resumes where `file.status` says).
pub async fn upload(
    client: &Client,
    path: &Path,
    report: Reporter<'_>,
) -> Result<Attachment, Failure> {
    let data = std::fs::read(path).map_err(|e| io_failure("read", path, e))?;
    let mut name: String = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
        .chars()
        .filter(|c| *c != '\0')
        .take(255)
        .collect();
    if name.is_empty() {
        name = "file".into();
    }
    let total = data.len() as u64;
    let mut begin = json!({"type": "file.begin", "name": name, "size": total});
    if let Some(m) = guess_mime(&name) {
        begin["mime"] = json!(m);
    }
    let r = client.request(begin).await?;
    let id = str_field(&r, "file")
        .ok_or_else(|| Failure::new("internal", "the server gave no file id"))?
        .to_string();
    let b64 = base64::engine::general_purpose::STANDARD;
    let mut next = 0usize;
    let mut inflight: VecDeque<(usize, PendingReply)> = VecDeque::new();
    let mut retries = 0;
    report(Report::Progress(Progress {
        name: name.clone(),
        done: 0,
        total,
    }));
    loop {
        while inflight.len() < WINDOW && next < data.len() {
            let end = (next + CHUNK).min(data.len());
            let p = client.start(json!({
                "type": "file.chunk", "file": id, "offset": next,
                "data": b64.encode(&data[next..end]),
            }));
            inflight.push_back((end, p));
            next = end;
        }
        let Some((end, p)) = inflight.pop_front() else {
            break;
        };
        match p.await {
            Ok(_) => report(Report::Progress(Progress {
                name: name.clone(),
                done: end as u64,
                total,
            })),
            Err(e) if e.code() == "rate_limited" && retries < RATE_RETRIES => {
                retries += 1;
                for (_, p) in inflight.drain(..) {
                    let _ = p.await;
                }
                tokio::time::sleep(RATE_PAUSE).await;
                let st = client
                    .request(json!({"type": "file.status", "file": id}))
                    .await?;
                let received = st.get("received").and_then(Value::as_u64).unwrap_or(0);
                next = (received as usize).min(data.len());
            }
            Err(e) => return Err(e.into()),
        }
    }
    let r = client
        .request(json!({"type": "file.end", "file": id}))
        .await?;
    let sha256 = hex::encode(Sha256::digest(&data));
    if let Some(theirs) = str_field(&r, "sha256") {
        if !theirs.eq_ignore_ascii_case(&sha256) {
            return Err(Failure::new(
                "internal",
                "the server stored different bytes (sha256 mismatch)",
            ));
        }
    }
    Ok(Attachment {
        file: str_field(&r, "file").unwrap_or(&id).to_string(),
        mime: guess_mime(&name)
            .unwrap_or("application/octet-stream")
            .to_string(),
        name,
        size: total,
        sha256,
    })
}

/// A safe file name from a name someone else chose: its last path
/// component, without control, bidirectional-override or reserved
/// characters, without leading dots (no hidden files, no `..`), at most
/// 200 bytes; `download` when nothing is left.
pub fn sanitize_file_name(name: &str) -> String {
    let last = name.rsplit(['/', '\\']).next().unwrap_or("");
    let mut out = String::new();
    for c in last.chars() {
        let bad = c.is_control()
            || matches!(c, '<' | '>' | ':' | '"' | '|' | '?' | '*')
            || matches!(c, '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}' | '\u{200e}' | '\u{200f}' | '\u{61c}');
        if bad {
            out.push('_');
        } else {
            out.push(c);
        }
        if out.len() > 200 {
            out.pop();
            break;
        }
    }
    let out = out
        .trim()
        .trim_start_matches('.')
        .trim_end_matches(['.', ' '])
        .trim();
    if out.is_empty() || out.chars().all(|c| c == '_') {
        return "download".into();
    }
    let stem = out.split('.').next().unwrap_or("").to_ascii_uppercase();
    let reserved = matches!(stem.as_str(), "CON" | "PRN" | "AUX" | "NUL")
        || ((stem.starts_with("COM") || stem.starts_with("LPT"))
            && stem.len() == 4
            && stem.as_bytes()[3].is_ascii_digit());
    if reserved {
        format!("_{out}")
    } else {
        out.to_string()
    }
}

/// Where `/get` writes: the given path, or inside it when it is a
/// directory, or the current directory; a name derived from the file's
/// (sanitised) name is "derived" and must not replace an existing file.
/// Returns the path and whether it is derived.
pub fn download_target(
    file: &str,
    name: Option<&str>,
    given: Option<&Path>,
    given_is_dir: bool,
) -> (PathBuf, bool) {
    let derived = || sanitize_file_name(name.filter(|n| !n.is_empty()).unwrap_or(file));
    match given {
        Some(p) if given_is_dir => (p.join(derived()), true),
        Some(p) => (p.to_path_buf(), false),
        None => (PathBuf::from(derived()), true),
    }
}

/// `cat.png`, then `cat-1.png`, `cat-2.png`, ...
fn numbered(path: &Path, n: u32) -> PathBuf {
    if n == 0 {
        return path.to_path_buf();
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let new = match name.rsplit_once('.') {
        Some((stem, ext)) if !stem.is_empty() => format!("{stem}-{n}.{ext}"),
        _ => format!("{name}-{n}"),
    };
    path.with_file_name(new)
}

/// Creates a new file at `path` or a numbered variant; never opens an
/// existing file (nor follows a symlink).
fn create_unique(path: &Path) -> Result<(File, PathBuf), Failure> {
    for n in 0..1000 {
        let p = numbered(path, n);
        match OpenOptions::new().write(true).create_new(true).open(&p) {
            Ok(f) => return Ok((f, p)),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(io_failure("create", &p, e)),
        }
    }
    Err(Failure::new(
        "io",
        format!("{} and its numbered variants exist", path.display()),
    ))
}

/// Downloads `file` with `file.read`; returns where it went and its size.
/// With `known` (from an attachment) the size and hash are checked, and a
/// file that does not match is removed.
pub async fn download(
    client: &Client,
    file: &str,
    known: Option<&Attachment>,
    dest: Option<&Path>,
) -> Result<(PathBuf, u64), Failure> {
    let is_dir = dest.is_some_and(Path::is_dir);
    let (target, derived) = download_target(file, known.map(|a| a.name.as_str()), dest, is_dir);
    // Ask for the first chunk before creating anything, so an unknown
    // file leaves no empty file behind.
    let first = read_chunk(client, file, 0).await?;
    let (mut out, path) = if derived {
        create_unique(&target)?
    } else {
        let f = File::create(&target).map_err(|e| io_failure("create", &target, e))?;
        (f, target)
    };
    let result = write_all_chunks(client, file, known, first, &mut out).await;
    drop(out);
    match result {
        Ok(size) => Ok((path, size)),
        Err(f) => {
            let _ = std::fs::remove_file(&path);
            Err(f)
        }
    }
}

/// One `file.read`: the decoded bytes and `eof`. A `rate_limited`
/// refusal waits a moment and asks again.
async fn read_chunk(client: &Client, file: &str, offset: u64) -> Result<(Vec<u8>, bool), Failure> {
    let frame = json!({"type": "file.read", "file": file, "offset": offset, "len": CHUNK});
    let mut retries = 0;
    let r = loop {
        match client.request(frame.clone()).await {
            Err(e) if e.code() == "rate_limited" && retries < RATE_RETRIES => {
                retries += 1;
                tokio::time::sleep(RATE_PAUSE).await;
            }
            r => break r?,
        }
    };
    let data = base64::engine::general_purpose::STANDARD
        .decode(str_field(&r, "data").unwrap_or(""))
        .map_err(|_| Failure::new("internal", "the server sent bad base64"))?;
    let eof = r.get("eof").and_then(Value::as_bool).unwrap_or(false);
    Ok((data, eof))
}

async fn write_all_chunks(
    client: &Client,
    file: &str,
    known: Option<&Attachment>,
    first: (Vec<u8>, bool),
    out: &mut File,
) -> Result<u64, Failure> {
    let limit = known.map_or(MAX_DOWNLOAD, |a| a.size);
    let mut hash = Sha256::new();
    let mut size = 0u64;
    let (mut data, mut eof) = first;
    loop {
        size += data.len() as u64;
        if size > limit {
            return Err(Failure::new(
                "internal",
                "the server sent more bytes than the file has",
            ));
        }
        hash.update(&data);
        out.write_all(&data)
            .map_err(|e| Failure::new("io", format!("cannot write: {e}")))?;
        if eof {
            break;
        }
        if data.is_empty() {
            return Err(Failure::new("internal", "the server sent no data"));
        }
        (data, eof) = read_chunk(client, file, size).await?;
    }
    out.flush()
        .map_err(|e| Failure::new("io", format!("cannot write: {e}")))?;
    if let Some(a) = known {
        let digest = hex::encode(hash.finalize());
        if size != a.size || (!a.sha256.is_empty() && !a.sha256.eq_ignore_ascii_case(&digest)) {
            return Err(Failure::new(
                "internal",
                "the downloaded file does not match its size or sha256",
            ));
        }
    }
    Ok(size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_names_are_sanitised() {
        for (name, safe) in [
            ("cat.png", "cat.png"),
            ("../../etc/passwd", "passwd"),
            ("/etc/passwd", "passwd"),
            ("..\\..\\windows\\system.ini", "system.ini"),
            ("..", "download"),
            ("...", "download"),
            ("", "download"),
            ("/", "download"),
            (".bashrc", "bashrc"),
            ("a\nb\u{1b}c.txt", "a_b_c.txt"),
            ("gnp\u{202e}.exe", "gnp_.exe"),
            ("what?.txt", "what_.txt"),
            ("CON.txt", "_CON.txt"),
            ("com1", "_com1"),
            ("trailing. ", "trailing"),
            ("my cat.png", "my cat.png"),
        ] {
            assert_eq!(sanitize_file_name(name), safe, "{name:?}");
        }
        let long = "x".repeat(1000) + ".png";
        assert!(sanitize_file_name(&long).len() <= 200);
        let wide = "é".repeat(300);
        let s = sanitize_file_name(&wide);
        assert!(s.len() <= 200 && s.chars().all(|c| c == 'é'));
    }

    #[test]
    fn download_targets() {
        assert_eq!(
            download_target("f-1", Some("../cat.png"), None, false),
            (PathBuf::from("cat.png"), true)
        );
        assert_eq!(
            download_target("f-1", None, None, false),
            (PathBuf::from("f-1"), true)
        );
        assert_eq!(
            download_target("../f-1", Some(""), None, false),
            (PathBuf::from("f-1"), true)
        );
        assert_eq!(
            download_target("f-1", Some("/etc/x"), Some(Path::new("/tmp/d")), true),
            (PathBuf::from("/tmp/d/x"), true)
        );
        assert_eq!(
            download_target("f-1", Some("x"), Some(Path::new("/tmp/out.bin")), false),
            (PathBuf::from("/tmp/out.bin"), false)
        );
    }

    #[test]
    fn derived_names_never_replace_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cat.png");
        std::fs::write(&p, b"old").unwrap();
        let (_, got) = create_unique(&p).unwrap();
        assert_eq!(got, dir.path().join("cat-1.png"));
        let (_, got) = create_unique(&p).unwrap();
        assert_eq!(got, dir.path().join("cat-2.png"));
        assert_eq!(std::fs::read(&p).unwrap(), b"old");
        assert_eq!(
            numbered(Path::new("d/noext"), 3),
            PathBuf::from("d/noext-3")
        );
        #[cfg(unix)]
        {
            let link = dir.path().join("link");
            std::os::unix::fs::symlink(dir.path().join("elsewhere"), &link).unwrap();
            let (_, got) = create_unique(&link).unwrap();
            assert_eq!(got, dir.path().join("link-1"));
            assert!(!dir.path().join("elsewhere").exists());
        }
    }

    #[test]
    fn mime_types() {
        assert_eq!(guess_mime("cat.PNG"), Some("image/png"));
        assert_eq!(guess_mime("a.tar.gz"), None);
        assert_eq!(guess_mime("noext"), None);
    }
}
