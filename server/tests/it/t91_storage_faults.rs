//! A full disk and damaged data files, with real groved processes: a server whose disk
//! fills refuses writes with a clear error and never acknowledges what it could not store;
//! a server whose files were altered refuses to start, naming the file, instead of serving
//! wrong data.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use grove_client::{Client, Consistency, CreateOptions, Error};

use crate::harness::{Server, eventually, groved_bin};

/// A mount namespace, held open by a sleeping process, in which a small tmpfs is mounted
/// over `path`. Servers run inside it through `nsenter`, so they survive a restart with
/// their data; the test reaches the tmpfs from outside through `/proc/<pid>/root`.
struct SmallDisk {
    holder: Child,
    path: PathBuf,
}

impl SmallDisk {
    /// None where mount namespaces are not allowed (not root); in CI that is a failure.
    fn new(path: &Path, size: &str) -> Option<SmallDisk> {
        let script =
            format!("mkdir -p \"$0\" && mount -t tmpfs -o size={size} tmpfs \"$0\" && echo mounted && exec sleep 600");
        let unavailable = |why: String| {
            assert!(std::env::var("CI").is_err(), "CI must allow mount namespaces for this test: {why}");
            eprintln!("skipped: mount namespaces are not available here: {why}");
            None
        };
        let spawned = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .arg(path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn();
        let mut holder = match spawned {
            Ok(h) => h,
            Err(e) => return unavailable(format!("unshare: {e}")),
        };
        let mut line = String::new();
        let _ = BufReader::new(holder.stdout.take().unwrap()).read_line(&mut line);
        if line.trim() != "mounted" {
            let _ = holder.kill();
            let _ = holder.wait();
            return unavailable("unshare --mount or mount -t tmpfs failed".into());
        }
        Some(SmallDisk { holder, path: path.to_path_buf() })
    }

    /// Runs a command inside the namespace.
    fn prefix(&self) -> Vec<String> {
        ["nsenter", "--target", &self.holder.id().to_string(), "--mount", "--"].iter().map(|s| s.to_string()).collect()
    }

    /// A path inside the tmpfs, as seen from outside the namespace.
    fn inside(&self, rel: &str) -> PathBuf {
        PathBuf::from(format!("/proc/{}/root{}", self.holder.id(), self.path.display())).join(rel)
    }

    /// Fills the disk with a file; returns how many bytes it took.
    fn fill(&self) -> usize {
        let mut f = std::fs::File::create(self.inside("filler")).unwrap();
        let chunk = vec![0u8; 64 * 1024];
        let mut written = 0;
        loop {
            match f.write(&chunk) {
                Ok(0) | Err(_) => break,
                Ok(n) => written += n,
            }
        }
        let _ = f.sync_all();
        written
    }

    fn free(&self) {
        std::fs::remove_file(self.inside("filler")).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = self.holder.kill();
        let _ = self.holder.wait();
    }
}

fn client(s: &Server) -> Client {
    Client::builder(&s.client).request_timeout(Duration::from_secs(2)).build().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_stops_writes_with_a_clear_error_and_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::new(&dir.path().join("n").join("data"), "24m") else { return };
    let mut s = Server::start_with_prefix(&dir.path().join("n"), &[], "info,openraft=warn", disk.prefix());
    let c = client(&s);
    c.create("/kept", "before", &CreateOptions::default()).await.unwrap();

    // Fill the disk, then write until the server cannot: every write it acknowledged is
    // remembered; the first refusal must say why.
    assert!(disk.fill() > 0);
    let payload = "d".repeat(16 * 1024);
    let mut acked = Vec::new();
    let mut refusal = None;
    for i in 0..2000 {
        match c.create(&format!("/w{i}"), payload.clone(), &CreateOptions::default()).await {
            Ok(_) => acked.push(format!("/w{i}")),
            Err(e) => {
                refusal = Some(e);
                break;
            }
        }
    }
    let refusal = refusal.expect("a full disk refuses writes");
    assert!(matches!(refusal, Error::NotReady { .. }), "{refusal:?}");
    let text = refusal.to_string();
    assert!(text.contains("No space left on device") && text.contains("storage failure"), "{text}");

    // From now on: writes refused with the same cause, the process up, health and status
    // telling the operator; what was acknowledged is still read (sequentially: this server
    // can no longer confirm it is current).
    let again = c.set("/kept", "after", None).await.unwrap_err();
    assert!(again.to_string().contains("No space left on device"), "{again}");
    assert!(s.is_running());
    // What the chart's GroveStorageFailure alert watches.
    let (_, metrics) = s.admin_get("/metrics");
    assert!(metrics.contains("grove_storage_errors_total{store=\"log\"}"), "{metrics}");
    let (code, body) = s.admin_get("/health");
    assert_eq!(code, 503);
    assert!(body.contains("No space left on device"), "{body}");
    let status = s.grove_ok(&["status"]);
    assert!(status.contains("Failure:") && status.contains("No space left"), "{status}");
    assert_eq!(&c.get_with("/kept", Consistency::Sequential).await.unwrap().0[..], b"before");
    for p in &acked {
        assert!(c.exists_at(p, Consistency::Sequential).await.unwrap().0.is_some(), "{p} was acknowledged");
    }

    // Space comes back; after a restart everything acknowledged is there, and writes work.
    disk.free();
    s.terminate();
    s.restart();
    let c = client(&s);
    eventually(Duration::from_secs(20), "the restarted server takes writes", async || {
        c.create("/after-restart", "", &CreateOptions::default()).await.is_ok()
    })
    .await;
    assert_eq!(&c.get("/kept").await.unwrap().0[..], b"before");
    for p in &acked {
        assert!(c.exists(p).await.unwrap().is_some(), "{p} was acknowledged and must survive");
    }
    assert_eq!(s.admin_get("/health").0, 200);
}

/// Flips a byte of every occurrence of `marker` in `file`; returns how many it changed.
fn damage(file: &Path, marker: &[u8]) -> usize {
    let mut bytes = std::fs::read(file).unwrap();
    let mut hits = 0;
    let mut i = 0;
    while i + marker.len() <= bytes.len() {
        if &bytes[i..i + marker.len()] == marker {
            bytes[i + marker.len() / 2] ^= 0x20;
            hits += 1;
            i += marker.len();
        } else {
            i += 1;
        }
    }
    std::fs::write(file, bytes).unwrap();
    hits
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &to.join(e.file_name()));
        } else {
            std::fs::copy(e.path(), to.join(e.file_name())).unwrap();
        }
    }
}

