//! `addauth`: adds credentials to the connection for every later command (and `connect`).

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "addauth",
    no_binary_name = true,
    override_usage = "addauth scheme auth",
    about = "scheme digest, auth user:password"
)]
pub struct AddAuth {
    pub scheme: String,
    pub auth: String,
}

impl CommandArgs for AddAuth {}

impl AddAuth {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        ctx.add_auth(&self.scheme, &self.auth)?;
        Ok(Output::silent(json!({"scheme": self.scheme, "added": true})))
    }
}
