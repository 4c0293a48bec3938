//! `import`: a tree into Grove, from a live ZooKeeper (`import zookeeper --from`) or from
//! `export`'s JSON lines. Planned first (`-n` prints the plan and writes nothing); a node
//! that exists with other data refuses the whole import; a re-run changes nothing.

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::{transfer, zookeeper};

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "import",
    no_binary_name = true,
    override_usage = "import [-n] [--to path] file | import zookeeper [-n] [--to path] [--zk-auth user:password] [--mode path=container|ttl:ms]... --from host:port[/path]"
)]
pub struct Import {
    /// A file written by `export`, or `zookeeper` to copy a live ZooKeeper tree (--from):
    /// data, ACLs, persistent, container and TTL nodes, and each parent's sequence counter;
    /// ephemerals are listed and skipped.
    pub source: String,
    /// ZooKeeper's servers, and the subtree to copy (default /; /zookeeper is never copied).
    #[arg(long = "from", value_name = "host:port[/path]")]
    pub from: Option<String>,
    /// A ZooKeeper node's mode, which ZooKeeper's client protocol does not show (its stat
    /// reports containers and TTL nodes as plain persistent nodes): `PATH=container` or
    /// `PATH=ttl:MILLISECONDS`, with PATH as in ZooKeeper. Repeatable.
    #[arg(long = "mode", value_name = "path=container|ttl:ms")]
    pub modes: Vec<String>,
    /// A digest user to read ACL-protected ZooKeeper nodes with.
    #[arg(long = "zk-auth", value_name = "user:password")]
    pub zk_auth: Option<String>,
    /// Print what would be done; write nothing.
    #[arg(short = 'n', long = "dry-run")]
    pub dry_run: bool,
    /// Where the tree goes: its root becomes this path (default: for ZooKeeper, the path it
    /// has there; for a file, /, the paths in the file being relative to the exported root).
    #[arg(long = "to", value_name = "path")]
    pub to: Option<String>,
}

impl CommandArgs for Import {}

impl Import {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let dry_run = self.dry_run;
        if let Some(to) = &self.to
            && !to.starts_with('/')
        {
            return Err(Error::BadArguments { message: format!("--to {to:?}: a path starts with /") });
        }
        let (records, skipped, source, to) = match (self.source.as_str(), self.from) {
            ("zookeeper", Some(from)) => {
                let modes = zookeeper::parse_modes(&self.modes)?;
                let (_, root) = zookeeper::split_source(&from);
                let to = self.to.unwrap_or_else(|| root.to_string());
                let (records, skipped) = zookeeper::read_tree(&from, self.zk_auth.as_deref(), &modes).await?;
                (records, skipped, format!("ZooKeeper {from}"), to)
            }
            ("zookeeper", None) => {
                return Err(Error::BadArguments { message: "import zookeeper needs --from host:port[/path]".into() });
            }
            (_, Some(_)) => {
                return Err(Error::BadArguments {
                    message: "--from is for `import zookeeper`; a file is imported as `import FILE`".into(),
                });
            }
            (file, None) => {
                let text = std::fs::read_to_string(file).map_err(|e| Error::Client(format!("{file}: {e}")))?;
                (transfer::parse_lines(&text)?, Vec::new(), file.to_string(), self.to.unwrap_or_else(|| "/".into()))
            }
        };
        let c = ctx.client()?;
        let plan = transfer::plan(c, &to, records, skipped).await?;
        let (create, present, acls) = plan.counts();
        let skipped: Vec<&str> = plan.skipped.iter().map(|(p, _)| p.as_str()).collect();
        let conflicts = plan.conflicts();
        if dry_run {
            let mut lines = plan.lines();
            lines.push(format!(
                "Dry run from {source}: {create} to create, {present} already there, {acls} ACLs to set, {} skipped, \
                 {} conflicts; nothing written",
                skipped.len(),
                conflicts.len()
            ));
            if !conflicts.is_empty() {
                // So that `import -n && import` stops at a conflict.
                return Err(Error::Client(lines.join("\n")));
            }
            let summary = json!({"dry_run": true, "create": create, "unchanged": present, "set_acl": acls,
                "skipped": skipped, "conflicts": conflicts});
            return Ok(Output::text(lines.join("\n"), summary));
        }
        if !conflicts.is_empty() {
            let shown: Vec<&str> = conflicts.iter().take(10).copied().collect();
            return Err(Error::Client(format!(
                "refusing to import from {source}: {} nodes exist with other data, nothing was written: {}",
                conflicts.len(),
                shown.join("; ")
            )));
        }
        let done = plan.apply(c).await?;
        let rate = done.created as f64 / done.took.as_secs_f64().max(1e-3);
        let mut text = format!(
            "Imported {} nodes from {source} in {:.1} s ({rate:.0} nodes/s); {} already there; {} ACLs set; {} sequence counters advanced",
            done.created,
            done.took.as_secs_f64(),
            done.unchanged,
            done.acls_set,
            done.counters_advanced
        );
        if !skipped.is_empty() {
            text.push_str(&format!("\nSkipped {}: {}", skipped.len(), skipped.join(", ")));
        }
        let summary = json!({"created": done.created, "unchanged": done.unchanged, "acls_set": done.acls_set,
            "counters_advanced": done.counters_advanced, "skipped": skipped, "seconds": done.took.as_secs_f64()});
        Ok(Output::text(text, summary))
    }
}