/// Starts groved on `data` and expects it to refuse: its exit status and what it printed.
fn refused_start(data: &Path) -> String {
    let mut child = Command::new(groved_bin())
        .arg("--data-dir")
        .arg(data)
        .args(["--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"])
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Bounded: a server that does start is stopped and reported, not waited for forever.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while child.try_wait().unwrap().is_none() && std::time::Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    let _ = child.kill();
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!out.status.success(), "a damaged data directory must not start a server:\n{text}");
    assert!(!text.contains("groved listening"), "{text}");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn damaged_data_files_are_refused_at_startup() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = Server::start_process(&dir.path().join("n"), &[]);
    let c = s.connect();
    for i in 0..50 {
        c.create(&format!("/canary{i}"), format!("CORRUPTION-CANARY-{i:04}"), &CreateOptions::default()).await.unwrap();
    }
    s.terminate();
    let data = dir.path().join("n").join("data");
    let pristine = dir.path().join("pristine");
    copy_dir(&data, &pristine);
    let restore = || {
        std::fs::remove_dir_all(&data).unwrap();
        copy_dir(&pristine, &data);
    };

    // Bytes changed inside the state database's live pages.
    assert!(damage(&data.join("state.redb"), b"CORRUPTION-CANARY-") > 0);
    let out = refused_start(&data);
    assert!(out.contains("state.redb is corrupted") && out.contains("refusing to start"), "{out}");

    // The same inside the Raft log.
    restore();
    assert!(damage(&data.join("raft-log.redb"), b"CORRUPTION-CANARY-") > 0);
    let out = refused_start(&data);
    assert!(out.contains("raft-log.redb"), "{out}");

    // A truncated state file.
    restore();
    let f = std::fs::OpenOptions::new().write(true).open(data.join("state.redb")).unwrap();
    let len = f.metadata().unwrap().len();
    f.set_len(len / 2).unwrap();
    drop(f);
    let out = refused_start(&data);
    assert!(out.contains("state.redb"), "{out}");

    // A file that is not a database at all.
    restore();
    std::fs::write(data.join("state.redb"), b"this is not a redb file, only some text").unwrap();
    let out = refused_start(&data);
    assert!(out.contains("state.redb"), "{out}");

    // The intact copy starts and serves every node as written.
    restore();
    s.restart();
    let c = s.connect();
    for i in 0..50 {
        let (data, _) = c.get(&format!("/canary{i}")).await.unwrap();
        assert_eq!(&data[..], format!("CORRUPTION-CANARY-{i:04}").as_bytes());
    }
}
