//! Reading and checking l7trace's JSON records.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

/// All records, pretty enough for a failure message, and what the last l7trace stopped on
/// this thread printed on stderr (its counters say where missing bytes went).
pub fn dump(records: &[Value]) -> String {
    let mut text = records
        .iter()
        .map(|r| r.to_string())
        .collect::<Vec<_>>()
        .join("\n");
    let stderr = super::trace::last_stderr();
    if !stderr.is_empty() {
        text.push_str("\nl7trace stderr:\n");
        text.push_str(&stderr.join("\n"));
    }
    text
}

/// The records of one role ("client" or "server"), in output order.
pub fn by_role<'a>(records: &'a [Value], role: &str) -> Vec<&'a Value> {
    records.iter().filter(|r| r["role"] == role).collect()
}

/// The one record of `role`; panics with every record otherwise.
pub fn only_one<'a>(records: &'a [Value], role: &str) -> &'a Value {
    let found = by_role(records, role);
    assert_eq!(
        found.len(),
        1,
        "expected exactly one {role} record; records:\n{}",
        dump(records)
    );
    found[0]
}

pub fn str_at<'a>(rec: &'a Value, pointer: &str) -> &'a str {
    rec.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_else(|| panic!("{pointer} is not a string in {rec}"))
}

pub fn u64_at(rec: &Value, pointer: &str) -> u64 {
    rec.pointer(pointer)
        .and_then(Value::as_u64)
        .unwrap_or_else(|| panic!("{pointer} is not an unsigned integer in {rec}"))
}

pub fn bool_at(rec: &Value, pointer: &str) -> bool {
    rec.pointer(pointer)
        .and_then(Value::as_bool)
        .unwrap_or_else(|| panic!("{pointer} is not a boolean in {rec}"))
}

/// The first value of header `name` (any case) in the `[name, value]` list at `pointer`.
pub fn header_at(rec: &Value, pointer: &str, name: &str) -> Option<String> {
    let list = rec
        .pointer(pointer)
        .and_then(Value::as_array)
        .unwrap_or_else(|| panic!("{pointer} is not an array in {rec}"));
    list.iter().find_map(|pair| {
        let pair = pair.as_array()?;
        let n = pair.first()?.as_str()?;
        let v = pair.get(1)?.as_str()?;
        n.eq_ignore_ascii_case(name).then(|| v.to_owned())
    })
}

/// What every complete, well-captured exchange has: source, ts near `since`, no loss,
/// latency_us >= ttfb_us >= 0, no note.
pub fn assert_complete_exchange(rec: &Value, since: SystemTime) {
    assert_complete_exchange_from(rec, since, "syscall");
}

/// `assert_complete_exchange` for a record of `source` ("syscall" or "packet").
pub fn assert_complete_exchange_from(rec: &Value, since: SystemTime, source: &str) {
    assert_eq!(rec["source"], source, "source in {rec}");
    assert_eq!(rec["complete"], true, "complete in {rec}");
    assert_eq!(rec["lost_bytes"], 0, "lost_bytes in {rec}");
    assert!(
        rec.get("note").is_none_or(Value::is_null),
        "unexpected note in {rec}"
    );
    assert!(rec["response"].is_object(), "response missing in {rec}");
    let latency = u64_at(rec, "/latency_us");
    let ttfb = u64_at(rec, "/ttfb_us");
    assert!(
        latency >= ttfb,
        "latency_us {latency} < ttfb_us {ttfb} in {rec}"
    );
    assert_ts_between(
        rec,
        since - Duration::from_secs(2),
        SystemTime::now() + Duration::from_secs(2),
    );
}

pub fn assert_ts_between(rec: &Value, from: SystemTime, to: SystemTime) {
    let ts = str_at(rec, "/ts");
    let t =
        parse_rfc3339_utc(ts).unwrap_or_else(|| panic!("ts {ts:?} is not RFC 3339 UTC in {rec}"));
    assert!(
        t >= from && t <= to,
        "ts {ts} is not between {:?} and {:?} (unix s) in {rec}",
        from.duration_since(UNIX_EPOCH).unwrap(),
        to.duration_since(UNIX_EPOCH).unwrap()
    );
}

/// `YYYY-MM-DDTHH:MM:SS[.frac]Z` (or `+00:00`) to a time.
pub fn parse_rfc3339_utc(ts: &str) -> Option<SystemTime> {
    let ts = ts.strip_suffix('Z').or_else(|| ts.strip_suffix("+00:00"))?;
    let (date, time) = ts.split_once(['T', 't'])?;
    let mut d = date.split('-');
    let (y, mo, day): (i64, i64, i64) = (
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
        d.next()?.parse().ok()?,
    );
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.split(':');
    let (h, mi, s): (u64, u64, u64) = (
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
        t.next()?.parse().ok()?,
    );
    if !(1..=12).contains(&mo) || !(1..=31).contains(&day) || h > 23 || mi > 59 || s > 60 {
        return None;
    }
    if !frac.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let nanos: u32 = format!("{frac:0<9}").get(..9)?.parse().ok()?;
    let days = days_from_civil(y, mo, day);
    let secs = u64::try_from(days).ok()? * 86_400 + h * 3600 + mi * 60 + s;
    Some(UNIX_EPOCH + Duration::new(secs, nanos))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}
