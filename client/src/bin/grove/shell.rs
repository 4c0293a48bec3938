//! The interactive shell (history, completion of commands, flags and paths, a prompt with
//! the server and session state) and one-shot mode.

use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use grove_client::{Client, SessionState};
use rustyline::completion::{Completer, Pair};
use rustyline::error::ReadlineError;
use rustyline::highlight::Highlighter;
use rustyline::hint::Hinter;
use rustyline::history::DefaultHistory;
use rustyline::validate::Validator;
use rustyline::{Context as RlContext, Editor, ExternalPrinter, Helper};

use crate::cmd::help::SHELL_USAGE;
use crate::cmd::{self, Command, Usage, split_words};
use crate::context::{Context, Dial, History, Output, error_json, error_text};
use crate::watches::Watches;

fn print_output(out: &Output, json: bool) {
    if json {
        // Null: the command's output was its data (`export` to standard output).
        if !out.json.is_null() {
            println!("{}", out.json);
        }
    } else if let Some(t) = &out.text {
        println!("{t}");
    }
}

fn print_error(e: &grove_client::Error, json: bool) {
    if json {
        println!("{}", error_json(e));
    } else {
        eprintln!("{}", error_text(e));
    }
}

/// Runs one command and exits: 0 on success, 1 if the command failed, 2 on bad usage
/// (`lock` and `election` exit as they document).
pub async fn one_shot(
    client: Client,
    server: String,
    dial: Dial,
    json: bool,
    timeout: Duration,
    words: Vec<String>,
) -> ExitCode {
    let cmd = match cmd::parse(&words) {
        Ok(Command::Lock(c)) => return c.run(client, timeout).await,
        Ok(Command::Election(c)) => return c.run(client, timeout).await,
        Ok(c) => c,
        Err(u) => {
            eprintln!("{}", u.0);
            return ExitCode::from(2);
        }
    };
    let mut ctx = Context {
        client: Some(client),
        server,
        dial,
        watches: None,
        history: History::default(),
        session_timeout: timeout,
    };
    let code = match cmd.run(&mut ctx).await {
        Ok(out) => {
            print_output(&out, json);
            ExitCode::SUCCESS
        }
        Err(e) => {
            print_error(&e, json);
            ExitCode::FAILURE
        }
    };
    // A one-shot session ends with the command: its ephemerals go with it, as in zkCli.
    if let Some(c) = ctx.client.take() {
        let _ = c.close_session().await;
    }
    code
}

/// What the shell takes before a command, as its help's first line shows.
#[derive(Debug, Default, PartialEq)]
struct LineOptions {
    /// `-server host:port`: reconnect there (a new session, as `connect`).
    server: Option<String>,
    /// `-timeout ms`: the session timeout from now on; a session's timeout is fixed when
    /// it opens, so this takes a new session (on the same servers unless `-server` says).
    timeout: Option<Duration>,
}

/// Splits the shell's own options from the command after them.
fn line_options(words: &[String]) -> Result<(LineOptions, &[String]), Usage> {
    let mut opts = LineOptions::default();
    let mut rest = words;
    loop {
        match rest {
            [flag, server, more @ ..] if flag == "-server" => {
                opts.server = Some(server.clone());
                rest = more;
            }
            [flag, ms, more @ ..] if flag == "-timeout" => {
                let ms: u64 =
                    ms.parse().map_err(|_| Usage(format!("-timeout: {ms:?} is not a number\nUsage: {SHELL_USAGE}")))?;
                opts.timeout = Some(Duration::from_millis(ms));
                rest = more;
            }
            [flag] if flag == "-server" || flag == "-timeout" => return Err(Usage(format!("Usage: {SHELL_USAGE}"))),
            _ => return Ok((opts, rest)),
        }
    }
}

