//! The TLS configurations of the client and peer ports, reloaded from their PEM files
//! while the server runs, and the client side's configuration for reaching peers.
//!
//! Reload: a task stats the files every `RELOAD_EVERY` and, when one changed, builds a new
//! rustls configuration. New connections use it; established ones keep the one they
//! negotiated. A half-written or mismatched set of files is logged and the previous
//! configuration stays, so a botched rotation never takes a port down.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};

/// How often certificate files are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);

/// The PEM files of one port's TLS identity, and the CA its peers' certificates must chain to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: Option<PathBuf>,
}

/// Whether a connecting party must present a certificate signed by the CA.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientCerts {
    /// Optional: a certificate, when given, must verify and becomes an `x509:` identity.
    Optional,
    /// Required (the peer port: only ensemble members get in).
    Required,
}

/// A port's TLS configuration, swapped on reload.
pub struct ServerTls {
    pub(super) name: &'static str,
    files: TlsFiles,
    certs: ClientCerts,
    current: RwLock<Arc<ServerConfig>>,
    stamp: Mutex<Vec<Option<(SystemTime, u64)>>>,
    generation: AtomicU64,
}

impl ServerTls {
    /// Loads the files; an error names the file and what is wrong with it.
    pub fn load(name: &'static str, files: TlsFiles, certs: ClientCerts) -> Result<Arc<ServerTls>, String> {
        let config = build_server_config(&files, certs)?;
        Ok(Arc::new(ServerTls {
            name,
            stamp: Mutex::new(stamp(&files)),
            files,
            certs,
            current: RwLock::new(Arc::new(config)),
            generation: AtomicU64::new(0),
        }))
    }

    pub(super) fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current.read().unwrap().clone())
    }

    /// Counts reloads; the peer network rebuilds its channels when it changes.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }

    /// Rebuilds the configuration if a file changed. Ok(true) when a new one is in use.
    pub fn reload_if_changed(&self) -> Result<bool, String> {
        let now = stamp(&self.files);
        {
            let mut seen = self.stamp.lock().unwrap();
            if *seen == now {
                return Ok(false);
            }
            // Recorded before building: a broken file set is reported once, not every tick,
            // and retried when the files change again.
            *seen = now;
        }
        let config = build_server_config(&self.files, self.certs)?;
        *self.current.write().unwrap() = Arc::new(config);
        self.generation.fetch_add(1, Ordering::AcqRel);
        Ok(true)
    }

    /// Polls the files until `stop` fires.
    pub async fn reload_loop(self: Arc<Self>, mut stop: tokio::sync::watch::Receiver<bool>) {
        loop {
            tokio::select! {
                _ = stop.wait_for(|s| *s) => return,
                _ = tokio::time::sleep(RELOAD_EVERY) => {}
            }
            match self.reload_if_changed() {
                Ok(true) => {
                    metrics::counter!("grove_tls_reloads_total", "port" => self.name).increment(1);
                    tracing::info!(port = self.name, cert = %self.files.cert.display(), "TLS certificates reloaded");
                }
                Ok(false) => {}
                Err(e) => {
                    metrics::counter!("grove_tls_reload_errors_total", "port" => self.name).increment(1);
                    tracing::warn!(port = self.name, "TLS reload failed, keeping the previous certificates: {e}");
                }
            }
        }
    }
}

fn stamp(files: &TlsFiles) -> Vec<Option<(SystemTime, u64)>> {
    [Some(&files.cert), Some(&files.key), files.ca.as_ref()]
        .into_iter()
        .flatten()
        .map(|p| std::fs::metadata(p).ok().and_then(|m| Some((m.modified().ok()?, m.len()))))
        .collect()
}

pub fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("{}: {e}", path.display()))?;
    if certs.is_empty() {
        return Err(format!("{}: no PEM certificate in it", path.display()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| format!("{}: no usable PEM private key: {e}", path.display()))
}

pub fn read_roots(path: &Path) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs(path)? {
        roots.add(cert).map_err(|e| format!("{}: not a CA certificate: {e}", path.display()))?;
    }
    Ok(roots)
}

fn build_server_config(files: &TlsFiles, certs: ClientCerts) -> Result<ServerConfig, String> {
    let chain = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?;
    let builder = match (&files.ca, certs) {
        (None, ClientCerts::Optional) => builder.with_no_client_auth(),
        (None, ClientCerts::Required) => return Err("mutual TLS needs a CA file".into()),
        (Some(ca), mode) => {
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(read_roots(ca)?), provider);
            let verifier = if mode == ClientCerts::Optional { verifier.allow_unauthenticated() } else { verifier };
            builder.with_client_cert_verifier(verifier.build().map_err(|e| format!("{}: {e}", ca.display()))?)
        }
    };
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| format!("{} and {}: {e}", files.cert.display(), files.key.display()))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(config)
}

/// A client-side TLS configuration for tonic channels (the peer network, the CLI, the client).
pub fn client_tls_config(
    ca: Option<&Path>,
    identity: Option<(&Path, &Path)>,
    server_name: Option<&str>,
) -> Result<tonic::transport::ClientTlsConfig, String> {
    let read = |p: &Path| std::fs::read(p).map_err(|e| format!("{}: {e}", p.display()));
    let mut tls = tonic::transport::ClientTlsConfig::new();
    if let Some(ca) = ca {
        read_certs(ca)?;
        tls = tls.ca_certificate(tonic::transport::Certificate::from_pem(read(ca)?));
    }
    if let Some((cert, key)) = identity {
        read_certs(cert)?;
        read_key(key)?;
        tls = tls.identity(tonic::transport::Identity::from_pem(read(cert)?, read(key)?));
    }
    if let Some(name) = server_name {
        tls = tls.domain_name(name);
    }
    Ok(tls)
}

/// The subject of a certificate, as the `x509:` identity names it: its relative
/// distinguished names in certificate order, comma-separated (`CN=alice,O=Example`).
pub fn subject_of(cert: &CertificateDer<'_>) -> Option<String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref()).ok()?;
    let parts: Vec<String> = parsed
        .subject()
        .iter_rdn()
        .flat_map(|rdn| rdn.iter())
        .map(|attr| {
            let key = x509_parser::objects::oid2abbrev(attr.attr_type(), x509_parser::objects::oid_registry())
                .map(str::to_string)
                .unwrap_or_else(|_| attr.attr_type().to_id_string());
            format!("{key}={}", attr.as_str().unwrap_or("?"))
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join(","))
}
