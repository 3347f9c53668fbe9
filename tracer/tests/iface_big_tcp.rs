//! `--iface` with BIG TCP on the veth pair (GSO/GRO super-packets up to 185,000 bytes):
//! a packet over 64 KiB says 0 in its IPv6 payload length, and the tap sees the jumbo
//! hop-by-hop header (next header 0) before TCP. The socket filter and the frame parser
//! skip that header and take the length from its jumbo option, which must agree with the
//! packet's; otherwise every super-packet would be dropped, and a large download reported
//! with gaps. IPv6 only: IPv4 BIG TCP (`gso_ipv4_max_size`) needs an iproute2
//! newer than Debian bookworm's; the frame parser's unit tests cover IPv4.

mod common;
#[path = "common/netns.rs"]
mod netns;

use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use common::*;
use netns::*;

const BIG: usize = 8 << 20;
const MAX_SIZE: &str = "185000";

fn handler(_req: &Request) -> Reply {
    Reply::ok(vec![b'x'; BIG])
}

/// The longest frame a packet socket on `iface` of `ns` sees until `stop`: the positive
/// control that super-packets over 64 KiB did reach the tap (else the download would pass
/// without one jumbo header to skip).
fn longest_frame(ns: &str, iface: &str, stop: Arc<AtomicBool>, longest: Arc<AtomicUsize>) -> std::thread::JoinHandle<()> {
    let (ns, iface) = (ns.to_owned(), iface.to_owned());
    let ready = Arc::new(AtomicBool::new(false));
    let ready2 = Arc::clone(&ready);
    let handle = std::thread::spawn(move || {
        enter(&ns);
        let name = std::ffi::CString::new(iface.clone()).unwrap();
        // SAFETY: a valid C string.
        let ifindex = unsafe { libc::if_nametoindex(name.as_ptr()) } as i32;
        assert!(ifindex > 0, "no interface {iface}");
        let all = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: plain syscall.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_CLOEXEC, all as i32) };
        assert!(raw >= 0, "socket(AF_PACKET): {}", std::io::Error::last_os_error());
        // SAFETY: a new fd we own.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: an all-zero sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = all;
        sll.sll_ifindex = ifindex;
        let len = std::mem::size_of::<libc::sockaddr_ll>() as u32;
        // SAFETY: a valid address of the given length.
        let rc = unsafe { libc::bind(fd.as_raw_fd(), &sll as *const _ as *const libc::sockaddr, len) };
        assert_eq!(rc, 0, "bind(AF_PACKET {iface}): {}", std::io::Error::last_os_error());
        let tv = libc::timeval { tv_sec: 0, tv_usec: 100_000 };
        // SAFETY: a valid option buffer of its size.
        unsafe {
            libc::setsockopt(
                fd.as_raw_fd(),
                libc::SOL_SOCKET,
                libc::SO_RCVTIMEO,
                &tv as *const _ as *const libc::c_void,
                std::mem::size_of::<libc::timeval>() as u32,
            )
        };
        ready2.store(true, Ordering::SeqCst);
        let mut buf = [0u8; 64];
        while !stop.load(Ordering::SeqCst) {
            // SAFETY: a live buffer of its own length; MSG_TRUNC returns the frame's length.
            let n = unsafe { libc::recv(fd.as_raw_fd(), buf.as_mut_ptr().cast(), buf.len(), libc::MSG_TRUNC) };
            if n > 0 {
                longest.fetch_max(n as usize, Ordering::SeqCst);
            }
        }
    });
    while !ready.load(Ordering::SeqCst) {
        assert!(!handle.is_finished(), "the frame-size tap ended before it was ready");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    handle
}

#[test]
fn veth_ipv6_big_tcp_download() {
    let pair = NetPair::new();
    for (ns, ifname) in [(&pair.server_ns, &pair.server_if), (&pair.client_ns, &pair.client_if)] {
        ip(&[
            "-n", ns, "link", "set", "dev", ifname, "gso_max_size", MAX_SIZE, "gro_max_size", MAX_SIZE,
        ]);
    }
    let server_ip = pair.server_ip(true);
    let bind = std::net::SocketAddr::new(server_ip, 0).to_string();
    let server = in_ns(&pair.server_ns, "l7t-server", move || HttpServer::start(&bind, handler));
    let port_s = server.port().to_string();
    let trace = trace_in(&pair.client_ns, &["--iface", &pair.client_if, "--port", &port_s]);
    let since = trace.started_at;
    let stop = Arc::new(AtomicBool::new(false));
    let longest = Arc::new(AtomicUsize::new(0));
    let tap = longest_frame(&pair.client_ns, &pair.client_if, Arc::clone(&stop), Arc::clone(&longest));
    let url = format!("http://{}/big", addr_str(server_ip, server.port()));
    // GRO makes super-packets when it can: on a busy machine a download may pass without
    // one, so it is repeated (at most 5 times) until one came.
    const SUPER: usize = 14 + 40 + 65_535;
    let mut downloads = 0;
    while downloads < 5 && longest.load(Ordering::SeqCst) <= SUPER {
        let got = curl_in(&pair.client_ns, &["-g", "-o", "/dev/null", "-w", "%{size_download}", &url]);
        assert_eq!(got.stdout_text(), BIG.to_string());
        downloads += 1;
    }
    stop.store(true, Ordering::SeqCst);
    tap.join().expect("frame-size tap");
    let longest = longest.load(Ordering::SeqCst);
    assert!(longest > SUPER, "no super-packet over 64 KiB on the tap in {downloads} downloads (longest frame {longest} bytes): nothing tested");
    let records = trace.stop();
    in_ns(&pair.server_ns, "l7t-server-end", move || drop(server));
    assert_eq!(records.len(), downloads, "records:\n{}", dump(&records));
    for rec in &records {
        assert_packet_exchange(rec, since);
        assert_eq!(u64_at(rec, "/response/body_size"), BIG as u64, "{rec}");
    }
}

