//! `snapshot save` and `snapshot status`: backups, as `etcdctl snapshot save/status`.
//! A backup is restored into a new cluster with `groved --restore FILE` (docs/operations.md).

use std::io::BufWriter;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use grove_client::Error;
use grove_client::backup::Backup;
use grove_client::proto::{MemberRole, SnapshotHeader, SnapshotTrailer};
use serde_json::json;

use super::args::CommandArgs;
use crate::context::{Context, Output};

#[derive(Debug, PartialEq, Parser)]
#[command(
    name = "snapshot",
    no_binary_name = true,
    override_usage = "snapshot save [-l] file\n       snapshot status file"
)]
pub struct Snapshot {
    #[command(subcommand)]
    pub action: Action,
}

#[derive(Debug, PartialEq, Subcommand)]
#[command(disable_help_flag = true)]
pub enum Action {
    // Copy the connected server's whole state into FILE (online, one consistent point);
    // needs ADMIN on "/". With -l, a point after every write acknowledged before it.
    #[command(override_usage = "snapshot save [-l] file", disable_help_flag = true)]
    Save {
        /// Linearizable: include every write acknowledged before the copy starts.
        #[arg(short = 'l')]
        linearizable: bool,
        file: PathBuf,
    },
    // Check a backup file (its checksums) and print its header: zxid, term, cluster,
    // members, size, node count.
    #[command(override_usage = "snapshot status file", disable_help_flag = true)]
    Status { file: PathBuf },
}

impl CommandArgs for Snapshot {}

impl Snapshot {
    pub async fn run(self, ctx: &mut Context) -> Result<Output, Error> {
        match self.action {
            Action::Save { linearizable, file } => save(ctx, linearizable, file).await,
            Action::Status { file } => status(&file),
        }
    }
}

fn io(file: &std::path::Path) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::Client(format!("{}: {e}", file.display()))
}

async fn save(ctx: &mut Context, linearizable: bool, file: PathBuf) -> Result<Output, Error> {
    let started = std::time::Instant::now();
    // Written beside the target as FILE.partial (created new: two saves to one name cannot
    // mix their bytes) and renamed once whole and synced: FILE is never a partial backup.
    let mut name = file.clone().into_os_string();
    name.push(".partial");
    let partial = PathBuf::from(name);
    let created = std::fs::OpenOptions::new().write(true).create_new(true).open(&partial).map_err(|e| {
        Error::Client(format!("{}: {e} (another save to this name running, or one interrupted?)", partial.display()))
    })?;
    let result = async {
        let out = BufWriter::with_capacity(1 << 20, created);
        let (header, trailer, out) = ctx.client()?.save_snapshot(out, linearizable).await?;
        let f = out.into_inner().map_err(|e| io(&partial)(e.into_error()))?;
        f.sync_all().map_err(io(&partial))?;
        std::fs::rename(&partial, &file).map_err(io(&file))?;
        if let Some(dir) = file.parent().filter(|d| !d.as_os_str().is_empty())
            && let Ok(d) = std::fs::File::open(dir)
        {
            let _ = d.sync_all();
        }
        Ok((header, trailer))
    }
    .await;
    let (header, trailer) = match result {
        Ok(done) => done,
        Err(e) => {
            let _ = std::fs::remove_file(&partial);
            return Err(e);
        }
    };
    let took = started.elapsed();
    let mut out = describe(&file, &header, &trailer);
    out.text = Some(format!(
        "Snapshot saved at {} in {:.2} s\n{}",
        file.display(),
        took.as_secs_f64(),
        out.text.unwrap_or_default()
    ));
    out.json["seconds"] = json!(took.as_secs_f64());
    Ok(out)
}

fn status(file: &std::path::Path) -> Result<Output, Error> {
    let f = std::fs::File::open(file).map_err(io(file))?;
    let mut backup = Backup::open(std::io::BufReader::new(f)).map_err(io(file))?;
    backup.verify().map_err(io(file))?;
    Ok(describe(file, &backup.header, &backup.trailer))
}

fn describe(file: &std::path::Path, h: &SnapshotHeader, t: &SnapshotTrailer) -> Output {
    let members: Vec<String> = h
        .members
        .iter()
        .map(|m| {
            let role = if m.role() == MemberRole::ObserverRole { "observer" } else { "voter" };
            format!("{}={} ({role})", m.id, m.peer_address)
        })
        .collect();
    let created = humantime::format_rfc3339_seconds(
        std::time::UNIX_EPOCH + std::time::Duration::from_millis(h.created_ms.max(0) as u64),
    );
    let text = format!(
        "File: {}\nZxid: 0x{:x}\nTerm: {}\nCluster: {:016x}\nMembers: {}\nNodes: {}\nBytes: {}\nCrc32: {:08x}\nTaken: {created} on server {} (grove {})",
        file.display(),
        h.zxid,
        h.term,
        h.cluster_id,
        members.join(", "),
        t.nodes,
        t.bytes,
        t.crc32,
        h.server_id,
        h.version,
    );
    let json = json!({
        "file": file.display().to_string(),
        "zxid": h.zxid,
        "term": h.term,
        "cluster_id": format!("{:016x}", h.cluster_id),
        "members": h.members.iter().map(|m| json!({
            "id": m.id,
            "role": if m.role() == MemberRole::ObserverRole { "observer" } else { "voter" },
            "peer_address": m.peer_address,
        })).collect::<Vec<_>>(),
        "nodes": t.nodes,
        "bytes": t.bytes,
        "crc32": format!("{:08x}", t.crc32),
        "created_ms": h.created_ms,
        "server_id": h.server_id,
        "version": h.version,
    });
    Output::text(text, json)
}
