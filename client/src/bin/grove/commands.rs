//! zkCli's commands: parsing a command line and running it against a server.

use std::collections::VecDeque;
use std::time::Duration;

use grove_client::proto::{MemberRole, ServerMode};
use grove_client::{
    Acl, Client, Consistency, CreateMode, CreateOptions, Error, Op, Quota, QuotaChange, TlsOptions, WatchKind,
    WatchSpec, acl,
};
use serde_json::{Value, json};

use crate::format;
use crate::watches::Watches;

/// The usage lines `help` prints, zkCli's order.
pub const USAGE: &[&str] = &[
    "addWatch [-m mode] path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE",
    "addauth scheme auth # scheme digest, auth user:password",
    "close",
    "connect host:port",
    "create [-s] [-e] [-c] [-t ttl] path [data] [acl]",
    "delete [-v version] path",
    "delquota [-n|-b|-N|-B] path",
    "deleteall path [-b batch size]",
    "digest user:password # prints the digest id for ACLs and --super-digest",
    "get [-s] [-w] path",
    "getAcl [-s] path",
    "getAllChildrenNumber path",
    "getEphemerals path",
    "history",
    "listquota [path]",
    "ls [-s] [-w] [-R] path",
    "member add [-o] [-c client-host:port] id peer-host:port",
    "member remove id",
    "members",
    "printwatches on|off",
    "quit",
    "redo cmdno",
    "removewatches path [-c|-d|-a]",
    "set [-s] [-v version] path data",
    "setAcl [-s] [-v version] [-R] path acl",
    "setquota -n|-b|-N|-B val path # n/b: soft node count/bytes, N/B: hard (-1: none)",
    "stat [-w] path",
    "status",
    "sync path",
    "transfer-leader [id]",
    "version",
];

/// Command names, for completion.
pub const NAMES: &[&str] = &[
    "addWatch",
    "addauth",
    "close",
    "connect",
    "create",
    "delete",
    "deleteall",
    "delquota",
    "digest",
    "get",
    "getAcl",
    "getAllChildrenNumber",
    "getEphemerals",
    "help",
    "history",
    "listquota",
    "ls",
    "member",
    "members",
    "printwatches",
    "quit",
    "redo",
    "removewatches",
    "set",
    "setAcl",
    "setquota",
    "stat",
    "status",
    "sync",
    "transfer-leader",
    "version",
    "whoami",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Cmd {
    Ls { path: String, stat: bool, watch: bool, recursive: bool },
    Create { path: String, data: String, mode: CreateMode, ttl: Option<i64>, acl: Vec<Acl> },
    Get { path: String, stat: bool, watch: bool },
    Set { path: String, data: String, stat: bool, version: Option<i32> },
    Delete { path: String, version: Option<i32> },
    DeleteAll { path: String, batch: usize },
    Stat { path: String, watch: bool },
    Sync { path: String },
    GetEphemerals { path: String },
    GetAllChildrenNumber { path: String },
    AddWatch { path: String, kind: WatchKind },
    RemoveWatches { path: String, which: char },
    PrintWatches { on: Option<bool> },
    History,
    Redo { n: usize },
    Connect { server: String },
    Close,
    Version,
    Help,
    Quit,
    Status,
    Members,
    MemberAdd { id: u64, peer: String, client: String, observer: bool },
    MemberRemove { id: u64 },
    TransferLeader { to: u64 },
    GetAcl { path: String, stat: bool },
    SetAcl { path: String, acl: Vec<Acl>, stat: bool, version: Option<i32>, recursive: bool },
    AddAuth { scheme: String, auth: String },
    WhoAmI,
    Digest { credential: String },
    SetQuota { path: String, change: QuotaChange },
    ListQuota { path: Option<String> },
    DelQuota { path: String, which: Option<char> },
}

/// A parsing failure: the message to print (a usage line when the syntax is wrong).
#[derive(Debug, PartialEq)]
pub struct Usage(pub String);

fn usage_of(name: &str) -> Usage {
    let line = USAGE.iter().find(|u| u.split_whitespace().next() == Some(name)).copied().unwrap_or(name);
    Usage(format!("Usage: {line}"))
}

/// Splits a command line into words, honouring single and double quotes.
pub fn split_words(line: &str) -> Result<Vec<String>, Usage> {
    let mut words = Vec::new();
    let mut cur = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => cur.push(c),
            (None, '"' | '\'') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut cur));
                    in_word = false;
                }
            }
            (None, c) => {
                cur.push(c);
                in_word = true;
            }
        }
    }
    if quote.is_some() {
        return Err(Usage("unterminated quote".into()));
    }
    if in_word {
        words.push(cur);
    }
    Ok(words)
}

/// Flags (`-s`, `-v 3`) and positional arguments of one command.
struct Args {
    name: &'static str,
    flags: Vec<(char, Option<String>)>,
    rest: Vec<String>,
}

