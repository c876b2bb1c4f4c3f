//! A watch that survives the loss of the node it is connected to: it reconnects elsewhere and
//! resumes from the revision after the last one it delivered.

use std::pin::Pin;
use std::task::{Context, Poll};

use aegis_proto::v1 as pb;
use futures::Stream;
use pb::watch_client::WatchClient;
use serde::Serialize;
use tonic::Streaming;

use crate::client::{error_chain, Client};
use crate::error::{Error, Failure, Result};
use crate::types::KeyValue;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    Put,
    Delete,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    pub kind: EventKind,
    /// For a delete, the key with `mod_revision` = the delete's revision.
    pub kv: KeyValue,
}

/// Every event of one revision (one applied log entry).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WatchEvent {
    pub revision: u64,
    pub events: Vec<Event>,
}

/// A stream of [`WatchEvent`]s in revision order, from [`Client::watch`]. Once a node has
/// accepted the watch, failures come as items: a compacted start revision yields one
/// `Error::Compacted` item and then the stream ends; so does any other final error, or running
/// out of reconnect attempts.
pub struct WatchStream {
    inner: Pin<Box<dyn Stream<Item = Result<WatchEvent>> + Send>>,
}

impl std::fmt::Debug for WatchStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WatchStream")
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchEvent>;
    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

struct State {
    client: Client,
    key: Vec<u8>,
    prefix: bool,
    /// Revision to resume from; 0 until the first server message says where "now" is.
    next: u64,
    stream: Option<(String, Streaming<pb::WatchResponse>)>,
    failures: u32,
    done: bool,
    /// An event that arrived while establishing the watch.
    pending: Option<WatchEvent>,
}

impl WatchStream {
    /// Opens the watch (with failover) and returns once a node has accepted it, so a "from
    /// now" watch sees every change made after this returns.
    pub(crate) async fn start(
        client: Client,
        key: Vec<u8>,
        prefix: bool,
        start_revision: u64,
    ) -> Result<Self> {
        let mut state = State {
            client,
            key,
            prefix,
            next: start_revision,
            stream: None,
            failures: 0,
            done: false,
            pending: None,
        };
        state.pending = advance(&mut state, true).await?;
        Ok(WatchStream {
            inner: Box::pin(futures::stream::unfold(state, step)),
        })
    }
}

/// What to do with one server message.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Decoded {
    /// Nothing to deliver (creation notice, or a revision already delivered).
    Skip,
    Deliver(WatchEvent),
    Canceled(Error),
}

/// Turns a server message into what the stream should do, advancing `next`.
pub(crate) fn decode(resp: pb::WatchResponse, next: &mut u64) -> Decoded {
    let header_rev = resp.header.as_ref().map(|h| h.revision).unwrap_or(0);
    if resp.canceled {
        return Decoded::Canceled(if resp.compact_revision > 0 {
            Error::Compacted {
                requested: Some(*next),
                compact_revision: resp.compact_revision,
            }
        } else {
            Error::Server {
                code: tonic::Code::Cancelled,
                message: format!("watch canceled: {}", resp.cancel_reason),
            }
        });
    }
    if resp.events.is_empty() {
        // A "from now" watch pins its start to the revision the server was at, so a reconnect
        // before the first event neither misses nor repeats anything. That revision may be 0
        // (a node of a new group that has applied nothing yet): the start is then 1, not "now"
        // again on whichever node the reconnect reaches.
        if *next == 0 && resp.created {
            *next = header_rev + 1;
        }
        return Decoded::Skip;
    }
    let revision = resp
        .events
        .iter()
        .filter_map(|e| e.kv.as_ref().map(|kv| kv.mod_revision))
        .max()
        .filter(|r| *r > 0)
        .unwrap_or(header_rev);
    if *next > 0 && revision < *next {
        return Decoded::Skip;
    }
    *next = revision + 1;
    let events = resp
        .events
        .into_iter()
        .map(|e| Event {
            kind: if e.r#type == pb::event::EventType::Delete as i32 {
                EventKind::Delete
            } else {
                EventKind::Put
            },
            kv: e.kv.map(Into::into).unwrap_or(KeyValue {
                key: Vec::new(),
                value: Vec::new(),
                create_revision: 0,
                mod_revision: revision,
                version: 0,
                session_id: 0,
            }),
        })
        .collect();
    Decoded::Deliver(WatchEvent { revision, events })
}

async fn open(
    st: &State,
) -> std::result::Result<(String, Streaming<pb::WatchResponse>), (String, Error)> {
    let ep = st.client.current_endpoint();
    let ch = st.client.channel(&ep).await.map_err(|e| (ep.clone(), e))?;
    let req = pb::WatchRequest {
        key: st.key.clone(),
        prefix: st.prefix,
        start_revision: st.next,
    };
    match WatchClient::new(ch).watch(req).await {
        Ok(r) => Ok((ep, r.into_inner())),
        Err(s) => Err((ep, Error::from_status(&s))),
    }
}

