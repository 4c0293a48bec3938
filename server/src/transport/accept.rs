//! The accept loop of every port (client, peer, health): plain or TLS connections for the
//! gRPC servers.
//!
//! One loop serves every port so that every connection gets the same treatment: Nagle off,
//! TCP keepalive, a bounded TLS handshake that runs off the accept loop (a client that
//! stalls mid-handshake must not stop others from connecting), the connection limits, and a
//! `ConnInfo` in each request's extensions.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::transport::server::Connected;

use super::conn_info::ConnInfo;
use super::limits::{Admission, ConnLimits, ConnSlot, REFUSED_FOR};
use super::tls::ServerTls;

/// A TLS handshake that takes longer is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

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
            let (slot, refused) = match limits.as_ref().map(|l| l.admit(remote)) {
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
