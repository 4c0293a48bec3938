//! Parsing every command's documented forms, zkCli's flag habits (bundled, after the path),
//! usage errors, and the help generated from the declarations.

use grove_client::{CreateMode, QuotaChange, WatchKind, acl};

use super::args::Acls;
use super::*;

fn p(line: &str) -> Result<Command, Usage> {
    parse(&split_words(line).unwrap())
}

fn ok(line: &str) -> Command {
    p(line).unwrap_or_else(|u| panic!("{line:?}: {}", u.0))
}

fn usage_of(line: &str) -> String {
    match p(line) {
        Ok(c) => panic!("{line:?} parsed: {c:?}"),
        Err(u) => u.0,
    }
}

fn create(line: &str) -> create::Create {
    match ok(line) {
        Command::Create(c) => c,
        other => panic!("{other:?}"),
    }
}

#[test]
fn bundled_short_flags() {
    let c = create("create -es /p x");
    assert_eq!(c.mode(), CreateMode::EphemeralSequential);
    assert_eq!((c.path.as_str(), c.data.as_str()), ("/p", "x"));
    assert_eq!(create("create -se /p").mode(), CreateMode::EphemeralSequential);
    assert_eq!(ok("get -sw /p"), Command::Get(get::Get { stat: true, watch: true, path: "/p".into() }));
    assert_eq!(ok("ls -sR /p"), Command::Ls(ls::Ls { stat: true, watch: false, recursive: true, path: "/p".into() }));
    assert_eq!(
        ok("setAcl -sR /x world:anyone:r"),
        Command::SetAcl(set_acl::SetAcl {
            stat: true,
            version: None,
            recursive: true,
            path: "/x".into(),
            acl: Acls(vec![acl::entry("world", "anyone", 1)]),
        })
    );
    // A value may be glued to its flag, as in zkCli.
    assert_eq!(create("create -st3000 /t").mode(), CreateMode::PersistentSequentialWithTtl);
    assert_eq!(create("create -st3000 /t").ttl, Some(3000));
}

#[test]
fn flags_after_the_path() {
    assert_eq!(ok("ls /p -R"), Command::Ls(ls::Ls { stat: false, watch: false, recursive: true, path: "/p".into() }));
    assert_eq!(ok("ls /p -w -s"), ok("ls -s -w /p"));
    assert_eq!(ok("deleteall /p -b 10"), Command::DeleteAll(deleteall::DeleteAll { path: "/p".into(), batch: 10 }));
    assert_eq!(ok("rmr /p -b 10"), ok("deleteall -b 10 /p"));
    let Command::RemoveWatches(r) = ok("removewatches /p -a") else { panic!() };
    assert_eq!((r.path.as_str(), r.which()), ("/p", 'a'));
    let Command::RemoveWatches(r) = ok("removewatches /p -c") else { panic!() };
    assert_eq!(r.which(), 'c');
    let Command::RemoveWatches(r) = ok("removewatches /p -d") else { panic!() };
    assert_eq!(r.which(), 'd');
    let Command::RemoveWatches(r) = ok("removewatches /p") else { panic!() };
    assert_eq!(r.which(), 'a');
    assert_eq!(create("create /p x -e").mode(), CreateMode::Ephemeral);
    assert_eq!(ok("set /a x -v 3"), ok("set -v 3 /a x"));
    assert_eq!(ok("get /a -s"), ok("get -s /a"));
    assert_eq!(ok("stat /a -w"), Command::Stat(stat::Stat { watch: true, path: "/a".into() }));
    assert_eq!(ok("setquota /q -n 10"), ok("setquota -n 10 /q"));
    assert_eq!(ok("delquota /q -N"), ok("delquota -N /q"));
    assert_eq!(ok("addWatch /a -m PERSISTENT"), ok("addWatch -m PERSISTENT /a"));
}

