//! The example server's configuration: built-in defaults, then an optional
//! TOML file, then `IM__SECTION__KEY` environment variables. A key that
//! means nothing (a typo such as `limits.max_fram`) stops the start with
//! its name and the closest known key, rather than being ignored.
//! `examples/server.toml` lists every key with its default.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _};
use serde::{Deserialize, Serialize};

/// Everything the example server reads.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// The TCP transport.
    pub tcp: TcpSettings,
    /// The HTTP server: WebSocket, file downloads, the web client.
    pub http: HttpSettings,
    /// Where accounts and messages are kept.
    pub store: StoreSettings,
    /// Where uploaded files are kept.
    pub files: FilesSettings,
    /// Prometheus metrics.
    pub metrics: MetricsSettings,
    /// Logging.
    pub log: LogSettings,
    /// Authentication and throttling.
    pub auth: im_core::config::AuthConfig,
    /// Sizes, timeouts, queue bounds.
    pub limits: im_core::config::Limits,
    /// Policy switches.
    pub policy: im_core::config::Policy,
    /// Worker pools.
    pub pool: im_core::config::PoolConfig,
    /// Several nodes (feature `cluster`).
    pub cluster: ClusterSettings,
}

impl Settings {
    /// The core's part.
    pub fn core(&self) -> im_core::Config {
        im_core::Config {
            auth: self.auth.clone(),
            limits: self.limits.clone(),
            policy: self.policy.clone(),
            pool: self.pool.clone(),
            cluster: im_core::config::ClusterConfig {
                node_timeout_secs: self.cluster.node_timeout_secs,
            },
        }
    }
}

/// `[cluster]`: several nodes sharing one PostgreSQL store, routing live
/// traffic through NATS.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSettings {
    /// `nats://host:port`; absent: a single node, no NATS.
    pub nats_url: Option<String>,
    /// Namespaces the NATS subjects, so several clusters (or test runs)
    /// share one NATS server.
    pub name: String,
    /// A node silent this long is taken as dead.
    pub node_timeout_secs: u64,
}

impl Default for ClusterSettings {
    fn default() -> Self {
        ClusterSettings {
            nats_url: None,
            name: "im".into(),
            node_timeout_secs: im_core::config::ClusterConfig::default().node_timeout_secs,
        }
    }
}

/// `[tcp]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct TcpSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// PEM certificate chain: with `tls_key`, the port speaks only TLS.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
}

impl Default for TcpSettings {
    fn default() -> Self {
        TcpSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 7878)),
            tls_cert: None,
            tls_key: None,
        }
    }
}

/// The certificate of a listener, when both files are given.
fn certs(
    section: &str,
    cert: &Option<PathBuf>,
    key: &Option<PathBuf>,
) -> anyhow::Result<Option<std::sync::Arc<crate::tls::Certs>>> {
    match (cert, key) {
        (None, None) => Ok(None),
        (Some(c), Some(k)) => Ok(Some(crate::tls::Certs::open(c, k)?)),
        _ => bail!("{section}.tls_cert and {section}.tls_key go together"),
    }
}

impl TcpSettings {
    /// The TCP listener's certificate, if TLS is configured.
    pub fn certs(&self) -> anyhow::Result<Option<std::sync::Arc<crate::tls::Certs>>> {
        certs("tcp", &self.tls_cert, &self.tls_key)
    }
}

/// `[http]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct HttpSettings {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Serve the web client at `/`.
    pub web_client: bool,
    /// Serve the web client's files from this directory instead of the
    /// copy built into the binary (for working on the client).
    pub web_dir: Option<PathBuf>,
    /// PEM certificate chain: with `tls_key`, HTTPS and WSS only.
    pub tls_cert: Option<PathBuf>,
    /// PEM private key.
    pub tls_key: Option<PathBuf>,
}

impl Default for HttpSettings {
    fn default() -> Self {
        HttpSettings {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            web_client: true,
            web_dir: None,
            tls_cert: None,
            tls_key: None,
        }
    }
}

impl HttpSettings {
    /// The HTTP listener's certificate, if TLS is configured.
    pub fn certs(&self) -> anyhow::Result<Option<std::sync::Arc<crate::tls::Certs>>> {
        certs("http", &self.tls_cert, &self.tls_key)
    }

