//! The public `aegis.v1` services. Each handler validates against the
//! config limits, then either proposes through [`Consensus`] or reads the
//! local state machine (after a read barrier unless serializable).

mod admin;
mod convert;
mod errors;
mod kv;
mod lock;
pub(crate) mod request;
mod session;
mod validate;
mod watch;

use std::sync::Arc;

use aegis_config::ClusterConfig;
use aegis_proto::v1 as pb;

use crate::metrics::Metrics;
use crate::raft::{Consensus, ConsensusError};

pub use errors::status_of;

/// The five public services, ready to mount.
pub type Services = (
    pb::session_server::SessionServer<Api>,
    pb::lock_server::LockServer<Api>,
    pb::kv_server::KvServer<Api>,
    pb::watch_server::WatchServer<Api>,
    pb::admin_server::AdminServer<Api>,
);

/// State shared by every public service.
#[derive(Clone)]
pub struct Api {
    pub consensus: Arc<Consensus>,
    pub config: Arc<ClusterConfig>,
    pub config_hash: Arc<str>,
    pub metrics: Metrics,
}

impl Api {
    fn header(&self, revision: u64) -> Option<pb::ResponseHeader> {
        Some(pb::ResponseHeader {
            revision,
            served_by: self.consensus.id(),
            raft_term: self.consensus.term(),
        })
    }

    /// Waits until a read here is linearizable, unless the caller accepted
    /// a possibly stale (serializable) read.
    async fn read_barrier(&self, serializable: bool) -> Result<(), tonic::Status> {
        if serializable {
            return Ok(());
        }
        self.consensus
            .read_barrier()
            .await
            .map(|_| ())
            .map_err(|e: ConsensusError| errors::consensus_status(&e))
    }

    /// Server stacks for the five public services, with the decode limit
    /// set above the configured request limit so that oversize requests
    /// reach our own check and get the documented error.
    pub fn services(&self) -> Services {
        let limit = usize::try_from(self.config.kv.max_request_bytes)
            .unwrap_or(usize::MAX / 4)
            .saturating_mul(2)
            .max(4 << 20);
        (
            pb::session_server::SessionServer::new(self.clone()).max_decoding_message_size(limit),
            pb::lock_server::LockServer::new(self.clone()).max_decoding_message_size(limit),
            pb::kv_server::KvServer::new(self.clone()).max_decoding_message_size(limit),
            pb::watch_server::WatchServer::new(self.clone()).max_decoding_message_size(limit),
            pb::admin_server::AdminServer::new(self.clone()).max_decoding_message_size(limit),
        )
    }
}

impl Api {
    /// Proposes `op` and returns the log index it was applied at with its
    /// reply, or the stable error for its refusal.
    async fn apply(
        &self,
        op: aegis_state_machine::Op,
    ) -> Result<(u64, aegis_state_machine::Reply), tonic::Status> {
        let applied = self
            .consensus
            .propose(op)
            .await
            .map_err(|e| errors::consensus_status(&e))?;
        match applied.result {
            Ok(reply) => Ok((applied.index, reply)),
            Err(e) => Err(status_of(&e)),
        }
    }
}

/// A reply variant the state machine cannot produce for this op.
fn unexpected(reply: &aegis_state_machine::Reply) -> tonic::Status {
    tonic::Status::internal(format!("unexpected state machine reply {reply:?}"))
}
