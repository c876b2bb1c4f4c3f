//! Concurrent test clients that drive the cluster and record every call:
//! register clients on a few keys (put/get/cas/delete), lock clients that
//! take a lock and write under its fencing token, a durability writer of
//! unique keys, and a watcher on the register keys' prefix.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use aegis_client::{Client, Compare, CompareOp, Error, PutOptions, Txn, TxnOp};
use futures::StreamExt;
use serde_json::{json, Value};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::history::{OpKind, Outcome, Record, Recorder};
use crate::rng::Rng;

#[derive(Debug, Clone)]
pub struct WorkloadConfig {
    /// Prefix of every key this run touches, so runs on one cluster do not
    /// see each other's state.
    pub run: String,
    pub kv_clients: usize,
    pub keys: usize,
    pub lock_clients: usize,
    pub durability_writer: bool,
    pub watcher: bool,
    /// Sessions one task keeps alive together, so that keep-alives share
    /// log entries and forwarded requests (ADR-0022) while faults hit; the
    /// replicas' digests then check that every replica applied them alike.
    pub keep_alive_sessions: usize,
    /// Deadline of one call; a write that passes it has an unknown outcome.
    pub op_timeout: Duration,
    pub session_ttl_ms: u64,
}

impl WorkloadConfig {
    pub fn new(run: impl Into<String>) -> Self {
        WorkloadConfig {
            run: run.into(),
            kv_clients: 4,
            keys: 4,
            lock_clients: 2,
            durability_writer: true,
            watcher: true,
            keep_alive_sessions: 16,
            op_timeout: Duration::from_secs(6),
            session_ttl_ms: 3000,
        }
    }
    pub fn kv_key(&self, k: usize) -> String {
        format!("{}/kv/{k}", self.run)
    }
    pub fn kv_prefix(&self) -> String {
        format!("{}/kv/", self.run)
    }
    pub fn lock_name(&self) -> String {
        format!("{}/lock", self.run)
    }
    pub fn locked_key(&self) -> String {
        format!("{}/locked", self.run)
    }
}

/// Sorts an SDK error into the history's outcomes: only a definite answer
/// from the cluster counts as "fail".
pub fn outcome_of(e: &Error) -> Outcome {
    match e {
        Error::Unknown(_) | Error::DeadlineExceeded(_) => Outcome::Unknown,
        _ => Outcome::Fail,
    }
}

/// Runs one call with the op deadline and records it. Takes the record's
/// fields one by one so that each call site reads as the record it makes.
#[allow(clippy::too_many_arguments)]
async fn record<T, F, Fut>(
    rec: &Recorder,
    client: &str,
    op: OpKind,
    key: &str,
    value: Value,
    timeout: Duration,
    call: F,
    result: impl FnOnce(&T) -> Value,
) -> Option<T>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<T, Error>>,
{
    let call_ns = rec.now_ns();
    let r = tokio::time::timeout(timeout, call()).await;
    let return_ns = rec.now_ns();
    let (outcome, res, out) = match r {
        Ok(Ok(v)) => (Outcome::Ok, result(&v), Some(v)),
        Ok(Err(e)) => (outcome_of(&e), json!({"error": e.to_string()}), None),
        Err(_) => (Outcome::Unknown, json!({"error": "harness deadline"}), None),
    };
    rec.push(Record {
        client: client.to_owned(),
        op,
        key: key.to_owned(),
        value,
        result: res,
        call_ns,
        return_ns,
        outcome,
    });
    out
}

pub struct Workload {
    pub recorder: Recorder,
    stop: watch::Sender<bool>,
    /// The revision the watcher must reach before it may stop.
    watch_target: watch::Sender<Option<u64>>,
    tasks: Vec<JoinHandle<()>>,
    watcher: Option<JoinHandle<()>>,
    /// Acknowledged unique-key writes (key, value).
    pub durable_acks: Arc<Mutex<Vec<(String, String)>>>,
}