async fn step(mut st: State) -> Option<(Result<WatchEvent>, State)> {
    if let Some(ev) = st.pending.take() {
        return Some((Ok(ev), st));
    }
    if st.done {
        return None;
    }
    match advance(&mut st, false).await {
        Ok(Some(ev)) => Some((Ok(ev), st)),
        Ok(None) => None,
        Err(e) => Some((Err(e), st)),
    }
}

/// Reads until there is an event to hand out or a final error, reconnecting as needed. With
/// `until_established`, returns `Ok(None)` as soon as a server has accepted the watch.
async fn advance(st: &mut State, until_established: bool) -> Result<Option<WatchEvent>> {
    loop {
        let (ep, err) = match st.stream.as_mut() {
            None => match open(st).await {
                Ok(s) => {
                    tracing::debug!(endpoint = %s.0, from = st.next, "watch opened");
                    st.stream = Some(s);
                    continue;
                }
                Err(e) => e,
            },
            Some((ep, stream)) => match stream.message().await {
                Ok(Some(resp)) => match decode(resp, &mut st.next) {
                    Decoded::Skip => {
                        st.failures = 0;
                        if until_established {
                            return Ok(None);
                        }
                        continue;
                    }
                    Decoded::Deliver(ev) => {
                        st.failures = 0;
                        return Ok(Some(ev));
                    }
                    Decoded::Canceled(e) => {
                        st.done = true;
                        return Err(e);
                    }
                },
                Ok(None) => (
                    ep.clone(),
                    Error::Unavailable("watch stream closed by the server".into()),
                ),
                Err(s) => {
                    tracing::debug!(endpoint = %ep, error = %error_chain(&s), "watch stream failed");
                    (ep.clone(), Error::from_status(&s))
                }
            },
        };
        st.stream = None;
        let err = match err {
            Error::Compacted {
                compact_revision, ..
            } => Error::Compacted {
                requested: Some(st.next),
                compact_revision,
            },
            e => e,
        };
        // A replica that has not yet applied our resume point says "future revision": wait
        // for it or try another. Everything else final ends the stream.
        let retry = err.failure() != Failure::Final || err == Error::FutureRevision;
        if !retry {
            st.done = true;
            return Err(err);
        }
        st.client.forget_channel(&ep);
        st.client.advance_from(&ep);
        st.failures += 1;
        let backoff = st.client.config().backoff;
        if backoff.exhausted(st.failures) {
            st.done = true;
            return Err(err);
        }
        let delay = backoff.delay(st.failures);
        tracing::debug!(
            failed = %ep,
            next = %st.client.current_endpoint(),
            attempt = st.failures,
            ?delay,
            error = %err,
            "watch reconnecting"
        );
        tokio::time::sleep(delay).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(key: &str, rev: u64) -> pb::KeyValue {
        pb::KeyValue {
            key: key.into(),
            value: b"v".to_vec(),
            create_revision: rev,
            mod_revision: rev,
            version: 1,
            session_id: 0,
        }
    }

    fn resp(header: u64, events: Vec<(pb::event::EventType, pb::KeyValue)>) -> pb::WatchResponse {
        pb::WatchResponse {
            header: Some(pb::ResponseHeader {
                revision: header,
                served_by: 1,
                raft_term: 1,
            }),
            created: events.is_empty(),
            events: events
                .into_iter()
                .map(|(t, kv)| pb::Event {
                    r#type: t as i32,
                    kv: Some(kv),
                })
                .collect(),
            canceled: false,
            compact_revision: 0,
            cancel_reason: String::new(),
        }
    }

    #[test]
    fn created_pins_from_now_start() {
        let mut next = 0;
        assert_eq!(decode(resp(41, vec![]), &mut next), Decoded::Skip);
        assert_eq!(next, 42);
        // Created on a node that has applied nothing: the start is revision 1, so a write made
        // before a reconnect to another node is still delivered.
        let mut next = 0;
        assert_eq!(decode(resp(0, vec![]), &mut next), Decoded::Skip);
        assert_eq!(next, 1);
        // A created message must not move an explicit start.
        let mut next = 7;
        assert_eq!(decode(resp(41, vec![]), &mut next), Decoded::Skip);
        assert_eq!(next, 7);
    }

    #[test]
    fn events_advance_and_duplicates_are_dropped() {
        use pb::event::EventType::*;
        let mut next = 5;
        let d = decode(
            resp(6, vec![(Put, kv("a", 6)), (Delete, kv("b", 6))]),
            &mut next,
        );
        match d {
            Decoded::Deliver(ev) => {
                assert_eq!(ev.revision, 6);
                assert_eq!(ev.events.len(), 2);
                assert_eq!(ev.events[1].kind, EventKind::Delete);
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(next, 7);
        // The same revision replayed after a reconnect is not delivered twice.
        assert_eq!(
            decode(resp(6, vec![(Put, kv("a", 6))]), &mut next),
            Decoded::Skip
        );
        assert_eq!(next, 7);
    }

    #[test]
    fn cancel_with_compact_revision_is_typed() {
        let mut next = 3;
        let mut r = resp(10, vec![]);
        r.canceled = true;
        r.compact_revision = 8;
        assert_eq!(
            decode(r, &mut next),
            Decoded::Canceled(Error::Compacted {
                requested: Some(3),
                compact_revision: 8
            })
        );
    }
}
