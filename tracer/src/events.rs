//! Raw kernel records -> checked events. Sizes are checked before anything is read; a
//! record that does not fit is counted, never guessed at.
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use thiserror::Error;
use tracer_common::{EventHeader, EventKind, AF_INET6, DIR_EGRESS, HEADER_SIZE, ROLE_CLIENT, ROLE_SERVER};

use crate::protocols::{Direction, Role};

#[derive(Debug, Error, PartialEq, Eq)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than the {HEADER_SIZE}-byte header")]
    Short(usize),
    #[error("record claims {claimed} payload bytes but carries {carried}")]
    Truncated { claimed: usize, carried: usize },
    #[error("unknown event kind {0}")]
    Kind(u32),
    #[error("captured {cap} bytes exceeds covered {len}")]
    CapOverLen { cap: u32, len: u32 },
}

/// Identity of a connection as the kernel side saw it: the socket, and when it was first
/// seen (socket addresses are reused; the timestamp tells one use from the next).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnKey {
    pub sock: u64,
    pub conn_id: u64,
}

/// What every event says about its connection and process.
#[derive(Debug, Clone, Copy)]
pub struct ConnMeta {
    pub key: ConnKey,
    pub pid: u32,
    pub fd: u32,
    pub tid: u32,
    pub comm: [u8; 16],
    /// None when the kernel side could not tell (it then reports role 0).
    pub role: Option<Role>,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub preexisting: bool,
}

#[derive(Debug)]
pub enum Event<'a> {
    Data {
        meta: ConnMeta,
        ts_ns: u64,
        dir: Direction,
        pos: u64,
        len: u64,
        data: &'a [u8],
        sendfile: bool,
        /// `FLAG_UNORDERED`: where these bytes stand in the stream is not known.
        unordered: bool,
    },
    Close {
        meta: ConnMeta,
        ts_ns: u64,
        /// Where the egress and ingress streams ended, when the kernel side said.
        ends: Option<StreamEnds>,
    },
}

pub fn decode(raw: &[u8]) -> Result<Event<'_>, DecodeError> {
    if raw.len() < HEADER_SIZE {
        return Err(DecodeError::Short(raw.len()));
    }
    // SAFETY: length checked above; EventHeader is plain integers and byte arrays, and
    // read_unaligned copes with any alignment of the ring buffer's bytes.
    let h: EventHeader = unsafe { std::ptr::read_unaligned(raw.as_ptr() as *const EventHeader) };
    let meta = ConnMeta {
        key: ConnKey { sock: h.sock, conn_id: h.conn_id },
        pid: h.pid,
        fd: h.fd,
        tid: h.tid,
        comm: h.comm,
        role: match h.role {
            ROLE_CLIENT => Some(Role::Client),
            ROLE_SERVER => Some(Role::Server),
            _ => None,
        },
        local: sockaddr(h.family, &h.laddr, h.lport),
        remote: sockaddr(h.family, &h.raddr, h.rport),
        preexisting: h.flags & tracer_common::FLAG_PREEXISTING != 0,
    };
    match h.kind {
        k if k == EventKind::Data as u32 => {
            if h.cap > h.len {
                return Err(DecodeError::CapOverLen { cap: h.cap, len: h.len });
            }
            let carried = raw.len() - HEADER_SIZE;
            let cap = h.cap as usize;
            if cap > carried {
                return Err(DecodeError::Truncated { claimed: cap, carried });
            }
            Ok(Event::Data {
                meta,
                ts_ns: h.ts_ns,
                dir: if h.dir == DIR_EGRESS { Direction::Egress } else { Direction::Ingress },
                pos: h.pos,
                len: h.len as u64,
                data: &raw[HEADER_SIZE..HEADER_SIZE + cap],
                sendfile: h.flags & tracer_common::FLAG_SENDFILE != 0,
                unordered: h.flags & tracer_common::FLAG_UNORDERED != 0,
            })
        }
        k if k == EventKind::Close as u32 => Ok(Event::Close { meta, ts_ns: h.ts_ns, ends: close_ends(&h, raw) }),
        k => Err(DecodeError::Kind(k)),
    }
}

