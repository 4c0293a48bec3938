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
//! - the leader says it acknowledged entries past the end of its log;
//! - its log is empty, it was not told to `--join`, and the peers already form an
//!   ensemble without it: it would bootstrap a second one;
//! - its state belongs to one cluster and a peer's to another (two ensembles over the same
//!   addresses: their logs must not mix; peer messages between them are refused too);
//! - a peer was restored from a backup (`--restore`) and this server was restored from
//!   another backup or with another membership, or not restored at all and not told to
//!   `--join`: their logs would claim the same positions for different states.
//!
//! The safe way back is etcd's: remove the member, empty it, start it with `--join`, add it
//! again (docs/operations.md).
//!
//! The server waits until a majority of the voters (itself included, if it is one) has
//! answered, however long that takes: a registration is committed on a majority, and any
//! majority holds at least one server that has it, so a check made with fewer answers
//! could pass an amnesiac. Servers answer these questions while they wait themselves (the
//! peer port serves `Info` before Raft), so an ensemble restarted all at once checks
//! itself; one started alone waits for the others, and says so.

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

/// How a server that passed the checks starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// As configured: forming the ensemble from --peers on a first start, or rejoining it.
    AsConfigured,
    /// Waiting to be added (`--auto-join` found an ensemble formed without it).
    Join,
}

/// What this server's own data directory says.
pub(super) struct Mine {
    pub identity: Identity,
    pub last_index: u64,
    /// The cluster its state belongs to (0: none yet).
    pub cluster: u64,
}