impl Workload {
    pub async fn start(
        client: Client,
        cfg: WorkloadConfig,
        rng: &mut Rng,
        recorder: Recorder,
    ) -> Workload {
        let (stop, stop_rx) = watch::channel(false);
        let (watch_target, target_rx) = watch::channel(None);
        let durable_acks: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
        let mut tasks = Vec::new();
        let watcher = if cfg.watcher {
            // The start revision comes from a write outside the watched prefix.
            let start = loop {
                match client.put(format!("{}/start", cfg.run), "x").await {
                    Ok(p) => break p.revision + 1,
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            };
            Some(tokio::spawn(watcher_task(
                client.clone(),
                cfg.clone(),
                recorder.clone(),
                start,
                stop_rx.clone(),
                target_rx,
            )))
        } else {
            None
        };
        for i in 0..cfg.kv_clients {
            tasks.push(tokio::spawn(kv_task(
                client.clone(),
                cfg.clone(),
                recorder.clone(),
                rng.fork(),
                i,
                stop_rx.clone(),
            )));
        }
        for i in 0..cfg.lock_clients {
            tasks.push(tokio::spawn(lock_task(
                client.clone(),
                cfg.clone(),
                recorder.clone(),
                rng.fork(),
                i,
                stop_rx.clone(),
            )));
        }
        if cfg.keep_alive_sessions > 0 {
            tasks.push(tokio::spawn(keep_alive_task(
                client.clone(),
                cfg.clone(),
                stop_rx.clone(),
            )));
        }
        if cfg.durability_writer {
            tasks.push(tokio::spawn(durability_task(
                client.clone(),
                cfg.clone(),
                recorder.clone(),
                durable_acks.clone(),
                stop_rx.clone(),
            )));
        }
        Workload {
            recorder,
            stop,
            watch_target,
            tasks,
            watcher,
            durable_acks,
        }
    }

    /// Stops the writers and waits for their last calls.
    pub async fn stop_writers(&mut self) {
        let _ = self.stop.send(true);
        for t in self.tasks.drain(..) {
            let _ = t.await;
        }
    }

    /// Lets the watcher drain up to `target`, then stops it (at most
    /// `timeout` later).
    pub async fn finish_watch(&mut self, target: u64, timeout: Duration) {
        let _ = self.watch_target.send(Some(target));
        if let Some(w) = self.watcher.take() {
            if tokio::time::timeout(timeout, &mut Box::pin(w))
                .await
                .is_err()
            {
                // The watcher is reported by the checker from what it delivered.
            }
        }
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        for t in &self.tasks {
            t.abort();
        }
        if let Some(w) = &self.watcher {
            w.abort();
        }
    }
}

async fn kv_task(
    client: Client,
    cfg: WorkloadConfig,
    rec: Recorder,
    mut rng: Rng,
    id: usize,
    stop: watch::Receiver<bool>,
) {
    let name = format!("kv-{id}");
    let mut seq = 0u64;
    // Values this client last saw per key, to make cas succeed sometimes.
    let mut seen: Vec<Option<String>> = vec![None; cfg.keys];
    while !*stop.borrow() {
        let k = rng.below(cfg.keys as u64) as usize;
        let key = cfg.kv_key(k);
        seq += 1;
        let value = format!("{name}-{seq}");
        let t = cfg.op_timeout;
        match rng.below(100) {
            0..=39 => {
                record(&rec, &name, OpKind::Put, &key, json!(value), t, || client.put(key.clone(), value.clone()), |p| json!({"revision": p.revision})).await;
            }
            40..=74 => {
                if let Some(g) = record(&rec, &name, OpKind::Get, &key, Value::Null, t, || client.get(key.clone()), |g| {
                    json!({"value": g.kv.as_ref().map(|kv| kv.value_str().into_owned()), "revision": g.revision})
                })
                .await
                {
                    seen[k] = g.kv.map(|kv| kv.value_str().into_owned());
                }
            }
            75..=89 => {
                let expect = seen[k].clone().unwrap_or_else(|| format!("{name}-{}", seq.saturating_sub(1)));
                let txn = Txn::new()
                    .when(Compare::value(key.clone(), CompareOp::Equal, expect.clone()))
                    .and_then(TxnOp::put(key.clone(), value.clone()));
                record(&rec, &name, OpKind::Cas, &key, json!({"expect": expect, "new": value}), t, || client.txn(&txn), |r| {
                    json!({"succeeded": r.succeeded, "revision": r.revision})
                })
                .await;
            }
            _ => {
                record(&rec, &name, OpKind::Delete, &key, Value::Null, t, || client.delete(key.clone()), |d| {
                    json!({"deleted": d.deleted, "revision": d.revision})
                })
                .await;
            }
        }
        tokio::time::sleep(Duration::from_millis(rng.below(20))).await;
    }
}

async fn lock_task(
    client: Client,
    cfg: WorkloadConfig,
    rec: Recorder,
    mut rng: Rng,
    id: usize,
    stop: watch::Receiver<bool>,
) {
    let name = format!("lock-{id}");
    let lock = cfg.lock_name();
    let data = cfg.locked_key();
    let mut seq = 0u64;
    while !*stop.borrow() {
        // A fresh session per holding: an old one may have expired during a fault.
        let session =
            match tokio::time::timeout(cfg.op_timeout, client.session_open(cfg.session_ttl_ms))
                .await
            {
                Ok(Ok((id, _))) => id,
                _ => {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            };
        // Keep the session alive while this client works; a pause or a
        // partition may still let it expire, which is the interesting case.
        let ka_client = client.clone();
        let ttl = cfg.session_ttl_ms;
        let keepalive = tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(ttl / 3)).await;
                let _ = ka_client.session_keep_alive(session).await;
            }
        });
        let got = record(
            &rec,
            &name,
            OpKind::Acquire,
            &lock,
            json!({"session": session}),
            cfg.op_timeout,
            || client.lock_acquire(&lock, session),
            |a| json!({"token": a.token, "revision": a.revision, "acquired": a.acquired}),
        )
        .await;
        if let Some(a) = got.filter(|a| a.acquired) {
            for _ in 0..1 + rng.below(3) {
                seq += 1;
                let value = format!("{name}-{seq}");
                let opts = PutOptions::default().guard(lock.clone(), a.token);
                record(
                    &rec,
                    &name,
                    OpKind::GuardedPut,
                    &data,
                    json!({"lock": lock, "token": a.token, "value": value}),
                    cfg.op_timeout,
                    || client.put_with(data.clone(), value.clone(), &opts),
                    |p| json!({"revision": p.revision}),
                )
                .await;
                tokio::time::sleep(Duration::from_millis(rng.below(50))).await;
            }
            record(
                &rec,
                &name,
                OpKind::Release,
                &lock,
                json!({"session": session, "token": a.token}),
                cfg.op_timeout,
                || client.lock_release(&lock, session, a.token),
                |r| json!({"revision": r.as_ref().map(|r| r.revision)}),
            )
            .await;
        }
        keepalive.abort();
        let _ = tokio::time::timeout(cfg.op_timeout, client.session_close(session)).await;
    }
}