#[test]
fn node_commands_parse_their_documented_forms() {
    let c = create("create -s -e /app/x hehe");
    assert_eq!(
        (c.mode(), c.path.as_str(), c.data.as_str(), c.acl.clone()),
        (CreateMode::EphemeralSequential, "/app/x", "hehe", None)
    );
    let c = create("create -t 3000 /t");
    assert_eq!((c.mode(), c.ttl, c.data.as_str()), (CreateMode::PersistentWithTtl, Some(3000), ""));
    assert_eq!(create("create -c /c").mode(), CreateMode::Container);
    assert_eq!(create("create -s /s").mode(), CreateMode::PersistentSequential);
    assert_eq!(create("create /p").mode(), CreateMode::Persistent);
    let c = create("create /x data world:anyone:r,auth::cdrwa");
    assert_eq!(c.acl, Some(Acls(vec![acl::entry("world", "anyone", 1), acl::entry("auth", "", 31)])));
    // A TTL that is not positive is the server-side check's (exit 1), not a usage error.
    assert_eq!(create("create -t -5 /t").ttl, Some(-5));

    assert_eq!(ok("get /a"), Command::Get(get::Get { stat: false, watch: false, path: "/a".into() }));
    assert_eq!(
        ok("set -v 3 /a 'hello world'"),
        Command::Set(set::Set { stat: false, version: Some(3), path: "/a".into(), data: "hello world".into() })
    );
    assert_eq!(
        ok("set -s /a -- -dashed"),
        Command::Set(set::Set { stat: true, version: None, path: "/a".into(), data: "-dashed".into() })
    );
    assert_eq!(ok("set -v -1 /a x"), ok("set /a x -v -1"));
    assert_eq!(ok("delete /a"), Command::Delete(delete::Delete { version: None, path: "/a".into() }));
    assert_eq!(ok("delete -v 7 /a"), Command::Delete(delete::Delete { version: Some(7), path: "/a".into() }));
    assert_eq!(ok("deleteall /p"), Command::DeleteAll(deleteall::DeleteAll { path: "/p".into(), batch: 1000 }));
    assert_eq!(ok("stat /a"), Command::Stat(stat::Stat { watch: false, path: "/a".into() }));
    assert_eq!(ok("sync /"), Command::Sync(sync::Sync { path: "/".into() }));
    assert_eq!(ok("getEphemerals"), Command::GetEphemerals(get_ephemerals::GetEphemerals { path: "/".into() }));
    assert_eq!(ok("getEphemerals /app"), Command::GetEphemerals(get_ephemerals::GetEphemerals { path: "/app".into() }));
    assert_eq!(
        ok("getAllChildrenNumber /"),
        Command::GetAllChildrenNumber(get_all_children_number::GetAllChildrenNumber { path: "/".into() })
    );
}

#[test]
fn watch_acl_quota_and_shell_commands_parse_their_documented_forms() {
    assert_eq!(
        ok("addWatch -m PERSISTENT /a"),
        Command::AddWatch(add_watch::AddWatch { kind: WatchKind::NodeAndChildren, path: "/a".into() })
    );
    assert_eq!(
        ok("addWatch /a"),
        Command::AddWatch(add_watch::AddWatch { kind: WatchKind::Subtree, path: "/a".into() })
    );
    assert_eq!(ok("addWatch -m PERSISTENT_RECURSIVE /a"), ok("addWatch /a"));
    assert_eq!(ok("printwatches"), Command::PrintWatches(print_watches::PrintWatches { switch: None }));
    assert_eq!(
        ok("printwatches off"),
        Command::PrintWatches(print_watches::PrintWatches { switch: Some(print_watches::Switch::Off) })
    );
    assert_eq!(ok("getAcl -s /x"), Command::GetAcl(get_acl::GetAcl { stat: true, path: "/x".into() }));
    assert_eq!(
        ok("setAcl -R -v 2 /x ip:10.0.0.0/8:rw"),
        Command::SetAcl(set_acl::SetAcl {
            stat: false,
            version: Some(2),
            recursive: true,
            path: "/x".into(),
            acl: Acls(vec![acl::entry("ip", "10.0.0.0/8", 3)]),
        })
    );
    assert_eq!(
        ok("addauth digest u:p"),
        Command::AddAuth(addauth::AddAuth { scheme: "digest".into(), auth: "u:p".into() })
    );
    assert_eq!(ok("whoami"), Command::WhoAmI(whoami::WhoAmI {}));
    assert_eq!(ok("digest alice:pw"), Command::Digest(digest::Digest { credential: "alice:pw".into() }));
    let Command::SetQuota(q) = ok("setquota -n 10 -B 4096 /q") else { panic!() };
    assert_eq!(q.change(), QuotaChange { count_soft: Some(10), bytes_hard: Some(4096), ..Default::default() });
    assert_eq!(q.path, "/q");
    let Command::SetQuota(q) = ok("setquota -N -1 -b 8 /q") else { panic!() };
    assert_eq!(q.change(), QuotaChange { count_hard: Some(-1), bytes_soft: Some(8), ..Default::default() });
    let Command::DelQuota(d) = ok("delquota -N /q") else { panic!() };
    assert_eq!(d.change(), Some(QuotaChange { count_hard: Some(grove_client::quotas::NONE), ..Default::default() }));
    let Command::DelQuota(d) = ok("delquota /q") else { panic!() };
    assert_eq!(d.change(), None);
    assert_eq!(ok("listquota"), Command::ListQuota(listquota::ListQuota { path: None }));
    assert_eq!(ok("listquota /q"), Command::ListQuota(listquota::ListQuota { path: Some("/q".into()) }));

    assert_eq!(ok("history"), Command::History(history::History {}));
    assert_eq!(ok("redo 12"), Command::Redo(redo::Redo { n: 12 }));
    assert_eq!(ok("connect 127.0.0.1:7182"), Command::Connect(connect::Connect { server: "127.0.0.1:7182".into() }));
    assert_eq!(ok("close"), Command::Close(close::Close {}));
    assert_eq!(ok("version"), Command::Version(version::Version {}));
    assert_eq!(ok("help"), Command::Help(help::Help { command: None }));
    assert_eq!(ok("help ls"), Command::Help(help::Help { command: Some("ls".into()) }));
    assert_eq!(ok("quit"), Command::Quit(quit::Quit {}));
    assert_eq!(ok("exit"), Command::Quit(quit::Quit {}));
}