/// What the peers say about this server, asked before Raft starts; an error refuses the
/// start with the reason and the safe procedure.
pub(super) async fn preflight(
    config: &Config,
    channels: &PeerChannels,
    mine: Mine,
    restored_from: Option<String>,
) -> anyhow::Result<Start> {
    let Mine { identity, last_index, cluster } = mine;
    let peers: Vec<(u64, String)> =
        config.peers.iter().chain(&config.observers).filter(|(id, _)| *id != config.id).cloned().collect();
    if peers.is_empty() {
        return Ok(Start::AsConfigured);
    }
    let mut start = Start::AsConfigured;
    let answers = ask(config, channels, &peers, identity.fresh && config.auto_join && !config.join).await;
    let me = config.id;
    for (peer, info) in &answers {
        if !info.restored_from.is_empty() {
            match &restored_from {
                Some(mine) if *mine != info.restored_from => anyhow::bail!(
                    "server {peer} was restored from another backup or with other members ({}) than this server \
                     ({mine}): restore every member of the new cluster from the same file with the same --peers",
                    info.restored_from
                ),
                None if identity.fresh && !config.join && config.auto_join => start = Start::Join,
                None if identity.fresh && !config.join => anyhow::bail!(
                    "server {peer} was restored from a backup ({}); start server {me} with the same --restore FILE \
                     and --peers, or with --join to be added to it (docs/operations.md, \"Backup and restore\")",
                    info.restored_from
                ),
                _ => {}
            }
        }
        if cluster != 0 && info.cluster_id != 0 && info.cluster_id != cluster {
            anyhow::bail!(
                "server {peer} belongs to cluster {:016x}, and this server's data directory to cluster {cluster:016x}: \
                 two ensembles share these member addresses (a majority of the voters started empty and formed a \
                 new one, or --peers names another ensemble's servers). Their logs must not mix; check --peers and \
                 which data directories were emptied (docs/operations.md, \"Replacing a member\")",
                info.cluster_id
            );
        }
        // A membership without this server: an ensemble formed (its cluster id may not be
        // registered yet, in its first second).
        let formed_without_me = info.membership_known && !info.in_membership;
        if identity.fresh && !config.join && formed_without_me && config.auto_join {
            start = Start::Join;
        } else if identity.fresh && !config.join && info.membership_known && info.in_membership {
            // Already a member of the formed ensemble (a voter that started late, or a
            // learner): it gets the membership by replication. Initializing from --peers
            // would make a learner campaign as a voter of a membership of its own.
            start = Start::Join;
        } else if identity.fresh && !config.join && formed_without_me {
            anyhow::bail!(
                "server {peer} belongs to an ensemble (cluster {:016x}) that server {me} is not a member of: starting \
                 without --join would bootstrap a second ensemble over the same peers. A new member starts with an \
                 empty data directory and --join, and is added with `grove member add {me} <its peer address>` \
                 (docs/operations.md)",
                info.cluster_id
            );
        }
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
    Ok(start)
}

/// Asks every peer until a majority of the voters has answered (see the module's comment).
/// `anchored`: the majority must include the lowest voter id (unless one answer already
/// shows a membership). A fresh server that may form an ensemble by itself (`--auto-join`)
/// must not take a majority of other fresh servers for a new ensemble while an existing
/// member is merely slow to answer: scaling 1 to 3, the two new servers are a majority. The
/// lowest id is the member that exists first and is removed last (the chart scales from the
/// highest ordinal), so an ensemble never forms without it; a first start still needs only
/// a majority, as long as it is among them.
async fn ask(
    config: &Config,
    channels: &PeerChannels,
    peers: &[(u64, String)],
    anchored: bool,
) -> Vec<(u64, InfoResponse)> {
    let voters: Vec<u64> = config.peers.iter().map(|(id, _)| *id).collect();
    let me_voting = voters.contains(&config.id);
    let majority = voters.len() / 2 + 1;
    let anchor = voters.iter().copied().min().filter(|a| anchored && *a != config.id);
    let started = Instant::now();
    let mut next_note = started + Duration::from_secs(5);
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
        let voting = answers.iter().filter(|(id, _)| voters.contains(id)).count() + usize::from(me_voting);
        let anchor_heard = anchor.is_none_or(|a| answers.iter().any(|(id, _)| *id == a));
        if (voting >= majority && anchor_heard) || (anchored && answers.iter().any(|(_, a)| a.membership_known)) {
            return answers;
        }
        if Instant::now() >= next_note {
            let heard: Vec<u64> = answers.iter().map(|(id, _)| *id).collect();
            tracing::warn!(
                "waiting {}s so far for a majority of the voters ({majority} of {}{}) to answer before starting: \
                 heard from {heard:?}{}; start the others (a whole ensemble may start at once)",
                started.elapsed().as_secs(),
                voters.len(),
                anchor.map(|a| format!(", server {a} among them")).unwrap_or_default(),
                if me_voting { " and this server" } else { "" },
            );
            next_note = Instant::now() + Duration::from_secs(30);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// How long a removed member whose data directory is not known (it never registered) is kept
/// from joining back: its replacement has a new one, which cannot be told apart.
const REMOVED_UNKNOWN: Duration = Duration::from_secs(600);

/// The members this server removed while leading, by id: (incarnation or 0, when). Kept in
/// memory: what it guards against is a joiner still running right after its removal (the
/// chart's shrink Job removes servers that keep asking until their pods stop).
#[derive(Default)]
pub(super) struct Removed(std::sync::Mutex<std::collections::HashMap<u64, (u64, Instant)>>);

impl super::Node {
    /// Removes a member, remembering which data directory it was so that it does not join
    /// back by itself (`--auto-join`).
    pub async fn remove_member(&self, id: u64) -> Result<(), crate::raft::NotHere> {
        use crate::storage::access::StateTables;
        let incarnation =
            self.view().ok().and_then(|v| v.tables.member(id).ok().flatten()).map_or(0, |m| m.incarnation);
        self.consensus.remove_member(id).await?;
        self.removed.0.lock().unwrap().insert(id, (incarnation, Instant::now()));
        Ok(())
    }

    pub(super) fn was_removed(&self, id: u64, incarnation: u64) -> bool {
        match self.removed.0.lock().unwrap().get(&id) {
            Some((known, _)) if *known != 0 => *known == incarnation,
            Some((_, when)) => when.elapsed() < REMOVED_UNKNOWN,
            None => false,
        }
    }
}
