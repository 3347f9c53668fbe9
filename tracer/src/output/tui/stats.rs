//! Live numbers for the header, in fixed memory: latency percentiles and the rate over the
//! last `WINDOW_SECS` seconds from per-second log-linear histograms, and counts by status
//! class since start (or the last clear).

pub const WINDOW_SECS: u64 = 10;
/// Sub-buckets per power of two: values are kept within 1/8 (12.5 %).
const SUB: u64 = 8;
const SUB_BITS: u32 = 3;
const BUCKETS: usize = (SUB + (64 - SUB_BITS as u64) * SUB) as usize;

/// Latency histogram over microseconds.
#[derive(Clone)]
pub struct Histogram {
    counts: Box<[u32; BUCKETS]>,
    total: u64,
}

impl Default for Histogram {
    fn default() -> Self {
        Histogram { counts: Box::new([0; BUCKETS]), total: 0 }
    }
}

fn bucket(v: u64) -> usize {
    if v < SUB {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros(); // >= SUB_BITS
    let sub = (v >> (exp - SUB_BITS)) & (SUB - 1);
    (SUB + (exp - SUB_BITS) as u64 * SUB + sub) as usize
}

/// The upper bound of a bucket (what a percentile reports: "at most").
fn bucket_high(i: usize) -> u64 {
    let i = i as u64;
    if i < SUB {
        return i;
    }
    let exp = (i - SUB) / SUB + SUB_BITS as u64;
    let sub = (i - SUB) % SUB;
    let low = (SUB + sub) << (exp - SUB_BITS as u64);
    // Parenthesised: the top bucket's bound is u64::MAX, and low + width overflows.
    low + ((1u64 << (exp - SUB_BITS as u64)) - 1)
}

impl Histogram {
    pub fn add(&mut self, v: u64) {
        self.counts[bucket(v)] += 1;
        self.total += 1;
    }

    fn merge(&mut self, o: &Histogram) {
        for (a, b) in self.counts.iter_mut().zip(o.counts.iter()) {
            *a += b;
        }
        self.total += o.total;
    }

    /// The value at or below which `q` (0..=1) of the samples lie; None when empty.
    pub fn quantile(&self, q: f64) -> Option<u64> {
        if self.total == 0 {
            return None;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0u64;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c as u64;
            if seen >= rank {
                return Some(bucket_high(i));
            }
        }
        None
    }
}

#[derive(Clone, Default)]
struct Slot {
    sec: u64,
    count: u64,
    latency: Histogram,
}

/// What the header shows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Snapshot {
    pub rate: f64,
    pub p50_us: Option<u64>,
    pub p90_us: Option<u64>,
    pub p99_us: Option<u64>,
}

pub struct LiveStats {
    slots: Vec<Slot>,
    start_ns: Option<u64>,
    /// 1xx..5xx at 0..5, no response at 5.
    pub by_class: [u64; 6],
}

impl Default for LiveStats {
    fn default() -> Self {
        LiveStats { slots: vec![Slot::default(); WINDOW_SECS as usize], start_ns: None, by_class: [0; 6] }
    }
}

impl LiveStats {
    /// One finished exchange at kernel time `ts_ns`.
    pub fn add(&mut self, ts_ns: u64, status: Option<u16>, latency_us: Option<u64>) {
        self.start_ns.get_or_insert(ts_ns);
        let class = status.map_or(5, |s| (s / 100).clamp(1, 5) as usize - 1);
        self.by_class[class] += 1;
        let sec = ts_ns / 1_000_000_000;
        let slot = &mut self.slots[(sec % WINDOW_SECS) as usize];
        if slot.sec != sec {
            if slot.sec > sec {
                return; // older than the window
            }
            *slot = Slot { sec, ..Slot::default() };
        }
        slot.count += 1;
        if let Some(l) = latency_us {
            slot.latency.add(l);
        }
    }

    pub fn snapshot(&self, now_ns: u64) -> Snapshot {
        let now_sec = now_ns / 1_000_000_000;
        let mut hist = Histogram::default();
        let mut count = 0;
        for s in &self.slots {
            if s.sec + WINDOW_SECS > now_sec && s.sec <= now_sec {
                hist.merge(&s.latency);
                count += s.count;
            }
        }
        let window_start = (now_sec + 1).saturating_sub(WINDOW_SECS) * 1_000_000_000;
        let from = window_start.max(self.start_ns.unwrap_or(now_ns));
        let secs = (now_ns.saturating_sub(from) as f64 / 1e9).max(1.0);
        Snapshot {
            rate: count as f64 / secs,
            p50_us: hist.quantile(0.50),
            p90_us: hist.quantile(0.90),
            p99_us: hist.quantile(0.99),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_cover_and_bound() {
        for v in [0u64, 1, 7, 8, 9, 15, 16, 100, 1_000, 123_456, u64::MAX / 3, u64::MAX] {
            let b = bucket(v);
            assert!(b < BUCKETS, "{v}");
            assert!(bucket_high(b) >= v, "{v}: high {}", bucket_high(b));
            assert!(bucket_high(b) - v <= v / 8 + 1, "{v}: high {}", bucket_high(b));
        }
    }

    #[test]
    fn percentiles_and_rate() {
        let mut s = LiveStats::default();
        let t0 = 100_000_000_000u64;
        for i in 0..100u64 {
            // 1..=100 ms, spread over 2 s
            s.add(t0 + i * 20_000_000, Some(if i < 90 { 200 } else { 503 }), Some((i + 1) * 1000));
        }
        let snap = s.snapshot(t0 + 2_000_000_000);
        assert!((snap.rate - 50.0).abs() < 1.0, "{snap:?}");
        let p50 = snap.p50_us.unwrap();
        assert!((50_000..=57_000).contains(&p50), "{snap:?}");
        let p99 = snap.p99_us.unwrap();
        assert!((99_000..=112_000).contains(&p99), "{snap:?}");
        assert_eq!(s.by_class, [0, 90, 0, 0, 10, 0]);
        // Ten seconds later the window is empty.
        let later = s.snapshot(t0 + 20_000_000_000);
        assert_eq!(later.p50_us, None);
        assert_eq!(later.rate, 0.0);
    }
}
