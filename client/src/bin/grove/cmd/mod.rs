//! zkCli's commands, one file each: each declares its arguments with clap and runs itself.
//! This module holds the table of them: parsing a line dispatches on its first word, and
//! `help`, `grove --help` and the shell's completion are generated from the declarations.
//!
//! Adding a command: a file declaring a `Parser` struct (`name`, `no_binary_name`, zkCli's
//! usage as `override_usage`) with `async fn run(self, &mut Context)`, a line in
//! `commands!` below (its place there is its place in `help`), and an arm in `run`.

pub mod args;

mod add_watch;
mod addauth;
mod close;
mod connect;
mod create;
mod delete;
mod deleteall;
mod delquota;
mod digest;
pub mod election;
mod export;
mod get;
mod get_acl;
mod get_all_children_number;
mod get_ephemerals;
pub mod help;
mod history;
mod import;
mod inspect;
mod listquota;
pub mod lock;
mod ls;
mod member;
mod members;
mod print_watches;
mod quit;
mod redo;
mod remove_watches;
mod set;
mod set_acl;
mod setquota;
mod snapshot;
mod stat;
mod status;
mod sync;
mod transfer_leader;
mod version;
mod whoami;

use grove_client::Error;

pub use args::{Usage, split_words};

use crate::context::{Context, Output};

/// One command of the table.
pub struct Entry {
    /// Its clap declaration: name, aliases, usage, arguments.
    pub declare: fn() -> clap::Command,
    /// Parses the words after its name.
    pub parse: fn(&[String]) -> Result<Command, Usage>,
    /// Runs only as `grove NAME ...`, not in the shell (it holds something until it ends).
    pub one_shot_only: bool,
}

impl Entry {
    pub fn name(&self) -> String {
        (self.declare)().get_name().to_string()
    }

    fn answers_to(&self, word: &str) -> bool {
        let cmd = (self.declare)();
        cmd.get_name() == word || cmd.get_all_aliases().any(|a| a == word)
    }

    /// Its lines in `help`: the usage of each form (each subcommand's), as a usage error
    /// shows it.
    pub fn help_lines(&self) -> Vec<String> {
        let cmd = (self.declare)();
        if cmd.has_subcommands() {
            cmd.get_subcommands().map(args::usage_line).collect()
        } else {
            vec![args::usage_line(&cmd)]
        }
    }
}

/// Declares the commands: the `Command` enum (a variant per command file, named like the
/// file's struct) and `TABLE`, in `help`'s order (zkCli's).
macro_rules! commands {
    (shell: $($variant:ident($module:ident)),* ; one_shot: $($held:ident($hmodule:ident)),* $(,)?) => {
        /// A parsed command line.
        #[derive(Debug, PartialEq)]
        pub enum Command {
            $($variant($module::$variant),)*
            $($held($hmodule::$held),)*
        }

        pub const TABLE: &[Entry] = &[
            $(Entry {
                declare: args::declare::<$module::$variant>,
                parse: |words| args::parse::<$module::$variant>(words).map(Command::$variant),
                one_shot_only: false,
            },)*
            $(Entry {
                declare: args::declare::<$hmodule::$held>,
                parse: |words| args::parse::<$hmodule::$held>(words).map(Command::$held),
                one_shot_only: true,
            },)*
        ];
    };
}

commands! {
    shell:
    AddWatch(add_watch),
    AddAuth(addauth),
    Close(close),
    Connect(connect),
    Create(create),
    Delete(delete),
    DelQuota(delquota),
    DeleteAll(deleteall),
    Digest(digest),
    Export(export),
    Get(get),
    GetAcl(get_acl),
    GetAllChildrenNumber(get_all_children_number),
    GetEphemerals(get_ephemerals),
    Help(help),
    History(history),
    Import(import),
    ListQuota(listquota),
    Ls(ls),
    Member(member),
    Members(members),
    PrintWatches(print_watches),
    Quit(quit),
    Redo(redo),
    RemoveWatches(remove_watches),
    Set(set),
    SetAcl(set_acl),
    SetQuota(setquota),
    Snapshot(snapshot),
    Stat(stat),
    Status(status),
    Sessions(inspect),
    Watches(inspect),
    Connections(inspect),
    Conf(inspect),
    Sync(sync),
    TransferLeader(transfer_leader),
    Version(version),
    WhoAmI(whoami);
    one_shot:
    Lock(lock),
    Election(election),
}

