//! Lost, uncaptured and reordered bytes; timeouts; garbage; the memory bound.

use super::tests::{ok, sum, thread, Harness, Sum};
use super::Http1Conn;
use crate::protocols::{Direction, Limits, Note, Role};

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: example.test\r\n\r\n").into_bytes()
}

fn ok_resp(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn alone(target: &str, note: Note) -> Sum {
    Sum {
        method: "GET".into(),
        target: target.into(),
        req_body: Vec::new(),
        status: None,
        resp_body: Vec::new(),
        resp_size: 0,
        complete: false,
        note: Some(note),
        interim: Vec::new(),
        trailers: Default::default(),
    }
}

impl Harness {
    fn tick_after_reorder(&mut self) {
        self.ts += 10;
        let now = self.ts + Limits::default().reorder_timeout_ns + 1;
        self.conn.on_tick(now);
    }

    fn sums(&mut self) -> Vec<Sum> {
        self.drain().iter().map(sum).collect()
    }
}

#[test]
fn gap_inside_content_length_body_keeps_framing() {
    let mut h = Harness::new();
    h.req(&get("/a"));
    h.req(&get("/b"));
    h.resp(&[&b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n"[..], &[b'x'; 30]].concat());
    h.lose_resp(20);
    h.resp(&[b'y'; 50]);
    h.resp(&ok_resp("next"));
    h.tick_after_reorder();
    let out = h.drain();
    assert_eq!(out.len(), 2);
    let r = out[0].response.as_ref().expect("first response");
    assert_eq!((r.body_size, r.lost_bytes, r.complete), (100, 20, false));
    assert_eq!(r.body, vec![b'x'; 30], "body stops at the hole: it stays a prefix");
    assert!(r.body_truncated);
    assert_eq!(out[0].note, Some(Note::Gap));
    assert_eq!(out[0].lost_bytes(), 20);
    assert_eq!(sum(&out[1]), ok("GET", "/b", b"", 200, b"next"));
    assert_eq!(h.conn.lost_bytes(), 20);
}

#[test]
fn gap_inside_chunk_data_keeps_framing() {
    let mut h = Harness::new();
    h.req(&get("/a"));
    h.req(&get("/b"));
    h.resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n01");
    h.lose_resp(4);
    h.resp(b"6789\r\n0\r\n\r\n");
    h.resp(&ok_resp("next"));
    h.tick_after_reorder();
    let out = h.drain();
    let r = out[0].response.as_ref().expect("first response");
    assert_eq!((r.body_size, r.lost_bytes, r.body.as_slice()), (10, 4, &b"01"[..]));
    assert_eq!(sum(&out[1]), ok("GET", "/b", b"", 200, b"next"));
}

#[test]
fn gap_inside_request_head_resyncs_without_fabrication() {
    let mut h = Harness::new();
    let q2 = get("/lost-head");
    h.req(&get("/1"));
    h.resp(&ok_resp("one"));
    h.req(&q2[..10]);
    h.lose_req(15);
    h.req(&q2[25..]);
    h.resp(&ok_resp("two"));
    h.req(&get("/3"));
    h.resp(&ok_resp("three"));
    h.tick_after_reorder();
    h.close();
    assert_eq!(h.sums(), vec![ok("GET", "/1", b"", 200, b"one"), ok("GET", "/3", b"", 200, b"three")]);
    assert_eq!(h.conn.orphan_responses(), 1);
}

#[test]
fn gap_inside_response_head_loses_that_response_only() {
    let mut h = Harness::new();
    let r2 = ok_resp("two");
    h.req(&get("/1"));
    h.resp(&ok_resp("one"));
    h.req(&get("/2"));
    h.resp(&r2[..5]);
    h.lose_resp(10);
    h.resp(&r2[15..]);
    h.req(&get("/3"));
    h.resp(&ok_resp("three"));
    h.tick_after_reorder();
    h.close();
    let lost = alone("/2", Note::Gap);
    assert_eq!(
        h.sums(),
        vec![ok("GET", "/1", b"", 200, b"one"), lost, ok("GET", "/3", b"", 200, b"three")]
    );
}

#[test]
fn lost_whole_request_never_misaligns() {
    let mut h = Harness::new();
    let q2 = get("/2");
    h.req(&get("/1"));
    h.resp(&ok_resp("one"));
    h.lose_req(q2.len());
    h.resp(&ok_resp("two"));
    h.req(&get("/3"));
    h.resp(&ok_resp("three"));
    h.req(&get("/4"));
    h.resp(&ok_resp("four"));
    h.tick_after_reorder();
    h.close();
    let expect = vec![
        ok("GET", "/1", b"", 200, b"one"),
        ok("GET", "/3", b"", 200, b"three"),
        ok("GET", "/4", b"", 200, b"four"),
    ];
    assert_eq!(h.sums(), expect);
    assert_eq!(h.conn.orphan_responses(), 1);
}

/// Same timeline, but the request direction is delivered before the responses.
#[test]
fn lost_whole_request_with_late_delivered_responses() {
    let mut c = Http1Conn::new(Role::Client, Limits::default());
    let (q1, q2, q3) = (get("/1"), get("/2"), get("/3"));
    let (r1, r2, r3) = (ok_resp("one"), ok_resp("two"), ok_resp("three"));
    let q3_pos = (q1.len() + q2.len()) as u64;
    c.on_data(Direction::Egress, 0, q1.len() as u64, &q1, 10, thread(1));
    c.on_data(Direction::Egress, q3_pos, q3.len() as u64, &q3, 50, thread(1));
    let mut pos = 0;
    for (r, ts) in [(&r1, 20), (&r2, 40), (&r3, 60)] {
        c.on_data(Direction::Ingress, pos, r.len() as u64, r, ts, thread(1));
        pos += r.len() as u64;
    }
    c.on_tick(60 + Limits::default().reorder_timeout_ns + 1);
    c.on_close(1_000_000_000);
    let mut out = Vec::new();
    c.drain(&mut out);
    let got: Vec<Sum> = out.iter().map(sum).collect();
    assert_eq!(got, vec![ok("GET", "/1", b"", 200, b"one"), ok("GET", "/3", b"", 200, b"three")]);
}

#[test]
fn lost_whole_response_pairs_next_by_time() {
    let mut h = Harness::new();
    let r2 = ok_resp("two");
    h.req(&get("/1"));
    h.resp(&ok_resp("one"));
    h.req(&get("/2"));
    h.lose_resp(r2.len());
    h.req(&get("/3"));
    h.resp(&ok_resp("three"));
    h.tick_after_reorder();
    h.close();
    let lost = alone("/2", Note::Gap);
    assert_eq!(
        h.sums(),
        vec![ok("GET", "/1", b"", 200, b"one"), lost, ok("GET", "/3", b"", 200, b"three")]
    );
}

/// A request and the response before it both lost (the reader fell behind): the next
/// response seen follows a request gap and a response gap, and may answer the lost request
/// as well as the last one seen. Soak test: `/2` reported with `/3`'s answer, complete.
#[test]
fn lost_request_and_lost_response_never_pair_across_both_gaps() {
    let mut h = Harness::new();
    h.req(&get("/1"));
    h.resp(&ok_resp("one"));
    h.req(&get("/2"));
    h.lose_resp(ok_resp("two").len());
    h.lose_req(get("/3").len());
    h.resp(&ok_resp("three"));
    h.req(&get("/4"));
    h.resp(&ok_resp("four"));
    h.tick_after_reorder();
    h.close();
    let lost = alone("/2", Note::Gap);
    assert_eq!(
        h.sums(),
        vec![ok("GET", "/1", b"", 200, b"one"), lost, ok("GET", "/4", b"", 200, b"four")]
    );
    assert_eq!(h.conn.orphan_responses(), 1);
}

/// The same losses with two requests seen before them (`one_by_one` pairing picks the last
/// candidate): still not across the request gap.
#[test]
fn lost_request_after_several_candidates_is_not_paired_across() {
    let mut h = Harness::new();
    h.req(&get("/1"));
    h.lose_resp(ok_resp("one").len());
    h.req(&get("/2"));
    h.lose_resp(ok_resp("two").len());
    h.lose_req(get("/3").len());
    h.resp(&ok_resp("three"));
    h.req(&get("/4"));
    h.resp(&ok_resp("four"));
    h.tick_after_reorder();
    h.close();
    let got = h.sums();
    assert!(got.iter().all(|s| s.resp_body != b"three"), "/3's answer paired: {got:?}");
    assert_eq!(got.last(), Some(&ok("GET", "/4", b"", 200, b"four")));
}

/// The last response lost at the end of the stream: only the close says where the stream
/// ended. The request is reported with a gap, not as cut off by the close.
#[test]
fn response_lost_at_the_end_of_the_stream_is_a_gap() {
    let mut h = Harness::new();
    h.req(&get("/1"));
    h.resp(&ok_resp("one"));
    h.req(&get("/2"));
    h.lose_resp(ok_resp("two").len());
    let (end, ts) = (h.resp_pos, h.ts + 10);
    h.conn.on_end(Direction::Ingress, end, ts);
    h.close();
    let lost = alone("/2", Note::Gap);
    assert_eq!(h.sums(), vec![ok("GET", "/1", b"", 200, b"one"), lost]);
    assert_eq!(h.conn.lost_bytes(), ok_resp("two").len() as u64);
}

#[test]
fn lost_response_among_pipelined_requests_is_ambiguous() {
    let mut h = Harness::new();
    h.req(&[get("/1"), get("/2"), get("/3")].concat());
    h.lose_resp(ok_resp("one").len());
    h.resp(&ok_resp("two"));
    h.resp(&ok_resp("three"));
    h.tick_after_reorder();
    h.close();
    let got = h.sums();
    assert_eq!(got.len(), 3);
    assert!(got.iter().all(|s| s.status.is_none()), "no response may be guessed: {got:?}");
    assert_eq!(h.conn.orphan_responses(), 2);
}

#[test]
fn out_of_order_segments_are_reordered_within_timeout() {
    let mut c = Http1Conn::new(Role::Client, Limits::default());
    let (q, r) = (get("/ooo"), ok_resp("reordered body"));
    let (qk, rk) = (9usize, 30usize);
    c.on_data(Direction::Egress, qk as u64, (q.len() - qk) as u64, &q[qk..], 2, thread(1));
    c.on_data(Direction::Ingress, rk as u64, (r.len() - rk) as u64, &r[rk..], 4, thread(1));
    c.on_data(Direction::Ingress, 0, rk as u64, &r[..rk], 3, thread(1));
    c.on_data(Direction::Egress, 0, qk as u64, &q[..qk], 1, thread(1));
    let mut out = Vec::new();
    c.drain(&mut out);
    assert_eq!(out.iter().map(sum).collect::<Vec<_>>(), vec![ok("GET", "/ooo", b"", 200, b"reordered body")]);
    assert_eq!(c.buffered_bytes(), 0);
    assert_eq!(c.lost_bytes(), 0);
}

#[test]
fn duplicates_and_overlaps_are_ignored() {
    let mut c = Http1Conn::new(Role::Client, Limits::default());
    let (q, r) = (get("/dup"), ok_resp("abc"));
    c.on_data(Direction::Egress, 0, 10, &q[..10], 1, thread(1));
    c.on_data(Direction::Egress, 0, q.len() as u64, &q, 2, thread(1));
    c.on_data(Direction::Egress, 5, (q.len() - 5) as u64, &q[5..], 3, thread(1));
    c.on_data(Direction::Ingress, 0, r.len() as u64, &r, 4, thread(1));
    c.on_data(Direction::Ingress, 0, r.len() as u64, &r, 5, thread(1));
    c.on_close(6);
    let mut out = Vec::new();
    c.drain(&mut out);
    assert_eq!(out.iter().map(sum).collect::<Vec<_>>(), vec![ok("GET", "/dup", b"", 200, b"abc")]);
}

#[test]
fn uncaptured_body_bytes_are_counted_not_lost() {
    let mut h = Harness::new();
    h.req(&get("/big"));
    h.req(&get("/after"));
    let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
    h.resp_partial((head.len() + 100) as u64, &[&head[..], &[b'z'; 10]].concat());
    h.resp(&ok_resp("after"));
    let out = h.drain();
    assert_eq!(out.len(), 2);
    let r = out[0].response.as_ref().expect("response");
    assert_eq!((r.body_size, r.body.len(), r.body_truncated), (100, 10, true));
    assert!(out[0].complete(), "uncaptured is not lost");
    assert_eq!((out[0].note, out[0].lost_bytes()), (None, 0));
    assert_eq!(sum(&out[1]), ok("GET", "/after", b"", 200, b"after"));
}

#[test]
fn uncaptured_chunk_data_is_counted() {
    let mut h = Harness::new();
    h.req(&get("/c"));
    let start = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n0123";
    h.resp_partial((start.len() + 16) as u64, start);
    h.resp(b"\r\n0\r\n\r\n");
    let out = h.drain();
    let r = out[0].response.as_ref().expect("response");
    assert_eq!((r.body_size, r.body.as_slice(), r.complete), (20, &b"0123"[..], true));
}

/// A writer that sends each chunk as size line, data and CRLF in one syscall (curl's
/// chunked uploads, writev of a chunked response), larger than what was captured: the
/// hole ends with the chunk's CRLF, and the next chunk starts the next syscall.
#[test]
fn a_chunks_uncaptured_crlf_keeps_the_framing() {
    let mut h = Harness::new();
    h.req(&get("/c"));
    let start = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n14\r\n0123";
    h.resp_partial((start.len() + 16 + 2) as u64, start);
    h.resp_partial(4 + 20 + 2, b"14\r\nab");
    h.resp(b"0\r\n\r\n");
    h.req(&get("/after"));
    h.resp(&ok_resp("after"));
    let out = h.drain();
    assert_eq!(out.len(), 2);
    let r = out[0].response.as_ref().expect("response");
    // The body shown is the prefix before the first hole.
    assert_eq!((r.body_size, r.body.as_slice(), r.body_truncated), (40, &b"0123"[..], true));
    assert!(out[0].complete(), "uncaptured is not lost");
    assert_eq!((out[0].note, out[0].lost_bytes()), (None, 0));
    assert_eq!(sum(&out[1]), ok("GET", "/after", b"", 200, b"after"));
    // The hole reaching into the next size line: that chunk's size is unknown.
    let mut h = Harness::new();
    h.req(&get("/c"));
    h.resp_partial((start.len() + 16 + 2 + 4) as u64, start);
    h.resp(b"\r\n0\r\n\r\n");
    let out = h.drain();
    assert_eq!(out[0].note, Some(Note::Truncated), "{:?}", out[0]);
}

#[test]
fn uncaptured_head_bytes_are_a_gap() {
    let mut h = Harness::new();
    h.req(&get("/1"));
    let r1 = ok_resp("one");
    h.resp_partial(r1.len() as u64, &r1[..8]);
    h.req(&get("/2"));
    h.resp(&ok_resp("two"));
    h.close();
    let got = h.sums();
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].status, None);
    assert_eq!(got[0].note, Some(Note::Gap));
    assert_eq!(got[1], ok("GET", "/2", b"", 200, b"two"));
}

/// `GET /1` answered by `resp`, of which the first 16 KiB were captured, then `GET /2`
/// answered `two` whole: what came out.
fn after_a_cut_response(resp: &str) -> Vec<crate::protocols::Exchange> {
    let mut h = Harness::new();
    h.req(&get("/1"));
    h.resp_partial(resp.len() as u64, &resp.as_bytes()[..16_384]);
    h.req(&get("/2"));
    h.resp(&ok_resp("two"));
    h.close();
    h.drain()
}

#[test]
fn heads_cut_short_by_uncaptured_bytes_are_reported_incomplete() {
    // A head larger than a syscall's capture: its start line and complete fields are
    // reported, incomplete, and paired with their own response; the next exchange is intact.
    let big = format!("GET /big HTTP/1.1\r\nHost: example.test\r\nX-Big: {}\r\n\r\n", "b".repeat(20_000));
    for first in [true, false] {
        let mut h = Harness::new();
        if !first {
            h.req(&get("/before"));
            h.resp(&ok_resp("zero"));
        }
        h.req_partial(big.len() as u64, &big.as_bytes()[..16_384]);
        h.req(&get("/next"));
        h.resp(&ok_resp("one"));
        h.resp(&ok_resp("two"));
        h.close();
        let mut got = h.drain();
        if !first {
            assert_eq!(sum(&got.remove(0)), ok("GET", "/before", b"", 200, b"zero"));
        }
        assert_eq!(got.len(), 2, "{got:?}");
        let cut = &got[0];
        assert_eq!(sum(cut).target, "/big");
        assert_eq!(cut.request.headers.get(b"host"), Some(&b"example.test"[..]));
        assert_eq!(cut.request.headers.get(b"x-big"), None, "the field cut short is not made up");
        assert!(!cut.request.complete);
        assert_eq!(cut.note, Some(Note::Truncated), "bytes not captured, none lost");
        assert_eq!(cut.request.lost_bytes, 0);
        let resp = cut.response.as_ref().expect("its own response");
        assert_eq!((resp.body_size, resp.complete), (3, true));
        assert_eq!(sum(&got[1]), ok("GET", "/next", b"", 200, b"two"));
    }
    // A response head cut short: its status is reported, incomplete, with its request.
    let got = after_a_cut_response(&format!("HTTP/1.1 503 Busy\r\nRetry-After: 5\r\nX-Big: {}\r\n\r\n", "b".repeat(20_000)));
    assert_eq!(got.len(), 2, "{got:?}");
    let resp = got[0].response.as_ref().expect("the cut response");
    assert_eq!(sum(&got[0]).status, Some(503));
    assert!(!resp.complete);
    assert_eq!(resp.headers.get(b"retry-after"), Some(&b"5"[..]));
    assert_eq!(sum(&got[1]), ok("GET", "/2", b"", 200, b"two"));
}

#[test]
fn heads_cut_short_one_after_another_are_each_reported() {
    // Every head of a keep-alive connection larger than what its syscall captured (a
    // small --max-capture; varnish's heads past an iovec limit): the first cut leaves the
    // framing unknown, but each next head starts its syscall, and is reported, cut, with
    // its own response, not dropped with it while looking for a head that parses whole.
    let cut_req = |t: &str| format!("GET {t} HTTP/1.1\r\nHost: example.test\r\nX-Big: {}\r\n\r\n", "b".repeat(100));
    let cut_resp = |s: &str| format!("HTTP/1.1 {s}\r\nServer: test\r\nContent-Length: 100\r\n\r\n{}", "r".repeat(100));
    for whole_first in [false, true] {
        let mut h = Harness::new();
        let mut want = vec![];
        if whole_first {
            h.req(&get("/whole"));
            h.resp(&ok_resp("zero"));
            want.push(("/whole".to_owned(), 200));
        }
        for (i, status) in [(1, "200 OK"), (2, "404 Not Found"), (3, "201 Created")] {
            let (rq, rs) = (cut_req(&format!("/cut{i}")), cut_resp(status));
            h.req_partial(rq.len() as u64, &rq.as_bytes()[..40]);
            h.resp_partial(rs.len() as u64, &rs.as_bytes()[..30]);
            want.push((format!("/cut{i}"), status[..3].parse().unwrap()));
        }
        h.req(&get("/last"));
        h.resp(&ok_resp("end"));
        want.push(("/last".to_owned(), 200));
        h.close();
        let got = h.sums();
        let seen: Vec<(String, u16)> = got.iter().map(|s| (s.target.clone(), s.status.unwrap_or(0))).collect();
        assert_eq!(seen, want, "{got:?}");
        for s in &got[whole_first as usize..got.len() - 1] {
            assert_eq!((s.complete, s.note), (false, Some(Note::Truncated)), "{s:?}");
        }
        assert_eq!(got.last().unwrap(), &ok("GET", "/last", b"", 200, b"end"));
    }
}

#[test]
fn interim_heads_are_kept_with_their_request_only_while_answers_are_in_order() {
    let post = b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok";
    let mut h = Harness::new();
    h.req(post);
    h.resp(b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n");
    h.resp(&ok_resp("one"));
    h.req(post);
    // Response bytes lost: the next interim head may answer a request not seen.
    h.lose_resp(10);
    h.resp(b"HTTP/1.1 100 Continue\r\n\r\n");
    h.resp(&ok_resp("two"));
    h.tick_after_reorder();
    h.close();
    let got = h.sums();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].status, got[0].interim.as_slice()), (Some(200), &[103][..]), "{got:?}");
    assert!(got[1].interim.is_empty(), "{got:?}");
}

