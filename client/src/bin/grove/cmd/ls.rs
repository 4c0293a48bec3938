//! `ls`: a node's children, optionally with its stat and a one-shot children watch, or
//! (`-R`) every path of its subtree.

use std::collections::VecDeque;

use clap::Parser;
use grove_client::{Consistency, Error, WatchKind, WatchSpec};
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::format;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "ls", no_binary_name = true, override_usage = "ls [-s] [-w] [-R] path")]
pub struct Ls {
    /// Print the node's stat after its children.
    #[arg(short = 's')]
    pub stat: bool,
    /// Watch the children (one-shot; the shell prints the event).
    #[arg(short = 'w')]
    pub watch: bool,
    /// Every path below, breadth first, the node itself first.
    #[arg(short = 'R')]
    pub recursive: bool,
    pub path: String,
}

impl CommandArgs for Ls {}

impl Ls {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let c = ctx.client()?;
        let path = self.path;
        if self.recursive {
            // Breadth-first full paths, the node itself first, as zkCli.
            let mut out = Vec::new();
            let mut queue = VecDeque::from([path.clone()]);
            c.exists(&path).await?.ok_or_else(|| Error::NoNode { path: path.clone() })?;
            while let Some(p) = queue.pop_front() {
                let children = c.children(&p).await?;
                for name in children {
                    queue.push_back(format::join(&p, &name));
                }
                out.push(p);
            }
            return Ok(Output::text(out.join("\n"), json!({"paths": out})));
        }
        let page = c.children_with(&path, Consistency::Linearizable, false).await?;
        if self.watch
            && let Some(w) = &ctx.watches
        {
            w.add(WatchSpec::new(&path, WatchKind::Children).one_shot().from_zxid(page.zxid + 1)).await?;
        }
        let mut text = format::list(&page.names);
        let mut j = json!({"path": path, "children": page.names});
        if self.stat {
            text = format!("{text}\n{}", format::stat(&page.stat));
            j["stat"] = format::stat_json(&page.stat);
        }
        Ok(Output::text(text, j))
    }
}
