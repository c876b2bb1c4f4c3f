//! An in-memory Raft group implementing [`ClusterAdmin`], for the planners' and the
//! reconciler's tests. It enforces the rules a real group would (membership calls only
//! on the leader, promote only a learner, add only an empty node).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use crate::admin::{AdminError, ClusterAdmin, Member, NodeEndpoint, NodeStatus, Role};
use crate::names;

#[derive(Debug, Clone)]
pub struct FakeRaft {
    cluster: String,
    running: BTreeSet<u64>,
    /// Nodes whose data dir holds group state.
    joined: BTreeSet<u64>,
    members: Vec<Member>,
    /// Each node's data-directory incarnation; a lost volume gets a new one.
    incarnations: BTreeMap<u64, u64>,
    pub leader: Option<u64>,
    pub term: u64,
    pub lags: BTreeMap<u64, u64>,
    pub config_hash: String,
    pub calls: Vec<String>,
}

impl FakeRaft {
    /// A formed group of `n` voters, node 1 leading in term 1.
    pub fn formed(cluster: &str, n: u64) -> Self {
        let mut raft = FakeRaft {
            cluster: cluster.to_string(),
            running: (1..=n).collect(),
            joined: (1..=n).collect(),
            members: Vec::new(),
            incarnations: (1..=n).map(|id| (id, 1000 + id)).collect(),
            leader: Some(1),
            term: 1,
            lags: BTreeMap::new(),
            config_hash: String::new(),
            calls: Vec::new(),
        };
        raft.members = (1..=n).map(|id| raft.member(id, true)).collect();
        for id in 2..=n {
            raft.lags.insert(id, 0);
        }
        raft
    }

    fn member(&self, id: u64, voter: bool) -> Member {
        let o = u32::try_from(id - 1).unwrap();
        Member {
            id,
            peer_addr: names::peer_addr(&self.cluster, "ns", o),
            client_addr: names::client_addr(&self.cluster, "ns", o),
            voter,
            incarnation: self.incarnation(id),
        }
    }

    fn incarnation(&self, id: u64) -> u64 {
        self.incarnations.get(&id).copied().unwrap_or(0)
    }

    /// A fresh data directory for `id`.
    fn new_incarnation(&mut self, id: u64) {
        let next = self.incarnations.values().max().copied().unwrap_or(1000) + 1;
        self.incarnations.insert(id, next);
    }

    pub fn voters(&self) -> Vec<u64> {
        self.members
            .iter()
            .filter(|m| m.voter)
            .map(|m| m.id)
            .collect()
    }

    pub fn status_of(&self, id: u64) -> Option<NodeStatus> {
        if !self.running.contains(&id) {
            return None;
        }
        let joined = self.joined.contains(&id);
        let member = self.members.iter().find(|m| m.id == id);
        let role = match (joined, member) {
            (false, _) | (true, None) => Role::Learner,
            _ if self.leader == Some(id) => Role::Leader,
            (true, Some(m)) if m.voter => Role::Follower,
            _ => Role::Learner,
        };
        Some(NodeStatus {
            node_id: id,
            term: self.term,
            leader_id: if joined { self.leader } else { None },
            role,
            commit_index: 100,
            applied_index: 100,
            lags: if role == Role::Leader {
                self.lags.clone()
            } else {
                BTreeMap::new()
            },
            members: if joined {
                self.members.clone()
            } else {
                Vec::new()
            },
            config_hash: self.config_hash.clone(),
            incarnation: self.incarnation(id),
        })
    }

    pub fn statuses(&self) -> BTreeMap<u64, NodeStatus> {
        self.running
            .iter()
            .filter_map(|id| self.status_of(*id).map(|s| (*id, s)))
            .collect()
    }

    pub fn start_empty(&mut self, id: u64) {
        self.running.insert(id);
        if self.joined.remove(&id) || !self.incarnations.contains_key(&id) {
            self.new_incarnation(id);
        }
    }

    pub fn stop(&mut self, id: u64) {
        self.running.remove(&id);
    }

    pub fn lose_volume(&mut self, id: u64) {
        self.joined.remove(&id);
        self.new_incarnation(id);
    }

    /// A learner the leader added but has not replicated to yet: it answers with an
    /// empty membership, as the incarnation the group recorded.
    pub fn not_yet_replicated(&mut self, id: u64) {
        self.joined.remove(&id);
    }

