//! A real ZooKeeper (Debian's `zookeeper` package, installed by scripts/setup-debian.sh),
//! standalone on 127.0.0.1 with its own data directory, for migration tests.

use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const JARS: &[&str] = &[
    "zookeeper",
    "zookeeper-jute",
    "slf4j-api",
    "slf4j-log4j12",
    "log4j-1.2",
    "netty-buffer",
    "netty-codec",
    "netty-common",
    "netty-handler",
    "netty-resolver",
    "netty-transport",
    "netty-transport-native-epoll",
    "netty-transport-native-unix-common",
    "commons-cli",
    "commons-io",
    "metrics-core",
    "snappy-java",
    "jackson-databind",
    "jackson-core",
    "jackson-annotations",
];

pub struct ZooKeeper {
    child: Child,
    pub address: String,
}

impl ZooKeeper {
    /// Starts one, or returns None when the package is missing outside CI (in CI the test
    /// fails: the project's scripts install it).
    pub fn start(dir: &Path) -> Option<ZooKeeper> {
        if !Path::new("/usr/share/java/zookeeper.jar").exists() {
            assert!(std::env::var("CI").is_err(), "Debian's zookeeper package is missing: run scripts/setup-debian.sh");
            eprintln!("skipping: Debian's zookeeper package is not installed (scripts/setup-debian.sh)");
            return None;
        }
        let port = crate::harness::free_port();
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(
            dir.join("zoo.cfg"),
            format!(
                "tickTime=2000\ndataDir={}\nclientPort={port}\nclientPortAddress=127.0.0.1\nadmin.enableServer=false\n\
                 maxClientCnxns=0\n",
                dir.join("data").display()
            ),
        )
        .unwrap();
        std::fs::write(
            dir.join("log4j.properties"),
            "log4j.rootLogger=WARN, C\nlog4j.appender.C=org.apache.log4j.ConsoleAppender\n\
             log4j.appender.C.layout=org.apache.log4j.PatternLayout\n",
        )
        .unwrap();
        let mut cp = dir.display().to_string();
        for j in JARS {
            cp.push_str(&format!(":/usr/share/java/{j}.jar"));
        }
        let log = std::fs::File::create(dir.join("zookeeper.log")).unwrap();
        let child = Command::new("java")
            // TTL nodes are one of ZooKeeper's "extended types", off by default.
            .args(["-Dzookeeper.extendedTypesEnabled=true", "-Xmx256m", "-cp", &cp])
            .args(["org.apache.zookeeper.server.ZooKeeperServerMain", dir.join("zoo.cfg").to_str().unwrap()])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("java");
        let address = format!("127.0.0.1:{port}");
        let zk = ZooKeeper { child, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        while TcpStream::connect(&zk.address).is_err() {
            assert!(
                Instant::now() < deadline,
                "ZooKeeper did not start: {}",
                std::fs::read_to_string(dir.join("zookeeper.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        Some(zk)
    }
}

impl Drop for ZooKeeper {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
