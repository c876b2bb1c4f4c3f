//! The SDK's typed error, and the mapping from the node's gRPC status contract.

use tonic::Code;

/// Metadata key carrying the leader's node id on a "not leader" answer.
pub const LEADER_ID_METADATA: &str = "aegis-leader-id";
/// Metadata key carrying the leader's client address on a "not leader" answer.
pub const LEADER_ADDR_METADATA: &str = "aegis-leader-addr";
/// Metadata key carrying the compact revision on a "compacted revision" answer.
pub const COMPACT_REVISION_METADATA: &str = "aegis-compact-revision";

pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything an SDK call can fail with. Variants follow the node's stable error messages, so
/// callers can match on meaning instead of parsing strings.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum Error {
    #[error("not leader (leader id {leader_id:?}, address {leader_addr:?})")]
    NotLeader {
        leader_id: Option<u64>,
        leader_addr: Option<String>,
    },
    #[error("no leader: an election is in progress")]
    NoLeader,
    #[error("invalid argument: {0}")]
    InvalidArgument(InvalidArgument),
    #[error("session not found")]
    SessionNotFound,
    #[error("session expired")]
    SessionExpired,
    #[error("stale fencing token")]
    StaleFencingToken,
    #[error("lock not held by this session")]
    LockNotHeld,
    #[error("revision {requested:?} is compacted (compact revision {compact_revision})")]
    Compacted {
        requested: Option<u64>,
        compact_revision: u64,
    },
    #[error("future revision")]
    FutureRevision,
    #[error("deadline exceeded: {0}")]
    DeadlineExceeded(String),
    /// The write may or may not have been applied: the connection failed after the request was
    /// sent. The SDK never retries such a write on its own; read back to find out.
    #[error("outcome unknown: {0}")]
    Unknown(String),
    /// No endpoint could be reached (the request was never sent).
    #[error("unavailable: {0}")]
    Unavailable(String),
    #[error("no endpoints given")]
    NoEndpoints,
    #[error("invalid endpoint {endpoint:?}: {reason}")]
    InvalidEndpoint { endpoint: String, reason: String },
    /// A status outside the documented contract; kept verbatim.
    #[error("server error {code:?}: {message}")]
    Server { code: Code, message: String },
    #[error("malformed response: {0}")]
    MalformedResponse(String),
    #[error("session lost: {0}")]
    SessionLost(String),
}

/// The InvalidArgument messages of the contract, plus any other text verbatim.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum InvalidArgument {
    #[error("request too large")]
    RequestTooLarge,
    #[error("value too large")]
    ValueTooLarge,
    #[error("too many txn ops")]
    TooManyTxnOps,
    #[error("key is empty")]
    KeyEmpty,
    #[error("lock name is empty")]
    LockNameEmpty,
    #[error("ttl below minimum")]
    TtlBelowMinimum,
    #[error("{0}")]
    Other(String),
}

/// How a failed attempt may be handled by the retry loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The request was certainly not applied: try another endpoint (after a backoff).
    NotApplied,
    /// The request may have reached the server: only idempotent calls may retry.
    Ambiguous,
    /// A definite answer from the cluster: return it.
    Final,
}

