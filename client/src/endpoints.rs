//! Endpoint rotation and retry backoff: the pure parts of failover, kept apart from I/O so they
//! can be tested on their own.

use std::time::Duration;

use crate::error::{Error, Result};

/// Turns `host:port` or `http://host:port` into the URI form tonic expects.
pub fn normalize_endpoint(raw: &str) -> Result<String> {
    let trimmed = raw.trim().trim_end_matches('/');
    if trimmed.is_empty() {
        return Err(Error::InvalidEndpoint {
            endpoint: raw.to_owned(),
            reason: "empty".into(),
        });
    }
    let uri = if trimmed.starts_with("http://") || trimmed.starts_with("https://") {
        trimmed.to_owned()
    } else if trimmed.contains("://") {
        return Err(Error::InvalidEndpoint {
            endpoint: raw.to_owned(),
            reason: "only http:// and https:// are supported".into(),
        });
    } else {
        format!("http://{trimmed}")
    };
    let authority = uri.split_once("://").map(|(_, a)| a).unwrap_or_default();
    let port_ok = authority
        .rsplit_once(':')
        .map(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok())
        .unwrap_or(false);
    if !port_ok || authority.contains('/') {
        return Err(Error::InvalidEndpoint {
            endpoint: raw.to_owned(),
            reason: "expected HOST:PORT".into(),
        });
    }
    Ok(uri)
}

/// The endpoints a client may talk to, and which one it currently prefers.
#[derive(Debug, Clone)]
pub struct EndpointSet {
    endpoints: Vec<String>,
    current: usize,
}

impl EndpointSet {
    pub fn new(raw: &[String]) -> Result<Self> {
        let mut endpoints: Vec<String> = Vec::with_capacity(raw.len());
        for r in raw {
            let e = normalize_endpoint(r)?;
            if !endpoints.contains(&e) {
                endpoints.push(e);
            }
        }
        if endpoints.is_empty() {
            return Err(Error::NoEndpoints);
        }
        Ok(Self {
            endpoints,
            current: 0,
        })
    }

    pub fn current(&self) -> &str {
        &self.endpoints[self.current]
    }

    pub fn all(&self) -> &[String] {
        &self.endpoints
    }

    pub fn len(&self) -> usize {
        self.endpoints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.endpoints.is_empty()
    }

    /// Moves to the next endpoint, unless someone already moved away from `failed`: concurrent
    /// calls that fail on the same endpoint must not skip past a healthy one.
    pub fn advance_from(&mut self, failed: &str) {
        if self.current() == failed {
            self.current = (self.current + 1) % self.endpoints.len();
        }
    }

    /// Prefers a leader hint; adds it when the cluster has grown beyond the configured list.
    /// An unparsable hint is ignored (the caller falls back to plain rotation).
    pub fn prefer(&mut self, hint: &str) -> bool {
        let Ok(uri) = normalize_endpoint(hint) else {
            return false;
        };
        match self.endpoints.iter().position(|e| *e == uri) {
            Some(i) => self.current = i,
            None => {
                self.endpoints.push(uri);
                self.current = self.endpoints.len() - 1;
            }
        }
        true
    }
}

/// Capped exponential backoff with jitter, bounded by an attempt count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
    pub max_attempts: u32,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(50),
            max: Duration::from_millis(1000),
            max_attempts: 12,
        }
    }
}

impl Backoff {
    /// Delay before retry number `retry` (1-based), without jitter.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let shift = retry.saturating_sub(1).min(20);
        self.base.saturating_mul(1u32 << shift).min(self.max)
    }

    /// Delay before retry number `retry`: uniformly in [ceiling/2, ceiling], so clients that
    /// failed together do not retry in lockstep.
    pub fn delay(&self, retry: u32) -> Duration {
        let ceiling = self.ceiling(retry);
        let half = ceiling / 2;
        let span = (ceiling - half).as_micros() as u64;
        if span == 0 {
            return ceiling;
        }
        half + Duration::from_micros(jitter_u64() % (span + 1))
    }

    pub fn exhausted(&self, attempts: u32) -> bool {
        attempts >= self.max_attempts
    }
}

/// Jitter from the std hasher's per-process random keys; no cryptographic quality needed.
fn jitter_u64() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u128(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(v: &[&str]) -> EndpointSet {
        EndpointSet::new(&v.iter().map(|s| s.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn normalizes_and_rejects() {
        assert_eq!(
            normalize_endpoint("127.0.0.1:7401").unwrap(),
            "http://127.0.0.1:7401"
        );
        assert_eq!(normalize_endpoint(" http://a:1/ ").unwrap(), "http://a:1");
        for bad in ["", "a", "a:b", ":1", "unix:///x", "a:1/path", "a:70000"] {
            assert!(normalize_endpoint(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn empty_list_is_an_error() {
        assert_eq!(EndpointSet::new(&[]).unwrap_err(), Error::NoEndpoints);
    }

    #[test]
    fn rotation_wraps_and_dedups() {
        let mut s = set(&["a:1", "b:2", "a:1", "c:3"]);
        assert_eq!(s.len(), 3);
        assert_eq!(s.current(), "http://a:1");
        s.advance_from("http://a:1");
        assert_eq!(s.current(), "http://b:2");
        s.advance_from("http://b:2");
        s.advance_from("http://c:3");
        assert_eq!(s.current(), "http://a:1");
    }

    #[test]
    fn advance_from_a_stale_endpoint_does_not_skip() {
        let mut s = set(&["a:1", "b:2", "c:3"]);
        s.advance_from("http://a:1");
        // A second caller that also failed on a:1 must not move past b:2.
        s.advance_from("http://a:1");
        assert_eq!(s.current(), "http://b:2");
    }

    #[test]
    fn prefer_known_and_new_hints() {
        let mut s = set(&["a:1", "b:2"]);
        assert!(s.prefer("b:2"));
        assert_eq!(s.current(), "http://b:2");
        assert!(s.prefer("d:4"));
        assert_eq!(s.current(), "http://d:4");
        assert_eq!(s.len(), 3);
        assert!(!s.prefer("garbage"));
        assert_eq!(s.current(), "http://d:4");
    }

    #[test]
    fn backoff_grows_caps_and_jitters_within_bounds() {
        let b = Backoff {
            base: Duration::from_millis(10),
            max: Duration::from_millis(100),
            max_attempts: 5,
        };
        assert_eq!(b.ceiling(1), Duration::from_millis(10));
        assert_eq!(b.ceiling(2), Duration::from_millis(20));
        assert_eq!(b.ceiling(4), Duration::from_millis(80));
        assert_eq!(b.ceiling(5), Duration::from_millis(100));
        assert_eq!(b.ceiling(1000), Duration::from_millis(100));
        for retry in 1..10 {
            let d = b.delay(retry);
            assert!(d <= b.ceiling(retry), "{d:?}");
            assert!(d >= b.ceiling(retry) / 2, "{d:?}");
        }
        assert!(!b.exhausted(4));
        assert!(b.exhausted(5));
    }
}