/// Stream positions at a connection's close: bytes counted per direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StreamEnds {
    pub egress: u64,
    pub ingress: u64,
}

fn close_ends(h: &EventHeader, raw: &[u8]) -> Option<StreamEnds> {
    let ends = raw.get(HEADER_SIZE..HEADER_SIZE + tracer_common::CLOSE_ENDS_SIZE)?;
    if (h.cap as usize) < tracer_common::CLOSE_ENDS_SIZE {
        return None;
    }
    let word = |i: usize| ends.get(i..i + 8).and_then(|b| b.try_into().ok()).map(u64::from_ne_bytes);
    let (e, i) = (8 * DIR_EGRESS as usize, 8 * tracer_common::DIR_INGRESS as usize);
    Some(StreamEnds { egress: word(e)?, ingress: word(i)? })
}

fn sockaddr(family: u16, addr: &[u8; 16], port: u16) -> SocketAddr {
    let ip = if family == AF_INET6 {
        let v6 = Ipv6Addr::from(*addr);
        // Dual-stack sockets talking IPv4 show v4-mapped addresses; show them as IPv4.
        match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        }
    } else {
        IpAddr::V4(Ipv4Addr::new(addr[0], addr[1], addr[2], addr[3]))
    };
    SocketAddr::new(ip, port)
}

/// Encodes a header and payload as the kernel would; for tests, benches and fuzzing.
pub fn encode(h: &EventHeader, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_SIZE + data.len());
    // SAFETY: EventHeader is plain data of HEADER_SIZE bytes.
    out.extend_from_slice(unsafe {
        std::slice::from_raw_parts(h as *const EventHeader as *const u8, HEADER_SIZE)
    });
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> EventHeader {
        EventHeader {
            kind: EventKind::Data as u32,
            flags: 0,
            ts_ns: 5,
            conn_id: 7,
            sock: 0xffff_8880_0000_1000,
            pos: 100,
            len: 10,
            cap: 4,
            pid: 1,
            tid: 2,
            fd: 3,
            family: AF_INET6,
            role: ROLE_CLIENT,
            dir: DIR_EGRESS,
            lport: 5000,
            rport: 80,
            _pad: 0,
            laddr: Ipv6Addr::LOCALHOST.octets(),
            raddr: Ipv4Addr::new(10, 0, 0, 1).to_ipv6_mapped().octets(),
            comm: *b"curl\0\0\0\0\0\0\0\0\0\0\0\0",
        }
    }

    #[test]
    fn decodes_data_with_uncaptured_tail() {
        let raw = encode(&header(), b"GET ");
        let Ok(Event::Data { meta, pos, len, data, dir, .. }) = decode(&raw) else {
            panic!("not data");
        };
        assert_eq!((pos, len, data, dir), (100, 10, &b"GET "[..], Direction::Egress));
        assert_eq!(meta.local.to_string(), "[::1]:5000");
        assert_eq!(meta.remote.to_string(), "10.0.0.1:80");
        assert_eq!(meta.role, Some(Role::Client));
    }

    #[test]
    fn rejects_short_and_lying_records() {
        let raw = encode(&header(), b"GET ");
        assert_eq!(decode(&raw[..50]).unwrap_err(), DecodeError::Short(50));
        assert_eq!(
            decode(&raw[..HEADER_SIZE + 2]).unwrap_err(),
            DecodeError::Truncated { claimed: 4, carried: 2 }
        );
        let mut h = header();
        h.cap = 11;
        assert!(matches!(decode(&encode(&h, &[0; 11])), Err(DecodeError::CapOverLen { .. })));
        h.kind = 99;
        assert_eq!(decode(&encode(&h, b"")).unwrap_err(), DecodeError::Kind(99));
    }
}
