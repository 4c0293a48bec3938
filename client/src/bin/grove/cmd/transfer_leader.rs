//! `transfer-leader`: asks the leader to hand over, to a given voter or any up-to-date one.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::{CommandArgs, number};
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "transfer-leader", no_binary_name = true, override_usage = "transfer-leader [id]")]
pub struct TransferLeader {
    /// The voter to hand over to (default: the leader chooses).
    #[arg(value_parser = number::<u64>)]
    pub id: Option<u64>,
}

impl CommandArgs for TransferLeader {}

impl TransferLeader {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let leader = ctx.client()?.transfer_leader(self.id.unwrap_or(0)).await?;
        Ok(Output::text(format!("Leader: {leader}"), json!({"leader_id": leader})))
    }
}