#[test]
fn cluster_and_coordination_commands_parse_their_documented_forms() {
    assert_eq!(ok("status"), Command::Status(status::Status {}));
    assert_eq!(ok("members"), Command::Members(members::Members {}));
    assert_eq!(
        ok("member add -o -c 127.0.0.1:7184 4 127.0.0.1:7284"),
        Command::Member(member::Member {
            change: member::Change::Add {
                observer: true,
                client: "127.0.0.1:7184".into(),
                id: 4,
                peer: "127.0.0.1:7284".into()
            }
        })
    );
    assert_eq!(ok("member add 4 127.0.0.1:7284 -o"), ok("member add -o 4 127.0.0.1:7284"));
    assert_eq!(ok("member remove 2"), Command::Member(member::Member { change: member::Change::Remove { id: 2 } }));
    assert_eq!(ok("transfer-leader"), Command::TransferLeader(transfer_leader::TransferLeader { id: None }));
    assert_eq!(ok("transfer-leader 3"), Command::TransferLeader(transfer_leader::TransferLeader { id: Some(3) }));

    let lock = |line| match ok(line) {
        Command::Lock(l) => (l.timeout, l.path, l.command),
        other => panic!("{other:?}"),
    };
    assert_eq!(lock("lock /l"), (None, "/l".into(), vec![]));
    assert_eq!(lock("lock -t 300 /l"), (Some(300), "/l".into(), vec![]));
    assert_eq!(lock("lock /l -- sh -c 'exit 3'"), (None, "/l".into(), vec!["sh".into(), "-c".into(), "exit 3".into()]));
    // Without `--`, everything after the path is the command, its flags included.
    assert_eq!(lock("lock /l ls -l /tmp"), (None, "/l".into(), vec!["ls".into(), "-l".into(), "/tmp".into()]));
    assert_eq!(
        ok("election -t 500 web host-a"),
        Command::Election(election::Election {
            listen: false,
            timeout: Some(500),
            name: "web".into(),
            value: Some("host-a".into())
        })
    );
    assert_eq!(
        ok("election -l web"),
        Command::Election(election::Election { listen: true, timeout: None, name: "web".into(), value: None })
    );
}

