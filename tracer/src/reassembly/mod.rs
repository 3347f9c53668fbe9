//! Per-direction byte streams ordered by byte position.
//!
//! The kernel numbers every byte of a connection direction, so a hole between two
//! segments is a known loss, not a guess. `StreamBuf` keeps the consumer's position and
//! the segments that arrived ahead of it (per-CPU buffers reorder events), and lets the
//! consumer declare a gap when the missing bytes are not coming.
//!
//! In-order segments are never copied here: the caller checks `trim` and consumes them
//! in place; only segments that must wait are stored.

use std::collections::BTreeMap;

use crate::protocols::Process;

/// Stored segments beyond this count are treated as over the memory bound even if they
/// carry few bytes (each costs a map entry).
pub const MAX_STORED_SEGMENTS: usize = 4096;

/// A run of stream bytes: `data` is the captured prefix of the `len` bytes at `pos`; the
/// rest is known to exist but was not copied (capture cap, sendfile).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment<'a> {
    pub pos: u64,
    pub len: u64,
    pub data: &'a [u8],
    pub ts_ns: u64,
    pub by: Process,
}

impl<'a> Segment<'a> {
    /// Builds a segment; captured bytes beyond `len` are cut, since the length is the
    /// kernel's word on how many stream bytes the syscall moved. A segment never reaches
    /// past the last stream position (`pos + len` cannot overflow downstream).
    pub fn new(pos: u64, len: u64, data: &'a [u8], ts_ns: u64, by: Process) -> Self {
        let len = len.min(u64::MAX - pos);
        let keep = usize::try_from(len).unwrap_or(usize::MAX).min(data.len());
        Segment { pos, len, data: &data[..keep], ts_ns, by }
    }

    pub fn end(&self) -> u64 {
        self.pos.saturating_add(self.len)
    }

    /// Bytes counted but not captured.
    pub fn uncaptured(&self) -> u64 {
        self.len - self.data.len() as u64
    }

    /// The same segment without its first `n` stream bytes.
    pub fn skip_front(self, n: u64) -> Segment<'a> {
        let n = n.min(self.len);
        let cut = usize::try_from(n).unwrap_or(usize::MAX).min(self.data.len());
        Segment { pos: self.pos + n, len: self.len - n, data: &self.data[cut..], ..self }
    }
}

/// A segment that had to wait, with its captured bytes copied.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OwnedSegment {
    pub pos: u64,
    pub len: u64,
    pub data: Vec<u8>,
    pub ts_ns: u64,
    pub by: Process,
}

impl OwnedSegment {
    pub fn as_segment(&self) -> Segment<'_> {
        Segment { pos: self.pos, len: self.len, data: &self.data, ts_ns: self.ts_ns, by: self.by }
    }
}

/// One direction of a connection, by byte position.
#[derive(Debug, Default)]
pub struct StreamBuf {
    /// Position of the next byte the consumer expects.
    next: u64,
    /// Segments at or beyond `next` not consumed yet, by start position.
    stored: BTreeMap<u64, OwnedSegment>,
    stored_bytes: usize,
}

impl StreamBuf {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn next_pos(&self) -> u64 {
        self.next
    }

    pub fn has_stored(&self) -> bool {
        !self.stored.is_empty()
    }

    /// Captured bytes held in stored segments.
    pub fn stored_bytes(&self) -> usize {
        self.stored_bytes
    }

    pub fn stored_segments(&self) -> usize {
        self.stored.len()
    }

