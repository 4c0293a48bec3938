//! Grove server: ZooKeeper's coordination model over gRPC, replicated with openraft and
//! stored in redb.
//!
//! `run` takes already-bound listeners and a shutdown future, so tests bind port 0 and
//! stop servers when they please; `groved` (src/main.rs) binds the configured addresses
//! and stops on SIGTERM.

pub mod admin;
pub mod api;
pub mod config;
pub mod error;
pub mod fsm;
pub mod node;
pub mod raft;
pub mod storage;
pub mod transport;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use grove_proto::peer::peer_server::PeerServer;
use grove_proto::v1::cluster_server::ClusterServer;
use grove_proto::v1::election_server::ElectionServer;
use grove_proto::v1::locks_server::LocksServer;
use grove_proto::v1::nodes_server::NodesServer;
use grove_proto::v1::quotas_server::QuotasServer;
use grove_proto::v1::sessions_server::SessionsServer;
use grove_proto::v1::watch_server::WatchServer;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::node::Node;
use crate::transport::accept::incoming;
use crate::transport::limits::{ConnLimits, RefuseLayer};
use crate::transport::tls::{ClientCerts, ServerTls};

/// The sockets a server listens on: client, peer and admin, and the optional plaintext
/// health port.
pub struct Listeners {
    pub client: TcpListener,
    pub peer: TcpListener,
    pub admin: TcpListener,
    pub health: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &Config) -> anyhow::Result<Listeners> {
        let bind = |addr: String, what: &'static str| async move {
            TcpListener::bind(&addr).await.map_err(|e| anyhow::anyhow!("binding the {what} address {addr}: {e}"))
        };
        Ok(Listeners {
            client: bind(config.listen.clone(), "client").await?,
            peer: bind(config.peer_listen.clone(), "peer").await?,
            admin: bind(config.admin_listen.clone(), "admin").await?,
            health: match &config.health_listen {
                Some(addr) => Some(bind(addr.clone(), "health").await?),
                None => None,
            },
        })
    }
}

/// Where a started server can be reached.
#[derive(Debug, Clone, Copy)]
pub struct Bound {
    pub client: SocketAddr,
    pub peer: SocketAddr,
    pub admin: SocketAddr,
    pub health: Option<SocketAddr>,
}

/// How long in-flight requests get to finish after shutdown is requested.
const DRAIN: Duration = Duration::from_secs(3);

