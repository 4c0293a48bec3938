//! Servers for integration tests, on 127.0.0.1 with OS-assigned ports (or ports reserved
//! for a cluster), each with its own data directory.
//!
//! Two tiers. `Server::start` runs the server inside the test process, through the same
//! `grove_server::run(listeners, shutdown)` that `groved` calls, on a runtime of its own:
//! no process to spawn, and the client talks to it over real gRPC on TCP all the same.
//! `Server::start_process` (and clusters) start real `groved` processes, stopped by PID
//! when the test ends: for what needs a process (kill -9, SIGSTOP, restarts, namespaces,
//! its log).

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use grove_client::Client;

/// The `groved` binary under test.
pub fn groved_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_groved"))
}

/// The `grove` CLI, built next to `groved` by a workspace build.
pub fn grove_bin() -> PathBuf {
    let p = groved_bin().with_file_name("grove");
    assert!(p.exists(), "{} is missing: build the whole workspace first (cargo build --workspace)", p.display());
    p
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap().to_path_buf()
}

/// A free port on 127.0.0.1 for a server that must be told its port in advance (a cluster
/// member, whose address its peers need).
///
/// Chosen below Linux's ephemeral range (32768-60999): a port the OS hands out for port 0 or
/// for an outgoing connection, as every other test does all the time, could be taken again
/// between this check and the server's bind. Random, so parallel test processes rarely pick
/// the same one, and checked free by binding it.
///
/// A port is handed out once per test process: the ports of one cluster are chosen before
/// any server binds them, so the bind check alone would let two members draw the same one.
pub fn free_port() -> u16 {
    use rand::Rng;
    static GIVEN: std::sync::Mutex<Vec<u16>> = std::sync::Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap();
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(20_000..32_000);
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free port in 20000..32000");
}

pub struct Server {
    child: Option<Child>,
    /// A server running inside this process (`Server::start`), instead of `child`.
    inproc: Option<InProcess>,
    in_process: bool,
    pub dir: PathBuf,
    pub client: String,
    pub peer: String,
    pub admin: String,
    /// The plaintext health port, with --health-listen.
    pub health: Option<String>,
    args: Vec<String>,
    ports: Option<(u16, u16, u16)>,
    rust_log: String,
    /// A command that runs groved (e.g. `nsenter` into a mount namespace); empty: none.
    prefix: Vec<String>,
}

/// A server running on its own runtime and thread inside the test process.
struct InProcess {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl InProcess {
    /// Parses the arguments as `groved` does and runs the server until stopped.
    fn start(args: Vec<String>) -> (InProcess, grove_server::Bound) {
        use clap::Parser;
        #[derive(Parser)]
        struct Groved {
            #[command(flatten)]
            settings: grove_server::config::Settings,
        }
        let settings = Groved::try_parse_from(std::iter::once("groved".to_string()).chain(args))
            .unwrap_or_else(|e| panic!("groved arguments: {e}"))
            .settings;
        let config = grove_server::config::Config::resolve(settings, Default::default())
            .unwrap_or_else(|e| panic!("groved configuration: {e}"));
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let (ready, bound) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
            rt.block_on(async move {
                let listeners = grove_server::Listeners::bind(&config).await.expect("binding");
                let shutdown = async {
                    let _ = stopped.await;
                };
                grove_server::run(config, listeners, shutdown, |b| {
                    let _ = ready.send(b);
                })
                .await
                .expect("the in-process server failed");
            });
        });
        let bound = bound.recv_timeout(Duration::from_secs(30)).expect("the in-process server did not start");
        (InProcess { stop: Some(stop), thread: Some(thread) }, bound)
    }
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            // A panicking server thread has already failed the test through its output.
            let _ = t.join();
        }
    }
}

impl Server {
    /// Starts a standalone server in `dir` on OS-assigned ports, inside this process.
    pub fn start(dir: &Path, extra: &[&str]) -> Server {
        std::fs::create_dir_all(dir).unwrap();
        let mut args: Vec<String> = vec!["--data-dir".into(), dir.join("data").display().to_string()];
        args.extend(
            ["--listen", "127.0.0.1:0", "--peer-listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"]
                .map(String::from),
        );
        args.extend(extra.iter().map(|s| s.to_string()));
        let (inproc, bound) = InProcess::start(args);
        Server {
            child: None,
            inproc: Some(inproc),
            in_process: true,
            dir: dir.to_path_buf(),
            client: bound.client.to_string(),
            peer: bound.peer.to_string(),
            admin: bound.admin.to_string(),
            health: bound.health.map(|h| h.to_string()),
            args: extra.iter().map(|s| s.to_string()).collect(),
            ports: None,
            rust_log: String::new(),
            prefix: Vec::new(),
        }
    }

