//! TCP segment reassembly (`--iface`): arbitrary frames, in arbitrary order, with arbitrary
//! sequence numbers, flags and truncation, through the flow table. It must never panic,
//! and every exchange it reports must serialise to one clean JSON line.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer::{
    output::Clock,
    packet::{
        flows::{FlowConfig, FlowTable},
        frame::{build_frame, parse_ethernet},
    },
    protocols::Limits,
};
use tracer_fuzz::check_packet_record;

fuzz_target!(|input: &[u8]| {
    let cfg = FlowConfig {
        // A total bound a few connections pass, so that shedding is fuzzed too.
        limits: Limits { max_body: 64, max_buffer: 4096, max_total_buffer: 12 << 10, ..Limits::default() },
        max_flows: 4,
        idle_timeout_ns: 5_000_000_000,
        announce_requests: true,
    };
    let mut table = FlowTable::new(cfg);
    let clock = Clock::new();
    let mut emit = |x: tracer::packet::flows::FlowExchange| check_packet_record(&x, &clock);
    // Script: [selector, seq(4), flags, cut, len, payload...] repeated.
    let mut rest = input;
    let mut ts = 1_000u64;
    let a = "10.0.0.1:40000".parse().unwrap();
    let b = "10.0.0.2:80".parse().unwrap();
    while rest.len() >= 8 {
        let (h, tail) = rest.split_at(8);
        let len = (h[7] as usize).min(tail.len());
        let (payload, tail) = tail.split_at(len);
        rest = tail;
        let seq = u32::from_le_bytes([h[1], h[2], h[3], h[4]]);
        let (src, dst) = if h[0] & 1 == 0 { (a, b) } else { (b, a) };
        let frame = build_frame(src, dst, seq, 0, h[5], payload, (h[0] & 2 != 0).then_some(7));
        // Cut the frame anywhere (a snap length, or a broken capture).
        let cut = frame.len().saturating_sub(h[6] as usize % 64);
        ts += (h[0] as u64 >> 2) * 1_000_000;
        if let Ok(seg) = parse_ethernet(&frame[..cut], frame.len()) {
            table.on_segment(&seg, ts, &mut emit);
        }
        if h[0] & 0x80 != 0 {
            table.tick(ts, &mut emit);
        }
        // The capture socket reports drops, whose flows it does not say.
        if h[0] & 0xc0 == 0x40 {
            table.kernel_dropped(ts);
        }
    }
    table.flush(ts + 60_000_000_000, &mut emit);
});