/// Runs a server until `shutdown` completes. `on_ready` is called once every listener
/// serves, with the bound addresses.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()> + Send,
    on_ready: impl FnOnce(Bound) + Send,
) -> anyhow::Result<()> {
    let bound = Bound {
        client: listeners.client.local_addr()?,
        peer: listeners.peer.local_addr()?,
        admin: listeners.admin.local_addr()?,
        health: listeners.health.as_ref().map(|l| l.local_addr()).transpose()?,
    };
    let client_addr = config.advertise.clone().unwrap_or_else(|| bound.client.to_string());
    let peer_addr = config.advertise_peer.clone().unwrap_or_else(|| bound.peer.to_string());
    let max_request = config.max_request_bytes;
    let _ = admin::metrics::handle();

    // Certificates are checked before anything starts: a bad file is a startup error that
    // names it, not a port that refuses every handshake.
    let client_tls = match &config.client_tls {
        Some(files) => {
            let certs = if config.require_client_cert { ClientCerts::Required } else { ClientCerts::Optional };
            Some(ServerTls::load("client", files.clone(), certs).map_err(|e| anyhow::anyhow!("client TLS: {e}"))?)
        }
        None => None,
    };
    let peer_tls = match &config.peer_tls {
        Some(files) => Some(
            ServerTls::load("peer", files.clone(), ClientCerts::Required)
                .map_err(|e| anyhow::anyhow!("peer TLS: {e}"))?,
        ),
        None => None,
    };

    let (stop_tx, stop_rx) = watch::channel(false);
    let stopped = |mut rx: watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    admin::metrics::upkeep(stopped(stop_rx.clone()));

    // Before Raft runs, the peers are asked whether this data directory is the one that
    // last ran as this member (no amnesia: node::identity). They ask the same of this
    // server meanwhile, so its peer port answers `Info` from its state already.
    if let Some(file) = &config.restore {
        match raft::backup::restore(&config, file, &peer_addr)? {
            Some(r) => tracing::info!(
                backup = %file.display(),
                zxid = r.zxid,
                nodes = r.nodes,
                sessions_dropped = r.sessions_dropped,
                "restored a new cluster's state from a backup"
            ),
            None => tracing::info!(backup = %file.display(), "already restored from this backup: starting"),
        }
    }
    let storage = node::Storage::open(&config)?;
    let channels = raft::PeerChannels::new(peer_tls.clone(), config.peer_secret.as_deref());
    let require_secret = raft::RequirePeerSecret::new(config.peer_secret.as_deref());
    let peer_listener = listeners.peer.into_std()?;
    let booting = {
        let listener = TcpListener::from_std(peer_listener.try_clone()?)?;
        let state = storage.state.clone();
        let me = config.id;
        let (peer_addr, client_addr) = (peer_addr.clone(), client_addr.clone());
        let info = move |about| {
            let mut info = node::forward_info(&state, about);
            (info.id, info.peer_address, info.client_address) = (me, peer_addr.clone(), client_addr.clone());
            info
        };
        let (done, stop) = tokio::sync::oneshot::channel::<()>();
        let server = tonic::transport::Server::builder()
            .add_service(PeerServer::with_interceptor(raft::BootingPeer::new(info), require_secret.clone()))
            .serve_with_incoming_shutdown(incoming(listener, peer_tls.clone(), None), async {
                let _ = stop.await;
            });
        (done, tokio::spawn(server))
    };
    // It may wait for the other voters as long as they take: a stop request ends the wait.
    tokio::pin!(shutdown);
    let checked = tokio::select! {
        r = storage.preflight(&config, &channels) => Some(r),
        _ = &mut shutdown => None,
    };
    let _ = booting.0.send(());
    let _ = booting.1.await;
    let Some(checked) = checked else {
        tracing::info!("stopped before starting");
        return Ok(());
    };
    let mut config = config;
    if checked? == node::Start::Join && !config.join {
        tracing::info!(
            "the peers formed the ensemble already: waiting for its leader (and to be added, with --auto-join)"
        );
        config.join = true;
    }
    let node = Node::open(config, client_addr, peer_addr, channels, storage).await?;
    for tls in client_tls.iter().chain(peer_tls.iter()) {
        tokio::spawn(tls.clone().reload_loop(stop_rx.clone()));
    }

    // Peers first: forming the ensemble needs them to reach us.
    let peer_service =
        raft::PeerService::new(node.consensus.raft_handle(), Arc::new(node::PeerGateway { node: node.clone() }));
    let peer_server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .add_service(tonic::service::interceptor::InterceptedService::new(
            PeerServer::new(peer_service)
                .max_decoding_message_size(raft::MAX_PEER_MESSAGE)
                .max_encoding_message_size(raft::MAX_PEER_MESSAGE),
            require_secret,
        ))
        .serve_with_incoming_shutdown(
            incoming(TcpListener::from_std(peer_listener)?, peer_tls, None),
            stopped(stop_rx.clone()),
        );
    let peer_task = tokio::spawn(peer_server);

    node.begin().await?;

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter.set_serving::<NodesServer<api::nodes::NodesService>>().await;
    health_reporter.set_serving::<SessionsServer<api::sessions::SessionsService>>().await;
    health_reporter.set_serving::<WatchServer<api::watch::WatchService>>().await;
    health_reporter.set_serving::<ClusterServer<api::cluster::ClusterService>>().await;
    health_reporter.set_serving::<LocksServer<api::locks::LocksService>>().await;
    health_reporter.set_serving::<ElectionServer<api::locks::ElectionService>>().await;
    health_reporter.set_serving::<QuotasServer<api::quotas::QuotasService>>().await;
    tokio::spawn(readiness(node.clone(), health_reporter.clone(), stop_rx.clone()));

    let public = [
        "grove.v1.Nodes",
        "grove.v1.Sessions",
        "grove.v1.Watch",
        "grove.v1.Cluster",
        "grove.v1.Locks",
        "grove.v1.Election",
        "grove.v1.Quotas",
        "grpc.health.v1.Health",
    ];
    let reflection = || {
        let mut b = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(grove_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET);
        for s in public {
            b = b.with_service_name(s);
        }
        b
    };
    let reflection_v1 = reflection().build_v1()?;
    let reflection_v1alpha = reflection().build_v1alpha()?;

    let conn_limits = ConnLimits::new(node.config.max_connections, node.config.max_connections_per_ip);
    // Shared by the client port and the admin port's JSON views of the same answers.
    let cluster_service = Arc::new(api::cluster::ClusterService::new(node.clone(), conn_limits.clone()));
    let client_server = tonic::transport::Server::builder()
        .tcp_nodelay(true)
        .layer(RefuseLayer)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(
            NodesServer::new(api::nodes::NodesService { node: node.clone() }).max_decoding_message_size(max_request),
        )
        .add_service(SessionsServer::new(api::sessions::SessionsService { node: node.clone() }))
        .add_service(
            WatchServer::new(api::watch::WatchService { node: node.clone() }).max_decoding_message_size(max_request),
        )
        .add_service(ClusterServer::from_arc(cluster_service.clone()))
        .add_service(
            LocksServer::new(api::locks::LocksService { node: node.clone() }).max_decoding_message_size(max_request),
        )
        .add_service(
            ElectionServer::new(api::locks::ElectionService { node: node.clone() })
                .max_decoding_message_size(max_request),
        )
        .add_service(QuotasServer::new(api::quotas::QuotasService { node: node.clone() }))
        .serve_with_incoming_shutdown(
            incoming(listeners.client, client_tls, Some(conn_limits)),
            stopped(stop_rx.clone()),
        );
    let client_task = tokio::spawn(client_server);

    // Plaintext health for probes that cannot speak the client port's TLS. Readiness is the
    // same reporter's, so both ports answer alike.
    let health_task = listeners.health.map(|listener| {
        let plain_health = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(health_reporter.clone()),
        );
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(plain_health)
                .serve_with_incoming_shutdown(incoming(listener, None, None), stopped(stop_rx.clone())),
        )
    });

    // With the peer's address, for the `ip:` identity of console and inspection callers.
    let admin = axum::serve(
        listeners.admin,
        admin::router(node.clone(), cluster_service).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(stopped(stop_rx.clone()));
    let admin_task = tokio::spawn(async move { admin.await });

    on_ready(bound);
    tracing::info!(id = node.id, client = %bound.client, peer = %bound.peer, admin = %bound.admin, "grove server ready");

    shutdown.await;
    tracing::info!("shutting down");
    health_reporter.set_service_status("", tonic_health::ServingStatus::NotServing).await;
    stop_tx.send_replace(true);
    // Watch streams never end by themselves; close them so the servers can drain.
    node.hub.close_all();
    node.lock_waiters.close_all();
    let drain = async {
        let _ = client_task.await;
        let _ = admin_task.await;
        let _ = peer_task.await;
        if let Some(t) = health_task {
            let _ = t.await;
        }
    };
    if tokio::time::timeout(DRAIN, drain).await.is_err() {
        tracing::warn!("requests still in flight after {DRAIN:?}; stopping anyway");
    }
    node.shutdown().await;
    Ok(())
}

/// Keeps the health service's overall status in line with readiness: SERVING once the
/// server knows a leader and has caught up (what Kubernetes probes ask).
async fn readiness(node: Arc<Node>, reporter: tonic_health::server::HealthReporter, mut stop: watch::Receiver<bool>) {
    let mut last = None;
    loop {
        let ready = node.ready();
        if last != Some(ready) {
            let status =
                if ready { tonic_health::ServingStatus::Serving } else { tonic_health::ServingStatus::NotServing };
            reporter.set_service_status("", status).await;
            last = Some(ready);
        }
        tokio::select! {
            _ = stop.wait_for(|s| *s) => return,
            _ = tokio::time::sleep(Duration::from_millis(200)) => {}
        }
    }
}

pub use node::PeerGateway;
