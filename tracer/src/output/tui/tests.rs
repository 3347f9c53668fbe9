//! Snapshot tests of the whole screen on ratatui's TestBackend.

use insta::assert_snapshot;
use ratatui::{backend::TestBackend, Terminal};

use super::{
    app::{Action, App},
    draw,
    testutil::{entry, message, record, row, type_filter},
};
use crate::output::{Clock, Counters};
use crate::protocols::StartLine;

const NOW: u64 = 1_002_000_000_000;

fn app() -> App {
    let mut app = App::new(10_000, Clock::new());
    let rows = [
        ("GET", "/index.html", Some(200), Some(412), "curl"),
        ("POST", "/api/items", Some(201), Some(12_345), "python3"),
        ("GET", "/missing", Some(404), Some(980), "curl"),
        ("GET", "/boom", Some(503), Some(250_000), "wget"),
        ("GET", "/slow", None, None, "curl"),
    ];
    for (i, (m, t, s, l, c)) in rows.into_iter().enumerate() {
        app.push_entry(entry(i as u64, m, t, s, l, c));
    }
    app.now_ns = NOW;
    app.counters = Counters { active_conns: 3, lost_events: 7, ..Counters::default() };
    app
}

/// The screen as text, one line per row, trailing spaces trimmed.
fn screen(app: &mut App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    draw(&mut t, app).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| {
            let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_owned()).collect();
            line.trim_end().to_owned()
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn list_follows_newest() {
    assert_snapshot!(screen(&mut app(), 120, 12));
}

#[test]
fn detail_pane() {
    let mut app = app();
    app.update(Action::Move(-4));
    app.update(Action::ToggleDetail);
    assert_snapshot!(screen(&mut app, 120, 30));
}

#[test]
fn filter_being_typed() {
    let mut app = app();
    app.update(Action::StartFilter);
    type_filter(&mut app, "status>=4");
    assert_snapshot!(screen(&mut app, 120, 10));
    app.update(Action::FilterChar('0'));
    app.update(Action::FilterChar('0'));
    app.update(Action::FilterAccept);
    assert_snapshot!(screen(&mut app, 120, 10));
}

#[test]
fn header_names_the_filter_applied_not_the_text_refused() {
    let mut app = app();
    app.update(Action::StartFilter);
    type_filter(&mut app, "status>=400x");
    // The rows are those of `status>=400`, the last text that parsed.
    let s = screen(&mut app, 120, 10);
    let header = s.lines().next().unwrap();
    assert!(header.ends_with("rows 2/5 (max 10000)  sort time  filter status>=400"), "{s}");
    assert!(s.contains("/status>=400x█  bad value `400x` for status"), "{s}");
    // Enter does not keep text that does not parse: the error stays in sight.
    app.update(Action::FilterAccept);
    let s = screen(&mut app, 120, 10);
    assert!(s.lines().next().unwrap().ends_with("filter status>=400"), "{s}");
    assert!(s.contains("bad value `400x` for status"), "{s}");
    app.update(Action::FilterBackspace);
    app.update(Action::FilterAccept);
    let s = screen(&mut app, 120, 10);
    assert!(s.lines().next().unwrap().ends_with("filter status>=400"), "{s}");
    assert!(s.ends_with("q quit"), "{s}");
    // Esc after an edit that did not parse goes back to what was kept.
    app.update(Action::StartFilter);
    app.update(Action::FilterChar('x'));
    app.update(Action::FilterCancel);
    let s = screen(&mut app, 120, 10);
    assert!(s.lines().next().unwrap().ends_with("rows 2/5 (max 10000)  sort time  filter status>=400"), "{s}");
}

#[test]
fn help_overlay() {
    let mut app = app();
    app.update(Action::ToggleHelp);
    assert_snapshot!(screen(&mut app, 100, 24));
}

#[test]
fn hostile_traffic_is_shown_escaped() {
    let mut app = App::new(100, Clock::new());
    // Sanitised as the row is made, as a record's would be.
    app.push_entry(entry(0, "GET", "/\u{1b}[2J\u{202e}evil", Some(200), Some(5), "curl"));
    let s = screen(&mut app, 120, 6);
    assert!(s.contains("/\\x1b[2J\\u{202e}evil"), "{s}");
    assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s}");
}