impl Args {
    /// `with_value` lists flags that take a value.
    fn parse(name: &'static str, words: &[String], allowed: &str, with_value: &str) -> Result<Args, Usage> {
        let mut flags = Vec::new();
        let mut rest = Vec::new();
        let mut i = 0;
        while i < words.len() {
            let w = &words[i];
            if w.len() == 2 && w.starts_with('-') && rest.is_empty() {
                let f = w.chars().nth(1).unwrap();
                if !allowed.contains(f) {
                    return Err(usage_of(name));
                }
                if with_value.contains(f) {
                    i += 1;
                    let v = words.get(i).ok_or_else(|| usage_of(name))?;
                    flags.push((f, Some(v.clone())));
                } else {
                    flags.push((f, None));
                }
            } else {
                rest.push(w.clone());
            }
            i += 1;
        }
        Ok(Args { name, flags, rest })
    }

    fn has(&self, f: char) -> bool {
        self.flags.iter().any(|(x, _)| *x == f)
    }

    fn value(&self, f: char) -> Option<&str> {
        self.flags.iter().find(|(x, _)| *x == f).and_then(|(_, v)| v.as_deref())
    }

    fn number<T: std::str::FromStr>(&self, f: char) -> Result<Option<T>, Usage> {
        match self.value(f) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| Usage(format!("{} -{f}: {v:?} is not a number", self.name))),
        }
    }

    fn path(&self, i: usize) -> Result<String, Usage> {
        self.rest.get(i).cloned().ok_or_else(|| usage_of(self.name))
    }

    fn at_most(&self, n: usize) -> Result<(), Usage> {
        if self.rest.len() > n { Err(usage_of(self.name)) } else { Ok(()) }
    }
}

