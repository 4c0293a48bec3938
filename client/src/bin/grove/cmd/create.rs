//! `create`: a node, persistent by default; sequential, ephemeral (owned by the shell's
//! session, or the one-shot command's), container or with a TTL, with data and an ACL.

use std::time::Duration;

use clap::Parser;
use grove_client::{CreateMode, CreateOptions, Error};
use serde_json::json;

use super::args::{Acls, CommandArgs, Invalid, acls, number};
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "create",
    no_binary_name = true,
    override_usage = "create [-s] [-e] [-c] [-t ttl] path [data] [acl]",
    allow_negative_numbers = true
)]
pub struct Create {
    /// Sequential: the server appends a 10-digit counter to the name.
    #[arg(short = 's')]
    pub sequential: bool,
    /// Ephemeral: deleted when the session ends.
    #[arg(short = 'e')]
    pub ephemeral: bool,
    /// Container: deleted once its last child is.
    #[arg(short = 'c')]
    pub container: bool,
    /// Deleted after this many ms without changes or children.
    #[arg(short = 't', value_name = "ttl", value_parser = number::<i64>)]
    pub ttl: Option<i64>,
    pub path: String,
    #[arg(default_value_t, hide_default_value = true)]
    pub data: String,
    /// scheme:id:perms,... (default: world:anyone:cdrwa)
    #[arg(value_parser = acls)]
    pub acl: Option<Acls>,
}

impl CommandArgs for Create {
    fn check(&self) -> Result<(), Invalid> {
        // zkCli's messages.
        if self.container && (self.sequential || self.ephemeral) {
            return Err(Invalid::Message(
                "-c cannot be combined with -s or -e. Containers cannot be ephemeral or sequential.".into(),
            ));
        }
        if self.ttl.is_some() && (self.ephemeral || self.container) {
            return Err(Invalid::Message("TTLs cannot be used with Ephemeral or Container nodes".into()));
        }
        Ok(())
    }
}

impl Create {
    pub fn mode(&self) -> CreateMode {
        match (self.sequential, self.ephemeral, self.container, self.ttl.is_some()) {
            (_, _, true, _) => CreateMode::Container,
            (true, true, _, _) => CreateMode::EphemeralSequential,
            (false, true, _, _) => CreateMode::Ephemeral,
            (true, false, _, true) => CreateMode::PersistentSequentialWithTtl,
            (false, false, _, true) => CreateMode::PersistentWithTtl,
            (true, false, _, false) => CreateMode::PersistentSequential,
            (false, false, _, false) => CreateMode::Persistent,
        }
    }

    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let mode = self.mode();
        let ephemeral = matches!(mode, CreateMode::Ephemeral | CreateMode::EphemeralSequential);
        let c = if ephemeral { ctx.session_client().await? } else { ctx.client()? };
        if self.ttl.is_some_and(|t| t <= 0) {
            return Err(Error::BadArguments { message: "create -t: the TTL must be a positive number of ms".into() });
        }
        let opts = CreateOptions {
            mode,
            ttl: self.ttl.map(|t| Duration::from_millis(t as u64)),
            create_parents: false,
            acl: self.acl.map(|a| a.0).unwrap_or_default(),
        };
        let (created, stat) = c.create(&self.path, self.data.into_bytes(), &opts).await?;
        Ok(Output::text(format!("Created {created}"), json!({"path": created, "stat": format::stat_json(&stat)})))
    }
}
