//! Plain-text rendering of structured results.

use aegis_client::{Member, NodeStatus};
use serde::Serialize;

/// One row of `aegisctl status`.
#[derive(Debug, Serialize)]
pub struct StatusRow {
    pub endpoint: String,
    #[serde(flatten)]
    pub status: Option<NodeStatus>,
    /// This node's replication lag as reported by the leader (None on the leader, or unknown).
    pub lag: Option<u64>,
    pub error: Option<String>,
}

/// Joins per-endpoint answers with the leader's view of each follower's lag.
pub fn status_rows(
    results: Vec<(String, Result<NodeStatus, aegis_client::Error>)>,
) -> Vec<StatusRow> {
    let leader_lags: Vec<(u64, u64)> = results
        .iter()
        .filter_map(|(_, r)| r.as_ref().ok())
        .find(|s| s.role == "leader")
        .map(|s| s.lags.iter().map(|l| (l.follower_id, l.lag)).collect())
        .unwrap_or_default();
    results
        .into_iter()
        .map(|(endpoint, r)| match r {
            Ok(s) => StatusRow {
                endpoint,
                lag: leader_lags
                    .iter()
                    .find(|(id, _)| *id == s.node_id)
                    .map(|(_, lag)| *lag),
                status: Some(s),
                error: None,
            },
            Err(e) => StatusRow {
                endpoint,
                status: None,
                lag: None,
                error: Some(e.to_string()),
            },
        })
        .collect()
}

/// Left-aligned columns separated by two spaces.
pub fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i < widths.len() {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                let pad = widths[i].saturating_sub(c.chars().count());
                s.push_str(c);
                s.push_str(&" ".repeat(pad + 2));
            }
        }
        s.trim_end().to_owned()
    };
    let mut out = line(header.to_vec());
    for r in rows {
        out.push('\n');
        out.push_str(&line(r.iter().map(String::as_str).collect()));
    }
    out
}

fn short(s: &str, n: usize) -> String {
    s.chars().take(n).collect()
}

pub fn status_table(rows: &[StatusRow]) -> String {
    let header = [
        "ENDPOINT", "ID", "ROLE", "TERM", "LEADER", "COMMIT", "APPLIED", "LAG", "DIGEST",
    ];
    let body: Vec<Vec<String>> = rows
        .iter()
        .map(|r| match &r.status {
            Some(s) => vec![
                r.endpoint.clone(),
                s.node_id.to_string(),
                s.role.clone(),
                s.term.to_string(),
                if s.leader_id == 0 {
                    "-".into()
                } else {
                    s.leader_id.to_string()
                },
                s.commit_index.to_string(),
                s.applied_index.to_string(),
                r.lag.map(|l| l.to_string()).unwrap_or_else(|| "-".into()),
                if s.state_digest.is_empty() {
                    "-".into()
                } else {
                    format!("{}@{}", short(&s.state_digest, 12), s.digest_index)
                },
            ],
            None => {
                let mut v = vec![r.endpoint.clone()];
                v.extend(std::iter::repeat_n("-".to_string(), 7));
                v.push(format!("error: {}", r.error.as_deref().unwrap_or("")));
                v
            }
        })
        .collect();
    table(&header, &body)
}

pub fn member_table(members: &[Member]) -> String {
    let rows: Vec<Vec<String>> = members
        .iter()
        .map(|m| {
            vec![
                m.id.to_string(),
                if m.voter { "voter" } else { "learner" }.into(),
                m.peer_addr.clone(),
                m.client_addr.clone(),
                incarnation(m.incarnation),
            ]
        })
        .collect();
    table(&["ID", "KIND", "PEER", "CLIENT", "INCARNATION"], &rows)
}

/// As the node logs and reports it in errors: 16 hex digits; "-" when unknown.
fn incarnation(i: u64) -> String {
    if i == 0 {
        "-".into()
    } else {
        format!("{i:016x}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_client::FollowerLag;

    fn st(id: u64, role: &str, lags: Vec<FollowerLag>) -> NodeStatus {
        NodeStatus {
            node_id: id,
            term: 4,
            leader_id: 2,
            role: role.into(),
            commit_index: 100,
            applied_index: 99,
            last_log_index: 100,
            lags,
            members: vec![],
            config_hash: "h".into(),
            state_digest: "0123456789abcdef0123".into(),
            digest_index: 99,
            snapshot_index: 0,
            version: "0.1.0".into(),
            incarnation: 7,
        }
    }

    #[test]
    fn rows_take_lag_from_the_leader() {
        let rows = status_rows(vec![
            ("http://a:1".into(), Ok(st(1, "follower", vec![]))),
            (
                "http://b:2".into(),
                Ok(st(
                    2,
                    "leader",
                    vec![FollowerLag {
                        follower_id: 1,
                        lag: 5,
                    }],
                )),
            ),
            ("http://c:3".into(), Err(aegis_client::Error::NoLeader)),
        ]);
        assert_eq!(rows[0].lag, Some(5));
        assert_eq!(rows[1].lag, None);
        assert!(rows[2].error.as_deref().unwrap().contains("no leader"));
        let t = status_table(&rows);
        let lines: Vec<&str> = t.lines().collect();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].starts_with("ENDPOINT"));
        assert!(lines[1].contains("follower") && lines[1].contains("0123456789ab@99"));
        assert!(lines[1].split_whitespace().any(|c| c == "5"));
        assert!(lines[3].contains("error: no leader"));
        let json = serde_json::to_value(&rows[1]).unwrap();
        assert_eq!(json["node_id"], 2);
        assert_eq!(json["endpoint"], "http://b:2");
        assert_eq!(json["incarnation"], 7);
    }

    #[test]
    fn member_table_shows_recorded_incarnations() {
        let t = member_table(&[Member {
            id: 3,
            peer_addr: "p:1".into(),
            client_addr: "c:1".into(),
            voter: true,
            incarnation: 0xab,
        }]);
        let lines: Vec<&str> = t.lines().collect();
        assert!(lines[0].ends_with("INCARNATION"));
        assert!(lines[1].ends_with("00000000000000ab"), "{t}");
    }

    #[test]
    fn table_aligns_columns() {
        let t = table(&["A", "B"], &[vec!["long-cell".into(), "x".into()]]);
        assert_eq!(t, "A          B\nlong-cell  x");
    }
}
