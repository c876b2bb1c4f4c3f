//! The operation history written by test clients: one JSON object per line
//! (docs/HISTORY-FORMAT.md is the reference any external checker can use).

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// What a client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpKind {
    Put,
    Get,
    Cas,
    Delete,
    Acquire,
    Release,
    GuardedPut,
    /// One batch of events delivered by a watch stream.
    Watch,
}

/// How the call ended, as far as the client can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Done, with `result` holding the answer.
    Ok,
    /// Certainly not applied (a definite error answer).
    Fail,
    /// May or may not have been applied (connection lost, deadline passed).
    Unknown,
}

/// One operation, from call to return.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub client: String,
    pub op: OpKind,
    pub key: String,
    #[serde(default)]
    pub value: Value,
    #[serde(default)]
    pub result: Value,
    /// Monotonic nanoseconds since the history began.
    pub call_ns: u64,
    pub return_ns: u64,
    pub outcome: Outcome,
}

#[derive(Debug, thiserror::Error)]
pub enum HistoryError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: String,
        line: usize,
        message: String,
    },
}

impl Record {
    pub fn result_u64(&self, field: &str) -> Option<u64> {
        self.result.get(field).and_then(Value::as_u64)
    }

    pub fn value_u64(&self, field: &str) -> Option<u64> {
        self.value.get(field).and_then(Value::as_u64)
    }

    pub fn value_str(&self, field: &str) -> Option<&str> {
        self.value.get(field).and_then(Value::as_str)
    }

    /// The revision the cluster applied this operation at, when known.
    pub fn revision(&self) -> Option<u64> {
        self.result_u64("revision").filter(|r| *r > 0)
    }
}

/// Collects records from many concurrent clients against one monotonic
/// clock. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Recorder {
    start: Instant,
    records: Arc<Mutex<Vec<Record>>>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

impl Recorder {
    pub fn new() -> Self {
        Recorder {
            start: Instant::now(),
            records: Arc::default(),
        }
    }

    /// Nanoseconds since this recorder was created.
    pub fn now_ns(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_nanos()).unwrap_or(u64::MAX)
    }

    pub fn push(&self, r: Record) {
        self.lock().push(r);
    }

    /// The records so far, in the order they returned.
    pub fn snapshot(&self) -> Vec<Record> {
        self.lock().clone()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Record>> {
        // A client that panicked mid-push leaves a valid vector behind.
        self.records.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub fn write_jsonl(path: &Path, records: &[Record]) -> Result<(), HistoryError> {
    let io = |source| HistoryError::Io {
        path: path.display().to_string(),
        source,
    };
    let file = std::fs::File::create(path).map_err(io)?;
    let mut w = std::io::BufWriter::new(file);
    for r in records {
        let line = serde_json::to_string(r).map_err(|e| io(std::io::Error::other(e)))?;
        writeln!(w, "{line}").map_err(io)?;
    }
    w.flush().map_err(io)
}

pub fn read_jsonl(path: &Path) -> Result<Vec<Record>, HistoryError> {
    let p = path.display().to_string();
    let file = std::fs::File::open(path).map_err(|source| HistoryError::Io {
        path: p.clone(),
        source,
    })?;
    parse_lines(std::io::BufReader::new(file), &p)
}

/// Parses JSON lines; blank lines are skipped, anything else must be a
/// record whose `return_ns` is not before its `call_ns`.
pub fn parse_lines(reader: impl BufRead, name: &str) -> Result<Vec<Record>, HistoryError> {
    let mut out = Vec::new();
    for (i, line) in reader.lines().enumerate() {
        let line = line.map_err(|source| HistoryError::Io {
            path: name.to_owned(),
            source,
        })?;
        if line.trim().is_empty() {
            continue;
        }
        let err = |message: String| HistoryError::Parse {
            path: name.to_owned(),
            line: i + 1,
            message,
        };
        let r: Record = serde_json::from_str(&line).map_err(|e| err(e.to_string()))?;
        if r.return_ns < r.call_ns {
            return Err(err(format!(
                "return_ns {} is before call_ns {}",
                r.return_ns, r.call_ns
            )));
        }
        out.push(r);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rec() -> Record {
        Record {
            client: "kv-1".into(),
            op: OpKind::GuardedPut,
            key: "k".into(),
            value: json!({"lock": "L", "token": 7, "value": "v"}),
            result: json!({"revision": 9}),
            call_ns: 10,
            return_ns: 20,
            outcome: Outcome::Ok,
        }
    }

    #[test]
    fn round_trips_through_a_file_in_the_documented_shape() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h.jsonl");
        write_jsonl(&path, &[rec(), rec()]).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let first: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
        assert_eq!(first["op"], "guarded_put");
        assert_eq!(first["outcome"], "ok");
        assert_eq!(first["call_ns"], 10);
        assert_eq!(read_jsonl(&path).unwrap(), vec![rec(), rec()]);
        assert_eq!(rec().revision(), Some(9));
        assert_eq!(rec().value_u64("token"), Some(7));
    }

    #[test]
    fn bad_lines_are_reported_with_their_number() {
        let text = format!(
            "{}\n\n{{\"client\":\"x\"}}\n",
            serde_json::to_string(&rec()).unwrap()
        );
        match parse_lines(text.as_bytes(), "h") {
            Err(HistoryError::Parse { line, .. }) => assert_eq!(line, 3),
            other => panic!("{other:?}"),
        }
        let mut back = rec();
        back.return_ns = 5;
        let text = serde_json::to_string(&back).unwrap();
        assert!(matches!(
            parse_lines(text.as_bytes(), "h"),
            Err(HistoryError::Parse { line: 1, .. })
        ));
        let text =
            r#"{"client":"a","op":"teleport","key":"k","call_ns":1,"return_ns":2,"outcome":"ok"}"#;
        assert!(parse_lines(text.as_bytes(), "h").is_err());
    }

    #[test]
    fn recorder_clock_is_monotonic() {
        let r = Recorder::new();
        let a = r.now_ns();
        let b = r.now_ns();
        assert!(b >= a);
        r.push(rec());
        assert_eq!(r.snapshot().len(), 1);
    }
}
