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

use common::*;
use netns::*;

const BIG: usize = 8 << 20;
const MAX_SIZE: &str = "185000";

fn handler(_req: &Request) -> Reply {
    Reply::ok(vec![b'x'; BIG])
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
    let url = format!("http://{}/big", addr_str(server_ip, server.port()));
    let got = curl_in(&pair.client_ns, &["-g", "-o", "/dev/null", "-w", "%{size_download}", &url]);
    assert_eq!(got.stdout_text(), BIG.to_string());
    let records = trace.stop();
    in_ns(&pair.server_ns, "l7t-server-end", move || drop(server));
    assert_eq!(records.len(), 1, "records:\n{}", dump(&records));
    let rec = &records[0];
    assert_packet_exchange(rec, since);
    assert_eq!(u64_at(rec, "/response/body_size"), BIG as u64, "{rec}");
}

