//! Quotas against a real server: the CLI's setquota, listquota and delquota, hard limits
//! refusing writes (RESOURCE_EXHAUSTED / QUOTA_EXCEEDED), soft limits logged and counted,
//! and quotas with their usage surviving a restart.

use grove_client::{CreateOptions, Error, QuotaChange};
use grove_proto::v1::ErrorCode;

use crate::harness::{Server, eventually};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hard_and_soft_quotas_with_the_cli_and_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_process(dir.path(), &[]);
    let c = s.connect();
    c.create("/app", "", &CreateOptions::default()).await.unwrap();
    c.create("/app/a", "12345", &CreateOptions::default()).await.unwrap();

    // zkCli syntax: -N hard node count, -b soft bytes.
    s.grove_ok(&["setquota", "-N", "4", "-b", "8", "/app"]);
    let out = s.grove_ok(&["listquota", "/app"]);
    assert_eq!(
        out.trim(),
        "Output quota for /app count=-1,bytes=8,countHardLimit=4,byteHardLimit=-1\nOutput stat for /app count=2,bytes=5"
    );
    // A node below reports the quota governing it.
    assert!(s.grove_ok(&["listquota", "/app/a"]).contains("Output quota for /app "));

    // The soft byte limit: logged and counted, the write goes through.
    c.set("/app/a", "123456789", None).await.unwrap();
    let log = std::fs::read_to_string(dir.path().join("groved.log")).unwrap();
    assert!(log.contains("quota on /app exceeded: 9 bytes, soft limit 8"), "{log}");
    let (_, metrics) = s.admin_get("/metrics");
    assert!(metrics.contains("grove_quota_exceeded_total{limit=\"soft\"} 1"), "{metrics}");

    // The hard node limit: the fifth node is refused with a typed error, nothing created.
    c.create("/app/b", "", &CreateOptions::default()).await.unwrap();
    c.create("/app/c", "", &CreateOptions::default()).await.unwrap();
    let err = c.create("/app/d", "", &CreateOptions::default()).await.unwrap_err();
    assert!(matches!(err, Error::QuotaExceeded { .. }), "{err}");
    assert_eq!(err.code(), ErrorCode::QuotaExceeded);
    assert!(err.to_string().contains("allows 4 nodes"), "{err}");
    assert!(c.exists("/app/d").await.unwrap().is_none());
    let out = s.grove(&["create", "/app/d"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("quota exceeded"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Outside the subtree nothing is limited.
    c.create("/free", "", &CreateOptions::default()).await.unwrap();
    // Deleting frees room.
    c.delete("/app/c", None).await.unwrap();
    c.create("/app/d", "", &CreateOptions::default()).await.unwrap();

    // Quotas do not nest; bad values are refused with a clear message.
    let out = s.grove(&["setquota", "-n", "3", "/app/a"]);
    assert!(String::from_utf8_lossy(&out.stderr).contains("/app already has a quota"));
    assert!(!s.grove(&["setquota", "-n", "-7", "/app"]).status.success());
    assert!(!s.grove(&["setquota", "-n", "3", "/nowhere"]).status.success());

    // The quota and its usage survive a restart.
    s.terminate();
    s.restart();
    let c = s.connect();
    eventually(std::time::Duration::from_secs(10), "the restarted server serves", async || {
        c.get_quota("/app").await.is_ok()
    })
    .await;
    let (root, q) = c.get_quota("/app/b").await.unwrap().unwrap();
    assert_eq!(root, "/app");
    assert_eq!((q.count, q.bytes, q.count_hard, q.bytes_soft), (4, 9, 4, 8));
    assert!(matches!(c.create("/app/e", "", &CreateOptions::default()).await, Err(Error::QuotaExceeded { .. })));

    // delquota -N lifts the hard limit only; delquota removes the quota.
    s.grove_ok(&["delquota", "-N", "/app"]);
    c.create("/app/e", "", &CreateOptions::default()).await.unwrap();
    assert_eq!(c.list_quotas().await.unwrap().len(), 1);
    s.grove_ok(&["delquota", "/app"]);
    assert!(c.list_quotas().await.unwrap().is_empty());
    assert_eq!(s.grove_ok(&["listquota", "/app"]).trim(), "quota for /app does not exist.");
    assert!(!s.grove(&["delquota", "/app"]).status.success());
    // The client API's change type: set one limit, keep the rest.
    let q = c.set_quota("/app", QuotaChange { bytes_hard: Some(1000), ..Default::default() }).await.unwrap().unwrap();
    assert_eq!((q.count, q.bytes_hard, q.count_soft), (5, 1000, -1));

    // A quota describes its root's subtree: reading it needs READ on the root, even when
    // asked through a readable child.
    c.create("/secret", "", &CreateOptions::default()).await.unwrap();
    c.create("/secret/open", "", &CreateOptions::default()).await.unwrap();
    c.set_quota("/secret", QuotaChange { count_hard: Some(50), ..Default::default() }).await.unwrap();
    c.set_acl("/secret", grove_client::acl::parse("ip:10.9.9.9:cdrwa").unwrap(), None).await.unwrap();
    assert!(c.get("/secret/open").await.is_ok());
    assert!(matches!(c.get_quota("/secret/open").await, Err(Error::NoAuth { .. })));
    assert!(c.list_quotas().await.unwrap().iter().all(|(p, _)| p != "/secret"), "unreadable quotas are not listed");
    // Changing quotas needs ADMIN on the root; locked down, it is refused.
    c.set_acl("/", grove_client::acl::parse("world:anyone:rwcd").unwrap(), None).await.unwrap();
    let err = c.set_quota("/app", QuotaChange { count_soft: Some(9), ..Default::default() }).await.unwrap_err();
    assert!(matches!(err, Error::NoAuth { .. }), "{err}");
}