/// `redo N` stands for line N of the history, by its number as `history` printed it.
fn resolve_redo(history: &History, line: &str) -> Result<String, &'static str> {
    match split_words(line).map(|w| cmd::parse(&w)) {
        Ok(Ok(Command::Redo(r))) => history.get(r.n).map(str::to_string).ok_or("Command index out of range"),
        _ => Ok(line.to_string()),
    }
}

enum Flow {
    Continue,
    Quit,
}

/// Runs one line of the shell: its options, then its command.
async fn run_line(ctx: &mut Context, line: &str, json: bool) -> Flow {
    let words = match split_words(line) {
        Ok(w) => w,
        Err(u) => {
            eprintln!("{}", u.0);
            return Flow::Continue;
        }
    };
    let (opts, words) = match line_options(&words) {
        Ok(split) => split,
        Err(u) => {
            eprintln!("{}", u.0);
            return Flow::Continue;
        }
    };
    if let Some(t) = opts.timeout {
        ctx.session_timeout = t;
    }
    if opts.server.is_some() || opts.timeout.is_some() {
        let server = opts.server.unwrap_or_else(|| ctx.server.clone());
        if let Err(e) = ctx.connect(&server).await {
            print_error(&e, json);
            return Flow::Continue;
        }
    }
    if words.is_empty() {
        return Flow::Continue;
    }
    let cmd = match cmd::parse(words) {
        Ok(c) => c,
        Err(u) => {
            if !u.0.is_empty() {
                eprintln!("{}", u.0);
            }
            return Flow::Continue;
        }
    };
    if let Command::Quit(_) = cmd {
        return Flow::Quit;
    }
    match cmd.run(ctx).await {
        Ok(out) => print_output(&out, json),
        Err(e) => print_error(&e, json),
    }
    Flow::Continue
}

/// Completions of `word` after the words `before` it on the line (paths aside): the
/// shell's options and command names first, then the command's subcommands, flags, or
/// the values a positional takes, all from the declarations.
fn candidates(before: &[&str], word: &str) -> Vec<String> {
    let mut before = before;
    while let [flag, _, more @ ..] = before
        && (*flag == "-server" || *flag == "-timeout")
    {
        before = more;
    }
    let matching = |names: Vec<String>| names.into_iter().filter(|n| n.starts_with(word)).collect();
    let command_names = || cmd::TABLE.iter().filter(|e| !e.one_shot_only).map(|e| e.name()).collect();
    let Some((name, args)) = before.split_first() else {
        if word.starts_with('-') {
            return matching(vec!["-server".into(), "-timeout".into()]);
        }
        return matching(command_names());
    };
    let Some(entry) = cmd::find(name) else { return Vec::new() };
    let mut declared = (entry.declare)();
    if declared.has_subcommands() {
        let Some(sub) = args.first() else {
            return matching(declared.get_subcommands().map(|s| s.get_name().to_string()).collect());
        };
        let Some(sub) = declared.find_subcommand(sub).cloned() else { return Vec::new() };
        declared = sub;
    }
    if word.starts_with('-') {
        return matching(
            declared
                .get_arguments()
                .filter(|a| !a.is_hide_set())
                .filter_map(|a| a.get_short())
                .map(|c| format!("-{c}"))
                .collect(),
        );
    }
    if declared.get_name() == "help" {
        return matching(command_names());
    }
    matching(
        declared.get_positionals().flat_map(|a| a.get_possible_values()).map(|v| v.get_name().to_string()).collect(),
    )
}

struct ShellHelper {
    rt: tokio::runtime::Handle,
    client: Arc<Mutex<Option<Client>>>,
}

