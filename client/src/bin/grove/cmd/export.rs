//! `export`: a subtree as JSON lines, one node per line (data in base64), for moving it to
//! another cluster with `import` or for review in a diff. Ephemerals are left out.

use std::io::Write;
use std::path::PathBuf;

use clap::Parser;
use grove_client::Error;
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};
use crate::transfer;

#[derive(Debug, PartialEq, Parser)]
#[command(name = "export", no_binary_name = true, override_usage = "export [-o file] [path]")]
pub struct Export {
    /// Write to this file instead of standard output.
    #[arg(short = 'o', value_name = "file")]
    pub out: Option<PathBuf>,
    /// The subtree's root (default /).
    #[arg(default_value = "/")]
    pub path: String,
}

impl CommandArgs for Export {}

impl Export {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        let root = if self.path.len() > 1 { self.path.trim_end_matches('/') } else { self.path.as_str() };
        let (records, skipped) = transfer::export(ctx.client()?, root).await?;
        let mut text = String::new();
        for r in &records {
            text.push_str(&serde_json::to_string(r).map_err(|e| Error::Client(e.to_string()))?);
            text.push('\n');
        }
        let summary = json!({"nodes": records.len(), "skipped": skipped.len()});
        match &self.out {
            Some(file) => {
                std::fs::write(file, text).map_err(|e| Error::Client(format!("{}: {e}", file.display())))?;
                let mut line = format!("Exported {} nodes to {}", records.len(), file.display());
                if !skipped.is_empty() {
                    line.push_str(&format!(" ({} ephemerals left out)", skipped.len()));
                }
                Ok(Output::text(line, summary))
            }
            None => {
                // The lines are the output: nothing else goes to standard output.
                let mut out = std::io::stdout().lock();
                out.write_all(text.as_bytes()).map_err(|e| Error::Client(e.to_string()))?;
                Ok(Output::silent(serde_json::Value::Null))
            }
        }
    }
}
