//! TCP reassembly with an exact oracle (`--iface`): one known HTTP/1.1 conversation on one
//! connection, its segments scripted by the input (reordered, retransmitted, overlapping,
//! duplicated, across the 2^32 sequence wrap), always carrying the stream's true bytes. No
//! byte is ever lost and no reorder timeout passes before the end, so every exchange must
//! come out complete, in order, with its method, target, status and bodies.
//!
//! Input (see `seeds.py`, which writes seeds in it); missing bytes read as 0:
//! - `conf: u8`: bits 0-1 the number of exchanges minus one; bit 2+i makes exchange i a
//!   POST with a body; bit 6 (7) puts the client's (server's) initial sequence number
//!   within 16 KiB below 2^32, so the stream wraps.
//! - `client_isn: u32 LE`, `server_isn: u32 LE`.
//! - four times `request_body_len: u16 LE`, `response_body_len: u16 LE` (each mod 2 KiB).
//! - `net: u8`: bit 0 IPv6, bit 1 an 802.1Q tag.
//! - ops, up to `MAX_SCRIPTED` segments: `ctl: u8`, then its arguments:
//!   - bit 0: 0 a client segment, 1 a server segment;
//!   - bits 1-2, where it starts: 0 where the sender is (the highest byte sent), 1 that
//!     far back as the next byte says (a retransmission, an overlap), 2 that far ahead as
//!     the next byte says, plus one (a hole, filled later), 3 at the next `u16 LE` modulo
//!     the stream's length;
//!   - then `len: u8`: the segment is `len + 1` bytes, times 6 with bit 3;
//!   - bit 4 holds the segment back; bit 5 then delivers the held ones, last first (the
//!     rest are delivered so at the end of the script).
//!
//! A server segment is cut to the responses whose requests were already delivered whole
//! and in order: an answer never precedes its question on the wire. After the script,
//! every byte still missing is delivered in order (the client's first), then both FINs,
//! then a tick past the reorder window and a flush.
#![no_main]

use std::net::SocketAddr;

use libfuzzer_sys::fuzz_target;
use tracer::{
    output::Clock,
    packet::{
        flows::{FlowConfig, FlowExchange, FlowTable},
        frame::{build_frame, parse_ethernet, tcp_flags},
    },
    protocols::{Exchange, Limits, Message, StartLine},
};
use tracer_fuzz::{check_packet_record, take_u16, take_u8};

const MAX_EXCHANGES: usize = 4;
/// Bodies are shorter than this.
const BODY_MOD: u16 = 2048;
const MSS: usize = 1448;
/// Scripted segments per input: stored out-of-order segments stay far below the stream
/// buffer's bound (`MAX_STORED_SEGMENTS`), so reaching it cannot explain a lost byte.
const MAX_SCRIPTED: usize = 1024;
/// Time between two segments: the whole script lasts a few milliseconds, far below the
/// reorder window, so no hole is declared lost while it runs.
const STEP_NS: u64 = 3_000;

fuzz_target!(|input: &[u8]| {
    let mut input = input;
    let conv = Conversation::decode(&mut input);
    let net = take_u8(&mut input);
    let mut wire = Wire::new(&conv, net);
    wire.open();
    wire.run_script(&conv, input);
    wire.fill_and_close(&conv);
    check(&conv, &wire.out);
});

/// The known conversation: N requests and their responses, one TCP connection.
struct Conversation {
    post: Vec<bool>,
    req_bodies: Vec<Vec<u8>>,
    resp_bodies: Vec<Vec<u8>>,
    client_isn: u32,
    server_isn: u32,
    /// The client's stream (every request) and the server's (every response).
    c: Vec<u8>,
    s: Vec<u8>,
    /// Where request / response i ends in its stream.
    req_end: Vec<usize>,
    resp_end: Vec<usize>,
}