/// Keeps `keep_alive_sessions` sessions alive with keep-alives sent all at
/// once, every third of their ttl; a session found gone (it expired during
/// a fault) is replaced. Nothing is recorded: what this checks is that the
/// replicas still agree (their digests) with such entries in their logs.
async fn keep_alive_task(client: Client, cfg: WorkloadConfig, stop: watch::Receiver<bool>) {
    let mut sessions: Vec<Option<u64>> = vec![None; cfg.keep_alive_sessions];
    while !*stop.borrow() {
        let each = sessions.iter_mut().map(|slot| {
            let client = &client;
            let ttl = cfg.session_ttl_ms;
            let timeout = cfg.op_timeout;
            async move {
                let Some(id) = *slot else {
                    *slot = open_session(client, ttl, timeout).await;
                    return;
                };
                let renewed = tokio::time::timeout(timeout, client.session_keep_alive(id)).await;
                if let Ok(Err(Error::SessionExpired | Error::SessionNotFound)) = renewed {
                    *slot = None;
                }
            }
        });
        futures::future::join_all(each).await;
        tokio::time::sleep(Duration::from_millis(cfg.session_ttl_ms / 3)).await;
    }
    for id in sessions.into_iter().flatten() {
        let _ = tokio::time::timeout(cfg.op_timeout, client.session_close(id)).await;
    }
}