#[test]
fn an_interim_head_older_than_the_waiting_request_is_not_its() {
    // Picked up mid-way: the 100 Continue and 201 answer a request never seen; the GET
    // sent after them must not show that 100 as its own.
    let mut h = Harness::new();
    h.resp(b"HTTP/1.1 100 Continue\r\n\r\n");
    h.resp(b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n");
    h.req(&get("/b"));
    h.resp(&ok_resp("b"));
    h.tick_after_reorder();
    h.close();
    let got = h.sums();
    assert_eq!(got, [ok("GET", "/b", b"", 200, b"b")], "{got:?}");
}

#[test]
fn requests_httparse_refuses_are_reported_as_they_came() {
    // Control bytes, a field line without a colon: servers answer these, so they are
    // reported, bytes as they came, marked; a target that is not UTF-8 (Latin-1) is valid
    // HTTP, reported unmarked. At every split, the next is intact.
    let odd: &[(&[u8], Option<Note>)] = &[
        (b"GET /x HTTP/1.1\r\nHost: a\r\nX-Evil: \x1b]0;pwned\x07\r\n\r\n", Some(Note::ParseError)),
        (b"GET /caf\xe9 HTTP/1.1\r\nHost: a\r\n\r\n", None),
        (b"POST /form HTTP/1.1\r\nno colon here\r\nContent-Length: 3\r\nX-Del: a\x7fb\r\n\r\nabc", Some(Note::ParseError)),
    ];
    for &(wire, note) in odd {
        for cut in 1..wire.len() {
            let mut h = Harness::new();
            h.req(&wire[..cut]);
            h.req(&wire[cut..]);
            h.resp(&ok_resp("one"));
            h.req(&get("/next"));
            h.resp(&ok_resp("two"));
            h.close();
            let got = h.drain();
            assert_eq!(got.len(), 2, "{wire:?} cut at {cut}: {got:?}");
            let x = &got[0];
            assert_eq!(x.note, note, "{wire:?} cut at {cut}");
            assert_eq!(sum(x).status, Some(200));
            assert_eq!(x.response.as_ref().map(|r| r.body.as_slice()), Some(&b"one"[..]));
            let crate::protocols::StartLine::Request { target, .. } = &x.request.start else { panic!() };
            assert_eq!(target.as_slice(), wire[wire.iter().position(|&b| b == b' ').unwrap() + 1..].split(|&b| b == b' ').next().unwrap());
            assert_eq!(sum(&got[1]), ok("GET", "/next", b"", 200, b"two"));
        }
    }
    let mut h = Harness::new();
    h.req(odd[0].0);
    h.req(odd[2].0);
    h.close();
    let got = h.drain();
    assert_eq!(got[0].request.headers.get(b"x-evil"), Some(&b"\x1b]0;pwned\x07"[..]));
    assert_eq!(got[1].request.headers.get(b"no colon here"), Some(&b""[..]));
    assert_eq!((got[1].request.body.as_slice(), got[1].request.body_size), (&b"abc"[..], 3));
}

#[test]
fn response_timeout_then_late_response_is_not_misread() {
    let mut h = Harness::new();
    h.req(&get("/slow"));
    h.conn.on_tick(h.ts + Limits::default().response_timeout_ns / 2);
    assert!(h.drain().is_empty(), "not yet");
    h.conn.on_tick(h.ts + Limits::default().response_timeout_ns + 1);
    assert_eq!(h.sums(), vec![alone("/slow", Note::ResponseTimeout)]);
    h.resp(&ok_resp("late"));
    h.req(&get("/next"));
    h.resp(&ok_resp("next"));
    assert_eq!(h.sums(), vec![ok("GET", "/next", b"", 200, b"next")]);
    assert_eq!(h.conn.orphan_responses(), 1);
}

#[test]
fn a_request_unanswered_after_lost_response_bytes_is_a_gap_not_a_timeout() {
    let mut h = Harness::new();
    h.req(&get("/1"));
    let r = ok_resp(&"x".repeat(100));
    h.lose_resp(20);
    h.resp(&r[20..]);
    h.tick_after_reorder();
    h.conn.on_tick(h.ts + Limits::default().response_timeout_ns + 1);
    assert_eq!(h.sums(), vec![alone("/1", Note::Gap)]);
}

#[test]
fn started_response_keeps_waiting_past_timeout() {
    let mut h = Harness::new();
    h.req(&get("/long"));
    h.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n01234");
    h.conn.on_tick(h.ts + Limits::default().response_timeout_ns * 2);
    assert!(h.drain().is_empty());
    h.resp(b"56789");
    assert_eq!(h.sums(), vec![ok("GET", "/long", b"", 200, b"0123456789")]);
}

#[test]
fn close_before_response_and_mid_body() {
    let mut h = Harness::new();
    h.req(&get("/a"));
    h.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n012");
    h.req(&get("/b"));
    h.close();
    let out = h.drain();
    assert_eq!(out.len(), 2);
    let r = out[0].response.as_ref().expect("partial response");
    assert_eq!((r.complete, r.body_size), (false, 3));
    assert_eq!(out[0].note, Some(Note::Closed));
    assert_eq!(sum(&out[1]), alone("/b", Note::Closed));
    assert!(h.conn.is_done());
}

fn garbage(n: usize, seed: u64) -> Vec<u8> {
    let mut x = seed;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect()
}

/// Picked up inside a long download: the body's bytes parse as nothing, in the response
/// direction only, for longer than a stream that is not HTTP is given; the connection is
/// still followed, and the exchanges after the body are reported. Not picked up, or with
/// bytes that parse as nothing both ways, it is given up as before.
#[test]
fn a_connection_picked_up_inside_a_long_body_is_followed_to_its_next_exchanges() {
    let body: Vec<u8> = b"DATA 000014 LOREM IPSUM ".iter().copied().cycle().take(64 * 1024).collect();
    let run = |picked_up: bool, both_ways: bool| {
        let mut h = Harness::new();
        if picked_up {
            h.conn.picked_up();
        }
        for chunk in body.chunks(1000) {
            h.resp(chunk);
            if both_ways {
                h.req(&chunk[..10]);
            }
        }
        let done = h.conn.is_done();
        h.req(&get("/real"));
        h.resp(&ok_resp("real"));
        h.close();
        (done, h.drain().iter().map(sum).collect::<Vec<_>>())
    };
    let (done, out) = run(true, false);
    assert!(!done);
    assert_eq!(out, [ok("GET", "/real", b"", 200, b"real")]);
    let (done, out) = run(false, false);
    assert!(done && out.is_empty(), "{out:?}");
    let (done, out) = run(true, true);
    assert!(done && out.is_empty(), "{out:?}");
}

#[test]
fn non_http_streams_give_nothing_and_stop() {
    let mut h = Harness::new();
    let (a, b) = (garbage(64 * 1024, 1), garbage(64 * 1024, 2));
    let mut tls = vec![0x16, 0x03, 0x01, 0x02, 0x00];
    tls.extend(garbage(1000, 3));
    h.req(&tls);
    for (x, y) in a.chunks(1024).zip(b.chunks(1024)) {
        h.req(x);
        h.resp(y);
    }
    assert!(h.conn.is_done(), "declared not HTTP before the close");
    assert_eq!(h.conn.buffered_bytes(), 0);
    h.close();
    assert!(h.drain().is_empty());
}

#[test]
fn garbage_is_never_a_request() {
    let mut h = Harness::new();
    h.req(b"xxGET /nope\x00 HTTP/1.1\r\n\r\nPOST nothing\r\n\r\n");
    h.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    h.close();
    assert!(h.drain().is_empty());
}

#[test]
fn max_buffer_bounds_out_of_order_bytes() {
    let limits = Limits { max_buffer: 4096, ..Limits::default() };
    let mut c = Http1Conn::new(Role::Client, limits);
    let seg = [b'a'; 1000];
    for i in 0..20u64 {
        c.on_data(Direction::Ingress, 1 + i * 2000, 1000, &seg, i, thread(1));
        assert!(c.buffered_bytes() <= 4096, "buffered {}", c.buffered_bytes());
    }
    assert!(c.dropped_bytes() > 0);
}

/// A trailer section over the buffer bound: the response keeps its body and the trailer
/// fields complete before the cut, counts the bytes dropped after them as lost, and ends
/// at the last of them, not at its first byte; the next exchange is whole.
#[test]
fn a_trailer_section_over_the_bound_is_lost_in_its_message() {
    let limits = Limits { max_buffer: 4096, ..Limits::default() };
    let mut h = Harness::with_limits(limits);
    h.req(&get("/t"));
    h.resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\nX-A: 1\r\nX-Big: ");
    for _ in 0..10 {
        h.resp(&[b'v'; 1000]);
    }
    h.resp(b"\r\n\r\n");
    h.req(&get("/b"));
    h.resp(&ok_resp("b"));
    h.close();
    let out = h.drain();
    assert_eq!(out.iter().map(|x| sum(x).target).collect::<Vec<_>>(), ["/t", "/b"], "{out:?}");
    let r = out[0].response.as_ref().unwrap();
    assert_eq!((r.complete, out[0].note, &r.body[..]), (false, Some(Note::Gap), &b"hello"[..]));
    assert_eq!(r.trailers.iter().collect::<Vec<_>>(), [(&b"X-A"[..], &b"1"[..])]);
    assert!(r.lost_bytes >= 4096 - 8, "lost {}", r.lost_bytes);
    assert!(r.last_ts_ns > r.first_ts_ns + 20, "ends at the cut, not at its first byte: {r:?}");
    assert_eq!(sum(&out[1]), ok("GET", "/b", b"", 200, b"b"));
}

#[test]
fn max_buffer_bounds_an_endless_head() {
    // On a fresh connection, and on one whose first exchange parsed (where the parser
    // must find the next request after the head it gave up on).
    for answered_before in [false, true] {
        let limits = Limits { max_buffer: 4096, ..Limits::default() };
        let mut h = Harness::with_limits(limits);
        if answered_before {
            h.req(&get("/first"));
            h.resp(&ok_resp("one"));
        }
        h.req(b"GET /");
        for _ in 0..100 {
            h.req(&[b'a'; 100]);
            assert!(h.conn.buffered_bytes() <= 4096);
        }
        h.req(b" HTTP/1.1\r\n\r\n");
        h.resp(&ok_resp("x"));
        h.req(&get("/fine"));
        h.resp(&ok_resp("fine"));
        h.close();
        assert!(h.conn.dropped_bytes() > 0);
        let got = h.sums();
        let fine = ok("GET", "/fine", b"", 200, b"fine");
        // The head given up (its target is `/aaa...`, its start line longer than the
        // bound) is not reported; its answer is dropped, and the next request has its own.
        // On a fresh connection too: the bytes given up began as a request, so the
        // connection is still followed.
        let mut expect = if answered_before { vec![ok("GET", "/first", b"", 200, b"one")] } else { vec![] };
        expect.push(fine);
        assert_eq!(got, expect, "{got:?}");
        assert_eq!(h.conn.orphan_responses(), 1);
    }
}

/// A head whose field outgrows the bound (a 2 MiB header sent in 4 KiB writes, answered
/// 431): its start line and complete fields are reported, incomplete, `gap`, with its
/// answer, the dropped bytes after its last complete line counted lost; the exchanges
/// after it on the connection are reported whole. It was once all dropped, and the
/// connection with it, as not HTTP.
#[test]
fn a_head_over_the_bound_is_reported_cut_and_the_connection_followed() {
    for answered_before in [false, true] {
        let mut h = Harness::new();
        if answered_before {
            h.req(&get("/first"));
            h.resp(&ok_resp("one"));
        }
        let head = [&b"GET /big HTTP/1.1\r\nHost: x\r\nX-Big: "[..], &[b'A'; 2 << 20], b"\r\n\r\n"].concat();
        for part in head.chunks(4096) {
            h.req(part);
            assert!(h.conn.buffered_bytes() <= Limits::default().max_buffer);
        }
        h.resp(b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 3\r\n\r\nbig");
        for i in 0..3 {
            h.req(&get(&format!("/after{i}")));
            h.resp(&ok_resp("ok"));
        }
        h.close();
        let out = h.drain();
        let mut got = out.iter().map(sum).collect::<Vec<_>>();
        let big = got.remove(answered_before as usize);
        assert_eq!((big.method.as_str(), big.target.as_str(), big.status), ("GET", "/big", Some(431)), "{big:?}");
        assert_eq!((big.complete, big.note), (false, Some(Note::Gap)));
        let x = &out[answered_before as usize];
        assert_eq!(x.request.headers.iter().collect::<Vec<_>>(), vec![(&b"Host"[..], &b"x"[..])]);
        // Dropped when the head passed the bound: a 4 KiB write past 1 MiB, less the
        // start line and the Host line.
        let kept = b"GET /big HTTP/1.1\r\nHost: x\r\n".len() as u64;
        let dropped = h.conn.dropped_bytes();
        assert!(dropped > Limits::default().max_buffer as u64, "{dropped}");
        assert_eq!(x.lost_bytes(), dropped - kept);
        let mut expect: Vec<Sum> = (0..3).map(|i| ok("GET", &format!("/after{i}"), b"", 200, b"ok")).collect();
        if answered_before {
            expect.insert(0, ok("GET", "/first", b"", 200, b"one"));
        }
        assert_eq!(got, expect);
        assert_eq!(h.conn.orphan_responses(), 0);
    }
}

/// A request lost among pipelined requests (its answer comes after the next request was
/// sent): the answers that follow cannot be told apart, so none may be guessed. The lost
/// request's answer ("x") is first paired with `/fine`, held unconfirmed; the answer left
/// over ("fine") undoes that.
#[test]
fn lost_request_among_pipelined_requests_guesses_no_answer() {
    let mut h = Harness::new();
    h.req(&get("/first"));
    h.resp(&ok_resp("one"));
    h.lose_req(get("/lost").len());
    h.req(&get("/fine"));
    h.resp(&ok_resp("x"));
    h.resp(&ok_resp("fine"));
    h.tick_after_reorder();
    h.close();
    let got = h.sums();
    assert_eq!(got[0], ok("GET", "/first", b"", 200, b"one"));
    assert_eq!(got.len(), 2, "{got:?}");
    assert!(got[1] == ok("GET", "/fine", b"", 200, b"fine") || got[1].status.is_none(), "{got:?}");
    assert_eq!(got[1], alone("/fine", Note::Gap), "{got:?}");
    assert_eq!(h.conn.orphan_responses(), 2);
}

/// `/first` answered, a request lost, its answer read before `/second` was sent (a client
/// that waits for each answer), then `/second` answered: that pairing is held.
fn held_after_lost_request() -> Harness {
    let mut h = Harness::new();
    h.req(&get("/first"));
    h.resp(&ok_resp("one"));
    h.lose_req(get("/lost").len());
    h.resp(&ok_resp("lost"));
    h.req(&get("/second"));
    // The missing bytes are not coming: a gap.
    h.tick_after_reorder();
    h.resp(&ok_resp("two"));
    h
}

/// The same loss on a client that waits for each answer: the lost request's answer comes
/// before the next request is sent, and is dropped; the pairings after it are held only
/// until the next request, sent after their answers, confirms them.
#[test]
fn lost_request_then_one_by_one_pairs_after_confirmation() {
    let mut h = held_after_lost_request();
    // Held: an answer left over would still undo it.
    assert_eq!(h.sums(), vec![ok("GET", "/first", b"", 200, b"one")]);
    h.req(&get("/third"));
    h.resp(&ok_resp("three"));
    assert_eq!(
        h.sums(),
        vec![ok("GET", "/second", b"", 200, b"two"), ok("GET", "/third", b"", 200, b"three")]
    );
    assert_eq!(h.conn.orphan_responses(), 1);
}

/// A held pairing followed by a request that is never answered: the quiet confirms the
/// held one, and the unanswered request then times out.
#[test]
fn held_pairing_then_unanswered_request_both_reported() {
    let mut h = held_after_lost_request();
    h.req(&get("/unanswered"));
    assert_eq!(h.sums(), vec![ok("GET", "/first", b"", 200, b"one")], "held");
    h.conn.on_tick(h.ts + Limits::default().response_timeout_ns + 1);
    assert_eq!(
        h.sums(),
        vec![ok("GET", "/second", b"", 200, b"two"), alone("/unanswered", Note::ResponseTimeout)]
    );
}

/// A held pairing with nothing after it is confirmed when the responses stay quiet past
/// the response timeout, or when the connection ends.
#[test]
fn held_pairing_confirmed_by_quiet_or_close() {
    for end_by_close in [false, true] {
        let mut h = held_after_lost_request();
        assert_eq!(h.sums(), vec![ok("GET", "/first", b"", 200, b"one")], "held");
        if end_by_close {
            h.close();
        } else {
            h.conn.on_tick(h.ts + Limits::default().response_timeout_ns + 1);
        }
        assert_eq!(h.sums(), vec![ok("GET", "/second", b"", 200, b"two")], "closed: {end_by_close}");
    }
}

#[test]
fn paused_response_is_bounded() {
    let limits = Limits { max_buffer: 4096, ..Limits::default() };
    let mut h = Harness::with_limits(limits);
    for _ in 0..10 {
        h.resp(&ok_resp(&"r".repeat(1000)));
        assert!(h.conn.buffered_bytes() <= 4096);
    }
    h.close();
    assert!(h.drain().is_empty());
    assert!(h.conn.orphan_responses() > 0);
}

#[test]
fn close_delimited_body_is_complete_only_when_the_connection_closes() {
    let head = b"HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nstreaming ";
    // The server closes: the body ends there, complete.
    let mut h = Harness::new();
    h.req(&get("/stream"));
    h.resp(head);
    h.close();
    let out = h.drain();
    assert_eq!(out.len(), 1);
    assert!(out[0].complete(), "closed by the server: {:?}", out[0]);
    assert_eq!(out[0].note, None);
    // l7trace stops following it (exit, eviction) with the body still streaming: what was
    // seen is reported, and it says it is not the whole body.
    let mut h = Harness::new();
    h.req(&get("/stream"));
    h.resp(head);
    h.conn.on_abandon(h.ts + 1);
    let out = h.drain();
    assert_eq!(out.len(), 1);
    let r = out[0].response.as_ref().expect("the response so far");
    assert_eq!((r.complete, r.body_size), (false, 10));
    assert_eq!(out[0].note, Some(Note::Unfinished));
    assert!(!out[0].complete());
    // A request still waiting for its response when abandoned is unfinished, not closed.
    let mut h = Harness::new();
    h.req(&get("/pending"));
    h.conn.on_abandon(h.ts + 1);
    assert_eq!(h.sums(), vec![alone("/pending", Note::Unfinished)]);
}

#[test]
fn unanswered_pipelined_heads_are_bounded_in_bytes() {
    // A peer pipelines large heads and never reads an answer: the requests held for
    // their responses stay within the connection's buffer bound (or a few messages); the
    // oldest are given up, emitted alone and marked.
    let mut h = Harness::new();
    let big = "v".repeat(200 << 10);
    for i in 0..30 {
        h.req(format!("GET /p{i} HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n").as_bytes());
    }
    let out = h.drain();
    // At most BUDGET_CHECK_FROM + 1 (9) requests are held when each is this large.
    assert!(out.len() >= 30 - 9, "given up: {}", out.len());
    for (i, x) in out.iter().enumerate() {
        assert_eq!(sum(x), alone(&format!("/p{i}"), Note::Unfinished));
    }
}

#[test]
fn requests_given_up_unanswered_keep_later_responses_aligned() {
    // More requests in flight than are held: the oldest are given up (reported alone), and
    // their responses, when they come, answer them, not the requests after them.
    for (sent, lose_after) in [(1030, None), (1100, None), (1100, Some(40))] {
        let mut h = Harness::new();
        let mut reqs = Vec::new();
        for i in 0..sent {
            reqs.extend_from_slice(&get(&format!("/r{i}")));
        }
        h.req(&reqs);
        for i in 0..sent {
            if lose_after == Some(i) {
                h.lose_resp(ok_resp(&format!("body {i}")).len());
                continue;
            }
            h.resp(&ok_resp(&format!("body {i}")));
        }
        h.close();
        let out = h.sums();
        assert_eq!(out.len(), sent, "every request reported once");
        let given_up = sent - 1024;
        for (i, x) in out.iter().enumerate() {
            let target = format!("/r{i}");
            if i < given_up {
                assert_eq!(*x, alone(&target, Note::Unfinished), "{sent} {lose_after:?}");
            } else if x.status.is_some() {
                // Paired: with its own response, never another's.
                assert_eq!(*x, ok("GET", &target, b"", 200, format!("body {i}").as_bytes()), "{sent} {lose_after:?}");
            } else {
                assert!(lose_after.is_some(), "{target} unpaired with every response seen");
                assert!(!x.complete);
            }
        }
        if lose_after.is_none() {
            assert!(out[given_up..].iter().all(|x| x.status == Some(200)), "all held requests paired");
        }
    }
}


/// A chunked response whose first syscall's uncaptured part hides chunk-size lines (a
/// read larger than the capture: curl reads 100 KiB at a time). Returns the bytes of its
/// head and first two chunks as captured, the syscall's length, and the true body size.
fn blind_start() -> (Vec<u8>, u64, u64) {
    let captured = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\n0123456789\r\n14\r\nxxxxxxxxxx".to_vec();
    // The other 10 bytes of the 0x14 chunk, its CRLF, and a whole chunk: all uncaptured.
    let hidden = "xxxxxxxxxx\r\n5\r\nabcde\r\n".len() as u64;
    (captured.clone(), captured.len() as u64 + hidden, 35)
}

#[test]
fn a_chunked_body_whose_size_lines_went_uncaptured_ends_at_its_zero_chunk() {
    // The zero-size chunk alone in the next syscall (its CRLF was the last hidden bytes),
    // at the end of a bigger captured one, and split over two.
    let ends: [&[&[u8]]; 3] = [&[b"0\r\n\r\n"], &[b"5\r\nfghij\r\n0\r\n\r\n"], &[b"5\r\nfghij\r\n0\r", b"\n\r\n"]];
    for (i, end) in ends.iter().enumerate() {
        let mut h = Harness::new();
        h.req(&get("/c"));
        let (captured, len, body) = blind_start();
        h.resp_partial(len, &captured);
        for part in *end {
            h.resp(part);
        }
        let end_ts = h.ts;
        h.req(&get("/after"));
        h.resp(&ok_resp("after"));
        let out = h.drain();
        assert_eq!(out.len(), 2, "case {i}: {out:?}");
        let r = out[0].response.as_ref().expect("response");
        assert_eq!(r.last_ts_ns, end_ts, "case {i}: ends with its last syscall");
        // From the hole on, framing counts as body: the hidden "\r\n5\r\n" before
        // "abcde"; in the last two cases also the CRLF after it and the visible "5\r\n"
        // (in the first, that CRLF is known to be the zero chunk's and is not counted).
        let (true_size, framing) = if i == 0 { (body, 5) } else { (body + 5, 5 + 5) };
        assert_eq!(r.body_size, true_size + framing, "case {i}");
        assert_eq!(r.body.as_slice(), b"0123456789xxxxxxxxxx", "case {i}: the prefix before the hole");
        assert_eq!((r.complete, out[0].note, out[0].lost_bytes()), (false, Some(Note::Truncated), 0), "case {i}");
        assert_eq!(sum(&out[1]), ok("GET", "/after", b"", 200, b"after"), "case {i}");
    }
}

#[test]
fn a_blind_chunked_body_ends_at_the_next_start_line_or_close() {
    // Its end hidden too: the next response's start line, at a syscall's start, ends it.
    let mut h = Harness::new();
    h.req(&get("/c"));
    let (captured, len, _) = blind_start();
    h.resp_partial(len + 5, &captured);
    h.req(&get("/after"));
    h.resp(&ok_resp("after"));
    // What the hidden bytes held is unknown (a gap to the pairing): the answer after them
    // is paired by time, once the request side cannot change any more.
    h.tick_after_reorder();
    let out = h.drain();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!((sum(&out[0]).status, out[0].note), (Some(200), Some(Note::Truncated)));
    assert_eq!(sum(&out[1]), ok("GET", "/after", b"", 200, b"after"));
    // Pipelined: the next response right behind the zero-size chunk in one syscall.
    let mut h = Harness::new();
    h.req(&get("/c"));
    h.req(&get("/after"));
    h.resp_partial(len, &captured);
    h.resp(&[&b"0\r\n\r\n"[..], &ok_resp("after")].concat());
    // /after still waited for its answer: it might have been among the hidden bytes.
    h.tick_after_reorder();
    let out = h.drain();
    assert_eq!(out.len(), 2, "{out:?}");
    assert_eq!(out[0].note, Some(Note::Truncated));
    assert_eq!(sum(&out[1]), ok("GET", "/after", b"", 200, b"after"));
    // The same bytes inside the body are not its end.
    let mut h = Harness::new();
    h.req(&get("/c"));
    h.resp_partial(len, &captured);
    h.resp(b"9\r\nab\r\n0\r\n\r\nc\r\n");
    // Nor at the end of a syscall's captured part when more of it went uncaptured.
    h.resp_partial(100, b"9\r\nabcdefghi\r\n0\r\n\r\n");
    h.close();
    let out = h.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    let r = out[0].response.as_ref().expect("response");
    assert_eq!(out[0].note, Some(Note::Truncated));
    assert!(r.body_size >= 35 + 9 + 100, "{}", r.body_size);
    // Bytes lost (not merely uncaptured) in a blind body: a gap, as anywhere else.
    let mut h = Harness::new();
    h.req(&get("/c"));
    h.resp_partial(len, &captured);
    h.lose_resp(100);
    h.resp(b"0\r\n\r\n");
    h.req(&get("/after"));
    h.resp(&ok_resp("after"));
    h.tick_after_reorder();
    let out = h.drain();
    assert_eq!(out[0].lost_bytes(), 100, "{out:?}");
    assert_eq!(sum(out.last().unwrap()), ok("GET", "/after", b"", 200, b"after"));
}

/// Pipelined /c, /d, /e: /c's answer goes blind in a read that also hides the rest of its
/// body ("0\r\n\r\n") and `hidden_after` bytes of /d's answer; `then` follows.
fn pipelined_after_blind(hidden_after: usize, then: &[&[u8]]) -> Vec<Sum> {
    let mut h = Harness::new();
    for t in ["/c", "/d", "/e"] {
        h.req(&get(t));
    }
    let (captured, len, _) = blind_start();
    h.resp_partial(len + 5 + hidden_after as u64, &captured);
    for seg in then {
        h.resp(seg);
    }
    h.tick_after_reorder();
    h.close();
    h.sums()
}

#[test]
fn a_blind_body_whose_hidden_end_held_the_next_response_misaligns_nothing() {
    // The end of /c's body and all of /d's response hidden in one syscall: /e's response
    // is not /d's, and /d is reported without one.
    let got = pipelined_after_blind(ok_resp("dd").len(), &[&ok_resp("ee")]);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!((got[0].target.as_str(), got[0].status, got[0].note), ("/c", Some(200), Some(Note::Truncated)));
    assert_ne!(got[1].resp_body, b"ee".to_vec(), "/d paired with /e's answer: {got:?}");
    assert!(!got[1].complete && !got[2].complete, "{got:?}");
}

#[test]
fn a_blind_body_with_no_byte_for_the_response_timeout_ends() {
    let mut h = Harness::new();
    h.req(&get("/c"));
    let (captured, len, _) = blind_start();
    h.resp_partial(len + 5, &captured);
    let last = h.ts;
    h.req(&get("/never"));
    h.conn.on_tick(last + Limits::default().response_timeout_ns / 2);
    assert!(h.drain().is_empty(), "ended before the timeout");
    h.conn.on_tick(last + Limits::default().response_timeout_ns + 1);
    let out = h.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((sum(&out[0]).target.as_str(), out[0].note), ("/c", Some(Note::Truncated)));
    assert_eq!(out[0].response.as_ref().map(|r| r.last_ts_ns), Some(last), "ends at its last byte");
    // The request after it is no longer held up: it times out, as `truncated` since what
    // the hidden bytes held is unknown (its answer cannot be among them, but which
    // requests came after them is not tracked), and they were counted, not lost.
    h.conn.on_tick(h.ts + 2 * Limits::default().response_timeout_ns + 1);
    let out = h.drain();
    let got = out.iter().map(|x| (sum(x).target, x.note)).collect::<Vec<_>>();
    assert_eq!(got, vec![("/never".to_string(), Some(Note::Truncated))]);
}

#[test]
fn a_blind_zero_chunk_split_after_hidden_bytes_and_a_blind_request_body() {
    // "0\r\n" and "\r\n" in two syscalls, the CRLF before them hidden.
    let mut h = Harness::new();
    h.req(&get("/c"));
    let (captured, len, body) = blind_start();
    h.resp_partial(len, &captured);
    h.resp(b"0\r\n");
    h.resp(b"\r\n");
    let end_ts = h.ts;
    h.req(&get("/after"));
    h.resp(&ok_resp("after"));
    let out = h.drain();
    assert_eq!(out.len(), 2, "{out:?}");
    let r = out[0].response.as_ref().expect("response");
    assert_eq!((r.body_size, r.last_ts_ns, out[0].note), (body + 5, end_ts, Some(Note::Truncated)));
    assert_eq!(sum(&out[1]), ok("GET", "/after", b"", 200, b"after"));
    // A chunked upload whose writes hide chunk-size lines: the request is followed blind.
    let mut h = Harness::new();
    let head = b"POST /up HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n5\r\nab";
    h.req_partial(head.len() as u64 + "cde\r\n6\r\nabcdef\r\n".len() as u64, head);
    h.req(b"0\r\n\r\n");
    h.resp(&ok_resp("stored"));
    h.req(&get("/after"));
    h.resp(&ok_resp("after"));
    let got = h.sums();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].method.as_str(), got[0].status, got[0].note), ("POST", Some(200), Some(Note::Truncated)));
    assert_eq!(got[0].resp_body, b"stored".to_vec());
    assert_eq!(got[1], ok("GET", "/after", b"", 200, b"after"));
}