#[test]
fn usage_errors_print_the_usage_line() {
    assert_eq!(usage_of("get"), "Usage: get [-s] [-w] path");
    assert_eq!(usage_of("get -x /a"), "Usage: get [-s] [-w] path");
    assert_eq!(usage_of("get /a /b"), "Usage: get [-s] [-w] path");
    assert_eq!(usage_of("ls"), "Usage: ls [-s] [-w] [-R] path");
    assert_eq!(usage_of("set /a"), "Usage: set [-s] [-v version] path data");
    assert_eq!(usage_of("setAcl /x"), "Usage: setAcl [-s] [-v version] [-R] path acl");
    assert_eq!(usage_of("addauth digest"), "Usage: addauth scheme auth # scheme digest, auth user:password");
    let digest = "Usage: digest user:password # prints the digest id for ACLs and --super-digest";
    assert_eq!(usage_of("digest nocolon"), digest);
    assert_eq!(usage_of("digest :pw"), digest);
    let setquota = "Usage: setquota -n|-b|-N|-B val path # n/b: soft node count/bytes, N/B: hard (-1: none)";
    assert_eq!(usage_of("setquota /x"), setquota);
    assert_eq!(usage_of("delquota -n -b /x"), "Usage: delquota [-n|-b|-N|-B] path");
    assert_eq!(usage_of("printwatches maybe"), "Usage: printwatches on|off");
    assert_eq!(usage_of("redo"), "Usage: redo cmdno");
    assert_eq!(usage_of("redo x"), "Usage: redo cmdno");
    assert_eq!(usage_of("connect"), "Usage: connect host:port");
    assert_eq!(usage_of("transfer-leader x"), "Usage: transfer-leader [id]");
    let member = "Usage: member add [-o] [-c client-host:port] id peer-host:port\n       member remove id";
    assert_eq!(usage_of("member"), member);
    assert_eq!(usage_of("member add x 127.0.0.1:7284"), member);
    assert_eq!(usage_of("member remove"), member);
    assert_eq!(usage_of("member frob"), member);
    assert_eq!(usage_of("history now"), "Usage: history");
    assert_eq!(usage_of("lock"), "Usage: grove lock [-t timeoutMs] path [-- command args...]");
    let election = "Usage: grove election [-t timeoutMs] name value | grove election -l name";
    assert_eq!(usage_of("election only-a-name"), election);
    assert_eq!(usage_of("election -l web value"), election);
    // No command has -h: `help COMMAND` documents it.
    assert_eq!(usage_of("ls -h"), "Usage: ls [-s] [-w] [-R] path");
}

#[test]
fn bad_values_name_the_flag_then_show_the_usage() {
    assert_eq!(usage_of("delete -v x /a"), "delete -v: \"x\" is not a number\nUsage: delete [-v version] path");
    assert_eq!(
        usage_of("setquota -n many /x"),
        "setquota -n: \"many\" is not a number\nUsage: setquota -n|-b|-N|-B val path # n/b: soft node count/bytes, N/B: hard (-1: none)"
    );
    assert!(usage_of("lock -t x /l").starts_with("lock -t: \"x\" is not a number\nUsage: grove lock"));
    assert_eq!(
        usage_of("deleteall /p -b 0"),
        "deleteall -b: the batch size must be positive\nUsage: deleteall path [-b batch size]"
    );
    assert_eq!(
        usage_of("addWatch -m WEIRD /a"),
        "addWatch -m: mode \"WEIRD\" is not one of [PERSISTENT, PERSISTENT_RECURSIVE]\nUsage: addWatch [-m mode] \
         path # optional mode is one of [PERSISTENT, PERSISTENT_RECURSIVE] - default is PERSISTENT_RECURSIVE"
    );
    assert!(usage_of("create /x d world:anyone:q").contains("permission"));
    assert!(usage_of("create /x d nonsense").starts_with("ACL entry \"nonsense\" is not scheme:id:perms\n"));
    // zkCli's own messages for flags that do not go together.
    assert!(usage_of("create -c -e /x").starts_with("-c cannot be combined with -s or -e."));
    assert!(usage_of("create -ce /x").contains("cannot be combined"));
    assert!(usage_of("create -e -t 5 /x").starts_with("TTLs cannot be used with Ephemeral or Container nodes\n"));
    assert_eq!(usage_of("frobnicate /"), "Command not found: frobnicate");
    assert_eq!(usage_of("-server"), "Command not found: -server");
    assert_eq!(split_words("get '/a").unwrap_err().0, "unterminated quote");
    assert_eq!(p("").unwrap_err().0, "");
}

