//! Authentication and per-node ACLs against a real server: every permission allowed and
//! denied for each identity kind (digest, ip, x509), the super user, `auth` entries, ACL
//! compare-and-set, masked hashes, multi, watches, locks and elections, and the CLI.

use std::path::Path;
use std::time::Duration;

use grove_client::acl::{self, perms};
use grove_client::{
    Acl, Client, CreateOptions, Error, LockRequest, Op, TlsOptions, WatchKind, WatchMessage, WatchSpec,
};
use grove_proto::v1::ErrorCode;

use crate::harness::{Server, grove_bin};
use crate::pki::{Ca, Leaf};

const SUPER: (&str, &str) = ("root", "s3cret");

fn path_str(p: &Path) -> &str {
    p.to_str().unwrap()
}

struct Setup {
    _dir: tempfile::TempDir,
    server: Server,
    ca: Ca,
    alice_cert: Leaf,
    bob_cert: Leaf,
}

/// A server with TLS (client certificates optional, so x509 identities exist) and a super
/// user.
fn start() -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let ca = Ca::new(dir.path(), "grove");
    let server_cert = ca.leaf(dir.path(), "server", "grove-server");
    let alice_cert = ca.leaf(dir.path(), "alice", "alice");
    let bob_cert = ca.leaf(dir.path(), "bob", "bob");
    let super_digest = acl::digest(SUPER.0, SUPER.1);
    let args = [
        "--tls-cert",
        path_str(&server_cert.cert),
        "--tls-key",
        path_str(&server_cert.key),
        "--tls-client-ca",
        path_str(&ca.pem),
        "--super-digest",
        &super_digest,
    ];
    let server = Server::start(&dir.path().join("n"), &args);
    Setup { _dir: dir, server, ca, alice_cert, bob_cert }
}

impl Setup {
    fn tls(&self, cert: Option<&Leaf>) -> TlsOptions {
        TlsOptions {
            ca: Some(self.ca.pem.clone()),
            cert: cert.map(|c| c.cert.clone()),
            key: cert.map(|c| c.key.clone()),
            server_name: Some("localhost".into()),
        }
    }

    /// A client with an optional certificate and optional digest credentials.
    fn client(&self, cert: Option<&Leaf>, digest: Option<(&str, &str)>) -> Client {
        let mut b = Client::builder(&self.server.client).tls(self.tls(cert)).request_timeout(Duration::from_secs(5));
        if let Some((u, p)) = digest {
            b = b.digest_auth(u, p);
        }
        b.build().unwrap()
    }

    fn root(&self) -> Client {
        self.client(None, Some(SUPER))
    }
}

fn is_no_auth<T: std::fmt::Debug>(r: &Result<T, Error>) -> bool {
    matches!(r, Err(Error::NoAuth { .. }))
}

/// What each permission lets a caller do on a node.
#[derive(Debug, Clone, Copy)]
enum Action {
    Read,
    Write,
    Create,
    Delete,
    Admin,
}

const ACTIONS: [(Action, u32); 5] = [
    (Action::Read, perms::READ),
    (Action::Write, perms::WRITE),
    (Action::Create, perms::CREATE),
    (Action::Delete, perms::DELETE),
    (Action::Admin, perms::ADMIN),
];

