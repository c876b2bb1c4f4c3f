//! A one-line progress bar on stderr, drawn only when stderr is a terminal so that logs and
//! JSON output stay clean.

use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub fn stderr_is_terminal() -> bool {
    // SAFETY: isatty only inspects the descriptor number.
    unsafe { libc::isatty(2) == 1 }
}

/// The bar text for `done` of an optional `total` after `elapsed` of an optional `limit`.
/// Progress is the larger of the count and the time fraction, since a run ends at whichever
/// bound comes first.
pub fn render(done: u64, total: Option<u64>, elapsed: Duration, limit: Option<Duration>) -> String {
    let by_count = total.map(|t| done as f64 / t.max(1) as f64);
    let by_time = limit.map(|l| elapsed.as_secs_f64() / l.as_secs_f64().max(1e-9));
    let frac = by_count
        .into_iter()
        .chain(by_time)
        .fold(0.0f64, f64::max)
        .clamp(0.0, 1.0);
    const WIDTH: usize = 40;
    let filled = (frac * WIDTH as f64) as usize;
    let bar: String = (0..WIDTH)
        .map(|i| match i.cmp(&filled) {
            std::cmp::Ordering::Less => '=',
            std::cmp::Ordering::Equal => '>',
            std::cmp::Ordering::Greater => ' ',
        })
        .collect();
    let count = match total {
        Some(t) => format!("{done} / {t}"),
        None => format!("{done}"),
    };
    format!(
        "{count} [{bar}] {:3.0}% {:.1}s",
        frac * 100.0,
        elapsed.as_secs_f64()
    )
}

/// Redraws the bar every 200 ms until dropped.
pub struct Progress {
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Progress {
    pub fn start(done: Arc<AtomicU64>, total: Option<u64>, limit: Option<Duration>) -> Progress {
        if !stderr_is_terminal() {
            return Progress {
                stop: None,
                task: None,
            };
        }
        let (tx, mut rx) = tokio::sync::oneshot::channel();
        let started = Instant::now();
        let task = tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(200));
            loop {
                tokio::select! {
                    _ = &mut rx => break,
                    _ = tick.tick() => {
                        let line = render(done.load(Ordering::Relaxed), total, started.elapsed(), limit);
                        let mut e = std::io::stderr().lock();
                        let _ = write!(e, "\r{line}");
                        let _ = e.flush();
                    }
                }
            }
            let mut e = std::io::stderr().lock();
            let _ = writeln!(e);
        });
        Progress {
            stop: Some(tx),
            task: Some(task),
        }
    }

    pub async fn finish(mut self) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.task.take() {
            let _ = t.await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_follows_count() {
        let s = render(50, Some(100), Duration::from_secs(1), None);
        assert!(s.starts_with("50 / 100 ["), "{s}");
        assert!(s.contains(" 50%"), "{s}");
        assert_eq!(s.matches('=').count(), 20, "{s}");
    }

    #[test]
    fn bar_follows_time_when_ahead() {
        let s = render(
            1,
            Some(1000),
            Duration::from_secs(5),
            Some(Duration::from_secs(10)),
        );
        assert!(s.contains(" 50%"), "{s}");
        let s = render(
            7,
            None,
            Duration::from_secs(20),
            Some(Duration::from_secs(10)),
        );
        assert!(s.contains("100%"), "time past the limit clamps: {s}");
        assert!(s.starts_with("7 ["), "{s}");
    }
}
