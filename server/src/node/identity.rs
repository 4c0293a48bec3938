//! No amnesia: a server that has lost what it promised as a member does not come back as
//! that member.
//!
//! A voter's vote and log are promises: it acknowledged entries (so a leader counted it
//! toward their commit) and voted in terms. Restarted with an emptied data directory, or
//! with an older copy of one, it has forgotten some of them; with the same `--id` it could
//! then elect a lagging server and lose committed writes, or vote twice in a term.
//!
//! Every member registers, through the log, which data directory runs as it (a random
//! incarnation fixed when its log was created) and how many times that directory has
//! started (`fsm::members`). Before Raft starts, a server asks its peers what they know of
//! its id, and refuses to start when:
//! - its log is empty but its id is registered: it ran before and lost its state;
//! - the registered incarnation is another: this is not the directory that ran last;
//! - the registered start count is at least its own: this is an older copy;
//! - the leader says it acknowledged entries past the end of its log.
//!
//! The safe way back is etcd's: remove the member, empty it, start it with `--join`, add it
//! again (docs/operations.md). When no peer answers (a whole ensemble starting at once),
//! the check cannot be made; the server says so and starts.

use std::time::{Duration, Instant};

use grove_proto::peer::{InfoRequest, InfoResponse};

use crate::config::Config;
use crate::raft::{Identity, PeerChannels};

/// The safe procedure, for the refusals.
fn procedure(id: u64) -> String {
    format!(
        "To bring this server back safely: on the ensemble, `grove member remove {id}`; empty this server's data \
         directory; start it with `--join`; then `grove member add {id} <its peer address>` (docs/operations.md, \
         \"Replacing a member\")"
    )
}

/// What the peers say about this server, asked before Raft starts; an error refuses the
/// start with the reason and the safe procedure.
pub(super) async fn preflight(
    config: &Config,
    channels: &PeerChannels,
    identity: Identity,
    last_index: u64,
) -> anyhow::Result<()> {
    let peers: Vec<(u64, String)> =
        config.peers.iter().chain(&config.observers).filter(|(id, _)| *id != config.id).cloned().collect();
    if peers.is_empty() {
        return Ok(());
    }
    let answers = ask(config, channels, &peers).await;
    if answers.is_empty() {
        tracing::warn!(
            "no peer answered: starting without checking that this data directory is the one that last ran as \
             server {}",
            config.id
        );
        return Ok(());
    }
    let me = config.id;
    for (peer, info) in &answers {
        if info.registered {
            if identity.fresh {
                anyhow::bail!(
                    "this server's data directory holds no Raft state, but server {peer} says server {me} already ran \
                     as a member of this ensemble (data directory {:016x}, started {} times): it has lost the votes \
                     and log entries it acknowledged, and must not rejoin as the same member. {}",
                    info.incarnation,
                    info.boot,
                    procedure(me)
                );
            }
            if info.incarnation != identity.incarnation {
                anyhow::bail!(
                    "server {peer} says another data directory ({:016x}) ran last as server {me}; this one is \
                     {:016x}: it is out of date. {}",
                    info.incarnation,
                    identity.incarnation,
                    procedure(me)
                );
            }
            if info.boot >= identity.boot {
                anyhow::bail!(
                    "server {peer} says this data directory already started {} times as server {me}, and this is \
                     only start {}: it is an older copy of the directory, missing what the server promised \
                     since. {}",
                    info.boot,
                    identity.boot,
                    procedure(me)
                );
            }
        }
        if !identity.fresh && info.matched > last_index {
            anyhow::bail!(
                "the leader (server {peer}) says server {me} acknowledged log entries up to {}, but its log ends at \
                 {last_index}: its data directory lost them. {}",
                info.matched,
                procedure(me)
            );
        }
    }
    Ok(())
}

/// Asks every peer, for a while, until at least one answers: (peer id, answer).
async fn ask(config: &Config, channels: &PeerChannels, peers: &[(u64, String)]) -> Vec<(u64, InfoResponse)> {
    let deadline = Instant::now() + config.election_timeout_max * 3;
    loop {
        let calls = peers.iter().map(|(id, addr)| async move {
            let mut client = channels.client(addr).ok()?;
            let call = client.info(InfoRequest { about: config.id });
            match tokio::time::timeout(Duration::from_secs(1), call).await {
                Ok(Ok(r)) => Some((*id, r.into_inner())),
                _ => None,
            }
        });
        let answers: Vec<_> = futures::future::join_all(calls).await.into_iter().flatten().collect();
        if !answers.is_empty() || Instant::now() >= deadline {
            return answers;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