/// The screen (120x40) with the detail pane open on `r`, the only row.
fn detail_screen(r: crate::pipeline::Record) -> String {
    let mut app = App::new(100, Clock::new());
    app.push_entry(row(0, r));
    app.update(Action::ToggleDetail);
    screen(&mut app, 120, 40)
}

/// Where `needle` is in the screen `s`; fails when it is not there.
fn at(s: &str, needle: &str) -> usize {
    s.find(needle).unwrap_or_else(|| panic!("{needle} not in\n{s}"))
}

#[test]
fn hostile_headers_are_escaped_in_the_detail_pane() {
    // The detail pane sanitises when it draws: start lines and header fields as they came.
    let mut r = record(0, "GET", "/x", Some(200), Some(5), "curl");
    r.exchange.request.headers.push(b"X-Title\x1b]0;pwned\x07", b"a\x1b[2Jb\x00c\xff");
    if let Some(resp) = r.exchange.response.as_mut() {
        resp.start = crate::protocols::StartLine::Response { version: 1, status: 200, reason: b"OK\x1b[31m\x9b"[..].into() };
    }
    let s = detail_screen(r);
    assert!(s.contains("X-Title\\x1b]0;pwned\\x07:"), "{s}");
    assert!(s.contains("a\\x1b[2Jb\\x00c"), "{s}");
    assert!(s.contains("OK\\x1b[31m"), "{s}");
    assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s}");
}

#[test]
fn interim_heads_are_shown_before_the_response_escaped() {
    let mut r = record(0, "POST", "/up", Some(201), Some(8000), "curl");
    let ts = r.exchange.request.first_ts_ns;
    r.exchange.interim = vec![
        message(StartLine::Response { version: 1, status: 103, reason: b"Early Hints"[..].into() }, &[("Link", "</a.css>\u{1b}[2J")], b"", ts + 1_500_000, ts + 1_500_000),
        message(StartLine::Response { version: 1, status: 100, reason: b"Continue"[..].into() }, &[], b"", ts + 2_000_000, ts + 2_000_000),
    ];
    let s = detail_screen(r);
    let at = |needle: &str| at(&s, needle);
    assert!(at("── response ──") < at("interim, first byte after 1.5ms"), "{s}");
    assert!(at("HTTP/1.1 103 Early Hints") < at("Link: </a.css>\\x1b[2J"), "{s}");
    assert!(at("Link: </a.css>") < at("interim, first byte after 2.0ms"), "{s}");
    assert!(at("HTTP/1.1 100 Continue") < at("HTTP/1.1 201 OK"), "{s}");
    assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s}");
}

/// An 80-column terminal shows the host and target, the other columns narrower.
#[test]
fn an_80_column_screen_shows_the_url() {
    let s = screen(&mut app(), 80, 10);
    assert!(s.contains("127.0.0.1:8080/index.html"), "{s}");
    assert!(s.contains("HOST+TARGET"), "{s}");
}

#[test]
fn trailers_are_shown_after_the_body_escaped() {
    let mut r = record(0, "GET", "/t", Some(200), Some(5), "curl");
    if let Some(resp) = r.exchange.response.as_mut() {
        resp.trailers.push(b"Grpc-Status", b"0");
        resp.trailers.push(b"X-Esc", b"a\x1b[2Jb");
    }
    let s = detail_screen(r);
    let at = |needle: &str| at(&s, needle);
    assert!(at("── response ──") < at("hello from /t"), "{s}");
    assert!(at("hello from /t") < at("trailers"), "{s}");
    assert!(at("trailers") < at("Grpc-Status: 0"), "{s}");
    assert!(at("Grpc-Status: 0") < at("X-Esc: a\\x1b[2Jb"), "{s}");
    assert!(!s.chars().any(|c| c.is_control() && c != '\n'), "{s}");
}