/// The command a word names (its name or an alias: `rmr`, `exit`).
pub fn find(word: &str) -> Option<&'static Entry> {
    TABLE.iter().find(|e| e.answers_to(word))
}

/// Parses a command's words, its name first.
pub fn parse(words: &[String]) -> Result<Command, Usage> {
    let Some((name, rest)) = words.split_first() else { return Err(Usage(String::new())) };
    let entry = find(name).ok_or_else(|| Usage(format!("Command not found: {name}")))?;
    (entry.parse)(rest)
}

/// Every command's lines in `help`, in the table's order.
pub fn help_lines() -> Vec<String> {
    TABLE.iter().flat_map(Entry::help_lines).collect()
}

impl Command {
    /// Runs a command in `ctx`. `lock` and `election` run only one-shot (the caller runs
    /// them with a client of their own); the shell acts on `quit` and `redo` itself.
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        match self {
            Command::AddWatch(c) => c.run(ctx).await,
            Command::AddAuth(c) => c.run(ctx).await,
            Command::Close(c) => c.run(ctx).await,
            Command::Connect(c) => c.run(ctx).await,
            Command::Create(c) => c.run(ctx).await,
            Command::Delete(c) => c.run(ctx).await,
            Command::DelQuota(c) => c.run(ctx).await,
            Command::DeleteAll(c) => c.run(ctx).await,
            Command::Digest(c) => c.run(ctx).await,
            Command::Export(c) => c.run(ctx).await,
            Command::Get(c) => c.run(ctx).await,
            Command::GetAcl(c) => c.run(ctx).await,
            Command::GetAllChildrenNumber(c) => c.run(ctx).await,
            Command::GetEphemerals(c) => c.run(ctx).await,
            Command::Help(c) => {
                let declaration = c.command.as_deref().and_then(find).map(|e| (e.declare)());
                c.run(help_lines(), declaration)
            }
            Command::History(c) => c.run(ctx).await,
            Command::Import(c) => c.run(ctx).await,
            Command::ListQuota(c) => c.run(ctx).await,
            Command::Ls(c) => c.run(ctx).await,
            Command::Member(c) => c.run(ctx).await,
            Command::Members(c) => c.run(ctx).await,
            Command::PrintWatches(c) => c.run(ctx).await,
            Command::Quit(c) => c.run(ctx).await,
            Command::Redo(c) => c.run(ctx).await,
            Command::RemoveWatches(c) => c.run(ctx).await,
            Command::Set(c) => c.run(ctx).await,
            Command::SetAcl(c) => c.run(ctx).await,
            Command::SetQuota(c) => c.run(ctx).await,
            Command::Snapshot(c) => c.run(ctx).await,
            Command::Stat(c) => c.run(ctx).await,
            Command::Status(c) => c.run(ctx).await,
            Command::Sessions(c) => c.run(ctx).await,
            Command::Watches(c) => c.run(ctx).await,
            Command::Connections(c) => c.run(ctx).await,
            Command::Conf(c) => c.run(ctx).await,
            Command::Sync(c) => c.run(ctx).await,
            Command::TransferLeader(c) => c.run(ctx).await,
            Command::Version(c) => c.run(ctx).await,
            Command::WhoAmI(c) => c.run(ctx).await,
            Command::Lock(_) => {
                Err(Error::Client("lock holds the lock until it ends: run it as grove lock ...".into()))
            }
            Command::Election(_) => {
                Err(Error::Client("election campaigns until it ends: run it as grove election ...".into()))
            }
        }
    }
}

#[cfg(test)]
mod tests;
