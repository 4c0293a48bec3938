//! What ZooKeeper's four-letter words tell operators: `sessions` (`dump`), `watches`
//! (`wchc`), `connections` (`cons`), `conf`. Each needs ADMIN on "/" (or the super user);
//! the admin port serves the same as JSON (`/sessions`, `/watches`, `/connections`, `/conf`).

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(name = "sessions", no_binary_name = true, override_usage = "sessions")]
pub struct Sessions {}

impl CommandArgs for Sessions {}

impl Sessions {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let sessions = ctx.client()?.sessions().await?;
        let mut text = format!("Sessions: {}", sessions.len());
        for s in &sessions {
            text.push_str(&format!("\n0x{:x}\ttimeout {} ms\tephemerals {}", s.id, s.timeout_ms, s.ephemerals));
        }
        let rows: Vec<_> = sessions
            .iter()
            .map(|s| json!({"id": format!("0x{:x}", s.id), "timeout_ms": s.timeout_ms, "ephemerals": s.ephemerals}))
            .collect();
        Ok(Output::text(text, json!({"sessions": rows})))
    }
}

#[derive(Debug, PartialEq, Parser)]
#[command(name = "watches", no_binary_name = true, override_usage = "watches")]
pub struct Watches {}

impl CommandArgs for Watches {}

impl Watches {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let w = ctx.client()?.watches().await?;
        let mut text = format!("{} streams, {} watches", w.streams, w.watches.len());
        for x in &w.watches {
            text.push_str(&format!("\nstream {}\twatch {}\t{}\t{}", x.stream, x.watch_id, x.kind, x.path));
        }
        let rows: Vec<_> = w
            .watches
            .iter()
            .map(|x| json!({"stream": x.stream, "watch_id": x.watch_id, "kind": x.kind, "path": x.path}))
            .collect();
        Ok(Output::text(text, json!({"streams": w.streams, "watches": rows})))
    }
}

#[derive(Debug, PartialEq, Parser)]
#[command(name = "connections", no_binary_name = true, override_usage = "connections")]
pub struct Connections {}

impl CommandArgs for Connections {}

impl Connections {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let conns = ctx.client()?.connections().await?;
        let mut text = format!("Connections: {}", conns.len());
        for c in &conns {
            text.push_str(&format!("\n{}\tconnected {:.1} s", c.remote, c.connected_ms as f64 / 1000.0));
        }
        let rows: Vec<_> = conns.iter().map(|c| json!({"remote": c.remote, "connected_ms": c.connected_ms})).collect();
        Ok(Output::text(text, json!({"connections": rows})))
    }
}

#[derive(Debug, PartialEq, Parser)]
#[command(name = "conf", no_binary_name = true, override_usage = "conf")]
pub struct Conf {}

impl CommandArgs for Conf {}

impl Conf {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let settings = ctx.client()?.config().await?;
        let width = settings.iter().map(|s| s.name.len()).max().unwrap_or(0);
        let text: Vec<String> =
            settings.iter().map(|s| format!("{:width$}  {}  ({})", s.name, s.value, s.source)).collect();
        let rows: Vec<_> =
            settings.iter().map(|s| json!({"name": s.name, "value": s.value, "source": s.source})).collect();
        Ok(Output::text(text.join("\n"), json!({"settings": rows})))
    }
}