impl ShellHelper {
    /// The children of `word`'s directory that complete it.
    fn complete_path(&self, word: &str) -> Vec<Pair> {
        let Some(client) = self.client.lock().unwrap().clone() else { return Vec::new() };
        let cut = word.rfind('/').unwrap();
        let (dir, prefix) = (if cut == 0 { "/" } else { &word[..cut] }, &word[cut + 1..]);
        let dir = dir.to_string();
        let children = self
            .rt
            .block_on(async move {
                tokio::time::timeout(Duration::from_secs(2), async { client.children(&dir).await.unwrap_or_default() })
                    .await
            })
            .unwrap_or_default();
        let base = &word[..=cut];
        children
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .map(|c| Pair { display: c.clone(), replacement: format!("{base}{c}") })
            .collect()
    }
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &RlContext<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let start = head.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
        let word = &head[start..];
        if start > 0 && word.starts_with('/') {
            return Ok((start, self.complete_path(word)));
        }
        let before: Vec<&str> = head[..start].split_whitespace().collect();
        let pairs = candidates(&before, word)
            .into_iter()
            .map(|c| Pair { display: c.clone(), replacement: format!("{c} ") })
            .collect();
        Ok((start, pairs))
    }
}

impl Hinter for ShellHelper {
    type Hint = String;
}
impl Highlighter for ShellHelper {}
impl Validator for ShellHelper {}
impl Helper for ShellHelper {}

fn state_word(client: &Option<Client>) -> &'static str {
    match client {
        None => "CLOSED",
        Some(c) => match *c.session_state().borrow() {
            SessionState::None | SessionState::Connected | SessionState::Reconnected => "CONNECTED",
            SessionState::Suspended => "CONNECTING",
            SessionState::Lost => "EXPIRED",
            SessionState::Closed => "CLOSED",
        },
    }
}

