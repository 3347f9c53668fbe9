//! Clients that exit without close(2): the kernel closes their fds, so the kernel side never
//! sees the close, and their socket addresses come back for later connections. Each
//! exchange must still carry its own connection's addresses, process and positions, never
//! those of an earlier connection whose socket memory was reused.

mod common;

use std::net::SocketAddr;

use common::*;

const CLIENTS: usize = 40;

/// Forks a child that connects to `server`, sends `request`, reads until the server
/// closes, and leaves with `_exit` (no close, no destructor). Only raw syscalls run in the
/// child: the test process has other threads, which may hold locks at fork time.
fn exchange_in_child_that_exits(server: SocketAddr, request: &[u8]) -> libc::pid_t {
    let SocketAddr::V4(v4) = server else { panic!("IPv4 server expected") };
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: v4.port().to_be(),
        sin_addr: libc::in_addr { s_addr: u32::from_ne_bytes(v4.ip().octets()) },
        sin_zero: [0; 8],
    };
    let mut buf = [0u8; 4096];
    // SAFETY: fork, then only async-signal-safe syscalls on memory prepared before it.
    unsafe {
        let pid = libc::fork();
        assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
        if pid > 0 {
            return pid;
        }
        let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM, 0);
        let ok = fd >= 0
            && libc::connect(fd, &addr as *const _ as *const libc::sockaddr, std::mem::size_of_val(&addr) as u32) == 0
            && libc::write(fd, request.as_ptr().cast(), request.len()) == request.len() as isize;
        if ok {
            while libc::read(fd, buf.as_mut_ptr().cast(), buf.len()) > 0 {}
        }
        libc::_exit(if ok { 0 } else { 1 })
    }
}

fn wait_for(pid: libc::pid_t) {
    let mut status = 0;
    // SAFETY: our own child; status is a valid out pointer.
    let r = unsafe { libc::waitpid(pid, &mut status, 0) };
    assert_eq!(r, pid, "waitpid: {}", std::io::Error::last_os_error());
    assert!(libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0, "child {pid} failed: {status:#x}");
}

#[test]
fn each_exchange_has_its_own_connection_after_clients_exit_without_close() {
    let server = HttpServer::start_default();
    let trace = Trace::on_port(server.port(), &[]);
    let since = trace.started_at;
    let mut children = Vec::new();
    for i in 0..CLIENTS {
        let target = format!("/exit-{i}");
        let req = request("GET", &target, &server.authority(), &[("Connection", "close")]);
        let pid = exchange_in_child_that_exits(server.addr, req.as_bytes());
        // One at a time: a socket freed by one child is there for the next one's connect.
        wait_for(pid);
        children.push((target, pid));
    }
    let records = trace.stop();
    let served = server.served();
    assert_eq!(served.len(), CLIENTS, "served: {}", served.len());

    let clients = by_role(&records, "client");
    assert_eq!(clients.len(), CLIENTS, "client records:\n{}", dump(&records));
    assert_eq!(by_role(&records, "server").len(), CLIENTS, "server records:\n{}", dump(&records));
    for (target, pid) in &children {
        let peer = served
            .iter()
            .find(|s| s.request.target == *target)
            .unwrap_or_else(|| panic!("{target} not served"))
            .peer;
        let mine: Vec<_> = records.iter().filter(|r| str_at(r, "/request/target") == target).collect();
        assert_eq!(mine.len(), 2, "records for {target}:\n{}", dump(&records));
        let mut roles: Vec<&str> = mine.iter().map(|r| str_at(r, "/role")).collect();
        roles.sort();
        assert_eq!(roles, ["client", "server"], "roles for {target}:\n{}", dump(&records));
        for rec in mine {
            assert_complete_exchange(rec, since);
            assert_eq!(str_at(rec, "/src"), peer.to_string(), "src in {rec}");
            assert_eq!(str_at(rec, "/dst"), server.authority(), "dst in {rec}");
            assert_eq!(str_at(rec, "/response/body"), format!("hello from {target}"), "body in {rec}");
            if str_at(rec, "/role") == "client" {
                assert_eq!(u64_at(rec, "/pid"), *pid as u64, "pid in {rec}");
            }
        }
    }
}
