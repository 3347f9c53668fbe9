//! Kernel records: `events::decode` and `Pipeline::on_raw` on arbitrary bytes, then every
//! record through the JSON sink. The input is a list of records, each `len: u16 LE` then
//! `len` bytes; a record of length 0 is a tick.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer::{
    events,
    output::{json, Clock},
    pipeline::{Config, Filter, Pipeline},
    protocols::Limits,
};
use tracer_fuzz::check_json_line;

fuzz_target!(|input: &[u8]| {
    let cfg = Config {
        // A total bound a few connections pass, so that shedding is fuzzed too.
        limits: Limits { max_body: 64, max_buffer: 4096, max_total_buffer: 12 << 10, ..Limits::default() },
        announce_requests: true,
        max_conns: 8,
        idle_timeout_ns: 5_000_000_000,
    };
    let mut pipeline = Pipeline::new(cfg, Filter::default());
    let clock = Clock::new();
    let mut emit = |r: tracer::pipeline::Record| check_json_line(&json::to_line(&r, &clock));
    let mut rest = input;
    let mut now = 0u64;
    while rest.len() >= 2 {
        let len = usize::from(u16::from_le_bytes([rest[0], rest[1]])).min(rest.len() - 2);
        let (raw, tail) = rest[2..].split_at(len);
        rest = tail;
        if raw.is_empty() {
            now += 1_000_000_000;
            pipeline.tick(now, &mut emit);
            continue;
        }
        // decode never panics and never hands out more than it was given.
        if let Ok(events::Event::Data { data, len, .. }) = events::decode(raw) {
            assert!(data.len() as u64 <= len);
            assert!(data.len() <= raw.len());
        }
        pipeline.on_raw(raw, &mut emit);
        assert!(pipeline.active_conns() <= cfg.max_conns);
    }
    pipeline.flush(u64::MAX / 2, &mut emit);
    assert_eq!(pipeline.active_conns(), 0);
});