pub fn parse(words: &[String]) -> Result<Cmd, Usage> {
    let Some((name, args)) = words.split_first() else { return Err(Usage(String::new())) };
    let cmd = match name.as_str() {
        "ls" => {
            let a = Args::parse("ls", args, "swR", "")?;
            a.at_most(1)?;
            Cmd::Ls { path: a.path(0)?, stat: a.has('s'), watch: a.has('w'), recursive: a.has('R') }
        }
        "create" => {
            let a = Args::parse("create", args, "sect", "t")?;
            a.at_most(3)?;
            let ttl: Option<i64> = a.number('t')?;
            let (s, e, c) = (a.has('s'), a.has('e'), a.has('c'));
            if c && (s || e) {
                return Err(Usage(
                    "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.".into(),
                ));
            }
            if ttl.is_some() && (e || c) {
                return Err(Usage("TTLs cannot be used with Ephemeral or Container nodes".into()));
            }
            let mode = match (s, e, c, ttl.is_some()) {
                (_, _, true, _) => CreateMode::Container,
                (true, true, _, _) => CreateMode::EphemeralSequential,
                (false, true, _, _) => CreateMode::Ephemeral,
                (true, false, _, true) => CreateMode::PersistentSequentialWithTtl,
                (false, false, _, true) => CreateMode::PersistentWithTtl,
                (true, false, _, false) => CreateMode::PersistentSequential,
                (false, false, _, false) => CreateMode::Persistent,
            };
            let acl = match a.rest.get(2) {
                Some(text) => acl::parse(text).map_err(|e| Usage(e.to_string()))?,
                None => Vec::new(),
            };
            Cmd::Create { path: a.path(0)?, data: a.rest.get(1).cloned().unwrap_or_default(), mode, ttl, acl }
        }
        "get" => {
            let a = Args::parse("get", args, "sw", "")?;
            a.at_most(1)?;
            Cmd::Get { path: a.path(0)?, stat: a.has('s'), watch: a.has('w') }
        }
        "set" => {
            let a = Args::parse("set", args, "sv", "v")?;
            a.at_most(2)?;
            if a.rest.len() < 2 {
                return Err(usage_of("set"));
            }
            Cmd::Set { path: a.path(0)?, data: a.path(1)?, stat: a.has('s'), version: a.number('v')? }
        }
        "delete" => {
            let a = Args::parse("delete", args, "v", "v")?;
            a.at_most(1)?;
            Cmd::Delete { path: a.path(0)?, version: a.number('v')? }
        }
        "deleteall" | "rmr" => {
            let a = Args::parse("deleteall", args, "b", "b")?;
            a.at_most(1)?;
            let batch: usize = a.number('b')?.unwrap_or(1000);
            if batch == 0 {
                return Err(Usage("deleteall -b: the batch size must be positive".into()));
            }
            Cmd::DeleteAll { path: a.path(0)?, batch }
        }
        "stat" => {
            let a = Args::parse("stat", args, "w", "")?;
            a.at_most(1)?;
            Cmd::Stat { path: a.path(0)?, watch: a.has('w') }
        }
        "sync" => {
            let a = Args::parse("sync", args, "", "")?;
            a.at_most(1)?;
            Cmd::Sync { path: a.path(0)? }
        }
        "getEphemerals" => {
            let a = Args::parse("getEphemerals", args, "", "")?;
            a.at_most(1)?;
            Cmd::GetEphemerals { path: a.rest.first().cloned().unwrap_or_else(|| "/".into()) }
        }
        "getAllChildrenNumber" => {
            let a = Args::parse("getAllChildrenNumber", args, "", "")?;
            a.at_most(1)?;
            Cmd::GetAllChildrenNumber { path: a.path(0)? }
        }
        "addWatch" => {
            let a = Args::parse("addWatch", args, "m", "m")?;
            a.at_most(1)?;
            let kind = match a.value('m') {
                None | Some("PERSISTENT_RECURSIVE") => WatchKind::Subtree,
                Some("PERSISTENT") => WatchKind::NodeAndChildren,
                Some(m) => {
                    return Err(Usage(format!(
                        "addWatch -m: mode {m:?} is not one of [PERSISTENT, PERSISTENT_RECURSIVE]"
                    )));
                }
            };
            Cmd::AddWatch { path: a.path(0)?, kind }
        }
        "removewatches" => {
            let a = Args::parse("removewatches", args, "cdal", "")?;
            a.at_most(1)?;
            let which = if a.has('c') {
                'c'
            } else if a.has('d') {
                'd'
            } else {
                'a'
            };
            Cmd::RemoveWatches { path: a.path(0)?, which }
        }
        "printwatches" => match args.first().map(String::as_str) {
            None => Cmd::PrintWatches { on: None },
            Some("on") => Cmd::PrintWatches { on: Some(true) },
            Some("off") => Cmd::PrintWatches { on: Some(false) },
            Some(_) => return Err(usage_of("printwatches")),
        },
        "history" => Cmd::History,
        "redo" => {
            let n = args.first().and_then(|n| n.parse().ok()).ok_or_else(|| usage_of("redo"))?;
            Cmd::Redo { n }
        }
        "connect" => Cmd::Connect { server: args.first().cloned().ok_or_else(|| usage_of("connect"))? },
        "close" => Cmd::Close,
        "version" => Cmd::Version,
        "help" => Cmd::Help,
        "quit" | "exit" => Cmd::Quit,
        "status" => Cmd::Status,
        "members" => Cmd::Members,
        "member" => match args.split_first() {
            Some((sub, rest)) if sub == "add" => {
                let a = Args::parse("member", rest, "oc", "c")?;
                a.at_most(2)?;
                let id = a.path(0)?.parse().map_err(|_| usage_of("member"))?;
                Cmd::MemberAdd {
                    id,
                    peer: a.path(1)?,
                    client: a.value('c').unwrap_or("").to_string(),
                    observer: a.has('o'),
                }
            }
            Some((sub, rest)) if sub == "remove" && rest.len() == 1 => {
                Cmd::MemberRemove { id: rest[0].parse().map_err(|_| usage_of("member"))? }
            }
            _ => return Err(usage_of("member")),
        },
        "transfer-leader" => {
            let to = match args.first() {
                None => 0,
                Some(id) => id.parse().map_err(|_| usage_of("transfer-leader"))?,
            };
            Cmd::TransferLeader { to }
        }
        "getAcl" => {
            let a = Args::parse("getAcl", args, "s", "")?;
            a.at_most(1)?;
            Cmd::GetAcl { path: a.path(0)?, stat: a.has('s') }
        }
        "setAcl" => {
            let a = Args::parse("setAcl", args, "svR", "v")?;
            a.at_most(2)?;
            let acl = acl::parse(&a.path(1)?).map_err(|e| Usage(e.to_string()))?;
            Cmd::SetAcl { path: a.path(0)?, acl, stat: a.has('s'), version: a.number('v')?, recursive: a.has('R') }
        }
        "addauth" => match args {
            [scheme, auth] => Cmd::AddAuth { scheme: scheme.clone(), auth: auth.clone() },
            _ => return Err(usage_of("addauth")),
        },
        "whoami" => Cmd::WhoAmI,
        "setquota" => {
            let a = Args::parse("setquota", args, "nbNB", "nbNB")?;
            a.at_most(1)?;
            if a.flags.is_empty() {
                return Err(usage_of("setquota"));
            }
            let change = QuotaChange {
                count_soft: a.number('n')?,
                bytes_soft: a.number('b')?,
                count_hard: a.number('N')?,
                bytes_hard: a.number('B')?,
            };
            Cmd::SetQuota { path: a.path(0)?, change }
        }
        "listquota" => {
            let a = Args::parse("listquota", args, "", "")?;
            a.at_most(1)?;
            Cmd::ListQuota { path: a.rest.first().cloned() }
        }
        "delquota" => {
            let a = Args::parse("delquota", args, "nbNB", "")?;
            a.at_most(1)?;
            if a.flags.len() > 1 {
                return Err(usage_of("delquota"));
            }
            Cmd::DelQuota { path: a.path(0)?, which: a.flags.first().map(|(f, _)| *f) }
        }
        "digest" => match args {
            [credential] if credential.split_once(':').is_some_and(|(u, _)| !u.is_empty()) => {
                Cmd::Digest { credential: credential.clone() }
            }
            _ => return Err(usage_of("digest")),
        },
        other => return Err(Usage(format!("Command not found: {other}"))),
    };
    Ok(cmd)
}