impl Error {
    /// Maps a gRPC status to the contract. Messages are matched by prefix so a node may append
    /// detail after the stable text.
    pub fn from_status(status: &tonic::Status) -> Error {
        let msg = status.message();
        let meta = status.metadata();
        let meta_str = |key: &str| {
            meta.get(key)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned)
                .filter(|s| !s.is_empty())
        };
        let starts = |p: &str| msg.starts_with(p);
        match status.code() {
            Code::Unavailable if starts("not leader") => Error::NotLeader {
                leader_id: meta_str(LEADER_ID_METADATA)
                    .and_then(|s| s.parse().ok())
                    .filter(|id| *id != 0),
                leader_addr: meta_str(LEADER_ADDR_METADATA),
            },
            Code::Unavailable if starts("no leader") => Error::NoLeader,
            Code::Unavailable => {
                if is_connect_failure(status) {
                    Error::Unavailable(msg.to_owned())
                } else {
                    Error::Unknown(format!("connection failed: {msg}"))
                }
            }
            Code::InvalidArgument => Error::InvalidArgument(if starts("request too large") {
                InvalidArgument::RequestTooLarge
            } else if starts("value too large") {
                InvalidArgument::ValueTooLarge
            } else if starts("too many txn ops") {
                InvalidArgument::TooManyTxnOps
            } else if starts("key is empty") {
                InvalidArgument::KeyEmpty
            } else if starts("lock name is empty") {
                InvalidArgument::LockNameEmpty
            } else if starts("ttl below minimum") {
                InvalidArgument::TtlBelowMinimum
            } else {
                InvalidArgument::Other(msg.to_owned())
            }),
            Code::NotFound if starts("session not found") => Error::SessionNotFound,
            Code::NotFound if starts("session expired") => Error::SessionExpired,
            Code::FailedPrecondition if starts("stale fencing token") => Error::StaleFencingToken,
            Code::FailedPrecondition if starts("lock not held") => Error::LockNotHeld,
            Code::OutOfRange if starts("compacted revision") => Error::Compacted {
                requested: None,
                compact_revision: meta_str(COMPACT_REVISION_METADATA)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0),
            },
            Code::OutOfRange if starts("future revision") => Error::FutureRevision,
            Code::DeadlineExceeded => Error::DeadlineExceeded(msg.to_owned()),
            // The node proposed the request but cannot tell whether it committed.
            Code::Unknown if starts("outcome unknown") => Error::Unknown(msg.to_owned()),
            // A client-side timeout surfaces as Cancelled: the request may be in flight.
            Code::Cancelled if msg.contains("Timeout expired") => {
                Error::DeadlineExceeded(msg.to_owned())
            }
            // Transport failures that hyper/h2 reported under other codes.
            Code::Unknown | Code::Internal | Code::Cancelled
                if std::error::Error::source(status).is_some() =>
            {
                Error::Unknown(format!("connection failed: {msg}"))
            }
            code => Error::Server {
                code,
                message: msg.to_owned(),
            },
        }
    }

    pub(crate) fn failure(&self) -> Failure {
        match self {
            Error::NotLeader { .. } | Error::NoLeader | Error::Unavailable(_) => {
                Failure::NotApplied
            }
            Error::Unknown(_) | Error::DeadlineExceeded(_) => Failure::Ambiguous,
            _ => Failure::Final,
        }
    }

    /// True when the request might have been applied even though it failed.
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Error::Unknown(_))
    }
}

impl From<tonic::Status> for Error {
    fn from(status: tonic::Status) -> Self {
        Error::from_status(&status)
    }
}

