//! Leader and term from an AEGIS node's Prometheus endpoint. Used by the failover benchmark
//! instead of Admin.Status, whose reply includes a digest of the whole state (expensive on a
//! large state), so polling it every few milliseconds would itself slow the cluster down.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::backend::MemberStatus;

const MAX_BODY: u64 = 4 << 20;

/// Reads `aegis_raft_is_leader`, `aegis_raft_term` and `aegis_raft_last_applied_index`.
pub fn parse(id: u64, text: &str) -> Option<MemberStatus> {
    let mut is_leader = None;
    let mut term = None;
    let mut index = 0;
    for line in text.lines() {
        let mut parts = line.split_whitespace();
        let (Some(name), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let v = value.parse::<f64>().ok();
        match name {
            "aegis_raft_is_leader" => is_leader = v.map(|v| v >= 1.0),
            "aegis_raft_term" => term = v.map(|v| v as u64),
            "aegis_raft_last_applied_index" => index = v.map(|v| v as u64).unwrap_or(0),
            _ => {}
        }
    }
    Some(MemberStatus {
        id,
        leader: 0,
        is_leader: is_leader?,
        term: term?,
        index,
    })
}

/// One scrape of `http://addr/metrics` (HTTP/1.0, so the body ends at connection close).
pub async fn probe(id: u64, addr: &str, timeout: Duration) -> Option<MemberStatus> {
    let fut = async {
        let mut s = tokio::net::TcpStream::connect(addr).await.ok()?;
        s.write_all(format!("GET /metrics HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes())
            .await
            .ok()?;
        let mut buf = Vec::new();
        s.take(MAX_BODY).read_to_end(&mut buf).await.ok()?;
        let text = String::from_utf8_lossy(&buf);
        let (head, body) = text.split_once("\r\n\r\n")?;
        let ok = head.starts_with("HTTP/1.") && head.split_whitespace().nth(1) == Some("200");
        if !ok {
            return None;
        }
        parse(id, body)
    };
    tokio::time::timeout(timeout, fut).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exposition_text() {
        let t = "# HELP aegis_raft_term current term\n# TYPE aegis_raft_term gauge\naegis_raft_term 7\naegis_raft_is_leader 1\naegis_raft_last_applied_index 42\n";
        let s = parse(3, t).unwrap();
        assert_eq!((s.id, s.is_leader, s.term, s.index), (3, true, 7, 42));
        assert!(
            parse(1, "aegis_raft_term 7\n").is_none(),
            "leader gauge missing"
        );
        assert!(
            !parse(1, "aegis_raft_term 7\naegis_raft_is_leader 0\n")
                .unwrap()
                .is_leader
        );
    }

    #[tokio::test]
    async fn scrapes_a_real_http_listener() {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = l.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = l.accept().await.unwrap();
            let mut req = [0u8; 512];
            let _ = s.read(&mut req).await.unwrap();
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\n\r\naegis_raft_is_leader 0\naegis_raft_term 3\n")
                .await
                .unwrap();
        });
        let st = probe(2, &addr, Duration::from_secs(2)).await.unwrap();
        assert_eq!((st.id, st.is_leader, st.term), (2, false, 3));
        // Nothing listening: no status, no panic.
        let dead = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().to_string()
        };
        assert!(probe(1, &dead, Duration::from_millis(500)).await.is_none());
    }
}