    /// Starts a standalone `groved` process in `dir` on OS-assigned ports.
    pub fn start_process(dir: &Path, extra: &[&str]) -> Server {
        Self::start_logging(dir, extra, "info,openraft=warn")
    }

    /// Starts a standalone server with its own `RUST_LOG` filter (its log is `log_text()`).
    pub fn start_logging(dir: &Path, extra: &[&str], rust_log: &str) -> Server {
        Self::start_with_prefix(dir, extra, rust_log, Vec::new())
    }

    /// Starts a standalone server through `prefix` (a command that then runs groved).
    pub fn start_with_prefix(dir: &Path, extra: &[&str], rust_log: &str, prefix: Vec<String>) -> Server {
        let mut s = Server {
            child: None,
            inproc: None,
            in_process: false,
            dir: dir.to_path_buf(),
            client: String::new(),
            peer: String::new(),
            admin: String::new(),
            health: None,
            args: extra.iter().map(|s| s.to_string()).collect(),
            ports: None,
            rust_log: rust_log.into(),
            prefix,
        };
        s.spawn();
        s
    }

    /// Starts a server on fixed ports (a cluster member, whose address peers must know).
    pub fn start_on(dir: &Path, ports: (u16, u16, u16), extra: &[String]) -> Server {
        Self::try_start_on(dir, ports, extra).unwrap_or_else(|log| panic!("groved did not start; its log:\n{log}"))
    }

    /// Like `start_on`; a server that refuses to start gives the end of its log.
    pub fn try_start_on(dir: &Path, ports: (u16, u16, u16), extra: &[String]) -> Result<Server, String> {
        Self::try_start_on_prefixed(dir, ports, extra, Vec::new())
    }

