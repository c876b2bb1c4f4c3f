//! `aegis.v1.Watch`: history from the state machine, then live events as
//! this replica applies them. All events of one revision go out in one
//! message, so resuming from the last revision + 1 has no gap and no
//! duplicate.

use std::pin::Pin;

use aegis_proto::v1 as pb;
use aegis_state_machine::{Event, SmError};
use futures::Stream;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::{Request, Response, Status};

use super::{convert, errors::status_of, request, Api};
use crate::raft::SmEvent;

type WatchStream = Pin<Box<dyn Stream<Item = Result<pb::WatchResponse, Status>> + Send>>;

fn matches(e: &Event, key: &[u8], prefix: bool) -> bool {
    if prefix {
        e.kv.key.starts_with(key)
    } else {
        e.kv.key == key
    }
}

/// Splits events (in revision order) into one message per revision.
fn by_revision(events: &[Event]) -> Vec<(u64, Vec<pb::Event>)> {
    let mut out: Vec<(u64, Vec<pb::Event>)> = Vec::new();
    for e in events {
        let rev = e.kv.mod_revision;
        match out.last_mut() {
            Some((r, v)) if *r == rev => v.push(convert::event(e)),
            _ => out.push((rev, vec![convert::event(e)])),
        }
    }
    out
}

struct Watcher {
    api: Api,
    key: Vec<u8>,
    prefix: bool,
    tx: mpsc::Sender<Result<pb::WatchResponse, Status>>,
    /// Every revision up to here has been delivered (or had no match).
    seen_through: u64,
}

impl Watcher {
    async fn send(&self, revision: u64, events: Vec<pb::Event>) -> bool {
        let msg = pb::WatchResponse {
            header: self.api.header(revision),
            events,
            ..Default::default()
        };
        self.tx.send(Ok(msg)).await.is_ok()
    }

    async fn cancel(&self, compact_revision: u64, reason: String) {
        let msg = pb::WatchResponse {
            header: self.api.header(self.seen_through),
            canceled: true,
            compact_revision,
            cancel_reason: reason,
            ..Default::default()
        };
        let _ = self.tx.send(Ok(msg)).await;
    }

    /// Sends everything after `seen_through` that the state machine still
    /// holds. False when the stream is over.
    async fn catch_up(&mut self) -> bool {
        let start = self.seen_through + 1;
        let (events, applied) = self.api.consensus.sm().read(|sm| {
            (
                sm.events_since(start, &self.key, self.prefix),
                sm.applied_index(),
            )
        });
        match events {
            Ok(events) => {
                for (rev, evs) in by_revision(&events) {
                    if !self.send(rev, evs).await {
                        return false;
                    }
                }
                self.seen_through = self.seen_through.max(applied);
                true
            }
            Err(SmError::Compacted {
                compact_revision, ..
            }) => {
                self.cancel(compact_revision, "compacted revision".into())
                    .await;
                false
            }
            Err(e) => {
                let _ = self.tx.send(Err(status_of(&e))).await;
                false
            }
        }
    }

    async fn run(mut self, mut rx: tokio::sync::broadcast::Receiver<SmEvent>) {
        if !self.catch_up().await {
            return;
        }
        loop {
            let ok = match rx.recv().await {
                Ok(SmEvent::Applied(a)) => {
                    if a.index <= self.seen_through {
                        continue;
                    }
                    let evs: Vec<pb::Event> = a
                        .events
                        .iter()
                        .filter(|e| matches(e, &self.key, self.prefix))
                        .map(convert::event)
                        .collect();
                    self.seen_through = a.index;
                    evs.is_empty() || self.send(a.index, evs).await
                }
                Ok(SmEvent::Reset { .. }) | Err(RecvError::Lagged(_)) => self.catch_up().await,
                Err(RecvError::Closed) => false,
            };
            if !ok {
                return;
            }
        }
    }
}

#[tonic::async_trait]
impl pb::watch_server::Watch for Api {
    type WatchStream = WatchStream;

    async fn watch(
        &self,
        r: Request<pb::WatchRequest>,
    ) -> Result<Response<Self::WatchStream>, Status> {
        let req = r.into_inner();
        request::watch(&req)?;
        // Subscribe before reading history so nothing falls between them.
        let rx = self.consensus.sm().subscribe();
        let applied = self.consensus.sm().read(|sm| sm.applied_index());
        let seen_through = if req.start_revision == 0 {
            applied
        } else {
            req.start_revision - 1
        };
        let (tx, out) = mpsc::channel(256);
        let created = pb::WatchResponse {
            header: self.header(applied),
            created: true,
            ..Default::default()
        };
        tx.send(Ok(created))
            .await
            .map_err(|_| Status::cancelled("watcher went away"))?;
        let watcher = Watcher {
            api: self.clone(),
            key: req.key,
            prefix: req.prefix,
            tx,
            seen_through,
        };
        tokio::spawn(watcher.run(rx));
        Ok(Response::new(Box::pin(ReceiverStream::new(out))))
    }
}
