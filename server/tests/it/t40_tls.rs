//! TLS on the client port (optional and required client certificates), mutual TLS on the
//! peer port, the plaintext health port, and certificate rotation without a restart.

use std::path::Path;
use std::time::Duration;

use grove_proto::peer::InfoRequest;
use grove_proto::peer::peer_client::PeerClient;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Identity};

use crate::cluster::Cluster;
use crate::harness::{Server, eventually, grove_bin};
use crate::pki::{Ca, Leaf};

/// Runs `grove` against `addr` with extra global flags.
fn grove(addr: &str, flags: &[&str], args: &[&str]) -> std::process::Output {
    std::process::Command::new(grove_bin())
        .args(["--server", addr])
        .args(flags)
        .args(args)
        .env_remove("RUST_BACKTRACE")
        .output()
        .unwrap()
}

fn text(out: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn tls_flags(server: &Leaf, client_ca: Option<&Ca>) -> Vec<String> {
    let mut f = vec![
        "--tls-cert".to_string(),
        path(&server.cert).into(),
        "--tls-key".into(),
        path(&server.key).into(),
        "--health-listen".into(),
        "127.0.0.1:0".into(),
    ];
    if let Some(ca) = client_ca {
        f.extend(["--tls-client-ca".to_string(), path(&ca.pem).into()]);
    }
    f
}

async fn health(addr: &str) -> Result<i32, tonic::Status> {
    let ch = Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .map_err(|e| tonic::Status::unavailable(e.to_string()))?;
    let mut c = tonic_health::pb::health_client::HealthClient::new(ch);
    let r = c.check(tonic_health::pb::HealthCheckRequest { service: String::new() }).await?;
    Ok(r.into_inner().status)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_port_tls_with_optional_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "grove");
    let other = Ca::new(dir.path(), "other");
    let server_cert = ca.leaf(dir.path(), "server", "grove-server");
    let alice = ca.leaf(dir.path(), "alice", "alice");
    let mallory = other.leaf(dir.path(), "mallory", "mallory");
    let flags = tls_flags(&server_cert, Some(&ca));
    let s = Server::start(&dir.path().join("n"), &flags.iter().map(String::as_str).collect::<Vec<_>>());
    let trusting = ["--tls-ca", path(&ca.pem)];

    // A client that trusts the CA: works, with or without a client certificate.
    let out = grove(&s.client, &trusting, &["create", "/secure", "hi"]);
    assert!(out.status.success(), "{}", text(&out));
    let with_cert = ["--tls-ca", path(&ca.pem), "--tls-cert", path(&alice.cert), "--tls-key", path(&alice.key)];
    let out = grove(&s.client, &with_cert, &["get", "/secure"]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "hi");

    // Plaintext on the TLS port, a client trusting another CA, and a client certificate
    // from another CA are all refused, and nothing they asked for happens.
    let out = grove(&s.client, &[], &["create", "/plain", "x"]);
    assert!(!out.status.success(), "plaintext was served: {}", text(&out));
    let out = grove(&s.client, &["--tls-ca", path(&other.pem)], &["create", "/wrong-ca", "x"]);
    assert!(!out.status.success(), "a server with an untrusted certificate was used: {}", text(&out));
    let rogue = ["--tls-ca", path(&ca.pem), "--tls-cert", path(&mallory.cert), "--tls-key", path(&mallory.key)];
    let out = grove(&s.client, &rogue, &["create", "/rogue", "x"]);
    assert!(!out.status.success(), "a client certificate from another CA was accepted: {}", text(&out));
    let out = grove(&s.client, &trusting, &["ls", "/"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[secure]", "{}", text(&out));

    // The plaintext health port answers probes (1 = SERVING).
    let health_addr = s.health.clone().expect("health port");
    eventually(Duration::from_secs(10), "the health port to report SERVING", async || {
        health(&health_addr).await.unwrap() == 1
    })
    .await;
    // ...and only health: the tree is not reachable through it.
    let ch = Endpoint::from_shared(format!("http://{health_addr}")).unwrap().connect().await.unwrap();
    let mut nodes = grove_proto::v1::nodes_client::NodesClient::new(ch);
    let err =
        nodes.get(grove_proto::v1::GetRequest { path: "/secure".into(), ..Default::default() }).await.unwrap_err();
    assert_eq!(err.code(), tonic::Code::Unimplemented, "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn required_client_certificates() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "grove");
    let server_cert = ca.leaf(dir.path(), "server", "grove-server");
    let alice = ca.leaf(dir.path(), "alice", "alice");
    let mut flags = tls_flags(&server_cert, Some(&ca));
    flags.push("--tls-require-client-cert".into());
    let s = Server::start(&dir.path().join("n"), &flags.iter().map(String::as_str).collect::<Vec<_>>());
    let out = grove(&s.client, &["--tls-ca", path(&ca.pem)], &["create", "/anon", "x"]);
    assert!(!out.status.success(), "a client without a certificate got in: {}", text(&out));
    let with_cert = ["--tls-ca", path(&ca.pem), "--tls-cert", path(&alice.cert), "--tls-key", path(&alice.key)];
    let out = grove(&s.client, &with_cert, &["create", "/alice", "x"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = grove(&s.client, &with_cert, &["ls", "/"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "[alice]", "{}", text(&out));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificates_are_reloaded_without_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let old_ca = Ca::new(dir.path(), "old");
    let new_ca = Ca::new(dir.path(), "new");
    let live = old_ca.leaf(dir.path(), "live", "grove-server");
    let rotated = new_ca.leaf(dir.path(), "rotated", "grove-server");
    let mut s =
        Server::start_process(&dir.path().join("n"), &["--tls-cert", path(&live.cert), "--tls-key", path(&live.key)]);
    let pid = s.pid();
    let old = ["--tls-ca", path(&old_ca.pem)];
    let new = ["--tls-ca", path(&new_ca.pem)];
    assert!(grove(&s.client, &old, &["create", "/a", "1"]).status.success());

    // A broken file set (garbage in the certificate) is refused; the old certificate stays.
    std::fs::write(&live.cert, "not a certificate").unwrap();
    tokio::time::sleep(grove_server::transport::tls::RELOAD_EVERY * 2).await;
    let out = grove(&s.client, &old, &["get", "/a"]);
    assert!(out.status.success(), "a broken rotation took the port down: {}", text(&out));

    live.replace_with(&rotated);
    eventually(Duration::from_secs(15), "the rotated certificate to be served", async || {
        grove(&s.client, &new, &["get", "/a"]).status.success()
    })
    .await;
    let out = grove(&s.client, &old, &["get", "/a"]);
    assert!(!out.status.success(), "the old certificate is still served: {}", text(&out));
    assert!(s.is_running());
    assert_eq!(s.pid(), pid, "the server was not restarted");
    assert!(std::fs::read_to_string(dir.path().join("n/groved.log")).unwrap().contains("TLS reload failed"));
}

fn peer_tls_flags<'a>(ca: &'a Ca, leaf: &'a Leaf) -> [&'a str; 6] {
    ["--peer-tls-cert", path(&leaf.cert), "--peer-tls-key", path(&leaf.key), "--peer-tls-ca", path(&ca.pem)]
}

async fn peer_info(addr: &str, ca: &Ca, identity: Option<&Leaf>) -> Result<(), String> {
    let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(std::fs::read(&ca.pem).unwrap()));
    if let Some(l) = identity {
        tls = tls.identity(Identity::from_pem(std::fs::read(&l.cert).unwrap(), std::fs::read(&l.key).unwrap()));
    }
    let ch = Endpoint::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)
        .unwrap()
        .connect()
        .await
        .map_err(|e| format!("connect: {e:?}"))?;
    PeerClient::new(ch).info(InfoRequest::default()).await.map(|_| ()).map_err(|e| format!("{e}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_need_the_peer_certificate() {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "peers");
    let rogue_ca = Ca::new(dir.path(), "rogue");
    let member = ca.leaf(dir.path(), "member", "grove-peer");
    let rogue = rogue_ca.leaf(dir.path(), "rogue", "grove-peer");
    let flags = peer_tls_flags(&ca, &member);
    let cluster = Cluster::start(&dir.path().join("c"), 3, 0, &flags);
    let leader = cluster.leader(Duration::from_secs(20)).await;
    // The ensemble formed and replicates over mutual TLS.
    let c = cluster.client(leader);
    c.create("/replicated", "x", &grove_client::CreateOptions::default()).await.unwrap();
    for id in 1..=3 {
        let zxid = c.exists_at("/replicated", grove_client::Consistency::Linearizable).await.unwrap().1;
        cluster.caught_up(id, zxid, Duration::from_secs(10)).await;
        assert!(cluster.client(id).exists("/replicated").await.unwrap().is_some(), "server {id}");
    }

    let addr = cluster.peer_addr(leader);
    // A member's certificate gets an answer; no certificate, or one from another CA, is
    // refused in the handshake, before any RPC runs.
    peer_info(&addr, &ca, Some(&member)).await.unwrap();
    let err = peer_info(&addr, &ca, None).await.unwrap_err();
    assert!(!err.is_empty());
    let err = peer_info(&addr, &ca, Some(&rogue)).await.unwrap_err();
    assert!(!err.is_empty());
    // Plaintext gets nowhere either.
    let plain = async {
        let ch = Endpoint::from_shared(format!("http://{addr}")).unwrap().connect().await.map_err(|e| e.to_string())?;
        PeerClient::new(ch).info(InfoRequest::default()).await.map(|_| ()).map_err(|e| e.to_string())
    };
    assert!(tokio::time::timeout(Duration::from_secs(10), plain).await.map(|r| r.is_err()).unwrap_or(true));
    // The ensemble is unaffected.
    assert_eq!(cluster.leader(Duration::from_secs(10)).await, leader);
}

#[test]
fn bad_tls_settings_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        std::process::Command::new(crate::harness::groved_bin())
            .args(["--data-dir", path(&dir.path().join("d")), "--listen", "127.0.0.1:0"])
            .args(["--peer-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap()
    };
    let out = run(&["--tls-cert", "/nonexistent.crt"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("--tls-cert and --tls-key go together"), "{}", text(&out));
    let out = run(&["--peer-tls-cert", "a", "--peer-tls-key", "b"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("--peer-tls-ca"), "{}", text(&out));
    let missing = dir.path().join("missing.crt");
    let out = run(&["--tls-cert", path(&missing), "--tls-key", path(&missing)]);
    assert!(!out.status.success());
    assert!(text(&out).contains("missing.crt"), "the error names the file: {}", text(&out));
    let garbage = dir.path().join("garbage.pem");
    std::fs::write(&garbage, "-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n").unwrap();
    let out = run(&["--tls-cert", path(&garbage), "--tls-key", path(&garbage)]);
    assert!(!out.status.success());
    assert!(text(&out).contains("garbage.pem"), "{}", text(&out));
}

/// Without peer TLS, a shared secret guards the peer port: an ensemble with it forms and
/// replicates; a request without it (or with another) is refused before it reaches Raft or
/// the node, and a server listening beyond loopback without either refuses to start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_peer_secret_guards_the_peer_port() {
    use grove_proto::peer::ForwardRequest;
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("peer-secret");
    std::fs::write(&secret, "ensemble-secret-0123456789\n").unwrap();
    let cluster = Cluster::start(&dir.path().join("c"), 3, 0, &["--peer-secret-file", path(&secret)]);
    let leader = cluster.leader(Duration::from_secs(20)).await;
    let c = cluster.client(leader);
    c.create("/guarded", "x", &grove_client::CreateOptions::default()).await.unwrap();
    let zxid = c.sync("/").await.unwrap();
    for id in 1..=3 {
        cluster.caught_up(id, zxid, Duration::from_secs(10)).await;
    }

    let ch = Endpoint::from_shared(format!("http://{}", cluster.peer_addr(leader))).unwrap().connect().await.unwrap();
    let call = |secret: Option<&'static str>| {
        let ch = ch.clone();
        async move {
            let mut req = tonic::Request::new(ForwardRequest { command: vec![0u8; 8].into() });
            if let Some(s) = secret {
                req.metadata_mut().insert(grove_proto::metadata::PEER_SECRET, s.parse().unwrap());
            }
            PeerClient::new(ch).forward(req).await.map(|_| ()).unwrap_err().code()
        }
    };
    assert_eq!(call(None).await, tonic::Code::Unauthenticated);
    assert_eq!(call(Some("guess-guess-guess-guess")).await, tonic::Code::Unauthenticated);
    // With the secret the request reaches the node (and its garbage is refused there).
    assert_ne!(call(Some("ensemble-secret-0123456789")).await, tonic::Code::Unauthenticated);

    // Beyond loopback without TLS or a secret: refused at startup, saying how to fix it.
    let out = std::process::Command::new(crate::harness::groved_bin())
        .args([
            "--data-dir",
            path(&dir.path().join("open")),
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "127.0.0.1:0",
        ])
        .args(["--peer-listen", "0.0.0.0:0"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("--peer-secret-file") && stderr.contains("--peer-tls-cert"), "{stderr}");
}
