//! The shell's watches: one watch stream in the background, printing events as they come
//! (zkCli's `WATCHER::` lines). If the stream breaks, it is reopened and every watch
//! resumed from the last zxid printed, so no event is lost or shown twice.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use grove_client::{Client, Error, EventType, WatchKind, WatchMessage, WatchSpec, WatchStream};
use tokio::sync::{mpsc, oneshot};

pub type Printer = Arc<dyn Fn(String) + Send + Sync>;

enum Request {
    Add(WatchSpec, oneshot::Sender<Result<i64, Error>>),
    Remove(String, char, oneshot::Sender<Result<usize, Error>>),
    Reconnect(Client),
}

#[derive(Clone)]
pub struct Watches {
    tx: mpsc::UnboundedSender<Request>,
    printing: Arc<AtomicBool>,
}

impl Watches {
    pub fn start(client: Client, print: Printer) -> Watches {
        let (tx, rx) = mpsc::unbounded_channel();
        let printing = Arc::new(AtomicBool::new(true));
        tokio::spawn(run(client, rx, print, printing.clone()));
        Watches { tx, printing }
    }

    pub async fn add(&self, spec: WatchSpec) -> Result<i64, Error> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Request::Add(spec, tx));
        rx.await.unwrap_or_else(|_| Err(Error::Client("the watch task stopped".into())))
    }

    /// Removes watches on `path`: `c` children, `d` data, `a` any. Returns how many.
    pub async fn remove(&self, path: &str, which: char) -> Result<usize, Error> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Request::Remove(path.to_string(), which, tx));
        rx.await.unwrap_or_else(|_| Err(Error::Client("the watch task stopped".into())))
    }

    pub fn reconnect(&self, client: Client) {
        let _ = self.tx.send(Request::Reconnect(client));
    }

    pub fn set_printing(&self, on: bool) {
        self.printing.store(on, Ordering::Relaxed);
    }

    pub fn printing(&self) -> bool {
        self.printing.load(Ordering::Relaxed)
    }
}

fn event_name(t: EventType) -> &'static str {
    match t {
        EventType::NodeCreated => "NodeCreated",
        EventType::NodeDeleted => "NodeDeleted",
        EventType::NodeDataChanged => "NodeDataChanged",
        EventType::NodeChildrenChanged => "NodeChildrenChanged",
        EventType::Unspecified => "None",
    }
}

fn removed_name(kind: WatchKind) -> &'static str {
    match kind {
        WatchKind::Children => "ChildWatchRemoved",
        WatchKind::Node => "DataWatchRemoved",
        _ => "PersistentWatchRemoved",
    }
}

struct Active {
    spec: WatchSpec,
}

async fn run(mut client: Client, mut rx: mpsc::UnboundedReceiver<Request>, print: Printer, printing: Arc<AtomicBool>) {
    let mut stream: Option<WatchStream> = None;
    let mut active: HashMap<i64, Active> = HashMap::new();
    let mut last_zxid = 0u64;
    let say = |text: String| {
        if printing.load(Ordering::Relaxed) {
            print(text);
        }
    };
    loop {
        let next = async {
            match stream.as_mut() {
                Some(s) => s.next().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            req = rx.recv() => {
                let Some(req) = req else { return };
                match req {
                    Request::Add(spec, reply) => {
                        if stream.is_none() {
                            match client.watch_stream().await {
                                Ok(s) => stream = Some(s),
                                Err(e) => {
                                    let _ = reply.send(Err(e));
                                    continue;
                                }
                            }
                        }
                        let s = stream.as_mut().unwrap();
                        let r = s.watch(spec.clone()).await;
                        if let Ok(id) = r {
                            active.insert(id, Active { spec });
                        }
                        let _ = reply.send(r);
                    }
                    Request::Remove(path, which, reply) => {
                        let ids: Vec<i64> = active
                            .iter()
                            .filter(|(_, a)| {
                                a.spec.path == path
                                    && match which {
                                        'c' => a.spec.kind == WatchKind::Children,
                                        'd' => a.spec.kind == WatchKind::Node,
                                        _ => true,
                                    }
                            })
                            .map(|(id, _)| *id)
                            .collect();
                        for id in &ids {
                            if let Some(s) = stream.as_mut() {
                                let _ = s.cancel(*id).await;
                            }
                        }
                        let _ = reply.send(Ok(ids.len()));
                    }
                    Request::Reconnect(c) => {
                        client = c;
                        stream = None;
                        active.clear();
                    }
                }
            }
            msg = next => match msg {
                Ok(Some(WatchMessage::Events { watch_id, zxid, events })) => {
                    last_zxid = last_zxid.max(zxid);
                    let one_shot = active.get(&watch_id).is_some_and(|a| a.spec.one_shot);
                    for e in events {
                        say(format!(
                            "WATCHER::\n\nWatchedEvent state:SyncConnected type:{} path:{} zxid:0x{:x}",
                            event_name(e.kind),
                            e.path,
                            e.zxid
                        ));
                    }
                    if one_shot {
                        active.remove(&watch_id);
                    }
                }
                Ok(Some(WatchMessage::Progress { zxid })) => last_zxid = last_zxid.max(zxid),
                Ok(Some(WatchMessage::Created { .. })) => {}
                Ok(Some(WatchMessage::Canceled { watch_id, code, reason, .. })) => {
                    if let Some(a) = active.remove(&watch_id) {
                        if code == grove_client::watch::ErrorCode::Ok {
                            say(format!(
                                "WATCHER::\n\nWatchedEvent state:SyncConnected type:{} path:{}",
                                removed_name(a.spec.kind),
                                a.spec.path
                            ));
                        } else {
                            say(format!("WATCHER:: watch on {} cancelled ({}): {reason}", a.spec.path, code.as_str_name()));
                        }
                    }
                }
                Ok(None) | Err(_) => {
                    // The server went away: reopen and resume every watch after the last
                    // zxid seen.
                    loop {
                        tokio::time::sleep(Duration::from_millis(500)).await;
                        if let Ok(mut s) = client.watch_stream().await {
                            let mut resumed = HashMap::new();
                            for (_, a) in active.drain() {
                                let spec = a.spec.clone().from_zxid(last_zxid + 1);
                                if let Ok(id) = s.watch(spec.clone()).await {
                                    resumed.insert(id, Active { spec });
                                }
                            }
                            active = resumed;
                            stream = Some(s);
                            break;
                        }
                        if rx.is_closed() {
                            return;
                        }
                    }
                }
            }
        }
    }
}
