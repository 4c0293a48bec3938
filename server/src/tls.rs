//! Transport: accepted connections (plain or TLS) for the gRPC servers, and the TLS
//! configurations of the client and peer ports, reloaded from their PEM files while the
//! server runs.
//!
//! One accept loop serves every port so that every connection gets the same treatment:
//! Nagle off, TCP keepalive, a bounded TLS handshake that runs off the accept loop (a client
//! that stalls mid-handshake must not stop others from connecting), and a `ConnInfo` in each
//! request's extensions carrying the peer's address and certificate chain (the `ip:` and
//! `x509:` identities).
//!
//! Reload: a task stats the files every `RELOAD_EVERY` and, when one changed, builds a new
//! rustls configuration. New connections use it; established ones keep the one they
//! negotiated. A half-written or mismatched set of files is logged and the previous
//! configuration stays, so a botched rotation never takes a port down.

use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};

use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::server::WebPkiClientVerifier;
use tokio_rustls::rustls::{RootCertStore, ServerConfig};
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use crate::connections::{Admission, ConnLimits, ConnSlot, REFUSED_FOR};

/// How often certificate files are checked for changes.
pub const RELOAD_EVERY: Duration = Duration::from_secs(2);
/// A TLS handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
    name: &'static str,
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

    fn acceptor(&self) -> TlsAcceptor {
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

/// An accepted connection: its stream, its place in the connection counts, and, for a
/// connection over a limit, why it is refused and when it closes.
pub struct Conn {
    io: Io,
    _slot: Option<ConnSlot>,
    refused: Option<(Arc<str>, Pin<Box<tokio::time::Sleep>>)>,
}

enum Io {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::server::TlsStream<TcpStream>>),
}

/// What a handler can learn about the connection a request came on.
#[derive(Debug, Clone, Default)]
pub struct ConnInfo {
    pub remote: Option<SocketAddr>,
    /// The verified client certificate chain (leaf first), when one was presented.
    pub certs: Option<Arc<Vec<CertificateDer<'static>>>>,
    /// Set on a connection over a limit: its requests are answered with this reason.
    pub refused: Option<Arc<str>>,
}

impl Connected for Conn {
    type ConnectInfo = ConnInfo;

    fn connect_info(&self) -> ConnInfo {
        let refused = self.refused.as_ref().map(|(r, _)| r.clone());
        match &self.io {
            Io::Plain(s) => ConnInfo { remote: s.peer_addr().ok(), certs: None, refused },
            Io::Tls(s) => {
                let (tcp, session) = s.get_ref();
                ConnInfo {
                    remote: tcp.peer_addr().ok(),
                    certs: session.peer_certificates().map(|c| Arc::new(c.to_vec())),
                    refused,
                }
            }
        }
    }
}

impl AsyncRead for Conn {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some((_, closes)) = &mut this.refused
            && closes.as_mut().poll(cx).is_ready()
        {
            // End of stream: the server closes the refused connection.
            return Poll::Ready(Ok(()));
        }
        match &mut this.io {
            Io::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Conn {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_flush(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match &mut self.get_mut().io {
            Io::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Io::Tls(s) => Pin::new(s.as_mut()).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match &self.io {
            Io::Plain(s) => s.is_write_vectored(),
            Io::Tls(s) => s.is_write_vectored(),
        }
    }
}

/// The connections accepted on `listener`, TLS-wrapped when `tls` is given, counted
/// against `limits` when given. The accept loop ends when the server stops consuming the
/// stream.
pub fn incoming(
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    limits: Option<Arc<ConnLimits>>,
) -> ReceiverStream<io::Result<Conn>> {
    let (tx, rx) = mpsc::channel(64);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                _ = tx.closed() => return,
                a = listener.accept() => a,
            };
            let (stream, remote) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: not fatal to
                    // the port. Back off briefly so a persistent error does not spin.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            let (slot, refused) = match limits.as_ref().map(|l| l.admit(remote.ip())) {
                None => (None, None),
                Some(Admission::Admitted(slot)) => (Some(slot), None),
                Some(Admission::Refused(slot, reason)) => {
                    tracing::warn!(%remote, "connection refused: {reason}");
                    (Some(slot), Some((reason, Box::pin(tokio::time::sleep(REFUSED_FOR)))))
                }
                Some(Admission::Dropped) => {
                    tracing::debug!(%remote, "connection dropped: too many refused connections open");
                    continue;
                }
            };
            // Without Nagle off, small responses wait for the peer's delayed ACK (about
            // 40 ms) whenever a connection has a reply in flight.
            let _ = stream.set_nodelay(true);
            let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
            let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
            match &tls {
                None => {
                    if tx.send(Ok(Conn { io: Io::Plain(stream), _slot: slot, refused })).await.is_err() {
                        return;
                    }
                }
                Some(tls) => {
                    let acceptor = tls.acceptor();
                    let tx = tx.clone();
                    let port = tls.name;
                    tokio::spawn(async move {
                        match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                            Ok(Ok(s)) => {
                                let _ = tx.send(Ok(Conn { io: Io::Tls(Box::new(s)), _slot: slot, refused })).await;
                            }
                            Ok(Err(e)) => {
                                metrics::counter!("grove_tls_handshake_failures_total", "port" => port).increment(1);
                                tracing::debug!(%remote, port, "TLS handshake failed: {e}");
                            }
                            Err(_) => {
                                metrics::counter!("grove_tls_handshake_failures_total", "port" => port).increment(1);
                                tracing::debug!(%remote, port, "TLS handshake timed out");
                            }
                        }
                    });
                }
            }
        }
    });
    ReceiverStream::new(rx)
}
