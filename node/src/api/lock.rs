//! `aegis.v1.Lock`. A waiting acquire is queued in the replicated state;
//! this replica then waits for the grant to be applied locally — every
//! replica sees the same grants, so a follower can wait as well as the
//! leader can.

use std::sync::Arc;

use aegis_proto::v1 as pb;
use aegis_state_machine::{Applied, Op, Reply};
use tokio::sync::broadcast::error::RecvError;
use tonic::{Request, Response, Status};

use super::{request, unexpected, Api};
use crate::raft::{Consensus, SmEvent};

/// Leaves the wait queue if the caller goes away before the grant.
struct CancelOnDrop {
    consensus: Arc<Consensus>,
    name: String,
    session_id: u64,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let consensus = self.consensus.clone();
        let op = Op::CancelWait {
            name: std::mem::take(&mut self.name),
            session_id: self.session_id,
        };
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                let _ = consensus.propose(op).await;
            });
        }
    }
}

enum WaitOutcome {
    Granted(u64),
    SessionGone,
    Pending,
}

fn granted_in(a: &Applied, name: &str, session_id: u64) -> WaitOutcome {
    if let Some(g) = a
        .grants
        .iter()
        .find(|g| g.name == name && g.session_id == session_id)
    {
        return WaitOutcome::Granted(g.token);
    }
    if a.expired_sessions.contains(&session_id) {
        return WaitOutcome::SessionGone;
    }
    WaitOutcome::Pending
}

impl Api {
    fn holder_now(&self, name: &str, session_id: u64) -> WaitOutcome {
        self.consensus.sm().read(|sm| {
            let l = sm.lock(name);
            if l.holder_session == session_id {
                WaitOutcome::Granted(l.token)
            } else if sm.session(session_id).is_err() {
                WaitOutcome::SessionGone
            } else {
                WaitOutcome::Pending
            }
        })
    }

    async fn wait_for_grant(
        &self,
        mut rx: tokio::sync::broadcast::Receiver<SmEvent>,
        name: &str,
        session_id: u64,
    ) -> Result<u64, Status> {
        let mut guard = CancelOnDrop {
            consensus: self.consensus.clone(),
            name: name.to_string(),
            session_id,
            armed: true,
        };
        // The grant may already be applied here (we subscribed before
        // proposing, so it is either in the channel or in the state).
        loop {
            let outcome = match rx.recv().await {
                Ok(SmEvent::Applied(a)) => granted_in(&a, name, session_id),
                Ok(SmEvent::Reset { .. }) | Err(RecvError::Lagged(_)) => {
                    self.holder_now(name, session_id)
                }
                Err(RecvError::Closed) => return Err(Status::unavailable("node shutting down")),
            };
            match outcome {
                WaitOutcome::Granted(token) => {
                    guard.armed = false;
                    return Ok(token);
                }
                WaitOutcome::SessionGone => {
                    guard.armed = false;
                    return Err(Status::not_found("session expired"));
                }
                WaitOutcome::Pending => {}
            }
        }
    }
}

#[tonic::async_trait]
impl pb::lock_server::Lock for Api {
    async fn acquire(
        &self,
        r: Request<pb::AcquireRequest>,
    ) -> Result<Response<pb::AcquireResponse>, Status> {
        let _t = self.metrics.request("lock.acquire");
        let req = r.into_inner();
        let op = request::acquire(&self.config, &req)?;
        let rx = self.consensus.sm().subscribe();
        let (index, reply) = self.apply(op).await?;
        let (acquired, token, holder_session) = match reply {
            Reply::Acquired { token } => (true, token, req.session_id),
            Reply::Busy { holder_session } => (false, 0, holder_session),
            Reply::Queued { .. } => {
                let token = self.wait_for_grant(rx, &req.name, req.session_id).await?;
                (true, token, req.session_id)
            }
            other => return Err(unexpected(&other)),
        };
        Ok(Response::new(pb::AcquireResponse {
            header: self.header(index.max(token)),
            acquired,
            token,
            holder_session,
        }))
    }

    async fn release(
        &self,
        r: Request<pb::ReleaseRequest>,
    ) -> Result<Response<pb::ReleaseResponse>, Status> {
        let _t = self.metrics.request("lock.release");
        let op = request::release(&self.config, r.into_inner())?;
        match self.apply(op).await? {
            (index, Reply::Released { next }) => Ok(Response::new(pb::ReleaseResponse {
                header: self.header(index),
                next_session: next.as_ref().map(|g| g.session_id).unwrap_or(0),
                next_token: next.as_ref().map(|g| g.token).unwrap_or(0),
            })),
            (_, other) => Err(unexpected(&other)),
        }
    }

    async fn inspect(
        &self,
        r: Request<pb::InspectRequest>,
    ) -> Result<Response<pb::InspectResponse>, Status> {
        let _t = self.metrics.request("lock.inspect");
        let req = r.into_inner();
        request::inspect(&req)?;
        self.read_barrier(req.serializable).await?;
        let (l, index) = self
            .consensus
            .sm()
            .read(|sm| (sm.lock(&req.name), sm.applied_index()));
        Ok(Response::new(pb::InspectResponse {
            header: self.header(index),
            lock: Some(pb::LockInfo {
                name: l.name,
                holder_session: l.holder_session,
                token: l.token,
                waiters: l.waiters,
            }),
        }))
    }
}