    pub fn catch_up_all(&mut self) {
        for lag in self.lags.values_mut() {
            *lag = 0;
        }
    }

    fn refuse(&self, node: u64, message: &str) -> AdminError {
        AdminError::Refused {
            node,
            message: message.to_string(),
        }
    }

    pub fn add_learner(&mut self, id: u64) -> Result<(), AdminError> {
        self.calls.push(format!("add_learner {id}"));
        if self.members.iter().any(|m| m.id == id) {
            return Err(self.refuse(id, "already a member"));
        }
        if !self.running.contains(&id) || self.joined.contains(&id) {
            return Err(self.refuse(id, "node not empty or not running"));
        }
        self.members.push(self.member(id, false));
        self.members.sort_by_key(|m| m.id);
        self.joined.insert(id);
        self.lags.insert(id, 500);
        Ok(())
    }

    pub fn promote(&mut self, id: u64) -> Result<(), AdminError> {
        self.calls.push(format!("promote {id}"));
        match self.members.iter_mut().find(|m| m.id == id) {
            Some(m) if !m.voter => {
                m.voter = true;
                Ok(())
            }
            _ => Err(self.refuse(id, "not a learner")),
        }
    }

    pub fn remove(&mut self, id: u64) -> Result<(), AdminError> {
        self.calls.push(format!("remove {id}"));
        if self.leader == Some(id) {
            return Err(self.refuse(id, "cannot remove the leader"));
        }
        let before = self.members.len();
        self.members.retain(|m| m.id != id);
        self.lags.remove(&id);
        if self.members.len() == before {
            return Err(self.refuse(id, "not a member"));
        }
        Ok(())
    }

    pub fn transfer(&mut self, to: u64) -> Result<(), AdminError> {
        self.calls.push(format!("transfer {to}"));
        if !self.voters().contains(&to) {
            return Err(self.refuse(to, "not a voter"));
        }
        if let Some(old) = self.leader {
            self.lags.insert(old, 0);
        }
        self.lags.remove(&to);
        self.leader = Some(to);
        self.term += 1;
        Ok(())
    }
}

/// Shared handle, so a test can change the group while the reconciler uses it.
#[derive(Debug, Clone)]
pub struct FakeAdmin(pub Arc<Mutex<FakeRaft>>);

impl FakeAdmin {
    pub fn new(raft: FakeRaft) -> Self {
        FakeAdmin(Arc::new(Mutex::new(raft)))
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut FakeRaft) -> T) -> T {
        let mut guard = self.0.lock().unwrap();
        f(&mut guard)
    }

    fn on_leader<T>(
        &self,
        via: &NodeEndpoint,
        f: impl FnOnce(&mut FakeRaft) -> Result<T, AdminError>,
    ) -> Result<T, AdminError> {
        self.with(|r| {
            if r.leader != Some(via.id) {
                return Err(AdminError::NotLeader {
                    node: via.id,
                    hint: r.leader,
                });
            }
            f(r)
        })
    }
}

impl ClusterAdmin for FakeAdmin {
    async fn status(&self, node: &NodeEndpoint) -> Result<NodeStatus, AdminError> {
        self.with(|r| {
            r.status_of(node.id).ok_or(AdminError::Unreachable {
                node: node.id,
                message: "connection refused".into(),
            })
        })
    }

    async fn add_learner(
        &self,
        leader: &NodeEndpoint,
        m: &Member,
    ) -> Result<Vec<Member>, AdminError> {
        self.on_leader(leader, |r| r.add_learner(m.id).map(|_| r.members.clone()))
    }

    async fn promote(&self, leader: &NodeEndpoint, id: u64) -> Result<Vec<Member>, AdminError> {
        self.on_leader(leader, |r| r.promote(id).map(|_| r.members.clone()))
    }

    async fn remove_member(
        &self,
        leader: &NodeEndpoint,
        id: u64,
    ) -> Result<Vec<Member>, AdminError> {
        self.on_leader(leader, |r| r.remove(id).map(|_| r.members.clone()))
    }

    async fn transfer_leader(&self, leader: &NodeEndpoint, to: u64) -> Result<(), AdminError> {
        self.on_leader(leader, |r| r.transfer(to))
    }
}
