//! `setAcl`: replaces a node's ACL, optionally only at a given ACL version, or (`-R`) on
//! the whole subtree.

use std::collections::VecDeque;

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::{Acls, CommandArgs, acls, number};
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "setAcl",
    no_binary_name = true,
    override_usage = "setAcl [-s] [-v version] [-R] path acl",
    allow_negative_numbers = true
)]
pub struct SetAcl {
    /// Print the node's new stat.
    #[arg(short = 's')]
    pub stat: bool,
    /// Only if the node's ACL version is this one.
    #[arg(short = 'v', value_name = "version", value_parser = number::<i32>)]
    pub version: Option<i32>,
    /// Every descendant too (without a version check).
    #[arg(short = 'R')]
    pub recursive: bool,
    pub path: String,
    /// scheme:id:perms,...
    #[arg(value_parser = acls)]
    pub acl: Acls,
}

impl CommandArgs for SetAcl {}

impl SetAcl {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let c = ctx.client()?;
        let (path, acl, recursive) = (self.path, self.acl.0, self.recursive);
        // zkCli's -R: every descendant too, top down, each without a version check. A
        // node's children are listed before its ACL changes: the new ACL may not let the
        // caller list them any more.
        let list = |p: String| async move {
            if !recursive {
                return Ok(Vec::new());
            }
            match c.children(&p).await {
                Ok(names) => Ok(names.iter().map(|n| format::join(&p, n)).collect()),
                Err(Error::NoNode { .. }) => Ok(Vec::new()),
                Err(e) => Err(e),
            }
        };
        let mut queue: VecDeque<String> = list(path.clone()).await?.into();
        let st = c.set_acl(&path, acl.clone(), self.version).await?;
        let mut count = 1;
        while let Some(p) = queue.pop_front() {
            let below = list(p.clone()).await?;
            match c.set_acl(&p, acl.clone(), None).await {
                Ok(_) => count += 1,
                Err(Error::NoNode { .. }) => continue,
                Err(e) => return Err(e),
            }
            queue.extend(below);
        }
        let j = json!({"path": path, "updated": count, "stat": format::stat_json(&st)});
        Ok(if self.stat { Output::text(format::stat(&st), j) } else { Output::silent(j) })
    }
}