#[test]
fn a_request_line_of_control_bytes_is_not_waited_on_past_its_bound() {
    // "GET " then bytes that never end the line (binary after a resync, say): held while
    // the line may still be a request, let go once it is longer than any server takes.
    let mut h = Harness::new();
    h.req(&get("/first"));
    h.resp(&ok_resp("first"));
    h.req(b"GET /");
    for _ in 0..9 {
        h.req(&[1u8; 1000]);
    }
    assert!(h.conn.buffered_bytes() < 1000, "held {}", h.conn.buffered_bytes());
    h.req(b"\r\n");
    h.req(&get("/real"));
    h.resp(&ok_resp("real"));
    h.close();
    let got = h.sums();
    assert_eq!(got.first(), Some(&ok("GET", "/first", b"", 200, b"first")));
    assert_eq!(got.last(), Some(&ok("GET", "/real", b"", 200, b"real")), "{got:?}");
}

#[test]
fn a_blind_body_ended_by_a_later_zero_chunk_misaligns_nothing() {
    // Pipelined /c, /d, /e, /c's and /d's answers chunked: one read hides /c's end, /d's
    // head and the start of its body; the next ends with /d's zero-size chunk, taken for
    // /c's end. /d's head went unseen: /e's answer must not become /d's.
    let d_head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\ndd";
    let got = pipelined_after_blind(d_head.len(), &[b"d\r\n0\r\n\r\n", &ok_resp("ee")]);
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0].note, Some(Note::Truncated));
    assert!(got[1..].iter().all(|x| x.resp_body != b"ee" || x.target == "/e"), "an answer moved: {got:?}");
}