pub fn run(
    rt: tokio::runtime::Runtime,
    client: Client,
    server: String,
    dial: Dial,
    json: bool,
    timeout: Duration,
) -> ExitCode {
    let shared = Arc::new(Mutex::new(Some(client.clone())));
    let mut editor: Editor<ShellHelper, DefaultHistory> = match Editor::new() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("grove: {e}");
            return ExitCode::FAILURE;
        }
    };
    editor.set_helper(Some(ShellHelper { rt: rt.handle().clone(), client: shared.clone() }));
    let history_file = std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".grove_history"));
    if let Some(f) = &history_file {
        let _ = editor.load_history(f);
    }
    // Watch events print above the prompt without garbling what is being typed.
    let printer: Arc<Mutex<Box<dyn ExternalPrinter + Send>>> = match editor.create_external_printer() {
        Ok(p) => Arc::new(Mutex::new(Box::new(p))),
        Err(_) => {
            struct Stdout;
            impl ExternalPrinter for Stdout {
                fn print(&mut self, msg: String) -> rustyline::Result<()> {
                    println!("{msg}");
                    Ok(())
                }
            }
            Arc::new(Mutex::new(Box::new(Stdout)))
        }
    };
    let print = {
        let printer = printer.clone();
        Arc::new(move |s: String| {
            let _ = printer.lock().unwrap().print(s);
        })
    };
    let watches = rt.block_on(async { Watches::start(client.clone(), print) });
    println!("Connecting to {server}");
    let mut ctx = Context {
        client: Some(client),
        server,
        dial,
        watches: Some(watches),
        history: History::default(),
        session_timeout: timeout,
    };
    if let Err(e) = rt.block_on(ctx.client.as_ref().unwrap().open_session(timeout)) {
        eprintln!("{}", error_text(&e));
    }
    loop {
        let prompt = format!("[grove: {}({}) {}] ", ctx.server, state_word(&ctx.client), ctx.history.next_number());
        let line = match editor.readline(&prompt) {
            Ok(l) => l,
            Err(ReadlineError::Interrupted) => continue,
            Err(ReadlineError::Eof) => break,
            Err(e) => {
                eprintln!("grove: {e}");
                break;
            }
        };
        let line = line.trim().to_string();
        if line.is_empty() {
            continue;
        }
        let _ = editor.add_history_entry(&line);
        let to_run = match resolve_redo(&ctx.history, &line) {
            Ok(l) => l,
            Err(e) => {
                eprintln!("{e}");
                continue;
            }
        };
        ctx.history.push(to_run.clone());
        let flow = rt.block_on(run_line(&mut ctx, &to_run, json));
        *shared.lock().unwrap() = ctx.client.clone();
        if let Flow::Quit = flow {
            break;
        }
    }
    if let Some(f) = &history_file {
        let _ = editor.save_history(f);
    }
    if let Some(c) = ctx.client.take() {
        let _ = rt.block_on(c.close_session());
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(line: &str) -> Vec<String> {
        split_words(line).unwrap()
    }

    #[test]
    fn shell_options_come_before_the_command() {
        let w = words("-server 127.0.0.1:7182 -timeout 5000 ls /");
        let (opts, rest) = line_options(&w).unwrap();
        assert_eq!(
            opts,
            LineOptions { server: Some("127.0.0.1:7182".into()), timeout: Some(Duration::from_millis(5000)) }
        );
        assert_eq!(rest, ["ls", "/"]);
        let w = words("-timeout 100");
        let (opts, rest) = line_options(&w).unwrap();
        assert_eq!(opts, LineOptions { server: None, timeout: Some(Duration::from_millis(100)) });
        assert!(rest.is_empty());
        // Not options: a command's own flags, or a word after the command.
        let w = words("ls -s /");
        assert_eq!(line_options(&w).unwrap(), (LineOptions::default(), &w[..]));
        let w = words("get -server");
        assert_eq!(line_options(&w).unwrap().1, &w[..]);
        assert_eq!(line_options(&words("-server")).unwrap_err().0, format!("Usage: {SHELL_USAGE}"));
        let e = line_options(&words("-timeout soon ls /")).unwrap_err().0;
        assert!(e.starts_with("-timeout: \"soon\" is not a number\nUsage: Grove -server"), "{e}");
    }

    #[test]
    fn redo_reaches_any_history_entry() {
        let mut h = History::default();
        for i in 0..40 {
            h.push(format!("create /n{i}"));
        }
        // zkCli's history shows the last 11 (29..=39); redo reaches older ones too.
        assert_eq!(resolve_redo(&h, "redo 3").unwrap(), "create /n3");
        assert_eq!(resolve_redo(&h, "redo 12").unwrap(), "create /n12");
        assert_eq!(resolve_redo(&h, "redo 39").unwrap(), "create /n39");
        assert_eq!(resolve_redo(&h, "redo 40").unwrap_err(), "Command index out of range");
        assert_eq!(resolve_redo(&h, "ls /").unwrap(), "ls /");
        // A bad redo is left for the parser to explain.
        assert_eq!(resolve_redo(&h, "redo x").unwrap(), "redo x");
    }

    #[test]
    fn completion_comes_from_the_declarations() {
        let c = |before: &[&str], word: &str| candidates(before, word);
        assert_eq!(c(&[], "getA"), ["getAcl", "getAllChildrenNumber"]);
        assert!(c(&[], "").contains(&"transfer-leader".to_string()));
        assert!(!c(&[], "").contains(&"lock".to_string()), "one-shot only");
        assert_eq!(c(&[], "-"), ["-server", "-timeout"]);
        assert_eq!(c(&["-server", "h:1"], "del"), ["delete", "delquota", "deleteall"]);
        assert_eq!(c(&["ls"], "-"), ["-s", "-w", "-R"]);
        assert_eq!(c(&["create", "/x"], "-"), ["-s", "-e", "-c", "-t"]);
        assert_eq!(c(&["removewatches", "/x"], "-"), ["-c", "-d", "-a"]);
        assert_eq!(c(&["member"], ""), ["add", "remove"]);
        assert_eq!(c(&["member", "add"], "-"), ["-o", "-c"]);
        assert_eq!(c(&["printwatches"], ""), ["on", "off"]);
        assert_eq!(c(&["help"], "se"), ["set", "setAcl", "setquota", "sessions"]);
        assert_eq!(c(&["rmr"], "-"), ["-b"]);
        assert!(c(&["bogus"], "-").is_empty());
    }
}
