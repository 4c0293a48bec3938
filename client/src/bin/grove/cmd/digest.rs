//! `digest`: the digest id of `user:password`, for ACLs and the server's `--super-digest`.
//! Needs no server.

use clap::Parser;
use grove_client::{Error, acl};
use serde_json::json;

use super::args::{CommandArgs, Invalid};
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "digest",
    no_binary_name = true,
    override_usage = "digest user:password",
    about = "prints the digest id for ACLs and --super-digest"
)]
pub struct Digest {
    #[arg(value_name = "user:password")]
    pub credential: String,
}

impl CommandArgs for Digest {
    fn check(&self) -> Result<(), Invalid> {
        match self.credential.split_once(':') {
            Some((user, _)) if !user.is_empty() => Ok(()),
            _ => Err(Invalid::Usage),
        }
    }
}

impl Digest {
    pub async fn run(self, _ctx: &mut Context) -> Result<Output, Error> {
        let (user, password) = self.credential.split_once(':').unwrap_or((&self.credential, ""));
        let id = acl::digest(user, password);
        Ok(Output::text(id.clone(), json!({"digest": id})))
    }
}
