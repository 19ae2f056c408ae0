//! TLS for the example server: certificates from PEM files, swapped
//! without a restart. Each listener gets a `rustls::ServerConfig` whose
//! certificate resolver holds the current certificate; [`Reloader`] reads
//! the files again on SIGHUP and whenever their modification time changes
//! (checked every few seconds), so a renewal (every 60-90 days with ACME)
//! needs no restart. A file that fails to load keeps the old certificate
//! and logs why.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};
use std::time::SystemTime;

use anyhow::Context as _;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;

/// A certificate chain and key, read from PEM files.
pub fn load(cert: &Path, key_file: &Path) -> anyhow::Result<CertifiedKey> {
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("cannot read certificates from {}", cert.display()))?
        .collect::<Result<_, _>>()
        .with_context(|| format!("bad PEM in {}", cert.display()))?;
    anyhow::ensure!(!chain.is_empty(), "no certificate in {}", cert.display());
    let key = PrivateKeyDer::from_pem_file(key_file)
        .with_context(|| format!("cannot read a private key from {}", key_file.display()))?;
    let signing = rustls::crypto::ring::sign::any_supported_type(&key)
        .context("unsupported private key type")?;
    let ck = CertifiedKey::new(chain, signing);
    // A renewal caught between writing the certificate and the key must
    // not be served: keep the old pair until both files match.
    ck.keys_match()
        .with_context(|| format!("{} does not match {}", key_file.display(), cert.display()))?;
    Ok(ck)
}

/// The resolver: always the current certificate.
pub struct Certs {
    current: RwLock<Arc<CertifiedKey>>,
    cert: PathBuf,
    key: PathBuf,
    loaded: RwLock<Option<(SystemTime, SystemTime)>>,
}

impl fmt::Debug for Certs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Certs")
            .field("cert", &self.cert)
            .field("key", &self.key)
            .finish()
    }
}

impl ResolvesServerCert for Certs {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        self.current.read().ok().map(|c| c.clone())
    }
}

fn mtimes(cert: &Path, key: &Path) -> Option<(SystemTime, SystemTime)> {
    let m = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    Some((m(cert)?, m(key)?))
}

impl Certs {
    /// Loads the files; fails when they do not make a certificate.
    pub fn open(cert: &Path, key: &Path) -> anyhow::Result<Arc<Certs>> {
        let stamp = mtimes(cert, key);
        let ck = load(cert, key)?;
        Ok(Arc::new(Certs {
            current: RwLock::new(Arc::new(ck)),
            cert: cert.to_owned(),
            key: key.to_owned(),
            loaded: RwLock::new(stamp),
        }))
    }

    /// A `rustls::ServerConfig` serving these certificates.
    pub fn server_config(self: &Arc<Self>) -> Arc<rustls::ServerConfig> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("the ring provider supports the default TLS versions")
            .with_no_client_auth()
            .with_cert_resolver(self.clone());
        Arc::new(config)
    }

    /// Reads the files again; on failure keeps the current certificate.
    pub fn reload(&self) -> anyhow::Result<()> {
        let stamp = mtimes(&self.cert, &self.key);
        let ck = load(&self.cert, &self.key)?;
        if let Ok(mut c) = self.current.write() {
            *c = Arc::new(ck);
        }
        if let Ok(mut l) = self.loaded.write() {
            *l = stamp;
        }
        tracing::info!(cert = %self.cert.display(), "certificate reloaded");
        Ok(())
    }

    /// Whether the files changed since they were last loaded.
    pub fn changed(&self) -> bool {
        let now = mtimes(&self.cert, &self.key);
        now.is_some() && self.loaded.read().is_ok_and(|l| *l != now)
    }
}

/// Reloads every certificate on SIGHUP and when its files change, until
/// the task is dropped.
pub async fn reloader(certs: Vec<Arc<Certs>>, poll: std::time::Duration) {
    if certs.is_empty() {
        return std::future::pending().await;
    }
    #[cfg(unix)]
    let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
    loop {
        #[cfg(unix)]
        let forced = match hup.as_mut() {
            Some(h) => tokio::select! {
                _ = h.recv() => true,
                _ = tokio::time::sleep(poll) => false,
            },
            None => {
                tokio::time::sleep(poll).await;
                false
            }
        };
        #[cfg(not(unix))]
        let forced = {
            tokio::time::sleep(poll).await;
            false
        };
        for c in &certs {
            if forced || c.changed() {
                let c = c.clone();
                let r = tokio::task::spawn_blocking(move || c.reload()).await;
                if let Ok(Err(e)) = r {
                    tracing::warn!(error = %format!("{e:#}"), "certificate not reloaded, keeping the current one");
                }
            }
        }
    }
}
