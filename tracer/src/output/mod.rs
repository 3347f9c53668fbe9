//! Sinks for records.
mod base64;
pub mod json;
pub mod tui;

use crate::pipeline::Record;

/// Counters every sink may show; refreshed on each tick.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub exchanges: u64,
    pub incomplete: u64,
    /// Events the kernel could not deliver (buffer full).
    pub lost_events: u64,
    /// Bytes lost inside reported exchanges.
    pub lost_bytes: u64,
    /// Bytes dropped by userspace limits.
    pub dropped_bytes: u64,
    /// Bytes counted but not copied (capture cap, sendfile).
    pub uncaptured_bytes: u64,
    /// Received bytes that left their socket through no traced call (splice): gaps.
    pub unseen_bytes: u64,
    pub active_conns: u64,
    pub evicted_conns: u64,
    pub decode_errors: u64,
    pub events: u64,
    /// Responses no request could be paired with (the connection was picked up mid-way,
    /// or the request was lost or unparseable): dropped, and counted here.
    pub orphan_responses: u64,
}

impl Counters {
    pub fn summary(&self) -> String {
        format!(
            "l7trace: summary: exchanges={} incomplete={} lost_events={} lost_bytes={} dropped_bytes={} uncaptured_bytes={} unseen_bytes={} evicted_conns={} decode_errors={} events={} orphan_responses={}",
            self.exchanges, self.incomplete, self.lost_events, self.lost_bytes, self.dropped_bytes,
            self.uncaptured_bytes, self.unseen_bytes, self.evicted_conns, self.decode_errors, self.events, self.orphan_responses
        )
    }
}

/// Whether the sink wants more.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    /// Stop tracing: the user quit, or the output went away.
    Quit,
}

/// Where records go: the JSON stream or the live view.
pub trait Sink {
    fn record(&mut self, r: Record) -> Flow;
    /// Called at least every `TICK_MS`: input, redraws, live counters.
    fn tick(&mut self, _now_ns: u64, _counters: &Counters) -> Flow {
        Flow::Continue
    }
    /// Whether the summary line should go to stderr at exit (not when stdout was closed
    /// under us, and not over a terminal the sink just restored).
    fn wants_summary(&self) -> bool {
        true
    }
    /// Why the output failed, when it did other than by its reader going away (a full
    /// disk): said after the summary, and l7trace exits with an error.
    fn failure(&self) -> Option<String> {
        None
    }
    /// A line for the user about the capture itself (its interface down, a `--pid`
    /// process gone): on stderr at once. A sink that holds the terminal shows it itself
    /// and returns false; the caller prints it when the terminal is given back.
    fn notice(&mut self, line: &str) -> bool {
        eprintln!("{line}");
        true
    }
    /// The event loop read everything the kernel had: push out what is buffered. Records
    /// of one read go out in one write, still before the loop waits again.
    fn flush(&mut self) -> Flow {
        Flow::Continue
    }
}

use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Converts kernel timestamps (CLOCK_MONOTONIC ns) to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// realtime - monotonic, in ns, sampled at start.
    offset_ns: i128,
}

impl Clock {
    pub fn new() -> Self {
        let mono = monotonic_ns() as i128;
        let real = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default().as_nanos() as i128;
        Clock { offset_ns: real - mono }
    }

    /// CLOCK_REALTIME ns -> CLOCK_MONOTONIC ns (packet timestamps -> kernel event time).
    pub fn monotonic(&self, real_ns: u64) -> u64 {
        (real_ns as i128 - self.offset_ns).max(0) as u64
    }

    pub fn wall(&self, mono_ns: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.wall_ns(mono_ns))
    }

    /// `wall`, as ns since the epoch.
    pub fn wall_ns(&self, mono_ns: u64) -> u64 {
        (mono_ns as i128 + self.offset_ns).max(0) as u64
    }
}

impl Default for Clock {
    fn default() -> Self {
        Self::new()
    }
}

/// CLOCK_MONOTONIC now, the clock of bpf_ktime_get_ns.
pub fn monotonic_ns() -> u64 {
    let mut ts = libc::timespec { tv_sec: 0, tv_nsec: 0 };
    // SAFETY: valid pointer to a timespec.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// RFC 3339 UTC with microseconds, without a date crate.
pub fn rfc3339(t: SystemTime) -> String {
    let d = t.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = to_the_second(d.as_secs()).to_vec();
    out.extend_from_slice(&fraction(d.subsec_micros()));
    String::from_utf8(out).unwrap_or_default()
}

/// `.uuuuuuZ`: the end of `rfc3339`.
pub fn fraction(us: u32) -> [u8; 8] {
    let [u0, u1] = two(u64::from(us) / 10_000);
    let [u2, u3] = two(u64::from(us) / 100);
    let [u4, u5] = two(u64::from(us));
    [b'.', u0, u1, u2, u3, u4, u5, b'Z']
}

/// Two digits, each by a constant divisor (a multiplication).
fn two(v: u64) -> [u8; 2] {
    [b'0' + (v / 10 % 10) as u8, b'0' + (v % 10) as u8]
}

/// Seconds since the epoch as `YYYY-MM-DDTHH:MM:SS`, the start of `rfc3339` (without
/// formatting machinery: one per JSON record, or per second of them).
pub fn to_the_second(secs: u64) -> [u8; 19] {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (h, m, s) = (rem / 3600, rem % 3600 / 60, rem % 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + (month <= 2) as i64;
    let year = year.clamp(0, 9999) as u64;
    let [y0, y1] = two(year / 100);
    let [y2, y3] = two(year);
    let [mo0, mo1] = two(month as u64);
    let [d0, d1] = two(day as u64);
    let [h0, h1] = two(h);
    let [m0, m1] = two(m);
    let [s0, s1] = two(s);
    [y0, y1, y2, y3, b'-', mo0, mo1, b'-', d0, d1, b'T', h0, h1, b':', m0, m1, b':', s0, s1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_rfc3339() {
        let t = UNIX_EPOCH + Duration::from_micros(1_795_000_000_123_456);
        assert_eq!(rfc3339(t), "2026-11-18T11:06:40.123456Z");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000000Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400); // 2000-02-29
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000000Z");
        let last = UNIX_EPOCH + Duration::from_micros(253_402_300_799_999_999); // the last of 9999
        assert_eq!(rfc3339(last), "9999-12-31T23:59:59.999999Z");
        let t = UNIX_EPOCH + Duration::from_micros(1_000_000_000_000_001);
        assert_eq!(rfc3339(t), "2001-09-09T01:46:40.000001Z");
    }
}