async fn open_session(client: &Client, ttl_ms: u64, timeout: Duration) -> Option<u64> {
    match tokio::time::timeout(timeout, client.session_open(ttl_ms)).await {
        Ok(Ok((id, _))) => Some(id),
        _ => None,
    }
}

async fn durability_task(
    client: Client,
    cfg: WorkloadConfig,
    rec: Recorder,
    acks: Arc<Mutex<Vec<(String, String)>>>,
    stop: watch::Receiver<bool>,
) {
    let mut i = 0u64;
    while !*stop.borrow() {
        i += 1;
        let key = format!("{}/dur/{i}", cfg.run);
        let value = format!("d{i}");
        if record(
            &rec,
            "durable",
            OpKind::Put,
            &key,
            json!(value),
            cfg.op_timeout,
            || client.put(key.clone(), value.clone()),
            |p| json!({"revision": p.revision}),
        )
        .await
        .is_some()
        {
            acks.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((key, value));
        }
    }
}

async fn watcher_task(
    client: Client,
    cfg: WorkloadConfig,
    rec: Recorder,
    start: u64,
    stop: watch::Receiver<bool>,
    target: watch::Receiver<Option<u64>>,
) {
    let prefix = cfg.kv_prefix();
    let params = json!({"prefix": true, "start_revision": start});
    let mut last = 0u64;
    let mut stream = None;
    loop {
        if *stop.borrow() && target.borrow().is_some_and(|t| last >= t) {
            return;
        }
        let s = match stream.as_mut() {
            Some(s) => s,
            None => {
                // The SDK establishes the watch before returning it.
                match client
                    .watch(
                        prefix.clone(),
                        true,
                        if last == 0 { start } else { last + 1 },
                    )
                    .await
                {
                    Ok(s) => stream.insert(s),
                    Err(e) => {
                        let now = rec.now_ns();
                        rec.push(Record {
                            client: "watch-1".into(),
                            op: OpKind::Watch,
                            key: prefix.clone(),
                            value: params.clone(),
                            result: json!({"error": e.to_string(), "last": last}),
                            call_ns: now,
                            return_ns: now,
                            outcome: Outcome::Fail,
                        });
                        if *stop.borrow() && target.borrow().is_some() {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(200)).await;
                        continue;
                    }
                }
            }
        };
        let next = tokio::time::timeout(Duration::from_millis(500), s.next()).await;
        let now = rec.now_ns();
        match next {
            Err(_) => continue,
            Ok(None) => stream = None,
            Ok(Some(Ok(ev))) => {
                last = ev.revision;
                let events: Vec<Value> = ev
                    .events
                    .iter()
                    .map(|e| {
                        let kind = match e.kind {
                            aegis_client::EventKind::Put => "put",
                            aegis_client::EventKind::Delete => "delete",
                        };
                        let value = if kind == "delete" {
                            String::new()
                        } else {
                            e.kv.value_str().into_owned()
                        };
                        json!({"kind": kind, "key": e.kv.key_str(), "value": value})
                    })
                    .collect();
                rec.push(Record {
                    client: "watch-1".into(),
                    op: OpKind::Watch,
                    key: prefix.clone(),
                    value: params.clone(),
                    result: json!({"revision": ev.revision, "events": events}),
                    call_ns: now,
                    return_ns: now,
                    outcome: Outcome::Ok,
                });
            }
            Ok(Some(Err(e))) => {
                rec.push(Record {
                    client: "watch-1".into(),
                    op: OpKind::Watch,
                    key: prefix.clone(),
                    value: params.clone(),
                    result: json!({"error": e.to_string(), "last": last}),
                    call_ns: now,
                    return_ns: now,
                    outcome: Outcome::Fail,
                });
                // The stream ends after a final error; start a new one from
                // where this one stopped, as an application would.
                stream = None;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}
