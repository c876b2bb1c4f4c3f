//! The AEGIS Rust SDK.
//!
//! [`Client`] talks to a cluster through any of its nodes and fails over between them: on a
//! refused connection or an "unavailable" answer it moves to the next endpoint (or the leader a
//! node points to) with capped, jittered backoff. A write whose request may have reached a node
//! before the connection failed is never repeated silently: it fails with
//! [`Error::Unknown`]. Reads, keep-alives and a holder's acquire are retried, since repeating
//! them changes nothing.
//!
//! [`Session`] keeps a lease alive in the background, and [`KeepAliveStream`] keeps many alive
//! over one stream; [`LockGuard`] holds a lock with its fencing token; [`WatchStream`] follows
//! a key or prefix across node failures without gaps or duplicates. [`devcluster`] runs a
//! local cluster of real `aegis-node` processes.
//!
//! ```no_run
//! use aegis_client::{Client, Compare, CompareOp, PutOptions, Txn, TxnOp};
//! use futures::StreamExt;
//!
//! # async fn demo() -> aegis_client::Result<()> {
//! let c = Client::connect(vec!["127.0.0.1:7401".into(), "127.0.0.1:7402".into()]).await?;
//! c.put("cfg/mode", "blue").await?;
//! let _kv = c.get("cfg/mode").await?.kv;
//!
//! let session = c.session(10_000).await?;
//! let guard = session.lock("deploy").await?;
//! let fenced = PutOptions::default().guard("deploy", guard.token());
//! c.put_with("cfg/mode", "green", &fenced).await?;
//! guard.release().await?;
//!
//! let txn = Txn::new()
//!     .when(Compare::version("cfg/new", CompareOp::Equal, 0))
//!     .and_then(TxnOp::put("cfg/new", "1"))
//!     .or_else(TxnOp::range("cfg/new", 1));
//! let _created = c.txn(&txn).await?.succeeded;
//!
//! let mut w = c.watch("cfg/", true, 0).await?;
//! while let Some(batch) = w.next().await {
//!     let batch = batch?;
//!     println!("revision {}: {} events", batch.revision, batch.events.len());
//! }
//! session.close().await?;
//! # Ok(())
//! # }
//! ```

mod client;
pub mod devcluster;
mod endpoints;
mod error;
mod keep_alive;
mod session;
mod txn;
pub mod txn_script;
mod types;
mod watch;

pub use client::{Client, ClientConfig, RangeOptions, ReadOptions};
pub use endpoints::{normalize_endpoint, Backoff, EndpointSet};
pub use error::{
    Error, InvalidArgument, Result, COMPACT_REVISION_METADATA, LEADER_ADDR_METADATA,
    LEADER_ID_METADATA,
};
pub use keep_alive::{KeepAliveReplies, KeepAliveSender, KeepAliveStream, KeptAlive};
pub use session::{LockGuard, Session};
pub use txn::{Compare, CompareOp, PutOptions, Txn, TxnOp};
pub use types::*;
pub use watch::{Event, EventKind, WatchEvent, WatchStream};