impl Conversation {
    fn decode(input: &mut &[u8]) -> Self {
        let conf = take_u8(input);
        let n = usize::from(conf & 3) + 1;
        let isn = |input: &mut &[u8], near_wrap: bool| {
            let v = u32::from_le_bytes([take_u8(input), take_u8(input), take_u8(input), take_u8(input)]);
            if near_wrap {
                u32::MAX - (v & 0x3fff)
            } else {
                v
            }
        };
        let client_isn = isn(input, conf & 0x40 != 0);
        let server_isn = isn(input, conf & 0x80 != 0);
        let mut sizes = [(0usize, 0usize); MAX_EXCHANGES];
        for s in &mut sizes {
            let r = take_u16(input) % BODY_MOD;
            let a = take_u16(input) % BODY_MOD;
            *s = (usize::from(r), usize::from(a));
        }
        let mut conv = Conversation {
            post: Vec::new(),
            req_bodies: Vec::new(),
            resp_bodies: Vec::new(),
            client_isn,
            server_isn,
            c: Vec::new(),
            s: Vec::new(),
            req_end: Vec::new(),
            resp_end: Vec::new(),
        };
        for (i, &(req_len, resp_len)) in sizes.iter().enumerate().take(n) {
            let post = conf & (4 << i) != 0;
            let req_body = if post { body(2 * i as u64, req_len) } else { Vec::new() };
            let resp_body = body(2 * i as u64 + 1, resp_len);
            if post {
                conv.c.extend_from_slice(
                    format!("POST /x{i} HTTP/1.1\r\nHost: h\r\nContent-Length: {req_len}\r\n\r\n").as_bytes(),
                );
                conv.c.extend_from_slice(&req_body);
            } else {
                conv.c.extend_from_slice(format!("GET /x{i} HTTP/1.1\r\nHost: h\r\n\r\n").as_bytes());
            }
            conv.s.extend_from_slice(format!("HTTP/1.1 200 OK\r\nContent-Length: {resp_len}\r\n\r\n").as_bytes());
            conv.s.extend_from_slice(&resp_body);
            conv.req_end.push(conv.c.len());
            conv.resp_end.push(conv.s.len());
            conv.post.push(post);
            conv.req_bodies.push(req_body);
            conv.resp_bodies.push(resp_body);
        }
        conv
    }

    fn n(&self) -> usize {
        self.post.len()
    }

    /// How far the server may have sent, once the client's stream arrived whole up to
    /// `client_upto`: the responses to the requests within it.
    fn server_may_send(&self, client_upto: usize) -> usize {
        let answered = self.req_end.iter().take_while(|&&e| e <= client_upto).count();
        answered.checked_sub(1).map_or(0, |i| self.resp_end[i])
    }
}

/// Deterministic body bytes, every value from 0 to 255 (control bytes, invalid UTF-8 and
/// CR/LF included: the framing is the length, and the JSON writer must escape them).
fn body(salt: u64, len: usize) -> Vec<u8> {
    (0..len as u64).map(|j| ((j.wrapping_add(salt << 16)).wrapping_mul(2_654_435_761) >> 11) as u8).collect()
}

/// One direction as the sender and the capture saw it.
struct Stream {
    isn: u32,
    /// Highest byte sent so far (the sender's next sequence number, as a position).
    sent_upto: usize,
    /// Which bytes reached the flow table.
    delivered: Vec<bool>,
    /// Every byte before this was delivered.
    contiguous: usize,
}

impl Stream {
    fn new(isn: u32, len: usize) -> Self {
        Stream { isn, sent_upto: 0, delivered: vec![false; len], contiguous: 0 }
    }

    fn seq(&self, pos: usize) -> u32 {
        // The SYN takes one sequence number; the position space is far below 2^32.
        self.isn.wrapping_add(1).wrapping_add(pos as u32)
    }

    fn mark(&mut self, start: usize, end: usize) {
        self.delivered[start..end].fill(true);
        while self.delivered.get(self.contiguous) == Some(&true) {
            self.contiguous += 1;
        }
    }

    /// The ranges never delivered, in order.
    fn missing(&self) -> Vec<(usize, usize)> {
        let mut out: Vec<(usize, usize)> = Vec::new();
        for (i, _) in self.delivered.iter().enumerate().filter(|(_, &d)| !d) {
            match out.last_mut() {
                Some((_, end)) if *end == i => *end += 1,
                _ => out.push((i, i + 1)),
            }
        }
        out
    }
}