#[test]
fn a_blind_body_ends_before_a_start_line_cut_by_the_syscall() {
    let mut h = Harness::new();
    h.req(&get("/c"));
    h.req(&get("/after"));
    let (captured, len, _) = blind_start();
    h.resp_partial(len, &captured);
    h.resp(b"5\r\nfghij\r\n0\r\n\r\nHTT");
    h.resp(b"P/1.1 200 OK\r\nContent-Length: 5\r\n\r\nafter");
    h.tick_after_reorder();
    let got = h.sums();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].target.as_str(), got[0].note), ("/c", Some(Note::Truncated)));
    assert_eq!(got[1], ok("GET", "/after", b"", 200, b"after"));
}

/// A response whose head went by uncaptured (sent from a pipe with splice, or by io_uring:
/// counted, not copied): its request is reported without it, `truncated`, not `gap`, since
/// no byte was lost; no answer is made up.
#[test]
fn a_response_counted_but_not_captured_is_truncated_not_a_gap() {
    for end in ["close", "timeout"] {
        let mut h = Harness::new();
        h.req(&get("/spliced"));
        h.resp_partial(ok_resp("x").len() as u64, b"");
        match end {
            "close" => h.close(),
            _ => h.conn.on_tick(h.ts + Limits::default().response_timeout_ns + 1),
        }
        let out = h.drain();
        let got = out.iter().map(|x| (sum(x).target, x.response.is_some(), x.note, x.lost_bytes())).collect::<Vec<_>>();
        assert_eq!(got, vec![("/spliced".to_string(), false, Some(Note::Truncated), 0)], "{end}");
    }
}

