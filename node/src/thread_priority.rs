//! The scheduling priority of one OS thread. Linux keeps a nice value per
//! thread, so the WAL flusher can run ahead of the node's other threads
//! without changing them (docs/adr/0018-flusher-priority.md).

use std::io;

/// Sets the calling thread's nice value (-20 highest priority, 19 lowest).
/// Raising a priority above the process's needs `CAP_SYS_NICE` (or a
/// `RLIMIT_NICE` that allows it); without it the error is
/// `PermissionDenied` and the thread keeps its priority.
pub fn set_current_thread_nice(nice: i32) -> io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: gettid has no preconditions and cannot fail.
        let tid = unsafe { libc::gettid() };
        // SAFETY: setpriority only reads its integer arguments; a tid is a
        // valid `who` for PRIO_PROCESS on Linux and names just this thread.
        let rc = unsafe { libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice) };
        if rc == 0 {
            Ok(())
        } else {
            Err(io::Error::last_os_error())
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = nice;
        Err(io::Error::new(
            io::ErrorKind::Unsupported,
            "a per-thread nice value is Linux-only",
        ))
    }
}

#[cfg(all(test, target_os = "linux"))]
pub(crate) mod tests {
    use super::*;

    /// A thread's nice value as the kernel reports it (field 19 of its
    /// stat); `None` once the thread is gone.
    pub(crate) fn nice_of(stat: &std::path::Path) -> Option<i32> {
        let stat = std::fs::read_to_string(stat).ok()?;
        // The command name (field 2) may hold spaces; the fields after it do not.
        let after_name = &stat[stat.rfind(')')? + 1..];
        after_name.split_whitespace().nth(16)?.parse().ok()
    }

    pub(crate) fn current_thread_nice() -> i32 {
        nice_of("/proc/thread-self/stat".as_ref()).expect("own nice value")
    }

    /// Lowering a thread's priority is always allowed, and it changes that
    /// thread only.
    #[test]
    fn lowers_only_the_calling_thread() {
        let before = current_thread_nice();
        let inner = std::thread::spawn(move || {
            let target = (before + 3).min(19);
            set_current_thread_nice(target).expect("lowering a priority");
            (target, current_thread_nice())
        })
        .join()
        .expect("thread");
        assert_eq!(inner.0, inner.1);
        assert_ne!(inner.1, before, "the spawned thread's nice value moved");
        assert_eq!(current_thread_nice(), before);
    }
}