/// A command's result: text for people, a JSON value for `--json`.
pub struct Output {
    pub text: Option<String>,
    pub json: Value,
}

impl Output {
    fn text(text: impl Into<String>, json: Value) -> Output {
        Output { text: Some(text.into()), json }
    }

    fn silent(json: Value) -> Output {
        Output { text: None, json }
    }
}

/// zkCli's wording for an error.
pub fn error_text(e: &Error) -> String {
    match e {
        Error::NoNode { path } => format!("Node does not exist: {path}"),
        Error::NodeExists { path } => format!("Node already exists: {path}"),
        Error::BadVersion { path, .. } => format!("version No is not valid : {path}"),
        Error::NotEmpty { path } => format!("Node not empty: {path}"),
        Error::NoChildrenForEphemerals { path } => format!("Ephemerals cannot have children: {path}"),
        other => other.to_string(),
    }
}

pub fn error_json(e: &Error) -> Value {
    json!({"error": {"code": e.code().as_str_name(), "message": error_text(e)}})
}

/// What a command needs from the shell it runs in.
pub struct Context {
    pub client: Option<Client>,
    pub server: String,
    /// TLS settings and credentials, kept for `connect`.
    pub dial: Dial,
    pub watches: Option<Watches>,
    pub history: VecDeque<(usize, String)>,
    pub session_timeout: Duration,
}

/// How to reach the servers: TLS settings and digest credentials (`user:password`).
#[derive(Debug, Clone, Default)]
pub struct Dial {
    pub tls: Option<TlsOptions>,
    pub auth: Vec<String>,
}

/// A client for `server` (a connect string), over TLS when settings are given, sending
/// the credentials with every request.
pub fn dial(server: &str, how: &Dial) -> Result<Client, Error> {
    let client = match &how.tls {
        Some(tls) => Client::builder(server).tls(tls.clone()).build()?,
        None => Client::connect(server)?,
    };
    for credential in &how.auth {
        client.add_auth("digest", credential)?;
    }
    Ok(client)
}

impl Context {
    fn client(&self) -> Result<&Client, Error> {
        self.client.as_ref().ok_or_else(|| Error::Client("not connected: use connect host:port".into()))
    }

    /// Adds credentials to the client, and remembers them for later `connect`s.
    fn add_auth(&mut self, scheme: &str, auth: &str) -> Result<(), Error> {
        self.client()?.add_auth(scheme, auth)?;
        self.dial.auth.push(auth.to_string());
        Ok(())
    }

    /// The session, opened on first need (ephemerals need one).
    async fn session_client(&mut self) -> Result<&Client, Error> {
        let c = self.client()?;
        if c.session().is_none() {
            c.open_session(self.session_timeout).await?;
        }
        self.client()
    }
}

