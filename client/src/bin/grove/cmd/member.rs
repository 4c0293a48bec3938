//! `member add` and `member remove`: membership changes; both print the members after.

use clap::{Parser, Subcommand};
use grove_client::Error;

use super::args::{CommandArgs, number};
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "member",
    no_binary_name = true,
    override_usage = "member add [-o] [-c client-host:port] id peer-host:port\n       member remove id"
)]
pub struct Member {
    #[command(subcommand)]
    pub change: Change,
}

#[derive(Debug, PartialEq, Subcommand)]
#[command(disable_help_flag = true)]
pub enum Change {
    // A voter (or, with -o, an observer), once it has caught up.
    #[command(override_usage = "member add [-o] [-c client-host:port] id peer-host:port", disable_help_flag = true)]
    Add {
        /// An observer: replicates and serves reads, never votes.
        #[arg(short = 'o')]
        observer: bool,
        /// The client address it serves on, shown to clients.
        #[arg(short = 'c', value_name = "client-host:port", default_value = "")]
        client: String,
        #[arg(value_parser = number::<u64>)]
        id: u64,
        #[arg(value_name = "peer-host:port")]
        peer: String,
    },
    #[command(override_usage = "member remove id", disable_help_flag = true)]
    Remove {
        #[arg(value_parser = number::<u64>)]
        id: u64,
    },
}

impl CommandArgs for Member {}

impl Member {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let c = ctx.client()?;
        let members = match self.change {
            Change::Add { observer, client, id, peer } => c.add_member(id, &peer, &client, observer).await?,
            Change::Remove { id } => c.remove_member(id).await?,
        };
        Ok(format::members(&members))
    }
}
