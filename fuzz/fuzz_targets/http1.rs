//! HTTP/1 stream parser and pairing: both directions, arbitrary segments, gaps, overlaps,
//! reorders, ticks and closes. Checks the memory bound and what every exchange claims.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer::protocols::{http1::Http1Conn, Direction, Exchange, Limits, Process, Role};
use tracer_fuzz::{script, Op};

const LIMITS: Limits = Limits {
    max_body: 64,
    max_buffer: 4096,
    response_timeout_ns: 1_000_000_000,
    reorder_timeout_ns: 100_000_000,
    // A table's bound: not one connection's.
    max_total_buffer: 1 << 20,
};

fuzz_target!(|input: &[u8]| {
    let Some((&first, rest)) = input.split_first() else { return };
    let role = if first & 1 == 0 { Role::Client } else { Role::Server };
    let req_dir = role.request_direction();
    let resp_dir = if req_dir == Direction::Egress { Direction::Ingress } else { Direction::Egress };
    let mut conn = Http1Conn::new(role, LIMITS);
    let mut out = Vec::new();
    for op in script(rest) {
        match op {
            Op::Data(s) => {
                let dir = if s.response { resp_dir } else { req_dir };
                conn.on_data(dir, s.pos, s.len, &s.data, s.ts_ns, Process::default());
            }
            Op::Tick(ts) => conn.on_tick(ts),
            Op::Close(ts) => conn.on_close(ts),
        }
        // Held plus stored bytes stay under the bound, per direction.
        assert!(conn.buffered_bytes() <= 2 * LIMITS.max_buffer, "buffered {}", conn.buffered_bytes());
        conn.drain(&mut out);
        out.iter().for_each(check);
        out.clear();
    }
    // The end: closed, abandoned, or abandoned after losses reported in either direction.
    match (first >> 1) & 7 {
        0 | 1 | 2 | 3 => conn.on_close(u64::MAX / 2),
        4 => conn.on_abandon(u64::MAX / 2),
        k => conn.on_abandon_after_loss(u64::MAX / 2, [k & 1 != 0, k & 2 != 0]),
    }
    conn.drain(&mut out);
    out.iter().for_each(check);
});

fn check(ex: &Exchange) {
    for m in std::iter::once(&ex.request).chain(ex.response.as_ref()) {
        assert!(m.body.len() <= LIMITS.max_body, "body over max_body");
        assert!(m.body.len() as u64 <= m.body_size, "body longer than body_size");
        assert!(m.first_ts_ns <= m.last_ts_ns || !m.complete, "complete message ends before it starts");
        assert!(m.lost_bytes == 0 || !m.complete, "a complete message with lost bytes");
        // Trailers come only after a chunked body.
        let chunked = m.headers.iter().any(|(n, v)| {
            n.trim_ascii().eq_ignore_ascii_case(b"transfer-encoding") && v.to_ascii_lowercase().windows(7).any(|w| w == b"chunked")
        });
        assert!(m.trailers.is_empty() || chunked, "trailers on a message that is not chunked");
    }
}