/// Runs one command. `Quit`, `History` and `Redo` are handled by the caller.
pub async fn run(ctx: &mut Context, cmd: Cmd) -> Result<Output, Error> {
    match cmd {
        Cmd::Ls { path, stat, watch, recursive } => {
            let c = ctx.client()?;
            if recursive {
                // Breadth-first full paths, the node itself first, as zkCli.
                let mut out = Vec::new();
                let mut queue = VecDeque::from([path.clone()]);
                c.exists(&path).await?.ok_or_else(|| Error::NoNode { path: path.clone() })?;
                while let Some(p) = queue.pop_front() {
                    let children = c.children(&p).await?;
                    for name in children {
                        queue.push_back(join(&p, &name));
                    }
                    out.push(p);
                }
                return Ok(Output::text(out.join("\n"), json!({"paths": out})));
            }
            let page = c.children_with(&path, Consistency::Linearizable, false).await?;
            if watch && let Some(w) = &ctx.watches {
                w.add(WatchSpec::new(&path, WatchKind::Children).one_shot().from_zxid(page.zxid + 1)).await?;
            }
            let mut text = format::list(&page.names);
            let mut j = json!({"path": path, "children": page.names});
            if stat {
                text = format!("{text}\n{}", format::stat(&page.stat));
                j["stat"] = format::stat_json(&page.stat);
            }
            Ok(Output::text(text, j))
        }
        Cmd::Create { path, data, mode, ttl, acl } => {
            let ephemeral = matches!(mode, CreateMode::Ephemeral | CreateMode::EphemeralSequential);
            let c = if ephemeral { ctx.session_client().await? } else { ctx.client()? };
            let opts = CreateOptions {
                mode,
                ttl: ttl.map(|t| Duration::from_millis(t.max(0) as u64)),
                create_parents: false,
                acl,
            };
            if ttl.is_some_and(|t| t <= 0) {
                return Err(Error::BadArguments {
                    message: "create -t: the TTL must be a positive number of ms".into(),
                });
            }
            let (created, stat) = c.create(&path, data.into_bytes(), &opts).await?;
            Ok(Output::text(format!("Created {created}"), json!({"path": created, "stat": format::stat_json(&stat)})))
        }
        Cmd::Get { path, stat, watch } => {
            let c = ctx.client()?;
            let (data, st, zxid) = c.get_at(&path, Consistency::Linearizable).await?;
            if watch && let Some(w) = &ctx.watches {
                w.add(WatchSpec::new(&path, WatchKind::Node).one_shot().from_zxid(zxid + 1)).await?;
            }
            let mut text = String::from_utf8_lossy(&data).into_owned();
            let (key, value) = format::data_json(&data);
            let mut j = json!({"path": path});
            j[key] = value;
            if stat {
                text = format!("{text}\n{}", format::stat(&st));
            }
            j["stat"] = format::stat_json(&st);
            Ok(Output::text(text, j))
        }
        Cmd::Set { path, data, stat, version } => {
            let st = ctx.client()?.set(&path, data.into_bytes(), version).await?;
            let j = json!({"path": path, "stat": format::stat_json(&st)});
            Ok(if stat { Output::text(format::stat(&st), j) } else { Output::silent(j) })
        }
        Cmd::Delete { path, version } => {
            ctx.client()?.delete(&path, version).await?;
            Ok(Output::silent(json!({"path": path, "deleted": true})))
        }
        Cmd::DeleteAll { path, batch } => {
            let n = delete_all(ctx.client()?, &path, batch).await?;
            Ok(Output::silent(json!({"path": path, "deleted": n})))
        }
        Cmd::Stat { path, watch } => {
            let c = ctx.client()?;
            let (st, zxid) = c.exists_at(&path, Consistency::Linearizable).await?;
            if watch && let Some(w) = &ctx.watches {
                w.add(WatchSpec::new(&path, WatchKind::Node).one_shot().from_zxid(zxid + 1)).await?;
            }
            let st = st.ok_or_else(|| Error::NoNode { path: path.clone() })?;
            Ok(Output::text(format::stat(&st), json!({"path": path, "stat": format::stat_json(&st)})))
        }
        Cmd::Sync { path } => {
            let zxid = ctx.client()?.sync(&path).await?;
            Ok(Output::text("Sync is OK", json!({"path": path, "zxid": zxid})))
        }
        Cmd::GetEphemerals { path } => {
            let paths = ctx.session_client().await?.ephemerals(&path).await?;
            Ok(Output::text(format::list(&paths), json!({"paths": paths})))
        }
        Cmd::GetAllChildrenNumber { path } => {
            let n = ctx.client()?.count_descendants(&path).await?;
            Ok(Output::text(n.to_string(), json!({"path": path, "count": n})))
        }
        Cmd::AddWatch { path, kind } => {
            let c = ctx.client()?;
            let Some(w) = &ctx.watches else {
                return Err(Error::Client("watches need the interactive shell".into()));
            };
            let zxid = c.sync(&path).await?;
            w.add(WatchSpec::new(&path, kind).from_zxid(zxid + 1)).await?;
            Ok(Output::silent(json!({"path": path, "watching": true})))
        }
        Cmd::RemoveWatches { path, which } => {
            let Some(w) = &ctx.watches else { return Ok(Output::silent(json!({"removed": 0}))) };
            let n = w.remove(&path, which).await?;
            if n == 0 {
                return Err(Error::Client(format!("No watcher found for path: {path}")));
            }
            Ok(Output::silent(json!({"path": path, "removed": n})))
        }
        Cmd::PrintWatches { on } => {
            let Some(w) = &ctx.watches else { return Ok(Output::silent(json!({}))) };
            let state = match on {
                Some(v) => {
                    w.set_printing(v);
                    v
                }
                None => w.printing(),
            };
            let word = if state { "on" } else { "off" };
            Ok(Output::text(format!("printwatches is {word}"), json!({"printwatches": state})))
        }
        Cmd::Connect { server } => {
            if let Some(old) = ctx.client.take() {
                let _ = old.close_session().await;
            }
            let client = dial(&server, &ctx.dial)?;
            client.open_session(ctx.session_timeout).await?;
            ctx.server = server.clone();
            if let Some(w) = &ctx.watches {
                w.reconnect(client.clone());
            }
            ctx.client = Some(client);
            Ok(Output::silent(json!({"connected": server})))
        }
        Cmd::Close => {
            if let Some(c) = ctx.client.take() {
                c.close_session().await?;
            }
            Ok(Output::silent(json!({"closed": true})))
        }
        Cmd::Version => {
            let v = env!("CARGO_PKG_VERSION");
            Ok(Output::text(format!("Grove CLI version: {v}"), json!({"version": v})))
        }
        Cmd::Help => {
            let text = std::iter::once("Grove -server host:port cmd args".to_string())
                .chain(USAGE.iter().map(|u| format!("\t{u}")))
                .collect::<Vec<_>>()
                .join("\n");
            Ok(Output::text(text, json!({"commands": USAGE})))
        }
        Cmd::Status => status(ctx.client()?).await,
        Cmd::Members => Ok(members_output(&ctx.client()?.members().await?)),
        Cmd::MemberAdd { id, peer, client, observer } => {
            let members = ctx.client()?.add_member(id, &peer, &client, observer).await?;
            Ok(members_output(&members))
        }
        Cmd::MemberRemove { id } => {
            let members = ctx.client()?.remove_member(id).await?;
            Ok(members_output(&members))
        }
        Cmd::TransferLeader { to } => {
            let leader = ctx.client()?.transfer_leader(to).await?;
            Ok(Output::text(format!("Leader: {leader}"), json!({"leader_id": leader})))
        }
        Cmd::GetAcl { path, stat } => {
            let (acl, st) = ctx.client()?.get_acl(&path).await?;
            let mut text = acl::format(&acl);
            if stat {
                text = format!("{text}\n{}", format::stat(&st));
            }
            Ok(Output::text(text, json!({"path": path, "acl": acl_json(&acl), "stat": format::stat_json(&st)})))
        }
        Cmd::SetAcl { path, acl, stat, version, recursive } => {
            let c = ctx.client()?;
            // zkCli's -R: every descendant too, top down, each without a version check. A
            // node's children are listed before its ACL changes: the new ACL may not let the
            // caller list them any more.
            let list = |p: String| async move {
                if !recursive {
                    return Ok(Vec::new());
                }
                match c.children(&p).await {
                    Ok(names) => Ok(names.iter().map(|n| join(&p, n)).collect()),
                    Err(Error::NoNode { .. }) => Ok(Vec::new()),
                    Err(e) => Err(e),
                }
            };
            let mut queue: VecDeque<String> = list(path.clone()).await?.into();
            let st = c.set_acl(&path, acl.clone(), version).await?;
            let mut count = 1;
            while let Some(p) = queue.pop_front() {
                let below = list(p.clone()).await?;
                match c.set_acl(&p, acl.clone(), None).await {
                    Ok(_) => count += 1,
                    Err(Error::NoNode { .. }) => continue,
                    Err(e) => return Err(e),
                }
                queue.extend(below);
            }
            let j = json!({"path": path, "updated": count, "stat": format::stat_json(&st)});
            Ok(if stat { Output::text(format::stat(&st), j) } else { Output::silent(j) })
        }
        Cmd::AddAuth { scheme, auth } => {
            ctx.add_auth(&scheme, &auth)?;
            Ok(Output::silent(json!({"scheme": scheme, "added": true})))
        }
        Cmd::WhoAmI => {
            let who = ctx.client()?.who_am_i().await?;
            let mut lines: Vec<String> =
                who.identities.iter().map(|i| format!("user: {}\nscheme: {}", i.id, i.scheme)).collect();
            if lines.is_empty() {
                lines.push("user: anyone\nscheme: world".into());
            }
            if who.superuser {
                lines.push("super user: yes".into());
            }
            let ids: Vec<Value> = who.identities.iter().map(|i| json!({"scheme": i.scheme, "id": i.id})).collect();
            Ok(Output::text(lines.join("\n"), json!({"identities": ids, "superuser": who.superuser})))
        }
        Cmd::Digest { credential } => {
            let (user, password) = credential.split_once(':').unwrap_or((&credential, ""));
            let id = acl::digest(user, password);
            Ok(Output::text(id.clone(), json!({"digest": id})))
        }
        Cmd::SetQuota { path, change } => {
            let q = ctx.client()?.set_quota(&path, change).await?;
            Ok(Output::silent(json!({"path": path, "quota": q.map(|q| quota_json(&q))})))
        }
        Cmd::DelQuota { path, which } => {
            let c = ctx.client()?;
            let none = Some(grove_client::quotas::NONE);
            let change = match which {
                None => {
                    c.delete_quota(&path).await?;
                    return Ok(Output::silent(json!({"path": path, "quota": null})));
                }
                Some('n') => QuotaChange { count_soft: none, ..Default::default() },
                Some('b') => QuotaChange { bytes_soft: none, ..Default::default() },
                Some('N') => QuotaChange { count_hard: none, ..Default::default() },
                Some(_) => QuotaChange { bytes_hard: none, ..Default::default() },
            };
            let q = c.set_quota(&path, change).await?;
            Ok(Output::silent(json!({"path": path, "quota": q.map(|q| quota_json(&q))})))
        }
        Cmd::ListQuota { path } => {
            let c = ctx.client()?;
            let found = match &path {
                Some(p) => c.get_quota(p).await?.into_iter().collect(),
                None => c.list_quotas().await?,
            };
            if found.is_empty() {
                let what = path.as_deref().map(|p| format!("quota for {p} does not exist.")).unwrap_or_default();
                return Ok(Output::text(what, json!({"quotas": []})));
            }
            // zkCli's two lines per quota: the limits, then the usage.
            let text = found
                .iter()
                .map(|(p, q)| {
                    format!(
                        "Output quota for {p} count={},bytes={},countHardLimit={},byteHardLimit={}\nOutput stat for {p} count={},bytes={}",
                        q.count_soft, q.bytes_soft, q.count_hard, q.bytes_hard, q.count, q.bytes
                    )
                })
                .collect::<Vec<_>>()
                .join("\n");
            let j: Vec<Value> = found.iter().map(|(p, q)| json!({"path": p, "quota": quota_json(q)})).collect();
            Ok(Output::text(text, json!({"quotas": j})))
        }
        Cmd::History | Cmd::Redo { .. } | Cmd::Quit => Ok(Output::silent(json!({}))),
    }
}

