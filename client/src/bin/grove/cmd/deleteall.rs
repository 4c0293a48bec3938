//! `deleteall` (zkCli's old name `rmr`): a node and its whole subtree.

use std::collections::VecDeque;

use clap::Parser;
use grove_client::{Client, Error, Op};
use serde_json::json;

use super::args::{CommandArgs, Invalid, number};
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "deleteall", alias = "rmr", no_binary_name = true, override_usage = "deleteall path [-b batch size]")]
pub struct DeleteAll {
    pub path: String,
    /// Deletes per multi (default 1000).
    #[arg(short = 'b', value_name = "batch size", value_parser = number::<usize>, default_value_t = 1000)]
    pub batch: usize,
}

impl CommandArgs for DeleteAll {
    fn check(&self) -> Result<(), Invalid> {
        if self.batch == 0 {
            return Err(Invalid::Message("deleteall -b: the batch size must be positive".into()));
        }
        Ok(())
    }
}

impl DeleteAll {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let n = delete_all(ctx.client()?, &self.path, self.batch).await?;
        Ok(Output::silent(json!({"path": self.path, "deleted": n})))
    }
}

/// Deletes a subtree, deepest nodes first, in multis of `batch` operations.
async fn delete_all(c: &Client, path: &str, batch: usize) -> Result<usize, Error> {
    let mut order = Vec::new();
    let mut queue = VecDeque::from([path.to_string()]);
    while let Some(p) = queue.pop_front() {
        match c.children(&p).await {
            Ok(children) => queue.extend(children.iter().map(|n| format::join(&p, n))),
            Err(Error::NoNode { .. }) if p != path => continue,
            Err(e) => return Err(e),
        }
        order.push(p);
    }
    if path == "/" {
        order.retain(|p| p != "/");
    }
    let total = order.len();
    order.reverse();
    for chunk in order.chunks(batch) {
        let ops: Vec<Op> = chunk.iter().map(|p| Op::Delete { path: p.clone(), version: None }).collect();
        if let Err((i, e)) = c.multi(&ops).await? {
            match e {
                // Someone else deleted it meanwhile: go on one by one.
                Error::NoNode { .. } => {
                    for p in &chunk[i..] {
                        match c.delete(p, None).await {
                            Ok(()) | Err(Error::NoNode { .. }) => {}
                            Err(e) => return Err(e),
                        }
                    }
                }
                e => return Err(e),
            }
        }
    }
    Ok(total)
}
