//! `aegis.v1.Admin`: status, membership, leadership, snapshots.

use aegis_proto::v1 as pb;
use tonic::{Request, Response, Status};

use super::{errors::consensus_status, Api};
use crate::raft::Member;

impl Api {
    fn members(&self) -> Vec<pb::Member> {
        self.consensus
            .view()
            .members
            .into_iter()
            .map(|(id, (m, voter))| pb::Member {
                id,
                peer_addr: m.peer_addr,
                client_addr: m.client_addr,
                voter,
                incarnation: m.incarnation,
            })
            .collect()
    }

    /// The membership after a change at log `index`, as this node sees it once the
    /// change reached it (a follower that forwarded the change may see it a moment
    /// after the leader committed it).
    async fn membership_response(&self, index: u64) -> Response<pb::MembershipResponse> {
        self.consensus.wait_membership(index).await;
        Response::new(pb::MembershipResponse {
            header: self.header(index),
            members: self.members(),
        })
    }
}

#[tonic::async_trait]
impl pb::admin_server::Admin for Api {
    async fn status(
        &self,
        r: Request<pb::StatusRequest>,
    ) -> Result<Response<pb::StatusResponse>, Status> {
        let _t = self.metrics.request("admin.status");
        let v = self.consensus.view();
        let (digest, digest_index) = if r.into_inner().include_digest {
            self.consensus
                .sm()
                .digest()
                .await
                .map_err(|e| Status::internal(e.to_string()))?
        } else {
            (String::new(), 0)
        };
        Ok(Response::new(pb::StatusResponse {
            node_id: v.id,
            term: v.term,
            leader_id: v.leader.unwrap_or(0),
            role: v.role.to_string(),
            commit_index: v.commit_index,
            applied_index: v.applied_index,
            last_log_index: v.last_log_index,
            lags: v
                .lags
                .iter()
                .map(|(f, lag)| pb::FollowerLag {
                    follower_id: *f,
                    lag: *lag,
                })
                .collect(),
            members: self.members(),
            config_hash: self.config_hash.to_string(),
            state_digest: digest,
            digest_index,
            snapshot_index: v.snapshot_index,
            version: env!("CARGO_PKG_VERSION").to_string(),
            incarnation: self.consensus.incarnation(),
        }))
    }

    async fn add_learner(
        &self,
        r: Request<pb::AddLearnerRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let _t = self.metrics.request("admin.add_learner");
        let req = r.into_inner();
        if req.node_id == 0 || req.peer_addr.is_empty() || req.client_addr.is_empty() {
            return Err(Status::invalid_argument(
                "node id, peer address and client address are required",
            ));
        }
        // The leader asks the node for its incarnation before adding it.
        let member = Member {
            peer_addr: req.peer_addr,
            client_addr: req.client_addr,
            incarnation: 0,
        };
        let index = self
            .consensus
            .add_learner(req.node_id, member)
            .await
            .map_err(|e| consensus_status(&e))?;
        Ok(self.membership_response(index).await)
    }

    async fn promote(
        &self,
        r: Request<pb::PromoteRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let _t = self.metrics.request("admin.promote");
        let id = r.into_inner().node_id;
        let index = self
            .consensus
            .promote(id)
            .await
            .map_err(|e| consensus_status(&e))?;
        Ok(self.membership_response(index).await)
    }

    async fn remove_member(
        &self,
        r: Request<pb::RemoveMemberRequest>,
    ) -> Result<Response<pb::MembershipResponse>, Status> {
        let _t = self.metrics.request("admin.remove_member");
        let id = r.into_inner().node_id;
        let index = self
            .consensus
            .remove(id)
            .await
            .map_err(|e| consensus_status(&e))?;
        Ok(self.membership_response(index).await)
    }

    async fn transfer_leader(
        &self,
        r: Request<pb::TransferLeaderRequest>,
    ) -> Result<Response<pb::TransferLeaderResponse>, Status> {
        let _t = self.metrics.request("admin.transfer_leader");
        let to = r.into_inner().node_id;
        self.consensus
            .transfer_leader(to)
            .await
            .map_err(|e| consensus_status(&e))?;
        Ok(Response::new(pb::TransferLeaderResponse {}))
    }

    async fn snapshot(
        &self,
        _r: Request<pb::SnapshotRequest>,
    ) -> Result<Response<pb::SnapshotResponse>, Status> {
        let _t = self.metrics.request("admin.snapshot");
        let snapshot_index = self
            .consensus
            .snapshot()
            .await
            .map_err(|e| consensus_status(&e))?;
        Ok(Response::new(pb::SnapshotResponse { snapshot_index }))
    }
}
