//! Ethernet frames -> TCP segments. Length-checked before every read; a frame that does not
//! parse is an error, never a guess.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("frame too short for its headers")]
    Short,
    #[error("not TCP over IPv4/IPv6")]
    NotTcp,
    #[error("bad header length")]
    BadHeader,
}

/// One TCP segment as captured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    pub src: SocketAddr,
    pub dst: SocketAddr,
    pub seq: u32,
    pub syn: bool,
    pub ack: bool,
    pub fin: bool,
    pub rst: bool,
    /// The captured payload (the snap length may have cut it).
    pub payload: &'a [u8],
    /// Payload bytes on the wire, from the IP length fields.
    pub wire_len: u32,
    /// 802.1Q VLAN id when the frame carried a tag.
    pub vlan: Option<u16>,
}

fn be16(b: &[u8], off: usize) -> Result<u16, FrameError> {
    b.get(off..off + 2).map(|s| u16::from_be_bytes([s[0], s[1]])).ok_or(FrameError::Short)
}

fn be32(b: &[u8], off: usize) -> Result<u32, FrameError> {
    b.get(off..off + 4).map(|s| u32::from_be_bytes([s[0], s[1], s[2], s[3]])).ok_or(FrameError::Short)
}

/// Parses an Ethernet frame (as an AF_PACKET raw socket delivers it), `frame_len` bytes
/// long before the snap length cut it to `f`.
pub fn parse_ethernet(f: &[u8], frame_len: usize) -> Result<TcpSegment<'_>, FrameError> {
    let mut off = 14;
    let mut proto = be16(f, 12)?;
    let mut vlan = None;
    for _ in 0..2 {
        if proto == 0x8100 || proto == 0x88a8 {
            vlan.get_or_insert(be16(f, off)? & 0x0fff);
            proto = be16(f, off + 2)?;
            off += 4;
        }
    }
    let mut seg = parse_ip(proto, &f[off.min(f.len())..], frame_len.saturating_sub(off))?;
    seg.vlan = vlan;
    Ok(seg)
}

/// Parses from the network header, `proto` being the ethertype; the packet was `packet_len`
/// bytes long before the snap length cut it to `p`.
///
/// A BIG TCP super-packet (over 64 KiB, GSO/GRO) carries 0 in its IP length field (IPv4
/// total length, IPv6 payload length): its length is the packet's. IPv6 may keep its
/// jumbo hop-by-hop header where taps see it: TCP follows it, and the jumbo length must
/// agree with the packet's.
pub fn parse_ip(proto: u16, p: &[u8], packet_len: usize) -> Result<TcpSegment<'_>, FrameError> {
    let (src_ip, dst_ip, l4, ip_end) = match proto {
        0x0800 => {
            let vihl = *p.first().ok_or(FrameError::Short)?;
            let ihl = ((vihl & 0x0f) as usize) * 4;
            let total = match be16(p, 2)? {
                0 => packet_len,
                n => n as usize,
            };
            if *p.get(9).ok_or(FrameError::Short)? != 6 || be16(p, 6)? & 0x1fff != 0 {
                return Err(FrameError::NotTcp);
            }
            if ihl < 20 || total < ihl {
                return Err(FrameError::BadHeader);
            }
            let src = Ipv4Addr::from(be32(p, 12)?);
            let dst = Ipv4Addr::from(be32(p, 16)?);
            (IpAddr::V4(src), IpAddr::V4(dst), ihl, total)
        }
        0x86dd => {
            let next = *p.get(6).ok_or(FrameError::Short)?;
            let (l4, plen) = match (be16(p, 4)?, next) {
                (0, 0) => (48, jumbo_len(p, packet_len)?),
                (0, 6) => (40, packet_len.saturating_sub(40)),
                (n, 6) => (40, n as usize),
                _ => return Err(FrameError::NotTcp),
            };
            let a: [u8; 16] = p.get(8..24).ok_or(FrameError::Short)?.try_into().map_err(|_| FrameError::Short)?;
            let b: [u8; 16] = p.get(24..40).ok_or(FrameError::Short)?.try_into().map_err(|_| FrameError::Short)?;
            (IpAddr::V6(Ipv6Addr::from(a)), IpAddr::V6(Ipv6Addr::from(b)), l4, 40 + plen)
        }
        _ => return Err(FrameError::NotTcp),
    };
    let sport = be16(p, l4)?;
    let dport = be16(p, l4 + 2)?;
    let seq = be32(p, l4 + 4)?;
    let doff = ((*p.get(l4 + 12).ok_or(FrameError::Short)? >> 4) as usize) * 4;
    let flags = *p.get(l4 + 13).ok_or(FrameError::Short)?;
    let hdr_end = l4 + doff;
    if doff < 20 || hdr_end > ip_end {
        return Err(FrameError::BadHeader);
    }
    if p.len() < hdr_end {
        return Err(FrameError::Short);
    }
    let wire_len = (ip_end - hdr_end) as u32;
    // Ethernet padding can follow a short IP packet: cut at the IP length, not the frame's.
    let cap_end = p.len().min(ip_end);
    let payload = if hdr_end <= cap_end { &p[hdr_end..cap_end] } else { &[][..] };
    Ok(TcpSegment {
        src: SocketAddr::new(src_ip, sport),
        dst: SocketAddr::new(dst_ip, dport),
        seq,
        fin: flags & tcp_flags::FIN != 0,
        syn: flags & tcp_flags::SYN != 0,
        rst: flags & tcp_flags::RST != 0,
        ack: flags & tcp_flags::ACK != 0,
        payload,
        wire_len,
        vlan: None,
    })
}

