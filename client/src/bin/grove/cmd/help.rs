//! `help`: every command's usage, one line per form, as `cmd/mod.rs` generates them from
//! the declarations; `help command` shows one command's declaration in full.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::Output;

/// The first line of `help`: what the shell takes before a command.
pub const SHELL_USAGE: &str = "Grove -server host:port -timeout ms cmd args";

#[derive(Debug, PartialEq, Parser)]
#[command(name = "help", no_binary_name = true, override_usage = "help [command]")]
pub struct Help {
    /// A command to show in full: its usage and each argument.
    pub command: Option<String>,
}

impl CommandArgs for Help {}

impl Help {
    /// `lines`: every command's usage lines; `declaration`: the one `command` names.
    pub fn run(self, lines: Vec<String>, declaration: Option<clap::Command>) -> Result<Output, Error> {
        if let Some(name) = self.command {
            let Some(mut cmd) = declaration else { return Err(Error::Client(format!("Command not found: {name}"))) };
            let text = cmd.render_help().to_string();
            let text = text.trim_end().to_string();
            return Ok(Output::text(text.clone(), json!({"command": name, "help": text})));
        }
        let text = std::iter::once(SHELL_USAGE.to_string())
            .chain(lines.iter().map(|l| format!("\t{l}")))
            .collect::<Vec<_>>()
            .join("\n");
        Ok(Output::text(text, json!({"commands": lines})))
    }
}