/// Response bytes that could not be framed (a broken chunk-size line) were captured, not
/// hidden: the request left unanswered after them is a `gap`, not `truncated`.
#[test]
fn a_request_unanswered_after_a_framing_error_is_a_gap() {
    let mut h = Harness::new();
    h.req(&get("/bad"));
    h.resp(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n");
    h.req(&get("/after"));
    h.close();
    let out = h.drain();
    let notes: Vec<(String, Option<Note>)> = out.iter().map(|x| (sum(x).target, x.note)).collect();
    assert_eq!(notes, vec![("/bad".to_string(), Some(Note::ParseError)), ("/after".to_string(), Some(Note::Gap))]);
}

#[test]
fn a_request_line_cut_short_by_the_capture_is_reported_with_its_target_so_far() {
    // A target longer than a syscall's capture (a long query string in one write): the
    // start line never ends in what was captured. The request is still reported, its
    // target the bytes that came, incomplete, with its own response; the next is intact.
    let long = format!("GET /search?q={} HTTP/1.1\r\nHost: example.test\r\n\r\n", "a".repeat(20_000));
    let mut h = Harness::new();
    h.req_partial(long.len() as u64, &long.as_bytes()[..16_384]);
    h.resp(&ok_resp("found"));
    h.req(&get("/next"));
    h.resp(&ok_resp("two"));
    h.close();
    let got = h.drain();
    assert_eq!(got.len(), 2, "{got:?}");
    let s = sum(&got[0]);
    assert_eq!(s.method, "GET");
    assert_eq!(s.target, format!("/search?q={}", "a".repeat(16_384 - 14)), "the target as far as it was captured");
    assert_eq!((s.status, s.complete, s.note), (Some(200), false, Some(Note::Truncated)));
    assert_eq!(got[0].request.lost_bytes, 0, "counted, not lost");
    assert!(got[0].request.headers.is_empty(), "no field is made up");
    assert!(matches!(got[0].request.start, crate::protocols::StartLine::Request { version: crate::protocols::VERSION_UNKNOWN, .. }));
    assert_eq!(sum(&got[1]), ok("GET", "/next", b"", 200, b"two"));
    // Cut by a loss instead, the line is not reported: what the gap held is unknown.
    let mut h = Harness::new();
    h.req(&long.as_bytes()[..16_384]);
    h.lose_req(long.len() - 16_384);
    h.resp(&ok_resp("found"));
    h.req(&get("/next"));
    h.resp(&ok_resp("two"));
    h.tick_after_reorder();
    h.close();
    let got = h.sums();
    assert!(got.iter().all(|s| s.target != "/search"), "{got:?}");
    assert_eq!(got.last(), Some(&ok("GET", "/next", b"", 200, b"two")), "{got:?}");
    // A response whose status line was cut: its status, with its own request.
    let got: Vec<Sum> = after_a_cut_response(&format!("HTTP/1.1 200 {}\r\nContent-Length: 0\r\n\r\n", "R".repeat(20_000))).iter().map(sum).collect();
    assert_eq!(got.len(), 2, "{got:?}");
    assert_eq!((got[0].target.as_str(), got[0].status, got[0].complete, got[0].note), ("/1", Some(200), false, Some(Note::Truncated)));
    assert_eq!(got[1], ok("GET", "/2", b"", 200, b"two"));
    // An interim answer cut so (a 100 Continue under a capture of 16 bytes) is not taken
    // for the response: the final one, whole, is.
    let mut h = Harness::new();
    h.req(b"POST /up HTTP/1.1\r\nHost: h\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n");
    let cont = b"HTTP/1.1 100 Continue\r\n\r\n";
    h.resp_partial(cont.len() as u64, &cont[..16]);
    h.req(b"ok");
    h.resp(&ok_resp("done"));
    h.close();
    let got = h.sums();
    assert_eq!(got.len(), 1, "{got:?}");
    assert_eq!((got[0].target.as_str(), got[0].status, got[0].resp_body.as_slice()), ("/up", Some(200), &b"done"[..]));
}