/// `help` before the commands had their own files; every line must still be there.
const ZKCLI_HELP: &[&str] = &[
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

#[test]
fn help_lists_every_command_from_its_declaration() {
    let lines = help_lines();
    for old in ZKCLI_HELP {
        assert!(lines.iter().any(|l| l == old), "{old:?} missing from {lines:#?}");
    }
    for entry in TABLE {
        let name = entry.name();
        let shown = lines.iter().any(|l| l.split_whitespace().find(|w| *w != "grove") == Some(name.as_str()));
        assert!(shown, "{name} missing from help: {lines:#?}");
    }
    // zkCli's order, the old lines in their old order.
    let old_order: Vec<&String> = lines.iter().filter(|l| ZKCLI_HELP.contains(&l.as_str())).collect();
    assert_eq!(old_order, ZKCLI_HELP.iter().collect::<Vec<_>>());
    assert!(lines.contains(&"help [command]".to_string()));
    assert!(lines.contains(&"whoami".to_string()));
    assert!(lines.contains(&"grove lock [-t timeoutMs] path [-- command args...]".to_string()));
    assert!(lines.contains(&"grove election [-t timeoutMs] name value | grove election -l name".to_string()));

    // A usage error shows the line help shows.
    for entry in TABLE {
        let usage = args::usage(&(entry.declare)());
        let first = &entry.help_lines()[0];
        assert!(usage.starts_with(&format!("Usage: {first}")), "{usage:?} vs {first:?}");
    }
}

#[test]
fn help_output_and_help_for_one_command() {
    let out = futures::executor::block_on(async {
        let mut ctx = test_context();
        let all = ok("help").run(&mut ctx).await.unwrap();
        let one = ok("help create").run(&mut ctx).await.unwrap();
        let missing = ok("help frob").run(&mut ctx).await.err().unwrap();
        (all, one, missing)
    });
    let text = out.0.text.unwrap();
    assert!(text.starts_with("Grove -server host:port -timeout ms cmd args\n\taddWatch [-m mode] path"), "{text}");
    assert!(text.contains("\n\tcreate [-s] [-e] [-c] [-t ttl] path [data] [acl]\n"), "{text}");
    assert_eq!(out.0.json["commands"].as_array().unwrap().len(), help_lines().len());
    let one = out.1.text.unwrap();
    assert!(one.starts_with("Usage: create [-s] [-e] [-c] [-t ttl] path [data] [acl]"), "{one}");
    assert!(one.contains("-e") && one.contains("Ephemeral: deleted when the session ends"), "{one}");
    assert_eq!(out.2.to_string(), "Command not found: frob");
}

#[test]
fn every_name_and_alias_finds_its_command() {
    for name in [
        "getEphemerals",
        "getAllChildrenNumber",
        "addWatch",
        "removewatches",
        "printwatches",
        "getAcl",
        "setAcl",
        "addauth",
        "whoami",
        "digest",
        "setquota",
        "listquota",
        "delquota",
        "history",
        "redo",
        "connect",
        "close",
        "version",
        "help",
        "quit",
        "status",
        "members",
        "member",
        "transfer-leader",
        "lock",
        "election",
    ] {
        assert_eq!(find(name).map(Entry::name).as_deref(), Some(name));
    }
    assert_eq!(find("rmr").map(Entry::name).as_deref(), Some("deleteall"));
    assert_eq!(find("exit").map(Entry::name).as_deref(), Some("quit"));
    assert!(find("getacl").is_none(), "names are case-sensitive, as zkCli's");
    let mut names: Vec<String> = TABLE.iter().map(Entry::name).collect();
    let n = names.len();
    names.sort();
    names.dedup();
    assert_eq!(names.len(), n, "no name declared twice");
}

fn test_context() -> Context {
    Context {
        client: None,
        server: String::new(),
        dial: Default::default(),
        watches: None,
        history: Default::default(),
        session_timeout: std::time::Duration::from_secs(30),
    }
}

#[test]
fn commands_that_need_no_server_run_without_one() {
    futures::executor::block_on(async {
        let mut ctx = test_context();
        let out = ok("digest alice:pw").run(&mut ctx).await.unwrap();
        assert_eq!(out.text.unwrap(), acl::digest("alice", "pw"));
        assert!(ok("version").run(&mut ctx).await.unwrap().text.unwrap().starts_with("Grove CLI version: "));
        // One-shot: no history, no watches: nothing to print.
        assert!(ok("history").run(&mut ctx).await.unwrap().text.is_none());
        assert!(ok("redo 3").run(&mut ctx).await.unwrap().text.is_none());
        let e = ok("get /a").run(&mut ctx).await.err().unwrap();
        assert_eq!(e.to_string(), "not connected: use connect host:port");
        let e = ok("lock /l").run(&mut ctx).await.err().unwrap();
        assert!(e.to_string().contains("grove lock"), "{e}");
        ctx.history.push("create /a".into());
        ctx.history.push("history".into());
        let out = ok("history").run(&mut ctx).await.unwrap();
        assert_eq!(out.text.unwrap(), "0 - create /a\n1 - history");
    });
}
