//! `aegis.v1.KV`.

use aegis_proto::v1 as pb;
use aegis_state_machine::Reply;
use tonic::{Request, Response, Status};

use super::{convert, errors::status_of, request, unexpected, Api};

#[tonic::async_trait]
impl pb::kv_server::Kv for Api {
    async fn put(&self, r: Request<pb::PutRequest>) -> Result<Response<pb::PutResponse>, Status> {
        let _t = self.metrics.request("kv.put");
        timeline!("put_in", 0);
        let op = request::put(&self.config, r.into_inner())?;
        match self.apply(op).await? {
            (index, Reply::Put { prev_kv }) => {
                timeline!("put_out", index);
                Ok(Response::new(pb::PutResponse {
                    header: self.header(index),
                    prev_kv: prev_kv.as_ref().map(convert::kv),
                }))
            }
            (_, other) => Err(unexpected(&other)),
        }
    }

    async fn get(&self, r: Request<pb::GetRequest>) -> Result<Response<pb::GetResponse>, Status> {
        let _t = self.metrics.request("kv.get");
        let req = r.into_inner();
        request::get(&req)?;
        self.read_barrier(req.serializable).await?;
        let (kv, index) = self
            .consensus
            .sm()
            .read(|sm| (sm.get(&req.key, req.revision), sm.applied_index()));
        let kv = kv.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::GetResponse {
            header: self.header(index),
            kv: kv.as_ref().map(convert::kv),
        }))
    }

    async fn range(
        &self,
        r: Request<pb::RangeRequest>,
    ) -> Result<Response<pb::RangeResponse>, Status> {
        let _t = self.metrics.request("kv.range");
        let req = r.into_inner();
        self.read_barrier(req.serializable).await?;
        let (res, index) = self.consensus.sm().read(|sm| {
            (
                sm.range(&req.prefix, req.limit, req.revision, req.keys_only),
                sm.applied_index(),
            )
        });
        let res = res.map_err(|e| status_of(&e))?;
        Ok(Response::new(pb::RangeResponse {
            header: self.header(index),
            kvs: res.kvs.iter().map(convert::kv).collect(),
            more: res.more,
            count: res.count,
        }))
    }

    async fn delete(
        &self,
        r: Request<pb::DeleteRequest>,
    ) -> Result<Response<pb::DeleteResponse>, Status> {
        let _t = self.metrics.request("kv.delete");
        let op = request::delete(&self.config, r.into_inner())?;
        match self.apply(op).await? {
            (index, Reply::Deleted { deleted, prev_kvs }) => {
                Ok(Response::new(pb::DeleteResponse {
                    header: self.header(index),
                    deleted,
                    prev_kvs: prev_kvs.iter().map(convert::kv).collect(),
                }))
            }
            (_, other) => Err(unexpected(&other)),
        }
    }

    async fn txn(&self, r: Request<pb::TxnRequest>) -> Result<Response<pb::TxnResponse>, Status> {
        let _t = self.metrics.request("kv.txn");
        let op = request::txn(&self.config, r.into_inner())?;
        match self.apply(op).await? {
            (
                index,
                Reply::Txn {
                    succeeded,
                    responses,
                },
            ) => Ok(Response::new(pb::TxnResponse {
                header: self.header(index),
                succeeded,
                responses: responses
                    .iter()
                    .map(|r| convert::step_reply(r, self.header(index)))
                    .collect(),
            })),
            (_, other) => Err(unexpected(&other)),
        }
    }
}