/// A held (reordered) segment: direction (0 client, 1 server) and range.
type Held = (usize, usize, usize);

struct Wire {
    table: FlowTable,
    out: Vec<FlowExchange>,
    ts: u64,
    /// [client, server]
    addr: [SocketAddr; 2],
    vlan: Option<u16>,
    streams: [Stream; 2],
}

impl Wire {
    fn new(conv: &Conversation, net: u8) -> Self {
        let cfg = FlowConfig {
            // Room for every out-of-order byte a script can hold (1,024 segments of at
            // most 1,536 bytes each) and for whole bodies.
            limits: Limits { max_body: 4096, max_buffer: 64 << 20, ..Limits::default() },
            max_flows: 4,
            idle_timeout_ns: 60_000_000_000,
            announce_requests: false,
        };
        let addr = if net & 1 != 0 {
            ["[fd00::2]:40000".parse().unwrap(), "[fd00::1]:80".parse().unwrap()]
        } else {
            ["10.0.0.2:40000".parse().unwrap(), "10.0.0.1:80".parse().unwrap()]
        };
        Wire {
            table: FlowTable::new(cfg),
            out: Vec::new(),
            ts: 1_000_000,
            addr,
            vlan: (net & 2 != 0).then_some(7),
            streams: [Stream::new(conv.client_isn, conv.c.len()), Stream::new(conv.server_isn, conv.s.len())],
        }
    }

    fn send(&mut self, d: usize, seq: u32, flags: u8, payload: &[u8]) {
        let frame = build_frame(self.addr[d], self.addr[1 - d], seq, 0, flags, payload, self.vlan);
        let seg = parse_ethernet(&frame, frame.len()).expect("a built frame parses");
        self.ts += STEP_NS;
        let out = &mut self.out;
        self.table.on_segment(&seg, self.ts, &mut |x| out.push(x));
    }

    fn open(&mut self) {
        self.send(0, self.streams[0].isn, tcp_flags::SYN, b"");
        self.send(1, self.streams[1].isn, tcp_flags::SYN | tcp_flags::ACK, b"");
    }

    /// Stream `d`'s true bytes `start..end`, as one segment.
    fn deliver(&mut self, conv: &Conversation, d: usize, start: usize, end: usize) {
        let bytes = if d == 0 { &conv.c } else { &conv.s };
        let seq = self.streams[d].seq(start);
        self.send(d, seq, tcp_flags::PSH_ACK, &bytes[start..end]);
        self.streams[d].mark(start, end);
    }

    fn release(&mut self, conv: &Conversation, held: &mut Vec<Held>) {
        while let Some((d, start, end)) = held.pop() {
            self.deliver(conv, d, start, end);
        }
    }

    fn run_script(&mut self, conv: &Conversation, mut input: &[u8]) {
        let mut held = Vec::new();
        let mut scripted = 0;
        while scripted < MAX_SCRIPTED {
            let Some((&ctl, rest)) = input.split_first() else { break };
            input = rest;
            let d = usize::from(ctl & 1);
            let len = if d == 0 { conv.c.len() } else { conv.s.len() };
            let at = self.streams[d].sent_upto;
            let start = match (ctl >> 1) & 3 {
                0 => at,
                1 => at.saturating_sub(usize::from(take_u8(&mut input))),
                2 => at + usize::from(take_u8(&mut input)) + 1,
                _ => usize::from(take_u16(&mut input)) % len.max(1),
            };
            let unit = if ctl & 8 != 0 { 6 } else { 1 };
            let mut end = (start + (usize::from(take_u8(&mut input)) + 1) * unit).min(len);
            if d == 1 {
                // Causality, by what reached the capture so far: held client segments
                // have not, and are delivered later than this one anyway.
                end = end.min(conv.server_may_send(self.streams[0].contiguous));
            }
            if start < end {
                scripted += 1;
                self.streams[d].sent_upto = at.max(end);
                if ctl & 0x10 != 0 {
                    held.push((d, start, end));
                } else {
                    self.deliver(conv, d, start, end);
                }
            }
            if ctl & 0x20 != 0 {
                self.release(conv, &mut held);
            }
        }
        self.release(conv, &mut held);
    }

