//! Where members are: the leader to send clients to, and members' client and peer
//! addresses (the membership records only what the server that added them knew).

use std::time::Duration;

use super::Node;
use crate::error::LeaderHint;
use crate::raft::PeerNode;

impl Node {
    pub fn leader_hint(&self) -> Option<LeaderHint> {
        let st = self.consensus.status();
        let (id, node) = st.leader_node()?;
        Some(LeaderHint { id, address: self.client_address_of(id, &node) })
    }

    /// Like `leader_hint`, asking the leader for its client address if it is not known yet.
    pub async fn leader_hint_resolved(&self) -> Option<LeaderHint> {
        let hint = self.leader_hint()?;
        if hint.address.is_empty() {
            self.discover_client_addresses().await;
            return self.leader_hint();
        }
        Some(hint)
    }

    /// A member's client address: this server's own, the one in the membership, or the one
    /// the member told us; empty if unknown yet.
    pub fn client_address_of(&self, id: u64, node: &PeerNode) -> String {
        if id == self.id {
            return self.client_addr.clone();
        }
        if !node.client_addr.is_empty() {
            return node.client_addr.clone();
        }
        self.client_addrs.lock().unwrap().get(&id).cloned().unwrap_or_default()
    }

    /// Asks members whose client address is unknown for it.
    pub(crate) async fn discover_client_addresses(&self) {
        let st = self.consensus.status();
        for m in st.members {
            if m.id == self.id
                || !m.node.client_addr.is_empty()
                || self.client_addrs.lock().unwrap().contains_key(&m.id)
            {
                continue;
            }
            let Ok(mut client) = self.channels.client(&self.peer_address_of(m.id, &m.node)) else { continue };
            let info =
                tokio::time::timeout(Duration::from_secs(1), client.info(grove_proto::peer::InfoRequest { about: 0 }))
                    .await;
            if let Ok(Ok(info)) = info {
                let info = info.into_inner();
                if info.id == m.id && !info.client_address.is_empty() {
                    self.client_addrs.lock().unwrap().insert(m.id, info.client_address);
                }
            }
        }
    }

    /// Where this server reaches a member's peer port (its configured address wins).
    pub(crate) fn peer_address_of(&self, id: u64, node: &PeerNode) -> String {
        self.config
            .peers
            .iter()
            .chain(&self.config.observers)
            .find(|(i, _)| *i == id)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| node.peer_addr.clone())
    }
}
