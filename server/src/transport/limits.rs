//! Connection limits on the client port: in all and per client IP address (ZooKeeper's
//! `maxClientCnxns`).
//!
//! ZooKeeper closes a connection over its limit without a word, and its client sees only a
//! reset. Grove accepts it for a moment instead and answers every request on it with
//! RESOURCE_EXHAUSTED naming the limit (`RefuseLayer`), then closes it after `REFUSED_FOR`.
//! The refused connections are bounded too: past `MAX_REFUSED` of them, more are dropped at
//! once, so a flood costs file descriptors for a second at most.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tonic::codegen::http;
use tower::{Layer, Service};

use super::conn_info::ConnInfo;
use crate::error::{GroveError, Limit};

/// How long a refused connection stays open to carry its answers.
pub const REFUSED_FOR: Duration = Duration::from_secs(1);
/// Most refused connections held open at once.
const MAX_REFUSED: usize = 256;

pub struct ConnLimits {
    max_total: usize,
    max_per_ip: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: usize,
    per_ip: HashMap<IpAddr, usize>,
    refused: usize,
    /// The admitted connections, for `grove connections`.
    open: HashMap<u64, (SocketAddr, Instant)>,
    next_id: u64,
}

/// What to do with a new connection.
pub enum Admission {
    /// Serve it; the slot is given back when the connection ends.
    Admitted(ConnSlot),
    /// Answer its requests with this error for a moment, then close it.
    Refused(ConnSlot, Arc<str>),
    /// Close it now.
    Dropped,
}

/// A connection's place in the counts, released on drop.
pub struct ConnSlot {
    limits: Arc<ConnLimits>,
    ip: IpAddr,
    refused: bool,
    id: u64,
}

impl ConnLimits {
    /// 0: no limit.
    pub fn new(max_total: usize, max_per_ip: usize) -> Arc<ConnLimits> {
        let or_max = |n: usize| if n == 0 { usize::MAX } else { n };
        Arc::new(ConnLimits {
            max_total: or_max(max_total),
            max_per_ip: or_max(max_per_ip),
            state: Mutex::new(State::default()),
        })
    }

    /// The admitted connections: each one's client address and how long it has been open.
    pub fn open(&self) -> Vec<(SocketAddr, Duration)> {
        let st = self.state.lock().unwrap();
        let mut out: Vec<_> = st.open.values().map(|(a, since)| (*a, since.elapsed())).collect();
        out.sort();
        out
    }

    pub fn admit(self: &Arc<Self>, remote: SocketAddr) -> Admission {
        let ip = remote.ip().to_canonical();
        let mut st = self.state.lock().unwrap();
        let from_ip = st.per_ip.get(&ip).copied().unwrap_or(0);
        let reason = if st.total >= self.max_total {
            format!("the server has {} client connections, its limit (--max-connections)", st.total)
        } else if from_ip >= self.max_per_ip {
            format!("{ip} has {from_ip} connections to this server, its limit (--max-connections-per-ip)")
        } else {
            st.total += 1;
            *st.per_ip.entry(ip).or_insert(0) += 1;
            st.next_id += 1;
            let id = st.next_id;
            st.open.insert(id, (remote, Instant::now()));
            metrics::gauge!("grove_client_connections").set(st.total as f64);
            return Admission::Admitted(ConnSlot { limits: self.clone(), ip, refused: false, id });
        };
        // Counted once here, whatever happens to the connection next.
        Limit::Connections.count_refusal();
        if st.refused >= MAX_REFUSED {
            return Admission::Dropped;
        }
        st.refused += 1;
        Admission::Refused(ConnSlot { limits: self.clone(), ip, refused: true, id: 0 }, reason.into())
    }
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        let mut st = self.limits.state.lock().unwrap();
        if self.refused {
            st.refused -= 1;
            return;
        }
        st.total -= 1;
        st.open.remove(&self.id);
        if let Some(n) = st.per_ip.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                st.per_ip.remove(&self.ip);
            }
        }
        metrics::gauge!("grove_client_connections").set(st.total as f64);
    }
}

/// Answers every request on a refused connection with RESOURCE_EXHAUSTED.
#[derive(Debug, Clone, Copy, Default)]
pub struct RefuseLayer;

impl<S> Layer<S> for RefuseLayer {
    type Service = Refuse<S>;

    fn layer(&self, inner: S) -> Refuse<S> {
        Refuse { inner }
    }
}

#[derive(Debug, Clone)]
pub struct Refuse<S> {
    inner: S,
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, B, RB> Service<http::Request<B>> for Refuse<S>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    RB: Default + Send + 'static,
    S::Error: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        if let Some(reason) = req.extensions().get::<ConnInfo>().and_then(|i| i.refused.clone()) {
            let e = GroveError::TooMany {
                limit: Limit::Connections,
                message: format!("connection refused: {reason}; close idle connections or retry later"),
                retry_after_ms: REFUSED_FOR.as_millis() as u64,
            };
            let status = crate::api::errors::to_status(&e);
            return Box::pin(async move { Ok(status.into_http()) });
        }
        Box::pin(self.inner.call(req))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_total_limits_with_slots_given_back() {
        let limits = ConnLimits::new(3, 2);
        let a: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:5000".parse().unwrap();
        let admitted = |x: Admission| match x {
            Admission::Admitted(s) => s,
            _ => panic!("refused"),
        };
        let a1 = admitted(limits.admit(a));
        let _a2 = admitted(limits.admit(a));
        let Admission::Refused(_, why) = limits.admit(a) else { panic!("a third from one address") };
        assert!(why.contains("10.0.0.1 has 2 connections"), "{why}");
        let _b1 = admitted(limits.admit(b));
        let Admission::Refused(_, why) = limits.admit("10.0.0.3:5000".parse().unwrap()) else { panic!() };
        assert!(why.contains("--max-connections)"), "{why}");
        // The open ones are listed, and a closed one leaves the list.
        assert_eq!(limits.open().iter().map(|(r, _)| *r).collect::<Vec<_>>(), vec![a, a, b]);
        drop(a1);
        assert_eq!(limits.open().len(), 2);
        let _a3 = admitted(limits.admit(a));
        // IPv4 seen as IPv6-mapped is the same client.
        assert!(matches!(limits.admit("[::ffff:10.0.0.1]:6000".parse().unwrap()), Admission::Refused(..)));
    }

    #[test]
    fn refused_connections_are_bounded_too() {
        let limits = ConnLimits::new(1, 0);
        let ip: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let _held = limits.admit(ip);
        let refused: Vec<_> = (0..MAX_REFUSED).map(|_| limits.admit(ip)).collect();
        assert!(refused.iter().all(|r| matches!(r, Admission::Refused(..))));
        assert!(matches!(limits.admit(ip), Admission::Dropped));
        drop(refused);
        assert!(matches!(limits.admit(ip), Admission::Refused(..)));
    }
}