fn quota_json(q: &Quota) -> Value {
    json!({
        "count_soft": q.count_soft,
        "bytes_soft": q.bytes_soft,
        "count_hard": q.count_hard,
        "bytes_hard": q.bytes_hard,
        "count": q.count,
        "bytes": q.bytes,
    })
}

fn acl_json(acl: &[Acl]) -> Value {
    acl.iter().map(|a| json!({"scheme": a.scheme, "id": a.id, "perms": acl::perms_text(a.perms)})).collect()
}

/// One line per member: `id role peer=... client=... [leader]`.
fn members_output(members: &[grove_client::proto::Member]) -> Output {
    let text = members
        .iter()
        .map(|m| {
            let role = if m.role == MemberRole::Voter as i32 { "voter" } else { "observer" };
            let leader = if m.is_leader { " leader" } else { "" };
            format!("{} {role} peer={} client={}{leader}", m.id, m.peer_address, m.client_address)
        })
        .collect::<Vec<_>>()
        .join("\n");
    Output::text(text, json!({"members": members.iter().map(member_json).collect::<Vec<_>>()}))
}

fn member_json(m: &grove_client::proto::Member) -> Value {
    json!({
        "id": m.id,
        "role": if m.role == MemberRole::Voter as i32 { "voter" } else { "observer" },
        "peer_address": m.peer_address,
        "client_address": m.client_address,
        "is_leader": m.is_leader,
        "matched_index": m.matched_index,
        "lag": m.lag,
    })
}