    /// The web client to mount, if any.
    pub fn web_client(&self) -> Option<im_transport_ws::WebClient> {
        match (&self.web_dir, self.web_client) {
            (_, false) => None,
            (Some(dir), true) => Some(im_transport_ws::WebClient::from_dir(dir.clone())),
            (None, true) => Some(im_transport_ws::WebClient::embedded()),
        }
    }
}

/// `[store]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct StoreSettings {
    /// `sqlite://PATH`, `postgres://...` (feature `postgres`) or `memory:`.
    pub url: String,
    /// SQLite `PRAGMA synchronous`: off, normal, full or extra.
    pub synchronous: String,
    /// Pooled store connections.
    pub pool_size: u32,
    /// PostgreSQL: keep the tables in this schema (created if missing), so
    /// several servers can share one database apart.
    pub pg_schema: Option<String>,
}

impl Default for StoreSettings {
    fn default() -> Self {
        StoreSettings {
            url: "sqlite://im.db".into(),
            synchronous: "full".into(),
            pool_size: 8,
            pg_schema: None,
        }
    }
}

impl StoreSettings {
    /// The store's options.
    pub fn options(&self) -> anyhow::Result<crate::StoreOptions> {
        Ok(crate::StoreOptions {
            synchronous: self.synchronous.parse()?,
            pool_size: self.pool_size,
            pg_schema: self.pg_schema.clone(),
            ..Default::default()
        })
    }
}

/// `[files]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct FilesSettings {
    /// Directory of uploaded files.
    pub dir: String,
}

impl Default for FilesSettings {
    fn default() -> Self {
        FilesSettings {
            dir: "im-files".into(),
        }
    }
}

/// `[log]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct LogSettings {
    /// `text` (for people) or `json` (one object per line, for collectors).
    pub format: LogFormat,
    /// Filter when `RUST_LOG` is not set (`info`, `debug`, `im_core=debug`...).
    pub level: String,
}

/// How log lines look.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, with the session's fields.
    Json,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            format: LogFormat::Text,
            level: "info".into(),
        }
    }
}

/// `[metrics]`.
#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsSettings {
    /// Serve `GET /metrics` at all.
    pub enabled: bool,
    /// Serve it on this address only, instead of on the HTTP server.
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsSettings {
    fn default() -> Self {
        MetricsSettings {
            enabled: true,
            listen: None,
        }
    }
}

/// `url` with any password in it replaced by `***`, for logs and messages.
pub fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => match userinfo.split_once(':') {
            Some((user, _)) => format!("{scheme}://{user}:***@{host}{path}"),
            None => url.to_owned(),
        },
        None => url.to_owned(),
    }
}

/// Environment variables starting with this (then `SECTION__KEY`) set keys.
pub const ENV_PREFIX: &str = "IM__";

/// Reads the defaults, then `file` (TOML) if given, then the `IM__…`
/// variables among `env`. Fails on a value of the wrong type and on any key
/// that is not a setting.
pub fn load(
    file: Option<&Path>,
    env: impl IntoIterator<Item = (String, String)>,
) -> anyhow::Result<Settings> {
    let mut b = config::Config::builder()
        .add_source(config::Config::try_from(&Settings::default()).context("built-in defaults")?);
    if let Some(file) = file {
        let text = std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?;
        b = b.add_source(config::File::from_str(&text, config::FileFormat::Toml));
    }
    let vars: config::Map<String, String> = env
        .into_iter()
        .filter(|(k, _)| k.starts_with(ENV_PREFIX))
        .collect();
    let c = b
        .add_source(
            config::Environment::with_prefix("IM")
                .prefix_separator("__")
                .separator("__")
                .try_parsing(true)
                .source(Some(vars)),
        )
        .build()
        .context("invalid configuration")?;
    let mut unknown = Vec::new();
    let settings: Settings = serde_ignored::deserialize(c, |path| unknown.push(path.to_string()))
        .context("invalid configuration")?;
    if !unknown.is_empty() {
        let known = keys();
        let lines: Vec<String> = unknown
            .iter()
            .map(|k| match closest(k, &known) {
                Some(m) => format!("unknown configuration key `{k}` (did you mean `{m}`?)"),
                None => format!("unknown configuration key `{k}`"),
            })
            .collect();
        bail!("{}", lines.join("\n"));
    }
    settings.store.options()?;
    Ok(settings)
}