/// The payload length of an IPv6 packet (`packet_len` bytes from its IPv6 header) whose
/// only extension header is BIG TCP's jumbo hop-by-hop header, TCP after it: 8 bytes, one
/// jumbo payload option (RFC 2675) whose length counts the hop-by-hop header and must be
/// the packet's.
fn jumbo_len(p: &[u8], packet_len: usize) -> Result<usize, FrameError> {
    let hbh = p.get(40..48).ok_or(FrameError::Short)?;
    if hbh[0] != 6 || hbh[1] != 0 || hbh[2..4] != [0xc2, 4] {
        return Err(FrameError::NotTcp);
    }
    let plen = packet_len.saturating_sub(40);
    if be32(hbh, 4)? as usize != plen {
        return Err(FrameError::BadHeader);
    }
    Ok(plen)
}

/// TCP header flag bits, shared with the kernel's socket filter.
pub use tracer_common::tcp_flags;

/// Builds an Ethernet/IP/TCP frame: for tests, fuzzing and the replay tests.
#[allow(clippy::too_many_arguments)]
pub fn build_frame(src: SocketAddr, dst: SocketAddr, seq: u32, ack: u32, flags: u8, payload: &[u8], vlan: Option<u16>) -> Vec<u8> {
    let mut f = vec![0x02, 0, 0, 0, 0, 2, 0x02, 0, 0, 0, 0, 1];
    if let Some(id) = vlan {
        f.extend_from_slice(&[0x81, 0x00]);
        f.extend_from_slice(&(id & 0x0fff).to_be_bytes());
    }
    let mut tcp = Vec::with_capacity(20 + payload.len());
    tcp.extend_from_slice(&src.port().to_be_bytes());
    tcp.extend_from_slice(&dst.port().to_be_bytes());
    tcp.extend_from_slice(&seq.to_be_bytes());
    tcp.extend_from_slice(&ack.to_be_bytes());
    tcp.push(5 << 4);
    tcp.push(flags);
    tcp.extend_from_slice(&65535u16.to_be_bytes());
    tcp.extend_from_slice(&[0, 0, 0, 0]); // checksum (filled below), urgent pointer
    tcp.extend_from_slice(payload);
    match (src.ip(), dst.ip()) {
        (IpAddr::V4(s), IpAddr::V4(d)) => {
            let mut sum = pseudo_sum(&s.octets(), &d.octets(), tcp.len());
            sum = ones_sum(sum, &tcp);
            let c = !fold(sum);
            tcp[16..18].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&[0x08, 0x00]);
            let total = (20 + tcp.len()) as u16;
            let mut ip = vec![0x45, 0];
            ip.extend_from_slice(&total.to_be_bytes());
            ip.extend_from_slice(&[0, 0, 0x40, 0, 64, 6, 0, 0]);
            ip.extend_from_slice(&s.octets());
            ip.extend_from_slice(&d.octets());
            let c = !fold(ones_sum(0, &ip));
            ip[10..12].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&ip);
        }
        (IpAddr::V6(s), IpAddr::V6(d)) => {
            let mut sum = pseudo_sum(&s.octets(), &d.octets(), tcp.len());
            sum = ones_sum(sum, &tcp);
            let c = !fold(sum);
            tcp[16..18].copy_from_slice(&c.to_be_bytes());
            f.extend_from_slice(&[0x86, 0xdd]);
            f.extend_from_slice(&[0x60, 0, 0, 0]);
            f.extend_from_slice(&(tcp.len() as u16).to_be_bytes());
            f.extend_from_slice(&[6, 64]);
            f.extend_from_slice(&s.octets());
            f.extend_from_slice(&d.octets());
        }
        _ => {}
    }
    f.extend_from_slice(&tcp);
    f
}

fn pseudo_sum(src: &[u8], dst: &[u8], tcp_len: usize) -> u32 {
    let mut sum = ones_sum(0, src);
    sum = ones_sum(sum, dst);
    sum += 6;
    sum += tcp_len as u32 & 0xffff;
    sum += (tcp_len as u32) >> 16;
    sum
}

fn ones_sum(mut sum: u32, b: &[u8]) -> u32 {
    for c in b.chunks(2) {
        let w = if c.len() == 2 { u16::from_be_bytes([c[0], c[1]]) } else { u16::from_be_bytes([c[0], 0]) };
        sum += w as u32;
    }
    sum
}

