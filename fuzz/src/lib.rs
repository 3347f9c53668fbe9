//! Shared input decoding for the fuzz targets: a byte string becomes a script of
//! segments, gaps, reorders, ticks and closes, so that libFuzzer mutates *what the kernel
//! could deliver*, not only payload bytes.
//!
//! Script format (see `seeds.py`, which writes the seed corpora in it): a sequence of ops,
//! each `ctl: u8` then, for data ops, `len: u16 LE` and `len` payload bytes (cut at the
//! end of the input).
//!
//! `ctl & 0x07`:
//! - 0 data on the request direction, 1 data on the response direction
//! - 2 lose bytes (a gap): the next byte says how many, bit 0x80 picks the direction
//! - 3 data whose tail was counted but not captured: `len: u16` payload, then one byte of
//!   extra uncaptured length; bit 0x80 picks the direction
//! - 4 resend: the next byte is how far back the segment starts (overlap, duplicate);
//!   then `len: u16` payload; bit 0x80 picks the direction
//! - 5 tick: the next byte times 50 ms pass
//! - 6 deliver the held segments (in reverse order)
//! - 7 close
//!
//! Bit 0x40 on a data op holds the segment back (delivered at op 6 or the end), which is
//! how per-CPU buffers reorder events.

/// One direction-tagged segment, owning its bytes.
#[derive(Debug, Clone)]
pub struct Seg {
    pub response: bool,
    pub pos: u64,
    pub len: u64,
    pub data: Vec<u8>,
    pub ts_ns: u64,
}

#[derive(Debug, Clone)]
pub enum Op {
    Data(Seg),
    Tick(u64),
    Close(u64),
}

/// Decodes a script into ops, with reordering already applied.
pub fn script(mut input: &[u8]) -> Vec<Op> {
    let mut ops = Vec::new();
    let mut held: Vec<Seg> = Vec::new();
    let mut pos = [0u64; 2];
    let mut ts = 1_000_000u64;
    while let Some((&ctl, rest)) = input.split_first() {
        input = rest;
        ts += 1_000;
        let dir = usize::from(ctl & 0x80 != 0);
        let seg = match ctl & 0x07 {
            0 | 1 => {
                let d = usize::from(ctl & 0x07 == 1);
                let data = take_payload(&mut input);
                let seg = Seg { response: d == 1, pos: pos[d], len: data.len() as u64, data, ts_ns: ts };
                pos[d] += seg.len;
                Some(seg)
            }
            2 => {
                pos[dir] += u64::from(take_u8(&mut input)) + 1;
                None
            }
            3 => {
                let data = take_payload(&mut input);
                let extra = u64::from(take_u8(&mut input));
                let len = data.len() as u64 + extra;
                let seg = Seg { response: dir == 1, pos: pos[dir], len, data, ts_ns: ts };
                pos[dir] += len;
                Some(seg)
            }
            4 => {
                let back = u64::from(take_u8(&mut input));
                let data = take_payload(&mut input);
                let start = pos[dir].saturating_sub(back);
                let seg = Seg { response: dir == 1, pos: start, len: data.len() as u64, data, ts_ns: ts };
                pos[dir] = pos[dir].max(seg.pos + seg.len);
                Some(seg)
            }
            5 => {
                ts += u64::from(take_u8(&mut input)) * 50_000_000;
                ops.push(Op::Tick(ts));
                None
            }
            6 => {
                ops.extend(held.drain(..).rev().map(Op::Data));
                None
            }
            _ => {
                ops.push(Op::Close(ts));
                None
            }
        };
        if let Some(seg) = seg {
            if ctl & 0x40 != 0 {
                held.push(seg);
            } else {
                ops.push(Op::Data(seg));
            }
        }
    }
    ops.extend(held.drain(..).rev().map(Op::Data));
    ops
}

/// The next byte, 0 past the end of the input.
pub fn take_u8(input: &mut &[u8]) -> u8 {
    match input.split_first() {
        Some((&b, rest)) => {
            *input = rest;
            b
        }
        None => 0,
    }
}

/// The next two bytes, little endian, 0 past the end of the input.
pub fn take_u16(input: &mut &[u8]) -> u16 {
    u16::from_le_bytes([take_u8(input), take_u8(input)])
}

fn take_payload(input: &mut &[u8]) -> Vec<u8> {
    let len = usize::from(take_u16(input));
    let n = len.min(input.len());
    let (data, rest) = input.split_at(n);
    *input = rest;
    data.to_vec()
}

/// A JSON line must parse and carry no raw C0 control byte, ESC included, and no raw C1
/// control (U+0080..U+009F; U+009B is CSI): the writer escapes both. DEL is left as is,
/// which JSON allows and terminals ignore.
pub fn check_json_line(line: &str) {
    assert!(
        !line.bytes().any(|b| b < 0x20),
        "raw control byte in JSON line: {line:?}"
    );
    assert!(
        !line.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
        "raw C1 control in JSON line: {line:?}"
    );
    let v: serde_json::Value = serde_json::from_str(line).expect("JSON line parses");
    assert!(v.is_object());
}

/// A flow table's exchange as the `--iface` path reports it (no process known): one clean
/// JSON line.
pub fn check_packet_record(x: &tracer::packet::flows::FlowExchange, clock: &tracer::output::Clock) {
    let r = tracer::pipeline::Record {
        source: tracer::pipeline::Source::Packet,
        role: None,
        process: None::<tracer::pipeline::Process>,
        client: x.client,
        server: x.server,
        exchange: x.exchange.clone(),
        conn: 0,
        in_flight: x.in_flight,
    };
    check_json_line(&tracer::output::json::to_line(&r, clock));
    let x = &x.exchange;
    for m in std::iter::once(&x.request).chain(x.response.as_ref()) {
        assert!(m.lost_bytes == 0 || !m.complete, "a complete message with lost bytes");
        assert!(m.body.len() as u64 <= m.body_size, "body longer than body_size");
    }
}