    /// Every byte still missing in order (the client's first, so every answer follows its
    /// question), both FINs, then the reorder window passes and the table is flushed.
    fn fill_and_close(&mut self, conv: &Conversation) {
        for d in 0..2 {
            for (start, end) in self.streams[d].missing() {
                for s in (start..end).step_by(MSS) {
                    self.deliver(conv, d, s, (s + MSS).min(end));
                }
            }
            assert_eq!(self.streams[d].contiguous, self.streams[d].delivered.len());
        }
        let fin_c = self.streams[0].seq(conv.c.len());
        let fin_s = self.streams[1].seq(conv.s.len());
        self.send(0, fin_c, tcp_flags::FIN_ACK, b"");
        self.send(1, fin_s, tcp_flags::FIN_ACK, b"");
        let out = &mut self.out;
        let past_window = self.ts + Limits::default().reorder_timeout_ns + 1_000_000;
        self.table.tick(past_window, &mut |x| out.push(x));
        self.table.flush(self.ts + 60_000_000_000, &mut |x| out.push(x));
        assert_eq!(self.table.active(), 0, "the flow outlived its close");
    }
}

/// Exactly the conversation, in order, every exchange complete and exact; every record one
/// clean JSON line.
fn check(conv: &Conversation, out: &[FlowExchange]) {
    let clock = Clock::new();
    for x in out {
        assert!(!x.in_flight, "an in-flight announcement without announce_requests");
        check_packet_record(x, &clock);
    }
    let n = conv.n();
    let summary = || out.iter().map(|x| summarise(&x.exchange)).collect::<Vec<_>>().join("\n  ");
    assert_eq!(out.len(), n, "{n} exchanges sent, {} reported:\n  {}", out.len(), summary());
    for (i, x) in out.iter().enumerate() {
        let e = &x.exchange;
        let ctx = || format!("exchange {i} of {n}:\n  {}", summary());
        assert!(e.complete(), "not complete: {}", ctx());
        assert_eq!((e.note, e.lost_bytes()), (None, 0), "{}", ctx());
        assert!(e.interim.is_empty(), "interim responses: {}", ctx());
        let method = if conv.post[i] { "POST" } else { "GET" };
        let want = StartLine::Request { method: method.into(), target: format!("/x{i}").into_bytes(), version: 1 };
        assert_eq!(e.request.start, want, "request line: {}", ctx());
        check_body("request", &e.request, &conv.req_bodies[i], &ctx);
        let resp = e.response.as_ref().expect("complete, so answered");
        let want = StartLine::Response { version: 1, status: 200, reason: b"OK"[..].into() };
        assert_eq!(resp.start, want, "status line: {}", ctx());
        check_body("response", resp, &conv.resp_bodies[i], &ctx);
        assert_eq!((x.client, x.server), (out[0].client, out[0].server), "roles: {}", ctx());
    }
}

fn check_body(what: &str, m: &Message, want: &[u8], ctx: &impl Fn() -> String) {
    assert_eq!(m.body_size, want.len() as u64, "{what} body size: {}", ctx());
    assert!(!m.body_truncated, "{what} body truncated: {}", ctx());
    assert!(m.body == want, "{what} body bytes differ (got {} bytes): {}", m.body.len(), ctx());
}

fn summarise(e: &Exchange) -> String {
    let line = |m: &Message| match &m.start {
        StartLine::Request { method, target, .. } => format!("{method} {}", String::from_utf8_lossy(target)),
        StartLine::Response { status, .. } => status.to_string(),
    };
    let part = |m: &Message| {
        format!("{} body {}/{} complete {} lost {}", line(m), m.body.len(), m.body_size, m.complete, m.lost_bytes)
    };
    format!("[{}] -> [{}] note {:?}", part(&e.request), e.response.as_ref().map_or("none".into(), part), e.note)
}