fn fold(mut sum: u32) -> u16 {
    while sum >> 16 != 0 {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_v4_v6_and_vlan() {
        let a: SocketAddr = "10.0.0.1:40000".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:80".parse().unwrap();
        let f = build_frame(a, b, 7, 0, 0x18, b"GET / HTTP/1.1\r\n\r\n", Some(42));
        let s = parse_ethernet(&f, f.len()).unwrap();
        assert_eq!((s.src, s.dst, s.seq, s.payload, s.wire_len, s.vlan), (a, b, 7, &b"GET / HTTP/1.1\r\n\r\n"[..], 18, Some(42)));
        let a: SocketAddr = "[fd00::1]:40000".parse().unwrap();
        let b: SocketAddr = "[fd00::2]:80".parse().unwrap();
        let f = build_frame(a, b, u32::MAX, 0, 0x02, b"", None);
        let s = parse_ethernet(&f, f.len()).unwrap();
        assert!(s.syn && !s.fin && s.payload.is_empty());
        assert_eq!((s.src, s.dst, s.seq), (a, b, u32::MAX));
    }

    #[test]
    fn truncated_frames_report_wire_length_and_never_panic() {
        let a: SocketAddr = "10.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "10.0.0.2:2".parse().unwrap();
        let f = build_frame(a, b, 1, 0, 0x18, &[b'x'; 1000], None);
        let s = parse_ethernet(&f[..14 + 20 + 20 + 100], f.len()).unwrap();
        assert_eq!((s.payload.len(), s.wire_len), (100, 1000));
        for cut in 0..54 {
            assert!(parse_ethernet(&f[..cut], f.len()).is_err(), "cut at {cut}");
        }
    }

    /// A BIG TCP super-packet as a tap sees it, cut to its headers plus `snap` payload
    /// bytes: the IP length field says 0 and the frame's own length is the packet's.
    fn big_tcp(src: &str, dst: &str, payload: usize, snap: usize) -> (Vec<u8>, usize) {
        let (a, b): (SocketAddr, SocketAddr) = (src.parse().unwrap(), dst.parse().unwrap());
        let mut f = build_frame(a, b, 1, 0, 0x18, &vec![b'x'; payload], None);
        let len_field = if a.is_ipv4() { 14 + 2 } else { 14 + 4 };
        f[len_field..len_field + 2].copy_from_slice(&[0, 0]);
        let frame_len = f.len();
        let hdrs = if a.is_ipv4() { 14 + 20 + 20 } else { 14 + 40 + 20 };
        f.truncate(hdrs + snap);
        (f, frame_len)
    }

    #[test]
    fn big_tcp_length_comes_from_the_frame() {
        for (a, b) in [("[fd00::1]:40000", "[fd00::2]:80"), ("10.0.0.1:40000", "10.0.0.2:80")] {
            let (f, frame_len) = big_tcp(a, b, 150_000, 256);
            let s = parse_ethernet(&f, frame_len).unwrap();
            assert_eq!((s.payload.len(), s.wire_len), (256, 150_000), "{a}");
        }
    }

    /// An IPv6 BIG TCP super-packet that kept its jumbo hop-by-hop header, as the tap on
    /// this kernel's veth sees it, cut to its headers plus `snap` payload bytes.
    fn big_tcp_jumbo(payload: usize, snap: usize) -> (Vec<u8>, usize) {
        let (a, b): (SocketAddr, SocketAddr) = ("[fd00::1]:40000".parse().unwrap(), "[fd00::2]:80".parse().unwrap());
        let mut f = build_frame(a, b, 1, 0, 0x18, &vec![b'x'; payload], None);
        let jumbo = (8 + 20 + payload) as u32;
        let mut hbh = vec![6, 0, 0xc2, 4];
        hbh.extend_from_slice(&jumbo.to_be_bytes());
        f.splice(14 + 40..14 + 40, hbh);
        f[14 + 4..14 + 7].copy_from_slice(&[0, 0, 0]);
        let frame_len = f.len();
        f.truncate(14 + 40 + 8 + 20 + snap);
        (f, frame_len)
    }

    #[test]
    fn big_tcp_ipv6_jumbo_header_is_skipped_and_its_length_checked() {
        let (f, frame_len) = big_tcp_jumbo(150_000, 256);
        let s = parse_ethernet(&f, frame_len).unwrap();
        assert_eq!((s.dst.port(), s.seq, s.payload.len(), s.wire_len), (80, 1, 256, 150_000));
        assert_eq!(s.payload, &[b'x'; 256][..]);
        // The jumbo length and the packet's disagree: refused, not guessed.
        for len in [frame_len - 1, frame_len + 1] {
            assert_eq!(parse_ethernet(&f, len), Err(FrameError::BadHeader), "{len}");
        }
        // Not TCP after it, a longer header, another option: not parsed.
        for (at, v) in [(54, 17), (55, 1), (56, 0xc3), (57, 8)] {
            let mut g = f.clone();
            g[at] = v;
            assert_eq!(parse_ethernet(&g, frame_len), Err(FrameError::NotTcp), "byte {at} = {v}");
        }
        for cut in 0..14 + 40 + 8 + 20 {
            assert!(parse_ethernet(&f[..cut], frame_len).is_err(), "cut at {cut}");
        }
    }
}
