//! Network namespaces for the `--iface` tests: two namespaces joined by a veth pair
//! (iproute2), threads that run inside one (setns on a thread moves only that thread, and
//! what it spawns), l7trace and curl inside one, and a raw AF_PACKET sender for crafted
//! frames.
//!
//! Included by the `--iface` test crates with
//! `#[path = "common/netns.rs"] mod netns;` next to `mod common;`.
#![allow(dead_code)]

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::SystemTime;

use serde_json::Value;

use crate::common::{str_at, CurlRun, Trace};

/// Runs `ip ARGS`, panicking with its stderr when it fails.
pub fn ip(args: &[&str]) {
    let out = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run ip (iproute2)");
    assert!(
        out.status.success(),
        "ip {} failed ({}): {}",
        args.join(" "),
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Namespaces left by an earlier run of these tests that was killed (so its Drop never
/// ran): named `l7t-PID-...` with PID no longer alive.
fn remove_stale_namespaces() {
    let Ok(out) = Command::new("ip").args(["netns", "list"]).output() else {
        return;
    };
    for line in String::from_utf8_lossy(&out.stdout).lines() {
        let name = line.split_whitespace().next().unwrap_or_default();
        let Some(pid) = name
            .strip_prefix("l7t-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !std::path::Path::new(&format!("/proc/{pid}")).exists() {
            let _ = Command::new("ip").args(["netns", "del", name]).status();
        }
    }
}

/// Two fresh namespaces, "server" and "client", joined by a veth pair, with IPv4 and IPv6
/// (nodad) addresses and `lo` up in both. Both namespaces (and with them the veth pair) are
/// removed on drop, also when the test panics.
pub struct NetPair {
    pub server_ns: String,
    pub client_ns: String,
    /// The veth end in the server namespace.
    pub server_if: String,
    /// The veth end in the client namespace.
    pub client_if: String,
    pub server_v4: Ipv4Addr,
    pub client_v4: Ipv4Addr,
    pub server_v6: Ipv6Addr,
    pub client_v6: Ipv6Addr,
    created: Vec<String>,
}

impl NetPair {
    pub fn new() -> NetPair {
        static SEQ: AtomicU32 = AtomicU32::new(0);
        remove_stale_namespaces();
        let (pid, n) = (std::process::id(), SEQ.fetch_add(1, Ordering::Relaxed));
        let mut pair = NetPair {
            server_ns: format!("l7t-{pid}-{n}-srv"),
            client_ns: format!("l7t-{pid}-{n}-cli"),
            // Interface names are at most 15 bytes.
            server_if: format!("l7s{pid:x}x{n}"),
            client_if: format!("l7c{pid:x}x{n}"),
            server_v4: Ipv4Addr::new(10, 231, 0, 1),
            client_v4: Ipv4Addr::new(10, 231, 0, 2),
            server_v6: "fd00:7:7::1".parse().unwrap(),
            client_v6: "fd00:7:7::2".parse().unwrap(),
            created: Vec::new(),
        };
        for ns in [pair.server_ns.clone(), pair.client_ns.clone()] {
            ip(&["netns", "add", &ns]);
            pair.created.push(ns);
        }
        let (sns, cns) = (pair.server_ns.as_str(), pair.client_ns.as_str());
        let (sif, cif) = (pair.server_if.as_str(), pair.client_if.as_str());
        ip(&[
            "link", "add", sif, "netns", sns, "type", "veth", "peer", "name", cif, "netns", cns,
        ]);
        for (ns, ifname, v4, v6) in [
            (sns, sif, pair.server_v4, pair.server_v6),
            (cns, cif, pair.client_v4, pair.client_v6),
        ] {
            ip(&["-n", ns, "addr", "add", &format!("{v4}/24"), "dev", ifname]);
            ip(&[
                "-n",
                ns,
                "addr",
                "add",
                &format!("{v6}/64"),
                "dev",
                ifname,
                "nodad",
            ]);
            ip(&["-n", ns, "link", "set", ifname, "up"]);
            ip(&["-n", ns, "link", "set", "lo", "up"]);
        }
        pair
    }

    pub fn server_ip(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(self.server_v6)
        } else {
            IpAddr::V4(self.server_v4)
        }
    }

    pub fn client_ip(&self, v6: bool) -> IpAddr {
        if v6 {
            IpAddr::V6(self.client_v6)
        } else {
            IpAddr::V4(self.client_v4)
        }
    }
}

impl Drop for NetPair {
    fn drop(&mut self) {
        for ns in &self.created {
            let _ = Command::new("ip")
                .args(["netns", "del", ns])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

/// Moves the calling thread into namespace `ns` (only this thread; threads it spawns
/// afterwards inherit it, and so do the processes it starts).
pub fn enter(ns: &str) {
    let path = format!("/run/netns/{ns}");
    let f = std::fs::File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
    // SAFETY: a valid namespace fd; setns affects only the calling thread.
    let rc = unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) };
    assert_eq!(rc, 0, "setns({path}): {}", std::io::Error::last_os_error());
}

/// Runs `f` on a new thread named `name` inside namespace `ns`, and returns its result
/// (a panic in `f` is the caller's panic).
pub fn in_ns<T: Send + 'static>(ns: &str, name: &str, f: impl FnOnce() -> T + Send + 'static) -> T {
    let ns = ns.to_owned();
    let handle = std::thread::Builder::new()
        .name(name.to_owned())
        .spawn(move || {
            enter(&ns);
            f()
        })
        .expect("spawn namespace thread");
    match handle.join() {
        Ok(v) => v,
        Err(p) => std::panic::resume_unwind(p),
    }
}

/// `ip netns exec NS l7trace --json ARGS` (l7trace runs in that namespace, with its
/// sysfs, as a user would start it), returned once it is tracing.
pub fn trace_in(ns: &str, args: &[&str]) -> Trace {
    Trace::start_wrapped(&["ip", "netns", "exec", ns], args)
}

/// `ip netns exec NS curl -sS --noproxy '*' --max-time 20 ARGS`; asserts it exits 0.
/// `ip netns exec` execs curl, so the pid is curl's.
pub fn curl_in(ns: &str, args: &[&str]) -> CurlRun {
    crate::common::curl_wrapped(&["ip", "netns", "exec", ns], args)
}

/// `host:port` as l7trace writes it (`[v6]:port` for IPv6).
pub fn addr_str(ip: IpAddr, port: u16) -> String {
    SocketAddr::new(ip, port).to_string()
}

/// A raw AF_PACKET socket that sends whole Ethernet frames out of one interface.
pub struct RawSender {
    fd: OwnedFd,
    ifindex: i32,
}

impl RawSender {
    /// On `iface` of namespace `ns` (None: the test's own namespace).
    pub fn open(ns: Option<&str>, iface: &str) -> RawSender {
        let iface = iface.to_owned();
        let open = move || {
            let name = std::ffi::CString::new(iface.clone()).unwrap();
            // SAFETY: a valid C string.
            let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
            assert!(ifindex > 0, "no interface {iface}");
            // SAFETY: plain syscall; protocol 0: this socket receives nothing.
            let raw =
                unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, 0) };
            assert!(
                raw >= 0,
                "socket(AF_PACKET): {}",
                std::io::Error::last_os_error()
            );
            // SAFETY: a new fd we own.
            let fd = unsafe { OwnedFd::from_raw_fd(raw) };
            RawSender { fd, ifindex }
        };
        match ns {
            Some(ns) => in_ns(ns, "l7t-rawsock", open),
            None => open(),
        }
    }

    /// Sends one frame (Ethernet header included) as it is.
    pub fn send(&self, frame: &[u8]) {
        // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        // The outer ethertype, already in network order in the frame.
        sll.sll_protocol = u16::from_ne_bytes([frame[12], frame[13]]);
        sll.sll_ifindex = self.ifindex;
        sll.sll_halen = 6;
        sll.sll_addr[..6].copy_from_slice(&frame[..6]);
        // SAFETY: valid buffer and address.
        let n = unsafe {
            libc::sendto(
                self.fd.as_raw_fd(),
                frame.as_ptr() as *const libc::c_void,
                frame.len(),
                0,
                &sll as *const _ as *const libc::sockaddr,
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
        assert_eq!(
            n,
            frame.len() as isize,
            "sendto(AF_PACKET, {} bytes): {}",
            frame.len(),
            std::io::Error::last_os_error()
        );
    }
}

/// What every exchange reconstructed from packets without loss has: source "packet",
/// complete, no lost bytes, no note, a response, latency >= ttfb, ts near `since`.
pub fn assert_packet_exchange(rec: &Value, since: SystemTime) {
    crate::common::assert_complete_exchange_from(rec, since, "packet");
}

/// The records whose client (`src`) is `src`, in output order.
pub fn from_client<'a>(records: &'a [Value], src: &str) -> Vec<&'a Value> {
    records
        .iter()
        .filter(|r| str_at(r, "/src") == src)
        .collect()
}

/// A `Tcp:` counter of `/proc/net/snmp` in namespace `ns` (e.g. "InSegs", "OutRsts").
pub fn tcp_counter(ns: &str, name: &str) -> u64 {
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", "/proc/net/snmp"])
        .output()
        .expect("read /proc/net/snmp");
    let text = String::from_utf8_lossy(&out.stdout);
    let rows: Vec<&str> = text.lines().filter(|l| l.starts_with("Tcp:")).collect();
    assert_eq!(rows.len(), 2, "Tcp rows in /proc/net/snmp of {ns}:\n{text}");
    let names = rows[0].split_whitespace();
    let values = rows[1].split_whitespace();
    names
        .zip(values)
        .find(|(n, _)| *n == name)
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or_else(|| panic!("no Tcp {name} in /proc/net/snmp of {ns}"))
}