    /// What is left of `seg` once bytes already consumed are removed (duplicates and
    /// overlaps); `None` when nothing is left.
    pub fn trim<'a>(&self, seg: Segment<'a>) -> Option<Segment<'a>> {
        if seg.end() <= self.next {
            return None;
        }
        Some(seg.skip_front(self.next.saturating_sub(seg.pos)))
    }

    /// Whether `seg` can be consumed now, in place, without waiting behind stored bytes.
    pub fn is_next(&self, seg: &Segment<'_>) -> bool {
        seg.pos == self.next && self.stored.is_empty()
    }

    /// Keeps a segment until the consumer reaches it. Of two segments starting at the same
    /// position the longer one is kept.
    pub fn store(&mut self, seg: Segment<'_>) {
        if let Some(old) = self.stored.get(&seg.pos) {
            if old.len >= seg.len {
                return;
            }
            self.stored_bytes -= old.data.len();
        }
        self.stored_bytes += seg.data.len();
        let owned = OwnedSegment {
            pos: seg.pos,
            len: seg.len,
            data: seg.data.to_vec(),
            ts_ns: seg.ts_ns,
            by: seg.by,
        };
        self.stored.insert(seg.pos, owned);
    }

    /// The consumer has taken every byte before `pos`.
    pub fn advance_to(&mut self, pos: u64) {
        self.next = self.next.max(pos);
    }

    /// The stored segment that continues the stream at `next`, trimmed of bytes already
    /// consumed.
    pub fn pop_contiguous(&mut self) -> Option<OwnedSegment> {
        loop {
            let (&pos, _) = self.stored.first_key_value()?;
            if pos > self.next {
                return None;
            }
            let mut seg = self.stored.remove(&pos)?;
            self.stored_bytes -= seg.data.len();
            let end = seg.pos.saturating_add(seg.len);
            if end <= self.next {
                continue;
            }
            let cut = self.next - seg.pos;
            let cut_data = usize::try_from(cut).unwrap_or(usize::MAX).min(seg.data.len());
            seg.data.drain(..cut_data);
            seg.pos += cut;
            seg.len -= cut;
            return Some(seg);
        }
    }

    /// The missing range before the first stored segment, as (length, timestamp of the
    /// segment waiting behind it).
    pub fn gap_ahead(&self) -> Option<(u64, u64)> {
        let (&pos, seg) = self.stored.first_key_value()?;
        (pos > self.next).then(|| (pos - self.next, seg.ts_ns))
    }

    /// Gives up on the missing range before the first stored segment; returns its length.
    pub fn skip_gap(&mut self) -> Option<u64> {
        let (len, _) = self.gap_ahead()?;
        self.next += len;
        Some(len)
    }

    /// Forgets everything stored (the connection is no longer parsed).
    pub fn clear(&mut self) {
        self.stored.clear();
        self.stored_bytes = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(pos: u64, data: &[u8]) -> Segment<'_> {
        Segment::new(pos, data.len() as u64, data, pos, Process::default())
    }

    #[test]
    fn in_order_is_consumed_in_place() {
        let mut s = StreamBuf::new();
        let a = seg(0, b"abc");
        assert!(s.is_next(&a));
        s.advance_to(a.end());
        assert_eq!(s.next_pos(), 3);
        assert_eq!(s.trim(seg(0, b"abc")), None);
    }

    #[test]
    fn overlap_is_trimmed() {
        let s = {
            let mut s = StreamBuf::new();
            s.advance_to(2);
            s
        };
        let t = s.trim(seg(0, b"abcd")).expect("tail left");
        assert_eq!((t.pos, t.len, t.data), (2, 2, &b"cd"[..]));
        let u = s.trim(Segment::new(0, 10, b"ab", 0, Process::default())).expect("uncaptured tail left");
        assert_eq!((u.pos, u.len, u.data), (2, 8, &b""[..]));
    }

    #[test]
    fn out_of_order_waits_then_pops() {
        let mut s = StreamBuf::new();
        s.store(seg(3, b"def"));
        assert_eq!(s.gap_ahead(), Some((3, 3)));
        assert!(s.pop_contiguous().is_none());
        s.advance_to(3);
        let p = s.pop_contiguous().expect("contiguous");
        assert_eq!(p.data, b"def");
        assert_eq!(s.stored_bytes(), 0);
    }

    #[test]
    fn gap_is_skipped() {
        let mut s = StreamBuf::new();
        s.store(seg(10, b"x"));
        assert_eq!(s.skip_gap(), Some(10));
        assert_eq!(s.pop_contiguous().map(|p| p.pos), Some(10));
    }

    #[test]
    fn segment_at_the_end_of_the_position_space_is_cut() {
        // Found by the events fuzz target: a record with pos near u64::MAX overflowed
        // `pos + data.len()` in the parser.
        let s = Segment::new(u64::MAX - 2, 10, b"abcdefghij", 0, Process::default());
        assert_eq!((s.len, s.data, s.end()), (2, &b"ab"[..], u64::MAX));
        assert_eq!(s.skip_front(5).len, 0);
    }

    #[test]
    fn stale_stored_segments_are_dropped() {
        let mut s = StreamBuf::new();
        s.store(seg(0, b"ab"));
        s.store(seg(1, b"bcd"));
        s.advance_to(3);
        let p = s.pop_contiguous().expect("tail of second");
        assert_eq!((p.pos, p.data.as_slice()), (3, &b"d"[..]));
        assert!(!s.has_stored());
    }
}
