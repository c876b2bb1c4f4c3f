//! [`ClusterAdmin`] over the node's gRPC `aegis.v1.Admin` service.

use std::time::Duration;

use aegis_proto::v1::admin_client::AdminClient;
use aegis_proto::v1::{
    AddLearnerRequest, PromoteRequest, RemoveMemberRequest, StatusRequest, TransferLeaderRequest,
};
use tonic::transport::{Channel, Endpoint};

use super::{AdminError, ClusterAdmin, Member, NodeEndpoint, NodeStatus, Role};

/// Connects per call: the operator talks to a handful of pods every few seconds, and a
/// fresh connection never outlives a pod that was replaced under the same DNS name.
#[derive(Debug, Clone)]
pub struct GrpcClusterAdmin {
    connect_timeout: Duration,
    request_timeout: Duration,
}

impl Default for GrpcClusterAdmin {
    fn default() -> Self {
        Self {
            connect_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_secs(10),
        }
    }
}

impl GrpcClusterAdmin {
    async fn client(&self, node: &NodeEndpoint) -> Result<AdminClient<Channel>, AdminError> {
        let endpoint = Endpoint::from_shared(format!("http://{}", node.client_addr))
            .map_err(|e| AdminError::Unreachable {
                node: node.id,
                message: format!("bad address {:?}: {e}", node.client_addr),
            })?
            .connect_timeout(self.connect_timeout)
            .timeout(self.request_timeout);
        let channel = endpoint
            .connect()
            .await
            .map_err(|e| AdminError::Unreachable {
                node: node.id,
                message: e.to_string(),
            })?;
        Ok(AdminClient::new(channel))
    }
}

fn status_error(node: u64, status: tonic::Status) -> AdminError {
    use tonic::Code;
    match status.code() {
        Code::Unavailable | Code::DeadlineExceeded | Code::Cancelled => AdminError::Unreachable {
            node,
            message: status.message().to_string(),
        },
        Code::FailedPrecondition if status.message().contains("not leader") => {
            AdminError::NotLeader {
                node,
                hint: leader_hint(status.message()),
            }
        }
        _ => AdminError::Refused {
            node,
            message: format!("{:?}: {}", status.code(), status.message()),
        },
    }
}

/// The node's "not leader" message ends with the leader's id when it knows one
/// (`not leader; leader is 3`); anything else is no hint.
fn leader_hint(message: &str) -> Option<u64> {
    message
        .rsplit(|c: char| !c.is_ascii_digit())
        .find(|s| !s.is_empty())
        .and_then(|s| s.parse().ok())
        .filter(|id| *id != 0)
}

fn members(list: Vec<aegis_proto::v1::Member>) -> Vec<Member> {
    list.into_iter()
        .map(|m| Member {
            id: m.id,
            peer_addr: m.peer_addr,
            client_addr: m.client_addr,
            voter: m.voter,
            incarnation: m.incarnation,
        })
        .collect()
}

impl ClusterAdmin for GrpcClusterAdmin {
    async fn status(&self, node: &NodeEndpoint) -> Result<NodeStatus, AdminError> {
        let mut c = self.client(node).await?;
        let r = c
            .status(StatusRequest::default())
            .await
            .map_err(|s| status_error(node.id, s))?
            .into_inner();
        Ok(NodeStatus {
            node_id: r.node_id,
            term: r.term,
            leader_id: (r.leader_id != 0).then_some(r.leader_id),
            role: Role::parse(&r.role),
            commit_index: r.commit_index,
            applied_index: r.applied_index,
            lags: r.lags.iter().map(|l| (l.follower_id, l.lag)).collect(),
            members: members(r.members),
            config_hash: r.config_hash,
            incarnation: r.incarnation,
        })
    }

    async fn add_learner(
        &self,
        leader: &NodeEndpoint,
        member: &Member,
    ) -> Result<Vec<Member>, AdminError> {
        let mut c = self.client(leader).await?;
        let r = c
            .add_learner(AddLearnerRequest {
                node_id: member.id,
                peer_addr: member.peer_addr.clone(),
                client_addr: member.client_addr.clone(),
            })
            .await
            .map_err(|s| status_error(leader.id, s))?;
        Ok(members(r.into_inner().members))
    }

    async fn promote(
        &self,
        leader: &NodeEndpoint,
        node_id: u64,
    ) -> Result<Vec<Member>, AdminError> {
        let mut c = self.client(leader).await?;
        let r = c
            .promote(PromoteRequest { node_id })
            .await
            .map_err(|s| status_error(leader.id, s))?;
        Ok(members(r.into_inner().members))
    }

    async fn remove_member(
        &self,
        leader: &NodeEndpoint,
        node_id: u64,
    ) -> Result<Vec<Member>, AdminError> {
        let mut c = self.client(leader).await?;
        let r = c
            .remove_member(RemoveMemberRequest { node_id })
            .await
            .map_err(|s| status_error(leader.id, s))?;
        Ok(members(r.into_inner().members))
    }

    async fn transfer_leader(&self, leader: &NodeEndpoint, to: u64) -> Result<(), AdminError> {
        let mut c = self.client(leader).await?;
        c.transfer_leader(TransferLeaderRequest { node_id: to })
            .await
            .map_err(|s| status_error(leader.id, s))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn leader_hint_is_the_trailing_id() {
        assert_eq!(leader_hint("not leader; leader is 3"), Some(3));
        assert_eq!(leader_hint("not leader"), None);
        assert_eq!(leader_hint("not leader; leader is 0"), None);
    }

    #[test]
    fn unavailable_is_unreachable_and_not_leader_keeps_the_hint() {
        let e = status_error(2, tonic::Status::unavailable("connection refused"));
        assert!(matches!(e, AdminError::Unreachable { node: 2, .. }));
        let e = status_error(
            2,
            tonic::Status::failed_precondition("not leader; leader is 4"),
        );
        assert_eq!(
            e,
            AdminError::NotLeader {
                node: 2,
                hint: Some(4)
            }
        );
        let e = status_error(2, tonic::Status::invalid_argument("bad id"));
        assert!(matches!(e, AdminError::Refused { node: 2, .. }));
    }
}
