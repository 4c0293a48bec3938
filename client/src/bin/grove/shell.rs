//! The interactive shell (history, completion of commands and paths, a prompt with the
//! server and session state) and one-shot mode.

use std::collections::VecDeque;
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

use crate::commands::{self, Cmd, Context, Dial, Output};
use crate::watches::Watches;

/// How many commands `history` lists, as zkCli.
const HISTORY_SHOWN: usize = 11;

fn print_output(out: &Output, json: bool) {
    if json {
        println!("{}", out.json);
    } else if let Some(t) = &out.text {
        println!("{t}");
    }
}

fn print_error(e: &grove_client::Error, json: bool) {
    if json {
        println!("{}", commands::error_json(e));
    } else {
        eprintln!("{}", commands::error_text(e));
    }
}

/// Runs one command and exits: 0 on success, 1 if the command failed, 2 on bad usage.
pub async fn one_shot(
    client: Client,
    server: String,
    dial: Dial,
    json: bool,
    timeout: Duration,
    words: Vec<String>,
) -> ExitCode {
    let cmd = match commands::parse(&words) {
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
        history: VecDeque::new(),
        session_timeout: timeout,
    };
    let code = match commands::run(&mut ctx, cmd).await {
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

struct ShellHelper {
    rt: tokio::runtime::Handle,
    client: Arc<Mutex<Option<Client>>>,
}

impl Completer for ShellHelper {
    type Candidate = Pair;

    fn complete(&self, line: &str, pos: usize, _ctx: &RlContext<'_>) -> rustyline::Result<(usize, Vec<Pair>)> {
        let head = &line[..pos];
        let start = head.rfind(char::is_whitespace).map(|i| i + 1).unwrap_or(0);
        let word = &head[start..];
        if start == 0 {
            let pairs = commands::NAMES
                .iter()
                .filter(|n| n.starts_with(word))
                .map(|n| Pair { display: n.to_string(), replacement: format!("{n} ") })
                .collect();
            return Ok((0, pairs));
        }
        if !word.starts_with('/') {
            return Ok((pos, Vec::new()));
        }
        let Some(client) = self.client.lock().unwrap().clone() else { return Ok((pos, Vec::new())) };
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
        let pairs = children
            .into_iter()
            .filter(|c| c.starts_with(prefix))
            .map(|c| Pair { display: c.clone(), replacement: format!("{base}{c}") })
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
        history: VecDeque::new(),
        session_timeout: timeout,
    };
    if let Err(e) = rt.block_on(ctx.client.as_ref().unwrap().open_session(timeout)) {
        eprintln!("{}", commands::error_text(&e));
    }
    let mut n = 0usize;
    loop {
        let prompt = format!("[grove: {}({}) {n}] ", ctx.server, state_word(&ctx.client));
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
        let mut to_run = line.clone();
        // `redo n` re-runs command n of the history.
        if let Ok(Cmd::Redo { n: which }) = commands::split_words(&line).and_then(|w| commands::parse(&w)) {
            match ctx.history.iter().find(|(i, _)| *i == which) {
                Some((_, l)) => to_run = l.clone(),
                None => {
                    eprintln!("Command index out of range");
                    continue;
                }
            }
        }
        ctx.history.push_back((n, to_run.clone()));
        while ctx.history.len() > HISTORY_SHOWN {
            ctx.history.pop_front();
        }
        n += 1;
        let cmd = match commands::split_words(&to_run).and_then(|w| commands::parse(&w)) {
            Ok(c) => c,
            Err(u) => {
                if !u.0.is_empty() {
                    eprintln!("{}", u.0);
                }
                continue;
            }
        };
        match cmd {
            Cmd::Quit => break,
            Cmd::History => {
                for (i, l) in &ctx.history {
                    println!("{i} - {l}");
                }
            }
            cmd => {
                let result = rt.block_on(commands::run(&mut ctx, cmd));
                *shared.lock().unwrap() = ctx.client.clone();
                match result {
                    Ok(out) => print_output(&out, json),
                    Err(e) => print_error(&e, json),
                }
            }
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
