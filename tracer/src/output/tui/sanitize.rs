//! Everything the view shows from traffic goes through here: bytes in, text out that
//! cannot move the cursor, change colours, reorder the line or ring the bell.

use std::fmt::Write as _;

/// Bytes from the wire as text safe for a terminal: invalid UTF-8 as `\xNN`, C0 and C1
/// controls, ESC and DEL as `\xNN` (`\t`, `\r`, `\n` by name), and the Unicode
/// bidirectional controls and line separators as `\u{NNNN}`.
pub fn sanitize(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    sanitize_into(&mut out, bytes);
    out
}

/// `sanitize`, appended to `out`.
pub fn sanitize_into(out: &mut String, bytes: &[u8]) {
    // Printable ASCII, what traffic nearly always is, is its own escape: one copy.
    if bytes.iter().all(|b| (b' '..=b'~').contains(b)) {
        if let Ok(s) = std::str::from_utf8(bytes) {
            out.push_str(s);
            return;
        }
    }
    for chunk in bytes.utf8_chunks() {
        for c in chunk.valid().chars() {
            push_char(out, c);
        }
        for b in chunk.invalid() {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

/// `sanitize` for text that is already a `str` (methods, our own strings built from
/// traffic).
pub fn sanitize_str(s: &str) -> String {
    sanitize(s.as_bytes())
}

fn push_char(out: &mut String, c: char) {
    match c {
        '\t' => out.push_str("\\t"),
        '\r' => out.push_str("\\r"),
        '\n' => out.push_str("\\n"),
        '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => {
            let _ = write!(out, "\\x{:02x}", c as u32);
        }
        c if is_format_control(c) => {
            let _ = write!(out, "\\u{{{:04x}}}", c as u32);
        }
        c => out.push(c),
    }
}

/// Characters that reorder or break what follows them on screen (Trojan Source), or are
/// invisible: bidi marks, embeddings, overrides and isolates, line/paragraph separators,
/// zero-width characters and the BOM.
fn is_format_control(c: char) -> bool {
    matches!(
        c,
        '\u{061c}'
            | '\u{200b}'..='\u{200f}'
            | '\u{2028}'..='\u{202e}'
            | '\u{2060}'..='\u{2069}'
            | '\u{feff}'
            | '\u{fff9}'..='\u{fffb}'
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No char of the output may be a control or a bidi control.
    fn assert_inert(s: &str) {
        for c in s.chars() {
            assert!(!c.is_control(), "control {c:?} in {s:?}");
            assert!(!is_format_control(c), "format control {c:?} in {s:?}");
        }
    }

    #[test]
    fn escapes_controls() {
        assert_eq!(sanitize(b"a\x1b[31mred\x07"), "a\\x1b[31mred\\x07");
        assert_eq!(sanitize(b"l1\r\nl2\tx\x7f\x00"), "l1\\r\\nl2\\tx\\x7f\\x00");
        assert_eq!(sanitize("c1:\u{9b}2J".as_bytes()), "c1:\\x9b2J");
    }

    #[test]
    fn escapes_bidi_and_invalid_utf8() {
        assert_eq!(sanitize("a\u{202e}cba\u{2066}".as_bytes()), "a\\u{202e}cba\\u{2066}");
        assert_eq!(sanitize(b"\xff\xc3("), "\\xff\\xc3(");
        assert_eq!(sanitize("héllo ✓ 日本".as_bytes()), "héllo ✓ 日本");
    }

    #[test]
    fn every_byte_and_every_bmp_char_is_inert() {
        let all: Vec<u8> = (0..=255u8).collect();
        assert_inert(&sanitize(&all));
        let bmp: String = (0..0x11000u32).filter_map(char::from_u32).collect();
        assert_inert(&sanitize(bmp.as_bytes()));
    }
}
