//! `whoami`: the identities the server knows this connection by.

use clap::Parser;
use grove_client::Error;
use serde_json::{Value, json};

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "whoami", no_binary_name = true, override_usage = "whoami")]
pub struct WhoAmI {}

impl CommandArgs for WhoAmI {}

impl WhoAmI {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
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
}
