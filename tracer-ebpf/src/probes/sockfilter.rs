//! Socket filter for `--iface`: keeps TCP segments that carry payload or SYN/FIN/RST on
//! the selected ports, truncated to the headers plus the snap length; drops the rest in
//! the kernel. Ethernet (up to two VLAN tags), IPv4, IPv6 (no extension headers but BIG
//! TCP's jumbo hop-by-hop header).
use aya_ebpf::{macros::socket_filter, programs::SkBuffContext};
use tracer_common::tcp_flags;

use crate::{
    config::{CFG_SNAPLEN, DROP_OUTGOING, FILTER_PORT_ON},
    maps::FILTER_PORTS,
};

const ETH_HLEN: usize = 14;
const ETH_P_IP: u16 = 0x0800;
const ETH_P_IPV6: u16 = 0x86dd;
const ETH_P_8021Q: u16 = 0x8100;
const ETH_P_8021AD: u16 = 0x88a8;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_HOPOPTS: u8 = 0;
/// IPv6 jumbo payload option (RFC 2675): type and data length.
const IPV6_TLV_JUMBO: [u8; 2] = [0xc2, 4];
const PACKET_OUTGOING: u32 = 4;

#[socket_filter]
pub fn l7_sockfilter(ctx: SkBuffContext) -> i64 {
    keep(&ctx).unwrap_or(0)
}

#[inline(always)]
fn be16(ctx: &SkBuffContext, off: usize) -> Option<u16> {
    ctx.load::<[u8; 2]>(off).ok().map(u16::from_be_bytes)
}

/// Bytes of the frame to keep; None or 0 drops it.
#[inline(always)]
fn keep(ctx: &SkBuffContext) -> Option<i64> {
    // SAFETY: the context's `__sk_buff`, readable by socket filters.
    if DROP_OUTGOING.load() != 0 && unsafe { (*ctx.skb.skb).pkt_type } == PACKET_OUTGOING {
        return None;
    }
    let mut off = ETH_HLEN;
    let mut proto = be16(ctx, 12)?;
    // Tags the NIC or the stack did not strip (stacked: 802.1ad then 802.1Q).
    for _ in 0..2 {
        if proto == ETH_P_8021Q || proto == ETH_P_8021AD {
            proto = be16(ctx, off + 2)?;
            off += 4;
        }
    }
    let len = ctx.len() as usize;
    // A BIG TCP super-packet (over 64 KiB) says 0 in its IP length field: it ends where
    // the packet does.
    let (l4, payload_end) = match proto {
        ETH_P_IP => {
            let vihl: u8 = ctx.load(off).ok()?;
            let ihl = ((vihl & 0x0f) as usize) * 4;
            let total = match be16(ctx, off + 2)? {
                0 => len.saturating_sub(off),
                n => n as usize,
            };
            let frag = be16(ctx, off + 6)? & 0x1fff;
            let p: u8 = ctx.load(off + 9).ok()?;
            if p != IPPROTO_TCP || frag != 0 || ihl < 20 {
                return None;
            }
            (off + ihl, off + total)
        }
        ETH_P_IPV6 => {
            let next: u8 = ctx.load(off + 6).ok()?;
            let plen = be16(ctx, off + 4)?;
            let to_end = len.saturating_sub(off + 40);
            if plen == 0 && next == IPPROTO_HOPOPTS {
                // IPv6 BIG TCP may keep its jumbo hop-by-hop header (8 bytes, one option)
                // where taps see it: TCP follows it, and its length must be the packet's.
                let hbh: [u8; 8] = ctx.load(off + 40).ok()?;
                let jumbo = u32::from_be_bytes([hbh[4], hbh[5], hbh[6], hbh[7]]) as usize;
                if hbh[0] != IPPROTO_TCP || hbh[1] != 0 || [hbh[2], hbh[3]] != IPV6_TLV_JUMBO || jumbo != to_end {
                    return None;
                }
                (off + 48, off + 40 + to_end)
            } else {
                if next != IPPROTO_TCP {
                    return None;
                }
                let plen = if plen == 0 { to_end } else { plen as usize };
                (off + 40, off + 40 + plen)
            }
        }
        _ => return None,
    };
    let sport = be16(ctx, l4)?;
    let dport = be16(ctx, l4 + 2)?;
    if FILTER_PORT_ON.load() != 0 {
        // SAFETY: presence tests only.
        let selected = unsafe { FILTER_PORTS.get(&sport).is_some() || FILTER_PORTS.get(&dport).is_some() };
        if !selected {
            return None;
        }
    }
    let doff: u8 = ctx.load(l4 + 12).ok()?;
    let flags: u8 = ctx.load(l4 + 13).ok()?;
    let hdr_end = l4 + ((doff >> 4) as usize) * 4;
    let has_payload = payload_end > hdr_end;
    if !has_payload && flags & (tcp_flags::SYN | tcp_flags::FIN | tcp_flags::RST) == 0 {
        return None;
    }
    let want = hdr_end + CFG_SNAPLEN.load() as usize;
    Some(if want < len { want } else { len } as i64)
}