#[test]
fn many_rows_draw_only_the_window() {
    let mut app = App::new(10_000, Clock::new());
    for i in 0..50_000u64 {
        app.push_entry(entry(i, "GET", &format!("/r/{i}"), Some(200), Some(i % 900), "curl"));
    }
    assert_eq!(app.held(), 10_000);
    let s = screen(&mut app, 120, 8);
    assert!(s.contains("/r/49999"), "{s}");
    assert!(!s.contains("/r/39999 "), "{s}");
}

#[test]
fn connect_row_completes_and_tunnelled_heads_do_not_wait() {
    // A client sent CONNECT and, before the answer, bytes for the tunnel that parse as
    // request heads (one in the same segment, one later): all three were announced. The
    // 200 made the connection a tunnel: the parser reports the CONNECT, upgraded, and
    // drops the others, which no exchange will ever finish.
    let mut app = App::new(100, Clock::new());
    let on_conn = |conn, mut r: crate::pipeline::Record| {
        (r.conn, r.in_flight) = (conn, r.exchange.response.is_none());
        r
    };
    app.push(on_conn(7, record(0, "CONNECT", "example.com:443", None, None, "curl")));
    app.push(on_conn(7, record(0, "GET", "/same-segment", None, None, "curl")));
    app.push(on_conn(8, record(1, "GET", "/slow", None, None, "curl")));
    app.push(on_conn(7, record(2, "GET", "/later", None, None, "curl")));
    let s = screen(&mut app, 120, 10);
    assert_eq!(s.matches("...").count(), 4, "{s}");
    let mut done = on_conn(7, record(0, "CONNECT", "example.com:443", Some(200), Some(40), "curl"));
    done.exchange.note = Some(crate::protocols::Note::Upgrade);
    app.push(done);
    let s = screen(&mut app, 120, 10);
    let connect = s.lines().find(|l| l.contains("CONNECT")).unwrap_or_default();
    assert!(connect.contains(" 200 ") && !connect.contains("..."), "{s}");
    assert!(!s.contains("/same-segment") && !s.contains("/later"), "{s}");
    // Another connection's request in flight still waits for its answer.
    let slow = s.lines().find(|l| l.contains("/slow")).unwrap_or_default();
    assert!(slow.contains("..."), "{s}");
    assert_eq!(app.view_len(), 2);
}

#[test]
fn status_is_coloured_by_class() {
    use ratatui::style::Color;
    let mut app = app();
    let (w, h) = (120u16, 12u16);
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    draw(&mut t, &mut app).unwrap();
    let buf = t.backend().buffer().clone();
    // The row of `target`: the colour of the first cell of its `status` text.
    let colour = |target: &str, status: &str| -> Color {
        for y in 0..h {
            let line: String = (0..w).map(|x| buf[(x, y)].symbol().to_owned()).collect();
            if !line.contains(target) {
                continue;
            }
            let at = line.find(&format!(" {status} ")).unwrap_or_else(|| panic!("no {status} in {line:?}")) + 1;
            // One character per cell: the characters before it are its column.
            return buf[(line[..at].chars().count() as u16, y)].fg;
        }
        panic!("no row for {target}");
    };
    assert_eq!(colour("/index.html", "200"), Color::Green);
    assert_eq!(colour("/api/items", "201"), Color::Green);
    assert_eq!(colour("/missing", "404"), Color::Yellow);
    assert_eq!(colour("/boom", "503"), Color::Red);
    assert_eq!(colour("/slow", "-"), Color::DarkGray);
}

/// A notice about the capture stands in the bottom line, escaped like any other text.
#[test]
fn a_notice_takes_the_bottom_line() {
    let mut app = app();
    let plain = screen(&mut app, 120, 12);
    assert!(plain.lines().last().unwrap().contains("? help"), "{plain}");
    app.notice = Some("warning: --iface eth0: the interface is down \x1b[2J".into());
    let s = screen(&mut app, 120, 12);
    let last = s.lines().last().unwrap();
    assert!(last.starts_with("warning: --iface eth0: the interface is down \\x1b[2J"), "{s}");
    assert!(last.ends_with("? keys  q quit"), "{s}");
}
