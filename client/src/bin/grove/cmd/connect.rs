//! `connect`: closes the session (its ephemerals go) and opens one on other servers; the
//! shell's watches follow. The shell's `-server host:port` does the same.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "connect", no_binary_name = true, override_usage = "connect host:port")]
pub struct Connect {
    /// host:port[,host:port...][/chroot]
    #[arg(value_name = "host:port")]
    pub server: String,
}

impl CommandArgs for Connect {}

impl Connect {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        ctx.connect(&self.server).await?;
        Ok(Output::silent(json!({"connected": self.server})))
    }
}
