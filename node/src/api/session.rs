//! `aegis.v1.Session`.

use aegis_proto::v1 as pb;
use aegis_state_machine::Reply;
use tonic::{Request, Response, Status};

use super::{errors::status_of, request, unexpected, Api};

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
        let _t = self.metrics.request("session.keep_alive");
        let op = request::keep_alive(&r.into_inner());
        match self.apply(op).await? {
            (index, Reply::KeptAlive { session_id, ttl_ms }) => {
                Ok(Response::new(pb::KeepAliveResponse {
                    header: self.header(index),
                    session_id,
                    ttl_ms,
                }))
            }
            (_, other) => Err(unexpected(&other)),
        }
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
