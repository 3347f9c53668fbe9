//! `--pid`: the processes named are checked at start (a pid no process has, or a thread's
//! id, which the kernel-side filter never matches, would trace nothing, silently), and
//! watched while tracing: one that exits is said, and is taken out of the kernel's filter,
//! so that a new process given the same pid later is not traced in its place.
use std::{
    fmt,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

#[derive(Debug, PartialEq, Eq)]
pub enum PidError {
    NoProcess(u32),
    Thread { tid: u32, tgid: u32 },
}

impl fmt::Display for PidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidError::NoProcess(pid) => write!(f, "--pid {pid}: no process has this pid"),
            PidError::Thread { tid, tgid } => {
                write!(f, "--pid {tid}: this is a thread of process {tgid}: give the process's id, {tgid}")
            }
        }
    }
}

/// The thread group (process) of task `pid`, from /proc; None when there is no such task
/// or it has exited (a zombie makes no more calls).
fn tgid_of(pid: u32) -> Option<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| status.lines().find_map(|l| l.strip_prefix(name)).map(str::trim);
    if field("State:").is_some_and(|s| s.starts_with('Z') || s.starts_with('X')) {
        return None;
    }
    field("Tgid:")?.parse().ok()
}

/// Every `--pid` names a live process (not one of its threads).
pub fn check(pids: &[u32]) -> Result<(), PidError> {
    for &pid in pids {
        match tgid_of(pid) {
            None => return Err(PidError::NoProcess(pid)),
            Some(tgid) if tgid != pid => return Err(PidError::Thread { tid: pid, tgid }),
            Some(_) => {}
        }
    }
    Ok(())
}

/// The `--pid` processes still running, each with a pidfd (5.3+) that becomes readable
/// when it exits: exact, where a look at /proc could take a new process with a reused pid
/// for the old one (the fallback on kernels without pidfds).
pub struct PidWatch {
    left: Vec<(u32, Option<OwnedFd>)>,
}

impl PidWatch {
    pub fn new(pids: &[u32]) -> PidWatch {
        let mut left: Vec<(u32, Option<OwnedFd>)> = Vec::new();
        for &pid in pids {
            if left.iter().any(|(p, _)| *p == pid) {
                continue;
            }
            // SAFETY: plain syscall; a returned fd is ours.
            let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_long, 0 as libc::c_long) };
            // SAFETY: a fresh fd that nothing else owns.
            left.push((pid, (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd as i32) })));
        }
        PidWatch { left }
    }

    /// How many have not exited.
    pub fn len(&self) -> usize {
        self.left.len()
    }

    pub fn is_empty(&self) -> bool {
        self.left.is_empty()
    }

    /// The pids that exited since the last call, forgotten from here on.
    pub fn exited(&mut self) -> Vec<u32> {
        let mut gone = Vec::new();
        self.left.retain(|(pid, fd)| {
            let alive = match fd {
                Some(fd) => {
                    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
                    // SAFETY: one valid pollfd, no wait.
                    let ready = unsafe { libc::poll(&mut p, 1, 0) };
                    // An interrupted poll says nothing: asked again at the next tick.
                    !(ready > 0 && p.revents & libc::POLLIN != 0)
                }
                // No pidfd: it had exited before the watch began, or the kernel has none.
                None => tgid_of(*pid) == Some(*pid),
            };
            if !alive {
                gone.push(*pid);
            }
            alive
        });
        gone
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_passes_its_threads_and_dead_pids_do_not() {
        let me = std::process::id();
        assert_eq!(check(&[me]), Ok(()));
        // A thread's id, while the thread runs.
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = done_rx.recv();
        });
        let running = rx.recv().unwrap();
        assert_eq!(check(&[me, running]), Err(PidError::Thread { tid: running, tgid: me }));
        assert!(check(&[running]).unwrap_err().to_string().contains(&format!("process {me}")));
        done_tx.send(()).unwrap();
        t.join().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        assert_eq!(check(&[me, dead]), Err(PidError::NoProcess(dead)));
    }

    #[test]
    fn an_exit_is_seen_once() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let me = std::process::id();
        let mut w = PidWatch::new(&[child.id(), me, child.id()]);
        assert_eq!(w.len(), 2);
        assert!(w.exited().is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(w.exited(), [child.id()]);
        assert!(w.exited().is_empty());
        assert_eq!(w.len(), 1);
    }
}