/// A connect failure means the request never left this process, so even a write may move on to
/// another endpoint.
fn is_connect_failure(status: &tonic::Status) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(status);
    while let Some(err) = source {
        if err.downcast_ref::<tonic::ConnectError>().is_some() {
            return true;
        }
        source = err.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use tonic::metadata::MetadataValue;

    fn with_meta(code: Code, msg: &str, pairs: &[(&'static str, &str)]) -> tonic::Status {
        let mut s = tonic::Status::new(code, msg);
        for (k, v) in pairs {
            s.metadata_mut()
                .insert(*k, MetadataValue::try_from(*v).unwrap());
        }
        s
    }

    #[test]
    fn not_leader_carries_hint() {
        let s = with_meta(
            Code::Unavailable,
            "not leader",
            &[
                (LEADER_ID_METADATA, "3"),
                (LEADER_ADDR_METADATA, "127.0.0.1:7403"),
            ],
        );
        assert_eq!(
            Error::from_status(&s),
            Error::NotLeader {
                leader_id: Some(3),
                leader_addr: Some("127.0.0.1:7403".into())
            }
        );
        assert_eq!(Error::from_status(&s).failure(), Failure::NotApplied);
    }

    #[test]
    fn not_leader_without_hint_or_with_garbage() {
        let s = with_meta(
            Code::Unavailable,
            "not leader",
            &[(LEADER_ID_METADATA, "x")],
        );
        assert_eq!(
            Error::from_status(&s),
            Error::NotLeader {
                leader_id: None,
                leader_addr: None
            }
        );
    }

    #[test]
    fn no_leader_is_retryable() {
        let e = Error::from_status(&tonic::Status::unavailable("no leader"));
        assert_eq!(e, Error::NoLeader);
        assert_eq!(e.failure(), Failure::NotApplied);
    }

    #[test]
    fn bare_unavailable_without_connect_error_is_ambiguous() {
        let e = Error::from_status(&tonic::Status::unavailable("connection reset"));
        assert!(e.is_outcome_unknown(), "{e:?}");
        assert_eq!(e.failure(), Failure::Ambiguous);
    }

    #[test]
    fn connect_error_in_source_chain_is_not_applied() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "refused");
        let status = tonic::Status::from_error(Box::new(tonic::ConnectError(Box::new(io))));
        assert_eq!(status.code(), Code::Unavailable);
        let e = Error::from_status(&status);
        assert!(matches!(e, Error::Unavailable(_)), "{e:?}");
        assert_eq!(e.failure(), Failure::NotApplied);
    }

    #[test]
    fn invalid_argument_messages() {
        let cases = [
            ("request too large", InvalidArgument::RequestTooLarge),
            ("value too large", InvalidArgument::ValueTooLarge),
            ("too many txn ops", InvalidArgument::TooManyTxnOps),
            ("key is empty", InvalidArgument::KeyEmpty),
            ("lock name is empty", InvalidArgument::LockNameEmpty),
            ("ttl below minimum: 3000", InvalidArgument::TtlBelowMinimum),
            ("odd", InvalidArgument::Other("odd".into())),
        ];
        for (msg, want) in cases {
            let e = Error::from_status(&tonic::Status::invalid_argument(msg));
            assert_eq!(e, Error::InvalidArgument(want), "{msg}");
            assert_eq!(e.failure(), Failure::Final);
        }
    }

    #[test]
    fn session_and_lock_messages() {
        let e = |c, m| Error::from_status(&tonic::Status::new(c, m));
        assert_eq!(
            e(Code::NotFound, "session not found"),
            Error::SessionNotFound
        );
        assert_eq!(e(Code::NotFound, "session expired"), Error::SessionExpired);
        assert_eq!(
            e(Code::FailedPrecondition, "stale fencing token"),
            Error::StaleFencingToken
        );
        assert_eq!(
            e(Code::FailedPrecondition, "lock not held by this session"),
            Error::LockNotHeld
        );
        assert_eq!(
            e(Code::OutOfRange, "future revision"),
            Error::FutureRevision
        );
        assert!(matches!(
            e(Code::NotFound, "no such thing"),
            Error::Server {
                code: Code::NotFound,
                ..
            }
        ));
    }

    #[test]
    fn compacted_carries_revision() {
        let s = with_meta(
            Code::OutOfRange,
            "compacted revision",
            &[(COMPACT_REVISION_METADATA, "42")],
        );
        assert_eq!(
            Error::from_status(&s),
            Error::Compacted {
                requested: None,
                compact_revision: 42
            }
        );
    }

    #[test]
    fn node_reported_unknown_outcome() {
        let e = Error::from_status(&tonic::Status::unknown("outcome unknown: leader lost"));
        assert!(e.is_outcome_unknown(), "{e:?}");
        let e = Error::from_status(&tonic::Status::unknown("something else"));
        assert!(matches!(e, Error::Server { .. }), "{e:?}");
    }

    #[test]
    fn deadline_is_ambiguous() {
        let e = Error::from_status(&tonic::Status::deadline_exceeded("too slow"));
        assert_eq!(e, Error::DeadlineExceeded("too slow".into()));
        assert_eq!(e.failure(), Failure::Ambiguous);
    }
}
