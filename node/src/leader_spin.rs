//! A leader serving a few writes keeps its CPU for a moment before its
//! runtime worker sleeps (docs/adr/0021-leader-spin.md).
//!
//! Between handing a write to its followers and hearing back from a quorum,
//! a leader's worker usually has nothing to do for a few hundred µs and
//! parks; so it does between answering a lone client and that client's next
//! request. On a virtual machine a parked worker often halts its vCPU, and the
//! message that wakes it then waits for the hypervisor to run that vCPU again;
//! on a shared host that wait is counted as steal and can be long. So before
//! parking, while one to a few proposals are in flight, or for the same budget
//! after the last of a light load returned, the worker yields in a loop,
//! watching the runtime's epoll instance, and parks as soon as anything is
//! ready there (a socket, a timer's wake-up, a task woken from another thread:
//! tokio wakes a parked worker through an eventfd in the same epoll). A node
//! that has not proposed lately, or that serves many writes at once, parks at
//! once.

use std::collections::BTreeSet;
use std::os::fd::RawFd;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Proposals this node handed to Raft as leader and has not yet seen return.
static IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// The most proposals in flight at which the worker still spins. A leader
/// with more is serving many clients at once: it seldom parks, and when it
/// does its followers need the CPU more than it does (at 64 clients a spin
/// on every park cost 1–16 % of the throughput). Also the most answers
/// after which a leader's apply lets them out first (docs/adr/0023).
pub const MAX_IN_FLIGHT: usize = 4;

/// The most proposals in flight since the count was last zero.
static PEAK: AtomicUsize = AtomicUsize::new(0);

/// When the count last fell to zero after a light load (a peak of at most
/// [`MAX_IN_FLIGHT`]), in ns after [`epoch`]; 0 after a heavy one. A lone
/// client's next request usually follows its answer within the budget.
static LIGHT_IDLE_SINCE_NS: AtomicU64 = AtomicU64::new(0);

/// The runtime's epoll descriptor, once found.
static RUNTIME_EPOLL: OnceLock<RawFd> = OnceLock::new();

/// Counts a proposal as in flight until dropped.
#[must_use]
pub struct InFlight(usize);

impl InFlight {
    pub fn start() -> InFlight {
        InFlight::writes(1)
    }

    /// One proposal that carries `n` clients' writes (a batch of
    /// keep-alives), counted as `n`: many callers waiting is load, not the
    /// lone client the spin is for.
    pub fn writes(n: usize) -> InFlight {
        let now = IN_FLIGHT.fetch_add(n, Ordering::Relaxed).saturating_add(n);
        PEAK.fetch_max(now, Ordering::Relaxed);
        InFlight(n)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if IN_FLIGHT.fetch_sub(self.0, Ordering::Relaxed) == self.0 {
            let light = PEAK.swap(0, Ordering::Relaxed) <= MAX_IN_FLIGHT;
            let since = if light { now_ns().max(1) } else { 0 };
            LIGHT_IDLE_SINCE_NS.store(since, Ordering::Relaxed);
        }
    }
}