/// `Mode: standalone|leader|follower|observer`, like `zkServer.sh status`, then details.
async fn status(c: &Client) -> Result<Output, Error> {
    let s = c.status().await?;
    let mode = match s.mode() {
        ServerMode::Standalone => "standalone",
        ServerMode::Leader => "leader",
        ServerMode::Follower => "follower",
        ServerMode::Observer => "observer",
        ServerMode::Candidate => "candidate (no leader)",
        ServerMode::NotAMember => "not a member",
        ServerMode::Unspecified => "unknown",
    };
    let leader = if s.leader_id == 0 { "none".to_string() } else { format!("{} {}", s.leader_id, s.leader_address) };
    let mut text = format!(
        "Mode: {mode}\nServer id: {}\nZxid: 0x{:x}\nTerm: {}\nLeader: {leader}\nQuorum: {}\nReady: {}\nNodes: {}\nSessions: {}\nWatches: {}\nMembers:",
        s.server_id,
        s.zxid,
        s.term,
        if s.quorum { "yes" } else { "no" },
        s.ready,
        s.node_count,
        s.session_count,
        s.watch_count
    );
    for m in &s.members {
        let role = if m.role == MemberRole::Voter as i32 { "voter" } else { "observer" };
        let leader = if m.is_leader { " (leader)" } else { "" };
        text.push_str(&format!("\n  {} {role} {}{leader}", m.id, m.peer_address));
    }
    if !s.failure.is_empty() {
        text.push_str(&format!("\nFailure: {}", s.failure));
    }
    let j = json!({
        "mode": mode.split(' ').next().unwrap_or(mode),
        "server_id": s.server_id,
        "zxid": s.zxid,
        "term": s.term,
        "leader_id": s.leader_id,
        "leader_address": s.leader_address,
        "ready": s.ready,
        "quorum": s.quorum,
        "failure": s.failure,
        "node_count": s.node_count,
        "session_count": s.session_count,
        "watch_count": s.watch_count,
        "members": s.members.iter().map(member_json).collect::<Vec<_>>(),
    });
    Ok(Output::text(text, j))
}