/// Every key, `section.key`, in the order of the default settings.
pub fn keys() -> Vec<String> {
    let mut out = Vec::new();
    if let Ok(serde_json::Value::Object(sections)) = serde_json::to_value(Settings::default()) {
        for (section, v) in sections {
            if let serde_json::Value::Object(fields) = v {
                out.extend(fields.keys().map(|f| format!("{section}.{f}")));
            }
        }
    }
    // Keys whose default is "absent" do not show up when serialized.
    out.push("http.web_dir".into());
    for section in ["tcp", "http"] {
        out.push(format!("{section}.tls_cert"));
        out.push(format!("{section}.tls_key"));
    }
    out.push("metrics.listen".into());
    out.sort();
    out.dedup();
    out
}

/// The known key nearest to `key` by edit distance, when near enough to
/// be a typo.
fn closest<'a>(key: &str, known: &'a [String]) -> Option<&'a str> {
    known
        .iter()
        .map(|k| (distance(key, k), k))
        .filter(|(d, k)| *d <= 3.max(k.len() / 4))
        .min_by_key(|(d, _)| *d)
        .map(|(_, k)| k.as_str())
}

/// Levenshtein distance.
fn distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn sample() -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("server.toml")
    }

    #[test]
    fn defaults_load_without_a_file() {
        let s = load(None, env(&[])).unwrap();
        assert_eq!(s.tcp.listen.to_string(), "127.0.0.1:7878");
        assert_eq!(s.limits.max_frame, 65536);
    }

    #[test]
    fn the_sample_file_lists_every_key_with_its_default() {
        let text = std::fs::read_to_string(sample()).unwrap();
        let mut section = String::new();
        let mut listed = Vec::new();
        for line in text.lines() {
            let line = line.trim().trim_start_matches("# ").trim();
            if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                section = s.to_owned();
            } else if let Some((k, _)) = line.split_once(" = ") {
                if !k.contains(' ') {
                    listed.push(format!("{section}.{k}"));
                }
            }
        }
        listed.sort();
        assert_eq!(listed, keys(), "server.toml and the settings differ");
        // Every value written in it is the default (those that depend on
        // the machine are commented out).
        let from_file = load(Some(&sample()), env(&[])).unwrap();
        assert_eq!(
            serde_json::to_value(from_file).unwrap(),
            serde_json::to_value(Settings::default()).unwrap()
        );
    }

    #[test]
    fn a_typo_is_an_error_naming_the_key_it_resembles() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("im.toml");
        std::fs::write(&f, "[limits]\nmax_fram = 1000\n").unwrap();
        let e = load(Some(&f), env(&[])).unwrap_err().to_string();
        assert!(e.contains("`limits.max_fram`"), "{e}");
        assert!(e.contains("did you mean `limits.max_frame`"), "{e}");
        let e = load(None, env(&[("IM__LIMITS__IDLE_TIMEOUT", "5")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("did you mean `limits.idle_timeout_secs`"), "{e}");
        let e = load(None, env(&[("IM__NOPE__X", "1")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("unknown configuration key `nope"), "{e}");
    }

    #[test]
    fn environment_variables_override_the_file() {
        let s = load(
            Some(&sample()),
            env(&[
                ("IM__LIMITS__MAX_FRAME", "131072"),
                ("IM__HTTP__WEB_DIR", "/tmp/web"),
                ("OTHER", "ignored"),
            ]),
        )
        .unwrap();
        assert_eq!(s.limits.max_frame, 131072);
        assert_eq!(s.http.web_dir, Some(PathBuf::from("/tmp/web")));
    }

    #[test]
    fn passwords_in_store_urls_are_redacted() {
        assert_eq!(
            redact_url("postgres://im:s3cret@db.example.org:5432/im"),
            "postgres://im:***@db.example.org:5432/im"
        );
        assert_eq!(redact_url("postgres://im@db/im"), "postgres://im@db/im");
        assert_eq!(redact_url("sqlite://im.db"), "sqlite://im.db");
        assert_eq!(redact_url("memory:"), "memory:");
    }

    #[test]
    fn bad_values_are_errors() {
        assert!(load(None, env(&[("IM__LIMITS__MAX_FRAME", "lots")])).is_err());
        assert!(load(None, env(&[("IM__STORE__SYNCHRONOUS", "sometimes")])).is_err());
    }
}
