//! Stream reassembly by byte position: arbitrary chunks of one known stream, in any order,
//! with duplicates, overlaps, gaps and uncaptured tails. A consumer written like the
//! parser's checks that every byte it gets is the stream's byte at that position.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tracer::protocols::Process;
use tracer::reassembly::{Segment, StreamBuf, MAX_STORED_SEGMENTS};
use tracer_fuzz::{script, Op};

/// The stream's byte at `pos`: what every segment must carry there.
fn byte_at(pos: u64) -> u8 {
    (pos.wrapping_mul(2_654_435_761) >> 7) as u8
}

fuzz_target!(|input: &[u8]| {
    let mut buf = StreamBuf::new();
    let mut consumed_upto = 0u64;
    for op in script(input) {
        let Op::Data(s) = op else {
            if let Op::Tick(_) = op {
                // A reorder timeout: give up on the missing range.
                if let Some(len) = buf.skip_gap() {
                    assert!(len > 0);
                }
            }
            continue;
        };
        // The script's payload bytes are arbitrary; replace them by the stream's bytes at
        // their positions, keeping the captured length.
        let data: Vec<u8> = (0..s.data.len() as u64).map(|i| byte_at(s.pos + i)).collect();
        let seg = Segment::new(s.pos, s.len, &data, s.ts_ns, Process::default());
        let Some(seg) = buf.trim(seg) else { continue };
        assert!(seg.pos >= buf.next_pos() || seg.end() > buf.next_pos());
        if buf.is_next(&seg) {
            consume(&mut buf, &mut consumed_upto, seg);
        } else if buf.stored_segments() < MAX_STORED_SEGMENTS {
            buf.store(seg);
        }
        while let Some(owned) = buf.pop_contiguous() {
            assert_eq!(owned.pos, buf.next_pos(), "popped segment does not continue the stream");
            consume(&mut buf, &mut consumed_upto, owned.as_segment());
        }
        let held: usize = buf.stored_bytes();
        assert!(held <= MAX_STORED_SEGMENTS * 65_536);
    }
    buf.clear();
    assert_eq!(buf.stored_bytes(), 0);
});

fn consume(buf: &mut StreamBuf, upto: &mut u64, seg: Segment<'_>) {
    assert!(seg.pos <= buf.next_pos(), "a hole was consumed silently");
    for (i, &b) in seg.data.iter().enumerate() {
        assert_eq!(b, byte_at(seg.pos + i as u64), "wrong byte at {}", seg.pos + i as u64);
    }
    assert!(seg.data.len() as u64 <= seg.len);
    buf.advance_to(seg.end());
    assert!(buf.next_pos() >= *upto, "stream position went backwards");
    *upto = buf.next_pos();
}
