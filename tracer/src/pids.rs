//! `--pid`: the processes named are checked at start (a pid no process has, or a thread's
//! id, which the kernel-side filter never matches, would trace nothing, silently), and
//! watched while tracing: one that exits is said, and is taken out of the kernel's filter,
//! so that a new process given the same pid later is not traced in its place.
//!
//! A process whose main thread has exited while others run is alive (its /proc status
//! says Z): pidfds, not /proc, decide.
use std::{
    fmt,
    os::fd::{AsRawFd, FromRawFd, OwnedFd},
};

#[derive(Debug, PartialEq, Eq)]
pub enum PidError {
    NoProcess(u32),
    Exited(u32),
    Thread { tid: u32, tgid: Option<u32> },
    /// l7trace runs in a pid namespace below the host's: the kernel side compares the
    /// host's pids, which are not the ones given here.
    OwnPidNamespace,
}

impl fmt::Display for PidError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PidError::NoProcess(pid) => write!(f, "--pid {pid}: no process has this pid"),
            PidError::Exited(pid) => write!(f, "--pid {pid}: this process has exited"),
            PidError::Thread { tid, tgid: Some(tgid) } => {
                write!(f, "--pid {tid}: this is a thread of process {tgid}: give the process's id, {tgid}")
            }
            PidError::Thread { tid, tgid: None } => write!(f, "--pid {tid}: this is a thread, not a process: give its process's id"),
            PidError::OwnPidNamespace => write!(
                f,
                "--pid: l7trace runs in a pid namespace of its own (a container), and the kernel side filters by the \
                 host's pids, not these: run it in the host's pid namespace, or select with --port or --comm"
            ),
        }
    }
}

/// A field of /proc/PID/status.
fn status_field(pid: &str, name: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned())
}

/// A pidfd for process `pid` (Linux 5.3+): it stays that process's, whatever pid is given
/// to a later one, and becomes readable when the process has exited (all its threads).
fn pidfd(pid: u32) -> Result<OwnedFd, i32> {
    // SAFETY: plain syscall; a returned fd is ours.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::c_long, 0 as libc::c_long) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error().raw_os_error().unwrap_or(0));
    }
    // SAFETY: a fresh fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as i32) })
}

fn exited(fd: &OwnedFd) -> bool {
    let mut p = libc::pollfd { fd: fd.as_raw_fd(), events: libc::POLLIN, revents: 0 };
    // SAFETY: one valid pollfd, no wait.
    let ready = unsafe { libc::poll(&mut p, 1, 0) };
    // An interrupted poll says nothing: asked again at the next tick.
    ready > 0 && p.revents & libc::POLLIN != 0
}

/// Checks that every `--pid` names a live process (not one of its threads), and watches
/// them from here on: the pidfds are taken now, so a process that exits before tracing
/// starts is not replaced by a later one given its pid. pidfd_open needs no permission on
/// the process (a `hidepid` /proc would hide other users' processes).
pub fn check(pids: &[u32]) -> Result<PidWatch, PidError> {
    if !pids.is_empty() && status_field("self", "NSpid:").is_some_and(|v| v.split_whitespace().count() > 1) {
        return Err(PidError::OwnPidNamespace);
    }
    let mut left: Vec<(u32, Option<OwnedFd>)> = Vec::new();
    for &pid in pids {
        if left.iter().any(|(p, _)| *p == pid) {
            continue;
        }
        // Not a process's id (pidfd_open would call it a thread).
        if pid == 0 {
            return Err(PidError::NoProcess(0));
        }
        let fd = match pidfd(pid) {
            Ok(fd) if exited(&fd) => return Err(PidError::Exited(pid)),
            Ok(fd) => Some(fd),
            Err(libc::ESRCH) => return Err(PidError::NoProcess(pid)),
            // Not a thread group leader: a thread of another process.
            Err(libc::EINVAL) => {
                let tgid = status_field(&pid.to_string(), "Tgid:").and_then(|t| t.parse().ok());
                return Err(PidError::Thread { tid: pid, tgid });
            }
            // No pidfds (before 5.3): what /proc says.
            Err(_) => match status_field(&pid.to_string(), "Tgid:").and_then(|t| t.parse::<u32>().ok()) {
                None => return Err(PidError::NoProcess(pid)),
                Some(tgid) if tgid != pid => return Err(PidError::Thread { tid: pid, tgid: Some(tgid) }),
                Some(_) => None,
            },
        };
        left.push((pid, fd));
    }
    Ok(PidWatch { left })
}

/// The `--pid` processes still running, each with its pidfd (see `check`); without
/// pidfds, /proc is looked at, which could take a new process given a reused pid for the
/// old one.
pub struct PidWatch {
    left: Vec<(u32, Option<OwnedFd>)>,
}

impl PidWatch {
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
                Some(fd) => !exited(fd),
                None => std::path::Path::new(&format!("/proc/{pid}")).exists(),
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
        assert!(check(&[me]).is_ok());
        // A thread's id, while the thread runs.
        let (tx, rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
        let t = std::thread::spawn(move || {
            tx.send(unsafe { libc::gettid() } as u32).unwrap();
            let _ = done_rx.recv();
        });
        let running = rx.recv().unwrap();
        assert_eq!(check(&[me, running]).err(), Some(PidError::Thread { tid: running, tgid: Some(me) }));
        assert!(check(&[running]).err().unwrap().to_string().contains(&format!("process {me}")));
        done_tx.send(()).unwrap();
        t.join().unwrap();
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        // Exited, not yet reaped (a zombie): it makes no more calls.
        while !std::fs::read_to_string(format!("/proc/{dead}/stat")).is_ok_and(|s| s.contains(") Z ")) {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        assert_eq!(check(&[me, dead]).err(), Some(PidError::Exited(dead)));
        child.wait().unwrap();
        assert_eq!(check(&[me, dead]).err(), Some(PidError::NoProcess(dead)));
    }

    #[test]
    fn an_exit_is_seen_once() {
        let mut child = std::process::Command::new("sleep").arg("30").spawn().unwrap();
        let me = std::process::id();
        let mut w = check(&[child.id(), me, child.id()]).unwrap();
        assert_eq!(w.len(), 2);
        assert!(w.exited().is_empty());
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(w.exited(), [child.id()]);
        assert!(w.exited().is_empty());
        assert_eq!(w.len(), 1);
    }
}