    /// Like `try_start_on`, through `prefix` (a command that then runs groved, which must
    /// exec it so that its PID is groved's: `env`, `nsenter`).
    pub fn try_start_on_prefixed(
        dir: &Path,
        ports: (u16, u16, u16),
        extra: &[String],
        prefix: Vec<String>,
    ) -> Result<Server, String> {
        let mut s = Server {
            child: None,
            inproc: None,
            in_process: false,
            dir: dir.to_path_buf(),
            client: String::new(),
            peer: String::new(),
            admin: String::new(),
            health: None,
            args: extra.to_vec(),
            ports: Some(ports),
            rust_log: std::env::var("GROVE_TEST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()),
            prefix,
        };
        s.try_spawn()?;
        Ok(s)
    }

    fn spawn(&mut self) {
        if let Err(log) = self.try_spawn() {
            panic!("groved did not start; its log:\n{log}");
        }
    }

    /// Starts the process; if it exits (or says nothing for 30 s) instead of listening,
    /// the end of its log.
    fn try_spawn(&mut self) -> Result<(), String> {
        std::fs::create_dir_all(&self.dir).unwrap();
        let (c, p, a) = match self.ports {
            Some((c, p, a)) => (format!("127.0.0.1:{c}"), format!("127.0.0.1:{p}"), format!("127.0.0.1:{a}")),
            None => ("127.0.0.1:0".into(), "127.0.0.1:0".into(), "127.0.0.1:0".into()),
        };
        let log = std::fs::OpenOptions::new().create(true).append(true).open(self.dir.join("groved.log")).unwrap();
        let mut command = match self.prefix.split_first() {
            Some((program, args)) => {
                let mut c = Command::new(program);
                c.args(args).arg(groved_bin());
                c
            }
            None => Command::new(groved_bin()),
        };
        let mut child = command
            .arg("--data-dir")
            .arg(self.dir.join("data"))
            .args(["--listen", &c, "--peer-listen", &p, "--admin-listen", &a])
            .args(&self.args)
            .env("RUST_LOG", &self.rust_log)
            .env_remove("RUST_BACKTRACE")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("starting groved");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.starts_with("groved listening") {
                    let _ = tx.send(line);
                }
            }
        });
        let line = match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(l) => l,
            Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(self.log_tail());
            }
        };
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(&format!("{name}=")).map(str::to_string))
                .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        };
        self.client = field("client");
        self.peer = field("peer");
        self.admin = field("admin");
        self.health = line.split_whitespace().find_map(|w| w.strip_prefix("health=").map(str::to_string));
        self.child = Some(child);
        Ok(())
    }

    pub fn pid(&self) -> u32 {
        assert!(self.inproc.is_none(), "an in-process server has no pid of its own: start it with start_process");
        self.child.as_ref().expect("running").id()
    }

    pub fn is_running(&mut self) -> bool {
        self.inproc.is_some() || self.child.as_mut().is_some_and(|c| c.try_wait().ok().flatten().is_none())
    }

    /// Stops an in-process server the way SIGTERM stops groved (graceful shutdown).
    pub fn stop(&mut self) {
        match self.inproc.take() {
            Some(p) => drop(p),
            None => {
                self.terminate();
            }
        }
    }

    /// Kills the process with SIGKILL: no shutdown, no flush.
    pub fn kill9(&mut self) {
        assert!(self.inproc.is_none(), "an in-process server cannot be killed: start it with start_process");
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Sends a signal to the process.
    pub fn signal(&self, sig: &str) {
        let status = Command::new("kill").args([&format!("-{sig}"), &self.pid().to_string()]).status().unwrap();
        assert!(status.success());
    }

    /// SIGTERM, then waits (bounded) for a graceful exit.
    pub fn terminate(&mut self) -> ExitStatus {
        assert!(self.inproc.is_none(), "an in-process server gets no signals: start it with start_process");
        self.signal("TERM");
        let mut c = self.child.take().unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            if let Some(st) = c.try_wait().unwrap() {
                return st;
            }
            if Instant::now() > deadline {
                let _ = c.kill();
                panic!("groved did not stop within 15 s of SIGTERM");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Starts the server again (a process, or in this process) with the same data directory
    /// and arguments, on new ports.
    pub fn restart(&mut self) {
        assert!(self.child.is_none() && self.inproc.is_none(), "stop the server before restarting it");
        if self.in_process {
            let extra: Vec<&str> = self.args.iter().map(String::as_str).collect();
            *self = Server::start(&self.dir.clone(), &extra.clone());
            return;
        }
        self.spawn();
    }

    /// A client for this server (call inside a Tokio runtime).
    pub fn connect(&self) -> Client {
        Client::connect(&self.client).unwrap()
    }

    /// Runs the `grove` CLI once against this server.
    pub fn grove(&self, args: &[&str]) -> Output {
        Command::new(grove_bin())
            .args(["--server", &self.client])
            .args(args)
            .env_remove("RUST_BACKTRACE")
            .output()
            .unwrap()
    }

    /// Runs the CLI and returns stdout; panics if it fails.
    pub fn grove_ok(&self, args: &[&str]) -> String {
        let out = self.grove(args);
        assert!(
            out.status.success(),
            "grove {args:?} failed ({}): {}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(self.dir.join("groved.log")).unwrap_or_default();
        let lines: Vec<_> = text.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }

    /// GET on the admin port: (status code, body).
    pub fn admin_get(&self, path: &str) -> (u16, String) {
        http_get(&self.admin, path)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(p) = self.inproc.take() {
            drop(p);
        }
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A minimal HTTP/1.1 GET, enough for the admin endpoint.
pub fn http_get(addr: &str, path: &str) -> (u16, String) {
    http_get_with(addr, path, "")
}

/// A GET with extra header lines (each ending in \r\n).
pub fn http_get_with(addr: &str, path: &str, headers: &str) -> (u16, String) {
    http(addr, "GET", path, headers, "")
}

/// One HTTP/1.1 request with extra header lines (each ending in \r\n) and a body.
pub fn http(addr: &str, method: &str, path: &str, headers: &str, body: &str) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut buf = String::new();
    s.read_to_string(&mut buf).unwrap();
    let code = buf.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
    let body = buf.split_once("\r\n\r\n").map(|(_, b)| b.to_string()).unwrap_or_default();
    (code, body)
}

/// A raw watch stream over its own connection with tiny HTTP/2 windows, so that the
/// server's sends back up as soon as the test stops reading: the requests' sender, the
/// responses.
pub async fn slow_watch_stream(
    addr: &str,
) -> (tokio::sync::mpsc::Sender<grove_client::proto::WatchRequest>, tonic::Streaming<grove_client::proto::WatchResponse>)
{
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .unwrap()
        .initial_stream_window_size(Some(1024))
        .initial_connection_window_size(Some(1024))
        .connect()
        .await
        .unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel(1024);
    let inbound = grove_client::proto::watch_client::WatchClient::new(channel)
        .watch(tokio_stream::wrappers::ReceiverStream::new(rx))
        .await
        .unwrap()
        .into_inner();
    (tx, inbound)
}

/// Polls `f` until it returns true or `timeout` passes.
pub async fn eventually(timeout: Duration, what: &str, mut f: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if f().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("timed out after {timeout:?} waiting for {what}");
}
