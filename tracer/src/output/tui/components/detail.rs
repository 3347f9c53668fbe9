//! The selected exchange in full: addresses, timing, flags, both messages with their
//! headers and a body preview (text, or hex for binary).

use ratatui::{
    layout::Rect,
    style::{Color, Modifier, Style},
    text::{Line, Span},
    widgets::{Block, Borders, Paragraph},
    Frame,
};

use super::status_color;
use crate::{
    output::tui::{
        app::App,
        entry::{fmt_latency, fmt_size, Entry, MessageView},
        sanitize::sanitize,
    },
    protocols::Role,
};

/// Body preview lines per message.
const BODY_LINES: usize = 16;

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let block = Block::default().borders(Borders::TOP).title(" exchange (Enter/Esc close, J/K scroll) ");
    let lines = match app.selected_entry() {
        Some(e) => lines(e),
        None => vec![Line::from("no exchange selected")],
    };
    f.render_widget(Paragraph::new(lines).block(block).scroll((app.detail_scroll, 0)), area);
}

fn label(s: &str) -> Span<'static> {
    Span::styled(s.to_owned(), Style::new().fg(Color::DarkGray))
}

fn lines(e: &Entry) -> Vec<Line<'static>> {
    let role = match e.role {
        Some(Role::Client) => "client",
        Some(Role::Server) => "server",
        None => "unknown",
    };
    let lat = |v: Option<u64>| v.map_or_else(|| "-".to_owned(), fmt_latency);
    let yes_no = |b: bool| if b { "yes" } else { "NO" };
    let mut out = vec![
        Line::from(vec![
            label("client "),
            Span::raw(e.client.to_string()),
            label(" -> server "),
            Span::raw(e.server.to_string()),
            label("  seen as "),
            Span::raw(role),
            label("  pid "),
            Span::raw(if e.pid == 0 { "-".to_owned() } else { e.pid.to_string() }),
            label(" tid "),
            Span::raw(e.tid.to_string()),
            label(" comm "),
            Span::raw(e.comm().to_owned()),
        ]),
        Line::from(vec![
            label("time "),
            Span::raw(e.time()),
            label(" UTC  latency "),
            Span::raw(lat(e.latency_us)),
            label("  ttfb "),
            Span::raw(lat(e.ttfb_us)),
            label("  complete "),
            Span::styled(yes_no(e.complete), flag_style(!e.complete)),
            label("  lost "),
            Span::styled(fmt_size(e.lost_bytes), flag_style(e.lost_bytes > 0)),
            label("  note "),
            Span::raw(e.note.map_or("-", |n| n.as_str())),
        ]),
    ];
    out.push(section("request"));
    message(&mut out, &e.request(), Style::new().add_modifier(Modifier::BOLD));
    out.push(section("response"));
    for (m, ttfb_us) in e.interim() {
        out.push(Line::from(vec![label("interim, first byte after "), Span::raw(fmt_latency(ttfb_us))]));
        head(&mut out, &m, Style::new().fg(status_color(m.status())));
    }
    match e.response() {
        Some(m) => message(&mut out, &m, Style::new().fg(status_color(e.status)).add_modifier(Modifier::BOLD)),
        None => out.push(Line::from("(none)")),
    }
    out
}

fn flag_style(bad: bool) -> Style {
    if bad {
        Style::new().fg(Color::Red).add_modifier(Modifier::BOLD)
    } else {
        Style::new()
    }
}

fn section(name: &str) -> Line<'static> {
    Line::styled(format!("── {name} ──"), Style::new().fg(Color::DarkGray))
}

fn message(out: &mut Vec<Line<'static>>, m: &MessageView, first: Style) {
    head(out, m, first);
    let mut about = format!("body {}", fmt_size(m.body_size));
    if m.body_truncated {
        about.push_str(&format!(", first {} shown", fmt_size(m.body.len() as u64)));
    }
    if !m.complete {
        about.push_str(", INCOMPLETE");
    }
    if m.lost_bytes > 0 {
        about.push_str(&format!(", {} lost", fmt_size(m.lost_bytes)));
    }
    out.push(Line::styled(about, Style::new().fg(Color::DarkGray)));
    out.extend(body_preview(m.body).into_iter().map(Line::from));
    let mut trailers = m.trailers().peekable();
    if trailers.peek().is_some() {
        out.push(Line::styled("trailers", Style::new().fg(Color::DarkGray)));
        out.extend(trailers.map(field_line));
    }
}

fn field_line((n, v): (String, String)) -> Line<'static> {
    Line::from(vec![Span::styled(format!("{n}:"), Style::new().fg(Color::Cyan)), Span::raw(format!(" {v}"))])
}

/// Start line and header fields.
fn head(out: &mut Vec<Line<'static>>, m: &MessageView, first: Style) {
    out.push(Line::styled(m.start_line(), first));
    out.extend(m.headers().map(field_line));
    if m.head_omitted > 0 {
        let about = format!("… {} more of the head not kept here (--json has it)", fmt_size(m.head_omitted));
        out.push(Line::styled(about, Style::new().fg(Color::DarkGray)));
    }
}

/// Text when the bytes look like text (UTF-8, few controls), else a hex dump.
pub fn body_preview(body: &[u8]) -> Vec<String> {
    if body.is_empty() {
        return Vec::new();
    }
    if looks_like_text(body) {
        let mut lines: Vec<String> = body
            .split(|&b| b == b'\n')
            .take(BODY_LINES)
            .map(|l| sanitize(l.strip_suffix(b"\r").unwrap_or(l)))
            .collect();
        if body.split(|&b| b == b'\n').nth(BODY_LINES).is_some() {
            lines.push("…".to_owned());
        }
        lines
    } else {
        let mut lines: Vec<String> = body.chunks(16).take(BODY_LINES).enumerate().map(|(i, c)| hex_line(i * 16, c)).collect();
        if body.len() > 16 * BODY_LINES {
            lines.push("…".to_owned());
        }
        lines
    }
}

fn looks_like_text(b: &[u8]) -> bool {
    let mut invalid_at_end_only = true;
    let mut controls = 0usize;
    let chunks: Vec<_> = b.utf8_chunks().collect();
    for (i, c) in chunks.iter().enumerate() {
        // A body cut at the preview limit may end inside a character.
        if !c.invalid().is_empty() && (i + 1 < chunks.len() || c.invalid().len() > 3) {
            invalid_at_end_only = false;
        }
        controls += c.valid().chars().filter(|ch| ch.is_control() && !matches!(ch, '\n' | '\r' | '\t')).count();
    }
    invalid_at_end_only && !b.contains(&0) && controls * 20 <= b.len()
}

fn hex_line(offset: usize, chunk: &[u8]) -> String {
    let hex: Vec<String> = chunk.iter().map(|b| format!("{b:02x}")).collect();
    let ascii: String = chunk.iter().map(|&b| if b.is_ascii_graphic() || b == b' ' { b as char } else { '.' }).collect();
    format!("{offset:04x}  {:<47}  |{ascii}|", hex.join(" "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_bodies_as_lines_binary_as_hex() {
        assert_eq!(body_preview(b"a\r\nb\x1b[2J and some more text"), vec!["a", "b\\x1b[2J and some more text"]);
        let bin = [0u8, 1, 2, 0xff, b'A'];
        assert_eq!(body_preview(&bin), vec![format!("0000  {:<47}  |....A|", "00 01 02 ff 41")]);
        // Cut inside a multi-byte character: still text.
        let cut = &"héllo".as_bytes()[..2];
        assert_eq!(body_preview(cut), vec!["h\\xc3"]);
    }
}
