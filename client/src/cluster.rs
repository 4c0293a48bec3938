//! The ensemble: status, members, membership changes and leadership transfer.

use std::sync::atomic::Ordering;

use grove_proto::v1 as pb;
use grove_proto::v1::cluster_client::ClusterClient;
use tonic::Status;
use tonic::transport::Channel;

use crate::client::Client;
use crate::error::{Error, Result};

/// Largest answer of the listing calls (a million watches is ~60 MB).
const LARGE: usize = 256 << 20;

impl Client {
    pub async fn status(&self) -> Result<pb::StatusResponse> {
        self.call(true, |ch| async { ClusterClient::new(ch).status(self.request(pb::StatusRequest {})).await }).await
    }

    pub async fn members(&self) -> Result<Vec<pb::Member>> {
        let r = self
            .call(true, |ch| async { ClusterClient::new(ch).members(self.request(pb::MembersRequest {})).await })
            .await?;
        Ok(r.members)
    }

    /// Runs a cluster change on the leader: if the server asked is not the leader, once more
    /// on the leader it names.
    async fn on_leader<T, F, Fut>(&self, f: F) -> Result<T>
    where
        F: Fn(Channel) -> Fut,
        Fut: std::future::Future<Output = std::result::Result<tonic::Response<T>, Status>>,
    {
        match self.call(false, &f).await {
            Err(Error::NotReady { leader: Some(l), .. }) if !l.address.is_empty() => {
                let ch = self
                    .conn
                    .dial
                    .endpoint(&l.address)?
                    .connect()
                    .await
                    .map_err(|e| Error::Unreachable { message: format!("leader {}: {e}", l.address) })?;
                f(ch).await.map(|r| r.into_inner()).map_err(crate::connection::status_err)
            }
            other => other,
        }
    }

    /// Adds a voter (or, with `observer`, a non-voting member) whose groved already runs.
    pub async fn add_member(
        &self,
        id: u64,
        peer_address: &str,
        client_address: &str,
        observer: bool,
    ) -> Result<Vec<pb::Member>> {
        let msg = pb::AddMemberRequest {
            id,
            role: if observer { pb::MemberRole::ObserverRole } else { pb::MemberRole::Voter } as i32,
            peer_address: peer_address.to_string(),
            client_address: client_address.to_string(),
        };
        let r =
            self.on_leader(|ch| async { ClusterClient::new(ch).add_member(self.request(msg.clone())).await }).await?;
        Ok(r.members)
    }

    pub async fn remove_member(&self, id: u64) -> Result<Vec<pb::Member>> {
        let msg = pb::RemoveMemberRequest { id };
        let r = self.on_leader(|ch| async { ClusterClient::new(ch).remove_member(self.request(msg)).await }).await?;
        Ok(r.members)
    }

    /// Hands leadership to `to` (0: any up-to-date voter); returns the new leader's id.
    pub async fn transfer_leader(&self, to: u64) -> Result<u64> {
        let msg = pb::TransferLeaderRequest { to };
        let r = self.on_leader(|ch| async { ClusterClient::new(ch).transfer_leader(self.request(msg)).await }).await?;
        Ok(r.leader_id)
    }

    /// Copies the state of the server this client talks to into `out`, as a backup file
    /// (`grove_proto::backup`): one consistent point of its state, while writes go on. With
    /// `linearizable`, a point that includes every write acknowledged before the call. Needs
    /// ADMIN on "/". Returns what the file's header and trailer say; a stream cut short or
    /// not matching its trailer is an error, and what `out` got is then not a backup.
    pub async fn save_snapshot<W: std::io::Write>(
        &self,
        out: W,
        linearizable: bool,
    ) -> Result<(pb::SnapshotHeader, pb::SnapshotTrailer, W)> {
        use grove_proto::backup::BackupWriter;
        use pb::snapshot_chunk::Part;
        let msg = pb::SaveSnapshotRequest { linearizable };
        let mut stream =
            self.call(true, |ch| async { ClusterClient::new(ch).save_snapshot(self.request(msg)).await }).await?;
        let broken = |what: &str| Error::ConnectionLoss { message: format!("the snapshot stream {what}") };
        let io = |e: std::io::Error| Error::Client(format!("writing the backup: {e}"));
        let header = match stream.message().await.map_err(crate::connection::status_err)? {
            Some(pb::SnapshotChunk { part: Some(Part::Header(h)) }) => h,
            _ => return Err(broken("did not start with a header")),
        };
        let mut writer = BackupWriter::new(out, &header).map_err(io)?;
        loop {
            match stream.message().await.map_err(crate::connection::status_err)? {
                Some(pb::SnapshotChunk { part: Some(Part::Data(d)) }) => writer.data(&d).map_err(io)?,
                Some(pb::SnapshotChunk { part: Some(Part::Trailer(t)) }) => {
                    let out = writer.finish(&t).map_err(io)?;
                    return Ok((header, t, out));
                }
                Some(_) => return Err(broken("sent an unknown part")),
                None => return Err(broken("ended before its trailer")),
            }
        }
    }

    /// The ensemble's sessions (ZooKeeper's `dump`). Needs ADMIN on "/".
    pub async fn sessions(&self) -> Result<Vec<pb::SessionInfo>> {
        let r = self
            .call(true, |ch| async {
                ClusterClient::new(ch)
                    .max_decoding_message_size(LARGE)
                    .sessions(self.request(pb::SessionsRequest {}))
                    .await
            })
            .await?;
        Ok(r.sessions)
    }

    /// The connected server's watches and its stream count (`wchc`). Needs ADMIN on "/".
    pub async fn watches(&self) -> Result<pb::WatchesResponse> {
        self.call(true, |ch| async {
            ClusterClient::new(ch).max_decoding_message_size(LARGE).watches(self.request(pb::WatchesRequest {})).await
        })
        .await
    }

    /// The connected server's client connections (`cons`). Needs ADMIN on "/".
    pub async fn connections(&self) -> Result<Vec<pb::ConnectionInfo>> {
        let r = self
            .call(true, |ch| async {
                ClusterClient::new(ch).connections(self.request(pb::ConnectionsRequest {})).await
            })
            .await?;
        Ok(r.connections)
    }

    /// The connected server's effective configuration with each value's source (`conf`).
    /// Needs ADMIN on "/".
    pub async fn config(&self) -> Result<Vec<pb::Setting>> {
        let r = self
            .call(true, |ch| async { ClusterClient::new(ch).config(self.request(pb::ConfigRequest {})).await })
            .await?;
        Ok(r.settings)
    }

    pub fn cluster_client(&self) -> ClusterClient<Channel> {
        let i = self.conn.current.load(Ordering::Relaxed) % self.conn.channels.len();
        ClusterClient::new(self.conn.channels[i].clone())
    }
}
