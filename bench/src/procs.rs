//! The cluster directory the start scripts write, shared by both systems:
//! `DIR/node-N/pid` (the running process), `DIR/node-N/cmd` (the command that starts it
//! again, one shell line) and `DIR/node-N/node.log`. Node N serves `endpoints[N-1]`.

use std::collections::HashMap;
use std::fs;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, thiserror::Error)]
pub enum ProcError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{0}: not a process id")]
    BadPid(PathBuf),
    #[error("node {0}: process {1} is not running")]
    NotRunning(usize, i32),
    #[error("kill -9 {pid}: {source}")]
    Kill {
        pid: i32,
        #[source]
        source: std::io::Error,
    },
    #[error("node {0}: process {1} still exists {2:?} after kill -9")]
    Survived(usize, i32, Duration),
}

fn read(path: PathBuf) -> Result<String, ProcError> {
    fs::read_to_string(&path).map_err(|source| ProcError::Io { path, source })
}

/// The node processes of one cluster directory.
pub struct Cluster {
    dir: PathBuf,
    /// Nodes this process restarted; kept so they can be reaped after a kill.
    children: HashMap<usize, Child>,
}

impl Cluster {
    pub fn new(dir: impl Into<PathBuf>) -> Cluster {
        Cluster {
            dir: dir.into(),
            children: HashMap::new(),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn node_dir(&self, n: usize) -> PathBuf {
        self.dir.join(format!("node-{n}"))
    }

    pub fn pid(&self, n: usize) -> Result<i32, ProcError> {
        let path = self.node_dir(n).join("pid");
        read(path.clone())?
            .trim()
            .parse::<i32>()
            .ok()
            .filter(|p| *p > 0)
            .ok_or(ProcError::BadPid(path))
    }

    /// Sends SIGKILL to node `n` and waits (bounded) until the process is gone.
    pub fn kill9(&mut self, n: usize) -> Result<(), ProcError> {
        let pid = self.pid(n)?;
        if !alive(pid) {
            return Err(ProcError::NotRunning(n, pid));
        }
        // SAFETY: kill(2) with a pid read from our own pid file and a constant signal.
        if unsafe { libc::kill(pid, libc::SIGKILL) } != 0 {
            return Err(ProcError::Kill {
                pid,
                source: std::io::Error::last_os_error(),
            });
        }
        if let Some(mut c) = self.children.remove(&n) {
            let _ = c.wait();
        }
        let limit = Duration::from_secs(5);
        let t0 = Instant::now();
        while alive(pid) {
            if t0.elapsed() > limit {
                return Err(ProcError::Survived(n, pid, limit));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Starts node `n` again with its recorded command, appending to its log.
    pub fn restart(&mut self, n: usize) -> Result<i32, ProcError> {
        let dir = self.node_dir(n);
        let cmd = read(dir.join("cmd"))?;
        let log_path = dir.join("node.log");
        let log = fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(|source| ProcError::Io {
                path: log_path.clone(),
                source,
            })?;
        let err = log.try_clone().map_err(|source| ProcError::Io {
            path: log_path.clone(),
            source,
        })?;
        let child = Command::new("sh")
            .arg("-c")
            .arg(format!("exec {}", cmd.trim()))
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(err)
            // Its own process group, so a ^C to the benchmark does not reach the node.
            .process_group(0)
            .spawn()
            .map_err(|source| ProcError::Io {
                path: dir.join("cmd"),
                source,
            })?;
        let pid = child.id() as i32;
        let pid_path = dir.join("pid");
        fs::write(&pid_path, format!("{pid}\n")).map_err(|source| ProcError::Io {
            path: pid_path,
            source,
        })?;
        self.children.insert(n, child);
        Ok(pid)
    }

    /// Resident set size of node `n` in KiB.
    pub fn rss_kib(&self, n: usize) -> Result<u64, ProcError> {
        let pid = self.pid(n)?;
        let path = PathBuf::from(format!("/proc/{pid}/status"));
        let text = read(path.clone())?;
        parse_vm_rss(&text).ok_or(ProcError::BadPid(path))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        // Nodes restarted here keep running for the scripts to stop; only forget the handles.
        self.children.clear();
    }
}

/// Whether `pid` is a live (not zombie) process.
pub fn alive(pid: i32) -> bool {
    match fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state letter follows the parenthesised command name.
        Ok(s) => s
            .rsplit_once(") ")
            .map(|(_, rest)| !rest.starts_with('Z') && !rest.starts_with('X'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

/// The `VmRSS:` line of /proc/PID/status, in KiB.
pub fn parse_vm_rss(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_rss() {
        let s = "Name:\tx\nVmPeak:\t  100 kB\nVmRSS:\t   12345 kB\nThreads: 3\n";
        assert_eq!(parse_vm_rss(s), Some(12345));
        assert_eq!(parse_vm_rss("Name: x\n"), None);
    }

    #[test]
    fn kill_restart_and_rss_on_a_real_process() {
        let dir = tempfile::tempdir().unwrap();
        let node = dir.path().join("node-1");
        fs::create_dir_all(&node).unwrap();
        fs::write(node.join("cmd"), "sleep 30").unwrap();
        let mut c = Cluster::new(dir.path());
        assert!(matches!(c.pid(1), Err(ProcError::Io { .. })));
        let pid = c.restart(1).unwrap();
        assert_eq!(c.pid(1).unwrap(), pid);
        assert!(alive(pid));
        assert!(c.rss_kib(1).unwrap() > 0);
        c.kill9(1).unwrap();
        assert!(!alive(pid));
        assert!(matches!(c.kill9(1), Err(ProcError::NotRunning(1, _))));
        fs::write(node.join("pid"), "garbage").unwrap();
        assert!(matches!(c.pid(1), Err(ProcError::BadPid(_))));
    }
}