fn join(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

/// Deletes a subtree, deepest nodes first, in multis of `batch` operations.
async fn delete_all(c: &Client, path: &str, batch: usize) -> Result<usize, Error> {
    let mut order = Vec::new();
    let mut queue = VecDeque::from([path.to_string()]);
    while let Some(p) = queue.pop_front() {
        match c.children(&p).await {
            Ok(children) => queue.extend(children.iter().map(|n| join(&p, n))),
            Err(Error::NoNode { .. }) if p != path => continue,
            Err(e) => return Err(e),
        }
        order.push(p);
    }
    if path == "/" {
        order.retain(|p| p != "/");
    }
    let total = order.len();
    order.reverse();
    for chunk in order.chunks(batch) {
        let ops: Vec<Op> = chunk.iter().map(|p| Op::Delete { path: p.clone(), version: None }).collect();
        if let Err((i, e)) = c.multi(&ops).await? {
            match e {
                // Someone else deleted it meanwhile: go on one by one.
                Error::NoNode { .. } => {
                    for p in &chunk[i..] {
                        match c.delete(p, None).await {
                            Ok(()) | Err(Error::NoNode { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                e => return Err(e),
            }
        }
    }
    Ok(total)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Cmd, Usage> {
        parse(&split_words(line).unwrap())
    }

    #[test]
    fn parses_zkcli_syntax() {
        assert_eq!(
            p("create -s -e /app/x hehe").unwrap(),
            Cmd::Create {
                path: "/app/x".into(),
                data: "hehe".into(),
                mode: CreateMode::EphemeralSequential,
                ttl: None,
                acl: vec![]
            }
        );
        assert_eq!(
            p("create -t 3000 /t").unwrap(),
            Cmd::Create {
                path: "/t".into(),
                data: "".into(),
                mode: CreateMode::PersistentWithTtl,
                ttl: Some(3000),
                acl: vec![]
            }
        );
        assert_eq!(
            p("set -v 3 /a 'hello world'").unwrap(),
            Cmd::Set { path: "/a".into(), data: "hello world".into(), stat: false, version: Some(3) }
        );
        assert_eq!(p("ls -s -R /").unwrap(), Cmd::Ls { path: "/".into(), stat: true, watch: false, recursive: true });
        assert_eq!(
            p("addWatch -m PERSISTENT /a").unwrap(),
            Cmd::AddWatch { path: "/a".into(), kind: WatchKind::NodeAndChildren }
        );
        assert_eq!(p("getEphemerals").unwrap(), Cmd::GetEphemerals { path: "/".into() });
        let Cmd::Create { acl, .. } = p("create /x data world:anyone:r,auth::cdrwa").unwrap() else { panic!() };
        assert_eq!(acl, vec![acl::entry("world", "anyone", 1), acl::entry("auth", "", 31)]);
        assert_eq!(
            p("setAcl -R -v 2 /x ip:10.0.0.0/8:rw").unwrap(),
            Cmd::SetAcl {
                path: "/x".into(),
                acl: vec![acl::entry("ip", "10.0.0.0/8", 3)],
                stat: false,
                version: Some(2),
                recursive: true
            }
        );
        assert_eq!(p("addauth digest u:p").unwrap(), Cmd::AddAuth { scheme: "digest".into(), auth: "u:p".into() });
        assert_eq!(
            p("setquota -n 10 -B 4096 /q").unwrap(),
            Cmd::SetQuota {
                path: "/q".into(),
                change: QuotaChange { count_soft: Some(10), bytes_hard: Some(4096), ..Default::default() }
            }
        );
        assert_eq!(p("delquota -N /q").unwrap(), Cmd::DelQuota { path: "/q".into(), which: Some('N') });
        assert_eq!(p("listquota").unwrap(), Cmd::ListQuota { path: None });
    }

    #[test]
    fn rejects_bad_syntax_with_usage() {
        assert_eq!(p("get").unwrap_err().0, "Usage: get [-s] [-w] path");
        assert!(p("create -c -e /x").unwrap_err().0.contains("cannot be combined"));
        assert!(p("create -e -t 5 /x").unwrap_err().0.contains("TTL"));
        assert!(p("delete -v x /a").unwrap_err().0.contains("not a number"));
        assert!(p("set /a").unwrap_err().0.starts_with("Usage: set"));
        assert_eq!(p("frobnicate /").unwrap_err().0, "Command not found: frobnicate");
        assert!(p("addWatch -m WEIRD /a").is_err());
        assert!(split_words("get '/a").is_err());
        assert!(p("create /x d world:anyone:q").unwrap_err().0.contains("permission"));
        assert!(p("setAcl /x").unwrap_err().0.starts_with("Usage: setAcl"));
        assert!(p("addauth digest").is_err());
        assert!(p("digest nocolon").is_err());
        assert!(p("setquota /x").unwrap_err().0.starts_with("Usage: setquota"));
        assert!(p("setquota -n many /x").unwrap_err().0.contains("not a number"));
        assert!(p("delquota -n -b /x").is_err());
    }
}