/// Tries `action` on `node` as `who`; `root` prepares what the action needs. Returns
/// whether it was allowed (and panics on any error other than NO_AUTH).
async fn attempt(root: &Client, who: &Client, node: &str, action: Action) -> bool {
    let r = match action {
        Action::Read => who.get(node).await.map(|_| ()),
        Action::Write => who.set(node, "w", None).await.map(|_| ()),
        Action::Create => {
            let child = format!("{node}/created");
            let r = who.create(&child, "", &CreateOptions::default()).await.map(|_| ());
            if r.is_ok() {
                root.delete(&child, None).await.unwrap();
            }
            r
        }
        Action::Delete => {
            let child = format!("{node}/victim");
            root.create(&child, "", &CreateOptions::default()).await.unwrap();
            let r = who.delete(&child, None).await;
            if r.is_err() {
                root.delete(&child, None).await.unwrap();
            }
            r
        }
        Action::Admin => {
            let (current, _) = root.get_acl(node).await.unwrap();
            who.set_acl(node, current, None).await.map(|_| ())
        }
    };
    assert!(r.is_ok() || is_no_auth(&r), "{action:?} on {node}: {r:?}");
    r.is_ok()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_permission_is_granted_only_to_its_identity() {
    let s = start();
    let root = s.root();
    let alice_digest = acl::digest("alice", "pw");
    let alice_x509 = "CN=alice,O=Grove Tests";
    // Each identity kind: the entry naming it, a client that has it, one that does not.
    let kinds: Vec<(&str, Acl, Client, Client)> = vec![
        (
            "digest",
            acl::entry("digest", &alice_digest, 0),
            s.client(None, Some(("alice", "pw"))),
            s.client(None, Some(("alice", "wrong"))),
        ),
        ("ip", acl::entry("ip", "127.0.0.1", 0), s.client(None, None), s.client(None, None)),
        // Refused: a verified certificate, but with another subject.
        (
            "x509",
            acl::entry("x509", alice_x509, 0),
            s.client(Some(&s.alice_cert), None),
            s.client(Some(&s.bob_cert), None),
        ),
    ];
    root.create("/t", "", &CreateOptions::default()).await.unwrap();
    for (kind, entry, allowed, denied) in &kinds {
        for (perm_action, perm) in ACTIONS {
            let node = format!("/t/{kind}-{perm}");
            let granted = Acl { perms: perm, ..entry.clone() };
            root.create(&node, "d", &CreateOptions::default().with_acl(vec![granted.clone()])).await.unwrap();
            for (action, needs) in ACTIONS {
                let ok = attempt(&root, allowed, &node, action).await;
                assert_eq!(ok, needs == perm, "{kind} granted {perm_action:?}: {action:?} allowed={ok}");
            }
            if *kind == "ip" {
                // The same client, refused once the entry names another address.
                root.set_acl(&node, vec![acl::entry("ip", "127.0.0.2", perm)], None).await.unwrap();
            }
            for (action, _) in ACTIONS {
                assert!(!attempt(&root, denied, &node, action).await, "{kind}: {action:?} by the wrong caller");
            }
            // The super user passes every check.
            for (action, _) in ACTIONS {
                assert!(attempt(&root, &root, &node, action).await, "super user: {action:?}");
            }
        }
    }
    // A network prefix matches the loopback caller.
    root.create("/t/net", "", &CreateOptions::default().with_acl(vec![acl::entry("ip", "127.0.0.0/8", perms::READ)]))
        .await
        .unwrap();
    assert!(s.client(None, None).get("/t/net").await.is_ok());
    assert!(is_no_auth(&s.client(None, None).set("/t/net", "x", None).await));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acl_rules_auth_entries_versions_masking_and_errors() {
    let s = start();
    let root = s.root();
    let alice = s.client(None, Some(("alice", "pw")));
    let anon = s.client(None, None);

    // `auth` grants the creator's own identities; others are refused, even reads.
    let (p, _) = alice
        .create("/mine", "secret", &CreateOptions::default().with_acl(acl::parse("auth::cdrwa").unwrap()))
        .await
        .unwrap();
    let (acl_now, stat) = alice.get_acl(&p).await.unwrap();
    assert_eq!(acl_now, vec![acl::entry("digest", &acl::digest("alice", "pw"), perms::ALL)]);
    assert_eq!(stat.aversion, 0);
    let err = anon.get("/mine").await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoAuth, "{err}");
    assert!(err.to_string().contains("READ on /mine"), "the error names the permission and path: {err}");
    assert!(is_no_auth(&anon.exists("/mine").await), "exists needs READ on an existing node");
    assert!(anon.exists("/missing").await.unwrap().is_none(), "a missing node is no secret");
    assert!(is_no_auth(&anon.children("/mine").await));
    assert!(is_no_auth(&anon.count_descendants("/mine").await));
    assert!(is_no_auth(&anon.get_acl("/mine").await), "getAcl needs READ or ADMIN");

    // A caller with READ but not ADMIN sees digest hashes masked.
    alice
        .set_acl(
            "/mine",
            acl::parse(&format!("world:anyone:r,digest:{}:cdrwa", acl::digest("alice", "pw"))).unwrap(),
            Some(0),
        )
        .await
        .unwrap();
    let (shown, stat) = anon.get_acl("/mine").await.unwrap();
    assert_eq!(stat.aversion, 1);
    assert_eq!(shown[1].id, "alice:x", "hash masked without ADMIN");
    assert_eq!(alice.get_acl("/mine").await.unwrap().0[1].id, acl::digest("alice", "pw"));

    // setAcl compares against aversion; a stale version changes nothing.
    let err = alice.set_acl("/mine", vec![], Some(0)).await.unwrap_err();
    assert!(matches!(err, Error::BadVersion { .. }), "{err}");
    assert_eq!(alice.get_acl("/mine").await.unwrap().1.aversion, 1);
    // An ACL change is not a data change.
    let (_, st) = alice.get("/mine").await.unwrap();
    assert_eq!((st.version, st.aversion), (0, 1));

    // Malformed ACLs are INVALID_ACL and create nothing.
    for bad in [
        acl::entry("world", "someone", perms::READ),
        acl::entry("digest", "alice:not-a-hash", perms::READ),
        acl::entry("ip", "10.0.0.0/99", perms::READ),
        acl::entry("kerberos", "x", perms::READ),
        acl::entry("world", "anyone", 0),
        acl::entry("world", "anyone", 64),
    ] {
        let err = root.create("/bad", "", &CreateOptions::default().with_acl(vec![bad.clone()])).await.unwrap_err();
        assert_eq!(err.code(), ErrorCode::InvalidAcl, "{bad:?}: {err}");
    }
    assert!(root.exists("/bad").await.unwrap().is_none());
    // `auth` with no identity to grant.
    let err = anon.create("/bad", "", &CreateOptions::default().with_acl(acl::parse("auth::r").unwrap())).await;
    assert_eq!(err.unwrap_err().code(), ErrorCode::InvalidAcl);

    // Bad credentials are AUTH_FAILED (UNAUTHENTICATED), before anything else.
    let err = Client::builder(&s.server.client).tls(s.tls(None)).digest_auth("", "pw").build().err();
    assert!(err.is_some(), "an empty user is refused by the client");
    let mut raw = grove_proto::v1::nodes_client::NodesClient::new(
        tonic::transport::Endpoint::from_shared(format!("https://{}", s.server.client))
            .unwrap()
            .tls_config(
                tonic::transport::ClientTlsConfig::new()
                    .ca_certificate(tonic::transport::Certificate::from_pem(std::fs::read(&s.ca.pem).unwrap()))
                    .domain_name("localhost"),
            )
            .unwrap()
            .connect()
            .await
            .unwrap(),
    );
    for value in ["kerberos ticket", "digest nopassword", "digest :pw"] {
        let mut req = tonic::Request::new(grove_proto::v1::GetRequest { path: "/".into(), ..Default::default() });
        req.metadata_mut().insert("grove-auth", value.parse().unwrap());
        let st = raw.get(req).await.unwrap_err();
        assert_eq!(st.code(), tonic::Code::Unauthenticated, "{value}: {st:?}");
    }

    // Multi is all-or-nothing under ACLs too: one refused op, nothing applied.
    root.create("/locked", "", &CreateOptions::default().with_acl(acl::parse("world:anyone:r").unwrap()))
        .await
        .unwrap();
    let ops = [
        Op::Create { path: "/ok".into(), data: "".into(), options: CreateOptions::default() },
        Op::Create { path: "/locked/no".into(), data: "".into(), options: CreateOptions::default() },
    ];
    let (index, err) = anon.multi(&ops).await.unwrap().unwrap_err();
    assert_eq!((index, err.code()), (1, ErrorCode::NoAuth));
    assert!(anon.exists("/ok").await.unwrap().is_none(), "nothing of a refused multi is applied");
    // Check needs READ.
    root.create("/hidden", "", &CreateOptions::default().with_acl(vec![acl::entry("ip", "10.9.9.9", perms::ALL)]))
        .await
        .unwrap();
    let (_, err) = anon.multi(&[Op::Check { path: "/hidden".into(), version: None }]).await.unwrap().unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoAuth);

    // Parents made by create_parents inherit the nearest existing ancestor's ACL.
    root.create(
        "/team",
        "",
        &CreateOptions::default().with_acl(vec![acl::entry("digest", &acl::digest("alice", "pw"), perms::ALL)]),
    )
    .await
    .unwrap();
    let opts = CreateOptions { create_parents: true, ..Default::default() };
    alice.create("/team/a/b/c", "", &opts).await.unwrap();
    assert_eq!(root.get_acl("/team/a/b").await.unwrap().0, root.get_acl("/team").await.unwrap().0);
    assert!(is_no_auth(&anon.get("/team/a").await));

    // An ACL too large for a node record is refused up front, not stored.
    let huge = vec![acl::entry("x509", &format!("CN={}", "x".repeat(5000)), perms::ALL)];
    let err = root.create("/huge", "", &CreateOptions::default().with_acl(huge)).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::InvalidAcl, "{err}");

    // Children's names need READ on the parent; their stats need READ on each child.
    root.create("/dir", "", &CreateOptions::default()).await.unwrap();
    root.create("/dir/open", "12345", &CreateOptions::default()).await.unwrap();
    root.create(
        "/dir/closed",
        "123",
        &CreateOptions::default().with_acl(vec![acl::entry("ip", "10.9.9.9", perms::ALL)]),
    )
    .await
    .unwrap();
    let page = anon.children_with("/dir", grove_client::Consistency::Linearizable, true).await.unwrap();
    assert_eq!(page.names, ["closed", "open"]);
    assert_eq!(page.stats[0], grove_client::Stat::default(), "an unreadable child's stat is zeroed");
    assert_eq!(page.stats[1].data_length, 5);
    let page = root.children_with("/dir", grove_client::Consistency::Linearizable, true).await.unwrap();
    assert_eq!(page.stats[0].data_length, 3, "the super user sees every stat");

    // Changing the ensemble needs ADMIN on the root, like quotas.
    root.set_acl("/", acl::parse("world:anyone:cdrw").unwrap(), None).await.unwrap();
    assert!(is_no_auth(&anon.remove_member(99).await), "anonymous membership change");
    assert!(is_no_auth(&anon.transfer_leader(0).await));
    assert!(is_no_auth(&anon.add_member(9, "127.0.0.1:1", "", true).await));
    let by_root = root.remove_member(99).await;
    assert!(!is_no_auth(&by_root), "the super user passes the check: {by_root:?}");
    root.set_acl("/", vec![], None).await.unwrap();

    // whoami reports what the server sees.
    let who = alice.who_am_i().await.unwrap();
    let ids: Vec<(String, String)> = who.identities.iter().map(|i| (i.scheme.clone(), i.id.clone())).collect();
    assert!(ids.contains(&("digest".into(), "alice".into())), "{ids:?}");
    assert!(ids.contains(&("ip".into(), "127.0.0.1".into())), "{ids:?}");
    assert!(!who.superuser);
    assert!(root.who_am_i().await.unwrap().superuser);
    let with_cert = s.client(Some(&s.alice_cert), None).who_am_i().await.unwrap();
    assert!(with_cert.identities.iter().any(|i| i.scheme == "x509" && i.id == "CN=alice,O=Grove Tests"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watches_see_only_what_the_watcher_may_read() {
    let s = start();
    let root = s.root();
    let anon = s.client(None, None);
    root.create("/w", "", &CreateOptions::default()).await.unwrap();
    root.create("/w/secret", "s", &CreateOptions::default().with_acl(vec![acl::entry("ip", "10.9.9.9", perms::ALL)]))
        .await
        .unwrap();

    let mut stream = anon.watch_stream().await.unwrap();
    // A watch on an unreadable node is refused with NO_AUTH; the stream goes on.
    let refused = stream.watch(WatchSpec::new("/w/secret", WatchKind::Node)).await.unwrap();
    let subtree = stream.watch(WatchSpec::new("/w", WatchKind::Subtree).with_data()).await.unwrap();
    let mut saw_refusal = false;
    let mut created = false;
    while !(saw_refusal && created) {
        match tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap() {
            WatchMessage::Canceled { watch_id, code, reason, .. } if watch_id == refused => {
                assert_eq!(code, ErrorCode::NoAuth, "{reason}");
                saw_refusal = true;
            }
            WatchMessage::Created { watch_id, .. } if watch_id == subtree => created = true,
            other => panic!("unexpected {other:?}"),
        }
    }
    // Changes to the unreadable node are not delivered; those to readable ones are, in order.
    root.set("/w/secret", "s2", None).await.unwrap();
    root.create(
        "/w/secret2",
        "hidden",
        &CreateOptions::default().with_acl(vec![acl::entry("ip", "10.9.9.9", perms::ALL)]),
    )
    .await
    .unwrap();
    root.create("/w/open", "visible", &CreateOptions::default()).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap() {
        WatchMessage::Events { watch_id, events, .. } => {
            assert_eq!(watch_id, subtree);
            let paths: Vec<&str> = events.iter().map(|e| e.path.as_str()).collect();
            assert_eq!(paths, ["/w/open"], "only the readable node's event");
            assert_eq!(&events[0].data[..], b"visible");
        }
        other => panic!("unexpected {other:?}"),
    }
    // A watch on a missing node is allowed; if the node is created unreadable, its
    // creation is not delivered either.
    let pending = stream.watch(WatchSpec::new("/w/later", WatchKind::Node).with_data()).await.unwrap();
    loop {
        if let WatchMessage::Created { watch_id, .. } = stream.next().await.unwrap().unwrap()
            && watch_id == pending
        {
            break;
        }
    }
    root.create("/w/later", "x", &CreateOptions::default().with_acl(vec![acl::entry("ip", "10.9.9.9", perms::ALL)]))
        .await
        .unwrap();
    root.create("/w/marker", "", &CreateOptions::default()).await.unwrap();
    match tokio::time::timeout(Duration::from_secs(5), stream.next()).await.unwrap().unwrap().unwrap() {
        WatchMessage::Events { watch_id, events, .. } => {
            assert_eq!(watch_id, subtree, "the pending watch saw nothing of the unreadable node");
            assert_eq!(events[0].path, "/w/marker");
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn locks_and_elections_need_their_permissions() {
    let s = start();
    let root = s.root();
    let alice = s.client(None, Some(("alice", "pw")));
    let anon = s.client(None, None);
    alice.open_session(Duration::from_secs(10)).await.unwrap();
    anon.open_session(Duration::from_secs(10)).await.unwrap();
    let alice_only =
        vec![acl::entry("digest", &acl::digest("alice", "pw"), perms::ALL), acl::entry("world", "anyone", perms::READ)];
    root.create("/locks", "", &CreateOptions::default().with_acl(alice_only.clone())).await.unwrap();

    // Taking a lock creates nodes under its path: CREATE is needed there.
    let req = LockRequest::mutex("/locks/db").timeout(Some(Duration::from_secs(2)));
    let err = anon.acquire(&req).await.unwrap_err();
    assert_eq!(err.code(), ErrorCode::NoAuth, "{err}");
    assert!(root.exists("/locks/db").await.unwrap().is_none(), "a refused acquire leaves nothing");
    let grant = alice.acquire(&req).await.unwrap();
    assert!(grant.token > 0);
    // The lock's own nodes inherit the protected parent's ACL.
    assert_eq!(root.get_acl("/locks/db").await.unwrap().0, alice_only);
    assert_eq!(root.get_acl(&grant.nodes[0]).await.unwrap().0, alice_only);
    // READ lets anyone see who holds it; nobody else can join the queue.
    assert_eq!(anon.describe_lock("/locks/db").await.unwrap().len(), 1);
    assert_eq!(anon.acquire(&req).await.unwrap_err().code(), ErrorCode::NoAuth);
    assert!(alice.release(&grant.nodes[0]).await.unwrap());

    // An unreadable election cannot be observed or campaigned in by others.
    root.create("/elections", "", &CreateOptions::default()).await.unwrap();
    root.create(
        "/elections/ops",
        "",
        &CreateOptions::default().with_acl(vec![acl::entry("digest", &acl::digest("alice", "pw"), perms::ALL)]),
    )
    .await
    .unwrap();
    let won = alice.campaign("ops", "alice", Some(Duration::from_secs(2))).await.unwrap();
    alice.proclaim("ops", &won.nodes[0], "alice-2").await.unwrap();
    assert_eq!(&alice.leader("ops").await.unwrap().unwrap().value[..], b"alice-2");
    assert_eq!(anon.leader("ops").await.unwrap_err().code(), ErrorCode::NoAuth);
    assert_eq!(anon.campaign("ops", "x", Some(Duration::from_secs(1))).await.unwrap_err().code(), ErrorCode::NoAuth);
    assert!(matches!(anon.observe_leader("ops").await, Err(Error::NoAuth { .. })));
}

#[test]
fn cli_acl_commands() {
    let s = start();
    let flags = ["--tls-ca", path_str(&s.ca.pem), "--tls-server-name", "localhost"];
    let grove = |extra: &[&str], args: &[&str]| {
        std::process::Command::new(grove_bin())
            .args(["--server", &s.server.client])
            .args(flags)
            .args(extra)
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    };
    let text = |o: &std::process::Output| {
        format!("{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr))
    };
    let alice = ["--auth", "alice:pw"];

    let out = grove(&[], &["digest", "alice:pw"]);
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), acl::digest("alice", "pw"));
    let out = grove(&alice, &["create", "/cli", "data", "auth::cdrwa"]);
    assert!(out.status.success(), "{}", text(&out));
    let out = grove(&alice, &["getAcl", "/cli"]);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        format!("'digest,'{}\n: cdrwa", acl::digest("alice", "pw"))
    );
    let out = grove(&[], &["get", "/cli"]);
    assert!(!out.status.success());
    assert!(text(&out).contains("not authorized"), "{}", text(&out));
    let out = grove(&alice, &["create", "/cli/child", "x"]);
    assert!(out.status.success(), "{}", text(&out));
    // setAcl -R opens the subtree to reads.
    let acl_text = format!("world:anyone:r,digest:{}:cdrwa", acl::digest("alice", "pw"));
    let out = grove(&alice, &["setAcl", "-R", "/cli", &acl_text]);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(String::from_utf8_lossy(&grove(&[], &["get", "/cli/child"]).stdout).trim(), "x");
    let out = grove(&[], &["--json", "getAcl", "/cli/child"]);
    let j: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(j["acl"][1]["id"], "alice:x");
    assert_eq!(j["stat"]["aversion"], 1);
    // A stale -v is refused.
    let out = grove(&alice, &["setAcl", "-v", "0", "/cli", "world:anyone:cdrwa"]);
    assert!(!out.status.success() && text(&out).contains("version"), "{}", text(&out));
    // whoami, and addauth in one shell session.
    let out = grove(&alice, &["whoami"]);
    assert!(String::from_utf8_lossy(&out.stdout).contains("user: alice\nscheme: digest"), "{}", text(&out));
    let mut shell = std::process::Command::new(grove_bin())
        .args(["--server", &s.server.client])
        .args(flags)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = shell.stdin.take().unwrap();
        writeln!(stdin, "set /cli denied").unwrap();
        writeln!(stdin, "addauth digest alice:pw").unwrap();
        writeln!(stdin, "set /cli allowed").unwrap();
        writeln!(stdin, "get /cli").unwrap();
        writeln!(stdin, "quit").unwrap();
    }
    let out = shell.wait_with_output().unwrap();
    let all = text(&out);
    assert!(all.contains("not authorized"), "{all}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("allowed"), "{all}");
    // Bad ACL text is a usage error naming the problem.
    let out = grove(&[], &["create", "/x", "d", "world:anyone:z"]);
    assert!(!out.status.success() && text(&out).contains("permission"), "{}", text(&out));
}

#[test]
fn a_malformed_super_digest_is_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(crate::harness::groved_bin())
        .args(["--data-dir", path_str(&dir.path().join("d")), "--listen", "127.0.0.1:0"])
        .args(["--peer-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--super-digest", "root:short"])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--super-digest"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
