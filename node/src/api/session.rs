//! `aegis.v1.Session`.

use std::pin::Pin;

use aegis_proto::v1 as pb;
use aegis_state_machine::{Reply, SmError};
use futures::{future, Stream, StreamExt};
use tonic::{Request, Response, Status, Streaming};

use super::errors::{consensus_status, status_of};
use super::{request, unexpected, Api};

type KeepAliveStream = Pin<Box<dyn Stream<Item = Result<pb::KeepAliveResponse, Status>> + Send>>;

/// Keep-alives of one stream proposed at once. Replies still go in request
/// order; beyond this many the stream stops reading, so a client that sends
/// faster than Raft commits is held back rather than queued without bound.
const STREAM_IN_FLIGHT: usize = 32;

impl Api {
    /// One keep-alive. `gone_is_ok` answers a session that is not found or
    /// expired with ttl 0 (the stream's contract) instead of a refusal.
    async fn renew(
        &self,
        req: pb::KeepAliveRequest,
        gone_is_ok: bool,
    ) -> Result<pb::KeepAliveResponse, Status> {
        let _t = self.metrics.request("session.keep_alive");
        let session_id = req.session_id;
        let applied = self
            .consensus
            .propose(request::keep_alive(&req))
            .await
            .map_err(|e| consensus_status(&e))?;
        match applied.result {
            Ok(Reply::KeptAlive { session_id, ttl_ms }) => Ok(pb::KeepAliveResponse {
                header: self.header(applied.index),
                session_id,
                ttl_ms,
            }),
            Ok(other) => Err(unexpected(&other)),
            Err(SmError::SessionNotFound { .. } | SmError::SessionExpired { .. }) if gone_is_ok => {
                Ok(pb::KeepAliveResponse {
                    header: self.header(applied.index),
                    session_id,
                    ttl_ms: 0,
                })
            }
            Err(e) => Err(status_of(&e)),
        }
    }
}

#[tonic::async_trait]
impl pb::session_server::Session for Api {
    async fn open(
        &self,
        r: Request<pb::OpenSessionRequest>,
    ) -> Result<Response<pb::OpenSessionResponse>, Status> {
        let _t = self.metrics.request("session.open");
        let op = request::open_session(&self.config, &r.into_inner())?;
        match self.apply(op).await? {
            (index, Reply::SessionOpened { session_id, ttl_ms }) => {
                Ok(Response::new(pb::OpenSessionResponse {
                    header: self.header(index),
                    session_id,
                    ttl_ms,
                }))
            }
            (_, other) => Err(unexpected(&other)),
        }
    }

    async fn keep_alive(
        &self,
        r: Request<pb::KeepAliveRequest>,
    ) -> Result<Response<pb::KeepAliveResponse>, Status> {
        self.renew(r.into_inner(), false).await.map(Response::new)
    }

    type KeepAliveStreamStream = KeepAliveStream;

    async fn keep_alive_stream(
        &self,
        r: Request<Streaming<pb::KeepAliveRequest>>,
    ) -> Result<Response<Self::KeepAliveStreamStream>, Status> {
        let api = self.clone();
        let replies = r
            .into_inner()
            .map(move |req| {
                let api = api.clone();
                async move { api.renew(req?, true).await }
            })
            .buffered(STREAM_IN_FLIGHT)
            // The first refusal ends the stream (tonic sends it as the
            // trailers); stopping here also drops the proposals still
            // waiting behind it instead of answering them to no one.
            .scan(false, |ended, reply| {
                if *ended {
                    return future::ready(None);
                }
                *ended = reply.is_err();
                future::ready(Some(reply))
            });
        Ok(Response::new(Box::pin(replies)))
    }

    async fn close(
        &self,
        r: Request<pb::CloseSessionRequest>,
    ) -> Result<Response<pb::CloseSessionResponse>, Status> {
        let _t = self.metrics.request("session.close");
        let op = request::close_session(&r.into_inner());
        match self.apply(op).await? {
            (index, Reply::SessionClosed) => Ok(Response::new(pb::CloseSessionResponse {
                header: self.header(index),
            })),
            (_, other) => Err(unexpected(&other)),
        }
    }

    async fn get(
        &self,
        r: Request<pb::GetSessionRequest>,
    ) -> Result<Response<pb::GetSessionResponse>, Status> {
        let _t = self.metrics.request("session.get");
        let req = r.into_inner();
        self.read_barrier(req.serializable).await?;
        let (info, index) = self
            .consensus
            .sm()
            .read(|sm| (sm.session(req.session_id), sm.applied_index()));
        let info = info.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::GetSessionResponse {
            header: self.header(index),
            session: Some(pb::SessionInfo {
                session_id: info.session_id,
                ttl_ms: info.ttl_ms,
                deadline_ms: info.deadline_ms,
                locks: info.locks,
                keys: info.keys,
            }),
        }))
    }
}