/// The clock the idle mark is kept on: a process-wide `Instant`.
fn epoch() -> Instant {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ns() -> u64 {
    u64::try_from(epoch().elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Whether a worker about to park should keep its CPU: while one to
/// [`MAX_IN_FLIGHT`] proposals are in flight, or with none, within `window`
/// of a light load's last one returning (`idle_for`, `None` after a heavy
/// load or before any).
fn wants_spin(in_flight: usize, idle_for: Option<Duration>, window: Duration) -> bool {
    match in_flight {
        0 => idle_for.is_some_and(|d| d < window),
        n => n <= MAX_IN_FLIGHT,
    }
}

fn idle_for() -> Option<Duration> {
    match LIGHT_IDLE_SINCE_NS.load(Ordering::Relaxed) {
        0 => None,
        since => Some(Duration::from_nanos(now_ns().saturating_sub(since))),
    }
}

/// What [`before_build`] saw, for [`after_build`].
pub struct Setup {
    epolls_before: BTreeSet<RawFd>,
}

/// Installs the spin on a runtime about to be built; `None` when `budget`
/// is zero (off).
pub fn before_build(builder: &mut tokio::runtime::Builder, budget: Duration) -> Option<Setup> {
    if budget.is_zero() {
        return None;
    }
    epoch();
    builder.on_thread_park(move || spin(budget));
    Some(Setup {
        epolls_before: epoll_fds(),
    })
}

/// Finds the epoll instance the runtime's I/O driver made: the descriptors
/// of one that appeared while it was built (its registry holds duplicates,
/// all naming the same instance). False, and no spinning, when there is not
/// exactly one instance new, e.g. if another thread made one meanwhile.
pub fn after_build(setup: Setup) -> bool {
    let new: Vec<RawFd> = epoll_fds()
        .difference(&setup.epolls_before)
        .copied()
        .collect();
    let instances: BTreeSet<Option<u64>> = new.iter().map(|&fd| inode(fd)).collect();
    match new.first() {
        Some(&fd) if instances.len() == 1 && !instances.contains(&None) => {
            RUNTIME_EPOLL.set(fd).is_ok()
        }
        _ => false,
    }
}

/// Yields in a loop while [`wants_spin`] and nothing is ready in the
/// runtime's epoll, for at most `budget`.
fn spin(budget: Duration) {
    let Some(&fd) = RUNTIME_EPOLL.get() else {
        return;
    };
    let start = Instant::now();
    let mut ready = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    while wants_spin(IN_FLIGHT.load(Ordering::Relaxed), idle_for(), budget)
        && start.elapsed() < budget
    {
        // SAFETY: one valid pollfd and a zero timeout: poll only writes
        // `revents` and returns at once. An epoll descriptor is readable
        // while it has events ready; polling it takes none of them.
        if unsafe { libc::poll(&mut ready, 1, 0) } != 0 {
            return;
        }
        // Whatever else is runnable on this CPU (a follower, the client)
        // goes first.
        std::thread::yield_now();
    }
}

/// This process's open epoll descriptors.
fn epoll_fds() -> BTreeSet<RawFd> {
    let Ok(dir) = std::fs::read_dir("/proc/self/fd") else {
        return BTreeSet::new();
    };
    dir.flatten()
        .filter(|e| {
            std::fs::read_link(e.path()).is_ok_and(|t| t.as_os_str() == "anon_inode:[eventpoll]")
        })
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse().ok()))
        .collect()
}

/// The inode of the open file behind `fd`: equal for descriptors dup'd from
/// one another.
fn inode(fd: RawFd) -> Option<u64> {
    std::fs::metadata(format!("/proc/self/fd/{fd}"))
        .ok()
        .map(|m| std::os::unix::fs::MetadataExt::ino(&m))
}

#[cfg(test)]
mod tests {
    use super::*;

    const WINDOW: Duration = Duration::from_micros(400);

    #[test]
    fn spins_while_a_few_writes_are_in_flight() {
        assert!(wants_spin(1, None, WINDOW));
        assert!(wants_spin(MAX_IN_FLIGHT, None, WINDOW));
        assert!(!wants_spin(MAX_IN_FLIGHT + 1, None, WINDOW));
        assert!(!wants_spin(MAX_IN_FLIGHT + 1, Some(Duration::ZERO), WINDOW));
    }

    #[test]
    fn with_none_in_flight_spins_only_just_after_a_light_load() {
        assert!(wants_spin(0, Some(Duration::from_micros(10)), WINDOW));
        assert!(!wants_spin(0, Some(WINDOW), WINDOW));
        assert!(
            !wants_spin(0, None, WINDOW),
            "never proposed, or a heavy load"
        );
    }

    #[test]
    fn a_heavy_load_leaves_no_idle_mark_and_a_light_one_does() {
        // The only test that touches the counters, so no other test races it.
        let heavy: Vec<InFlight> = (0..=MAX_IN_FLIGHT).map(|_| InFlight::start()).collect();
        drop(heavy);
        assert_eq!(idle_for(), None);
        drop(InFlight::writes(MAX_IN_FLIGHT));
        assert!(idle_for().is_some_and(|d| d < Duration::from_secs(60)));
        drop(InFlight::writes(MAX_IN_FLIGHT + 1));
        assert_eq!(idle_for(), None);
    }

    #[test]
    fn a_zero_budget_installs_nothing() {
        let mut builder = tokio::runtime::Builder::new_current_thread();
        assert!(before_build(&mut builder, Duration::ZERO).is_none());
    }
}
