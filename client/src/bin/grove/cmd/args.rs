//! What the command declarations share: splitting a line into words, zkCli's value types
//! (numbers, ACLs), the checks clap cannot express, and turning a parse failure into what
//! the user sees: the problem, if clap's usage line does not say it, then the usage line.
//!
//! A leaf module: the command files and `cmd/mod.rs` use it, it uses none of them.

use std::fmt;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser};
use grove_client::{Acl, acl};

/// A command line that does not parse: the text to print (empty: nothing to say).
#[derive(Debug, PartialEq)]
pub struct Usage(pub String);

/// What a command's own check (beyond clap's) found wrong.
pub enum Invalid {
    /// Print the usage line only.
    Usage,
    /// Print this, then the usage line.
    Message(String),
}

/// A command's arguments, declared with clap. `check` adds what clap cannot express
/// (zkCli's own messages for flag combinations, for instance).
pub trait CommandArgs: Parser {
    fn check(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// A command's declaration as parsing and `help` use it. `help <command>` documents the
/// arguments, so no command has a `-h`.
pub fn declare<T: CommandFactory>() -> clap::Command {
    T::command().disable_help_flag(true).disable_help_subcommand(true)
}

/// Parses a command's words (those after its name).
pub fn parse<T: CommandArgs>(words: &[String]) -> Result<T, Usage> {
    let cmd = declare::<T>();
    let matches = cmd.clone().try_get_matches_from(words).map_err(|e| from_clap(&cmd, &e))?;
    let parsed = T::from_arg_matches(&matches).map_err(|e| from_clap(&cmd, &e))?;
    match parsed.check() {
        Ok(()) => Ok(parsed),
        Err(Invalid::Usage) => Err(Usage(usage(&cmd))),
        Err(Invalid::Message(m)) => Err(Usage(format!("{m}\n{}", usage(&cmd)))),
    }
}

/// `Usage: ...` as clap renders the declaration's usage (every form, for a command with
/// subcommands), then ` # ` and what the command is for if its declaration says, as zkCli.
pub fn usage(cmd: &clap::Command) -> String {
    let text = cmd.clone().render_usage().to_string();
    match cmd.get_about() {
        Some(about) => format!("{text} # {about}"),
        None => text,
    }
}

/// The usage without its `Usage: ` label, as `help` lists it.
pub fn usage_line(cmd: &clap::Command) -> String {
    let text = usage(cmd);
    text.strip_prefix("Usage: ").unwrap_or(&text).to_string()
}

/// A value that did not parse names the flag and the value (`delete -v: "x" is not a
/// number`), as zkCli does; anything else wrong with the syntax prints the usage line.
fn from_clap(cmd: &clap::Command, e: &clap::Error) -> Usage {
    let usage = usage(cmd);
    if e.kind() != ErrorKind::ValueValidation {
        return Usage(usage);
    }
    let text = |kind| match e.get(kind) {
        Some(ContextValue::String(s)) => s.clone(),
        _ => String::new(),
    };
    // clap names a flag `-v <version>`, a positional `<path>`.
    let arg = text(ContextKind::InvalidArg);
    let flag = arg.split_whitespace().next().filter(|f| f.starts_with('-'));
    let value = text(ContextKind::InvalidValue);
    let why = std::error::Error::source(e);
    let not_a_number = why.is_some_and(|w| w.is::<NotANumber>());
    let message = match (flag, why) {
        (Some(flag), _) if not_a_number => format!("{} {flag}: {value:?} is not a number", cmd.get_name()),
        (Some(flag), Some(why)) => format!("{} {flag}: {why}", cmd.get_name()),
        // A positional that is not a number (an id, a history number): the usage says it.
        (None, _) if not_a_number => return Usage(usage),
        (None, Some(why)) => why.to_string(),
        (_, None) => return Usage(usage),
    };
    Usage(format!("{message}\n{usage}"))
}

#[derive(Debug)]
pub struct NotANumber;

impl fmt::Display for NotANumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("is not a number")
    }
}

impl std::error::Error for NotANumber {}

/// A number argument (`value_parser = number::<i32>`).
pub fn number<T: std::str::FromStr>(text: &str) -> Result<T, NotANumber> {
    text.parse().map_err(|_| NotANumber)
}

/// An ACL argument in zkCli's syntax, `scheme:id:perms,...`.
#[derive(Debug, Clone, PartialEq)]
pub struct Acls(pub Vec<Acl>);

pub fn acls(text: &str) -> Result<Acls, grove_client::Error> {
    acl::parse(text).map(Acls)
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
