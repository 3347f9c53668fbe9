//! Table-driven fixtures, fed whole, split at every byte offset, and one byte per segment.

use super::Http1Conn;
use crate::protocols::{Direction, Exchange, Limits, Note, Process, Role, StartLine};

/// A thread of process 100 for the segments of these tests.
pub fn thread(tid: u32) -> Process {
    Process { pid: 100, tid, comm: *b"t\0\0\0\0\0\0\0\0\0\0\0\0\0\0\0" }
}

/// Feeds a client-side connection: requests are Egress, responses Ingress. Every segment
/// gets the next timestamp, so the order of calls is the order of time.
pub(super) struct Harness {
    pub conn: Http1Conn,
    pub req_pos: u64,
    pub resp_pos: u64,
    pub ts: u64,
    /// Added to response timestamps: responses delivered before their requests (perf
    /// buffers reorder delivery) still happened after them.
    pub resp_delay: u64,
}

impl Harness {
    pub fn new() -> Self {
        Self::with_limits(Limits::default())
    }

    pub fn with_limits(limits: Limits) -> Self {
        Harness { conn: Http1Conn::new(Role::Client, limits), req_pos: 0, resp_pos: 0, ts: 1000, resp_delay: 0 }
    }

    fn tick_ts(&mut self) -> u64 {
        self.ts += 10;
        self.ts
    }

    pub fn req(&mut self, data: &[u8]) {
        let ts = self.tick_ts();
        self.conn.on_data(Direction::Egress, self.req_pos, data.len() as u64, data, ts, thread(7));
        self.req_pos += data.len() as u64;
    }

    pub fn resp(&mut self, data: &[u8]) {
        let ts = self.tick_ts() + self.resp_delay;
        self.conn.on_data(Direction::Ingress, self.resp_pos, data.len() as u64, data, ts, thread(8));
        self.resp_pos += data.len() as u64;
    }

    /// A response segment of `len` stream bytes of which only `data` was captured.
    pub fn resp_partial(&mut self, len: u64, data: &[u8]) {
        let ts = self.tick_ts();
        self.conn.on_data(Direction::Ingress, self.resp_pos, len, data, ts, thread(8));
        self.resp_pos += len;
    }

    /// A request segment of `len` stream bytes of which only `data` was captured.
    pub fn req_partial(&mut self, len: u64, data: &[u8]) {
        let ts = self.tick_ts();
        self.conn.on_data(Direction::Egress, self.req_pos, len, data, ts, thread(7));
        self.req_pos += len;
    }

    /// Bytes that were sent but whose events were lost.
    pub fn lose_req(&mut self, n: usize) {
        self.tick_ts();
        self.req_pos += n as u64;
    }

    pub fn lose_resp(&mut self, n: usize) {
        self.tick_ts();
        self.resp_pos += n as u64;
    }

    pub fn close(&mut self) {
        let ts = self.tick_ts();
        self.conn.on_close(ts);
    }

    pub fn drain(&mut self) -> Vec<Exchange> {
        let mut out = Vec::new();
        self.conn.drain(&mut out);
        out
    }
}

/// What a fixture expects of one exchange.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Sum {
    pub method: String,
    pub target: String,
    pub req_body: Vec<u8>,
    pub status: Option<u16>,
    pub resp_body: Vec<u8>,
    pub resp_size: u64,
    pub complete: bool,
    pub note: Option<Note>,
    /// Statuses of the interim (1xx) heads kept with the exchange.
    pub interim: Vec<u16>,
    /// Trailer fields of the request and of the response.
    pub trailers: [Vec<(String, String)>; 2],
}

pub(super) fn sum(x: &Exchange) -> Sum {
    let (method, target) = match &x.request.start {
        StartLine::Request { method, target, .. } => (method.to_string(), String::from_utf8_lossy(target).into_owned()),
        StartLine::Response { .. } => panic!("request holds a response start line"),
    };
    let status = x.response.as_ref().map(|r| match r.start {
        StartLine::Response { status, .. } => status,
        StartLine::Request { .. } => panic!("response holds a request start line"),
    });
    Sum {
        method,
        target,
        req_body: x.request.body.clone(),
        status,
        resp_body: x.response.as_ref().map_or(Vec::new(), |r| r.body.clone()),
        resp_size: x.response.as_ref().map_or(0, |r| r.body_size),
        complete: x.complete(),
        interim: x
            .interim
            .iter()
            .map(|m| match m.start {
                StartLine::Response { status, .. } => status,
                StartLine::Request { .. } => panic!("interim holds a request start line"),
            })
            .collect(),
        note: x.note,
        trailers: [Some(&x.request), x.response.as_ref()].map(|m| {
            m.map_or(Vec::new(), |m| {
                m.trailers.iter().map(|(n, v)| (String::from_utf8_lossy(n).into(), String::from_utf8_lossy(v).into())).collect()
            })
        }),
    }
}

pub(super) fn ok(method: &str, target: &str, req_body: &[u8], status: u16, resp_body: &[u8]) -> Sum {
    Sum {
        method: method.into(),
        target: target.into(),
        req_body: req_body.to_vec(),
        status: Some(status),
        resp_body: resp_body.to_vec(),
        resp_size: resp_body.len() as u64,
        complete: true,
        note: None,
        interim: Vec::new(),
        trailers: Default::default(),
    }
}

/// `x` with these trailer fields in the request (0) or the response (1).
fn with_trailers(mut x: Sum, side: usize, fields: &[(&str, &str)]) -> Sum {
    x.trailers[side] = fields.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect();
    x
}

/// `x` with interim heads of these statuses.
fn after_interim(mut x: Sum, statuses: &[u16]) -> Sum {
    x.interim = statuses.to_vec();
    x
}

/// An exchange whose framing fields could not be trusted: reported, incomplete, marked.
fn unframed(mut x: Sum) -> Sum {
    x.complete = false;
    x.note = Some(Note::ParseError);
    x
}

struct Fixture {
    name: &'static str,
    req: Vec<u8>,
    resp: Vec<u8>,
    expect: Vec<Sum>,
}

fn get(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: example.test\r\nUser-Agent: t/1\r\n\r\n").into_bytes()
}

fn ok_resp(body: &str) -> Vec<u8> {
    format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
}

fn cat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn fixtures() -> Vec<Fixture> {
    let chunked = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\
5;name=value\r\nhello\r\n6 ; x=\"y\"\r\n world\r\n0\r\nX-Trailer: t\r\nX-Other: u\r\n\r\n";
    let upgrade_req = b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello";
    let mut upgraded = ok("GET", "/ws", b"", 101, b"");
    upgraded.note = Some(Note::Upgrade);
    let many = |n: usize| -> (Vec<u8>, Vec<u8>, Vec<Sum>) {
        let targets: Vec<String> = (0..n).map(|i| format!("/item/{i}")).collect();
        let req = targets.iter().flat_map(|t| get(t)).collect();
        let resp = targets.iter().flat_map(|t| ok_resp(t)).collect();
        let expect = targets.iter().map(|t| ok("GET", t, b"", 200, t.as_bytes())).collect();
        (req, resp, expect)
    };
    let (pipe_req, pipe_resp, pipe_expect) = many(3);
    let (ka_req, ka_resp, ka_expect) = many(5);
    vec![
        Fixture {
            name: "get with content-length",
            req: get("/index.html"),
            resp: ok_resp("hello"),
            expect: vec![ok("GET", "/index.html", b"", 200, b"hello")],
        },
        Fixture {
            name: "post with body",
            req: b"POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world".to_vec(),
            resp: b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok".to_vec(),
            expect: vec![ok("POST", "/submit", b"hello world", 201, b"ok")],
        },
        Fixture {
            name: "chunked with extensions and trailers",
            req: get("/chunked"),
            resp: chunked.to_vec(),
            expect: vec![with_trailers(ok("GET", "/chunked", b"", 200, b"hello world"), 1, &[("X-Trailer", "t"), ("X-Other", "u")])],
        },
        Fixture {
            name: "chunked request with trailers, folded and malformed ones kept as they came, then the next",
            req: cat(&[
                b"POST /up HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\ndata\r\n0\r\n\
Digest: sha-256=abc\r\nX-Folded: a\r\n b\r\nno colon here\r\n\r\n",
                &get("/next"),
            ]),
            resp: cat(&[&ok_resp("ok"), &ok_resp("n")]),
            expect: vec![
                with_trailers(
                    ok("POST", "/up", b"data", 200, b"ok"),
                    0,
                    &[("Digest", "sha-256=abc"), ("X-Folded", "a   b"), ("no colon here", "")],
                ),
                ok("GET", "/next", b"", 200, b"n"),
            ],
        },
        Fixture {
            name: "chunked without trailer fields has none",
            req: get("/c"),
            resp: b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n".to_vec(),
            expect: vec![ok("GET", "/c", b"", 200, b"hi")],
        },
        Fixture {
            name: "head response has no body",
            req: cat(&[b"HEAD /big HTTP/1.1\r\nHost: a\r\n\r\n", &get("/next")]),
            resp: cat(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\n", &ok_resp("n")]),
            expect: vec![ok("HEAD", "/big", b"", 200, b""), ok("GET", "/next", b"", 200, b"n")],
        },
        Fixture {
            name: "204",
            req: cat(&[b"DELETE /x HTTP/1.1\r\n\r\n", &get("/next")]),
            resp: cat(&[b"HTTP/1.1 204 No Content\r\n\r\n", &ok_resp("n")]),
            expect: vec![ok("DELETE", "/x", b"", 204, b""), ok("GET", "/next", b"", 200, b"n")],
        },
        Fixture {
            name: "304 ignores content-length",
            req: cat(&[&get("/cached"), &get("/next")]),
            resp: cat(&[b"HTTP/1.1 304 Not Modified\r\nContent-Length: 10\r\n\r\n", &ok_resp("n")]),
            expect: vec![ok("GET", "/cached", b"", 304, b""), ok("GET", "/next", b"", 200, b"n")],
        },
        Fixture {
            name: "100-continue then 200",
            req: b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata".to_vec(),
            resp: cat(&[b"HTTP/1.1 100 Continue\r\n\r\n", &ok_resp("ok")]),
            expect: vec![after_interim(ok("POST", "/up", b"data", 200, b"ok"), &[100])],
        },
        Fixture {
            name: "103 and 100 before the final response, then the next exchange",
            req: cat(&[b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata", &get("/next")]),
            resp: cat(&[
                b"HTTP/1.1 103 Early Hints\r\nLink: </a.css>; rel=preload\r\n\r\nHTTP/1.1 100 Continue\r\n\r\n",
                &ok_resp("ok"),
                &ok_resp("n"),
            ]),
            expect: vec![after_interim(ok("POST", "/up", b"data", 200, b"ok"), &[103, 100]), ok("GET", "/next", b"", 200, b"n")],
        },
        Fixture {
            name: "101 upgrade stops parsing",
            req: upgrade_req.to_vec(),
            resp: b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x82\x03abcHTTP/1.1 200 OK\r\n\r\n"
                .to_vec(),
            expect: vec![upgraded],
        },
        Fixture {
            name: "close-delimited response",
            req: get("/stream"),
            resp: b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nall of this until the close".to_vec(),
            expect: vec![ok("GET", "/stream", b"", 200, b"all of this until the close")],
        },
        Fixture {
            name: "http/1.0",
            req: b"GET /old HTTP/1.0\r\n\r\n".to_vec(),
            resp: b"HTTP/1.0 200 OK\r\nContent-Length: 3\r\n\r\nabc".to_vec(),
            expect: vec![ok("GET", "/old", b"", 200, b"abc")],
        },
        Fixture {
            name: "request with an invalid content-length",
            req: b"POST /bad HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello".to_vec(),
            resp: b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad".to_vec(),
            expect: vec![unframed(ok("POST", "/bad", b"", 400, b"bad"))],
        },
        Fixture {
            name: "request with two different content-lengths",
            req: b"POST /bad HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello".to_vec(),
            resp: b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad".to_vec(),
            expect: vec![unframed(ok("POST", "/bad", b"", 400, b"bad"))],
        },
        Fixture {
            name: "request coding without final chunked",
            req: b"POST /gz HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n\x1f\x8b".to_vec(),
            resp: b"HTTP/1.1 400 Bad Request\r\nContent-Length: 3\r\n\r\nbad".to_vec(),
            expect: vec![unframed(ok("POST", "/gz", b"", 400, b"bad"))],
        },
        Fixture {
            name: "response with two different content-lengths, then another",
            req: cat(&[&get("/two"), &get("/next")]),
            resp: cat(&[b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok!", &ok_resp("n")]),
            expect: vec![unframed(ok("GET", "/two", b"", 200, b"")), ok("GET", "/next", b"", 200, b"n")],
        },
        Fixture {
            name: "bad content-length where no body may follow",
            req: cat(&[&get("/cached"), b"HEAD /h HTTP/1.1\r\n\r\n", &get("/next")]),
            resp: cat(&[
                b"HTTP/1.1 304 Not Modified\r\nContent-Length: abc\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nContent-Length: 1, 2\r\n\r\n",
                &ok_resp("n"),
            ]),
            expect: vec![ok("GET", "/cached", b"", 304, b""), ok("HEAD", "/h", b"", 200, b""), ok("GET", "/next", b"", 200, b"n")],
        },
        Fixture {
            name: "response with an obs-fold",
            req: cat(&[&get("/fold"), &get("/next")]),
            resp: cat(&[b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n\tb\r\nContent-Length: 2\r\n\r\nok", &ok_resp("n")]),
            expect: vec![ok("GET", "/fold", b"", 200, b"ok"), ok("GET", "/next", b"", 200, b"n")],
        },
        Fixture {
            name: "empty lines between messages",
            req: cat(&[b"\r\n", b"POST /p HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\n", &get("/next")]),
            resp: cat(&[b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny\r\n\n", &ok_resp("n")]),
            expect: vec![ok("POST", "/p", b"x", 200, b"y"), ok("GET", "/next", b"", 200, b"n")],
        },
        Fixture { name: "pipelined 3", req: pipe_req, resp: pipe_resp, expect: pipe_expect },
        Fixture { name: "keep-alive 5", req: ka_req, resp: ka_resp, expect: ka_expect },
    ]
}

/// Feeds `req` and `resp` cut into segments at `req_cuts` / `resp_cuts`, requests first
/// unless `interleave`, then closes.
fn feed(req: &[u8], req_cuts: &[usize], resp: &[u8], resp_cuts: &[usize], interleave: bool) -> Vec<Sum> {
    let pieces = |b: &[u8], cuts: &[usize]| -> Vec<Vec<u8>> {
        let mut bounds = vec![0];
        bounds.extend(cuts.iter().copied().filter(|&c| c > 0 && c < b.len()));
        bounds.push(b.len());
        bounds.windows(2).map(|w| b[w[0]..w[1]].to_vec()).collect()
    };
    let (qs, rs) = (pieces(req, req_cuts), pieces(resp, resp_cuts));
    let mut h = Harness::new();
    if interleave {
        h.resp_delay = 1_000_000_000;
        for i in 0..qs.len().max(rs.len()) {
            if let Some(q) = qs.get(i) {
                h.req(q);
            }
            if let Some(r) = rs.get(i) {
                h.resp(r);
            }
        }
    } else {
        qs.iter().for_each(|q| h.req(q));
        rs.iter().for_each(|r| h.resp(r));
    }
    h.close();
    let out = h.drain();
    out.iter().map(sum).collect()
}

#[test]
fn fixtures_whole() {
    for fx in fixtures() {
        assert_eq!(feed(&fx.req, &[], &fx.resp, &[], false), fx.expect, "{}", fx.name);
    }
}

#[test]
fn fixtures_split_at_every_offset() {
    for fx in fixtures() {
        for k in 0..=fx.req.len() {
            assert_eq!(feed(&fx.req, &[k], &fx.resp, &[], false), fx.expect, "{} request cut at {k}", fx.name);
        }
        for k in 0..=fx.resp.len() {
            assert_eq!(feed(&fx.req, &[], &fx.resp, &[k], false), fx.expect, "{} response cut at {k}", fx.name);
        }
    }
}

#[test]
fn fixtures_one_byte_per_segment() {
    for fx in fixtures() {
        let rq: Vec<usize> = (1..fx.req.len()).collect();
        let rs: Vec<usize> = (1..fx.resp.len()).collect();
        assert_eq!(feed(&fx.req, &rq, &fx.resp, &rs, false), fx.expect, "{} bytewise", fx.name);
        // Response bytes may now come before the request is parsed: pairing must wait.
        assert_eq!(feed(&fx.req, &rq, &fx.resp, &rs, true), fx.expect, "{} bytewise interleaved", fx.name);
    }
}

#[test]
fn exchanges_come_out_before_close_on_keep_alive() {
    let mut h = Harness::new();
    for i in 0..5 {
        h.req(&get(&format!("/{i}")));
        h.resp(&ok_resp("x"));
        let out = h.drain();
        assert_eq!(out.len(), 1, "exchange {i} emitted as soon as complete");
        assert!(out[0].complete());
    }
    assert!(!h.conn.is_done());
}

#[test]
fn timestamps_and_thread_come_from_first_and_last_segments() {
    let mut h = Harness::new();
    h.req(b"GET / HTTP/1.1\r\n");
    h.req(b"\r\n");
    h.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nab");
    h.resp(b"cd");
    let out = h.drain();
    assert_eq!(out.len(), 1);
    let (q, r) = (&out[0].request, out[0].response.as_ref().expect("response"));
    assert_eq!((q.first_ts_ns, q.last_ts_ns, q.process), (1010, 1020, thread(7)));
    assert_eq!((r.first_ts_ns, r.last_ts_ns, r.process), (1030, 1040, thread(8)));
}

#[test]
fn body_is_kept_up_to_max_body() {
    let mut h = Harness::with_limits(Limits { max_body: 4, ..Limits::default() });
    h.req(&get("/"));
    h.resp(&ok_resp("0123456789"));
    let out = h.drain();
    let r = out[0].response.as_ref().expect("response");
    assert_eq!((r.body.as_slice(), r.body_size, r.body_truncated), (&b"0123"[..], 10, true));
    assert!(out[0].complete());
}

#[test]
fn server_role_reads_requests_from_ingress() {
    let mut c = Http1Conn::new(Role::Server, Limits::default());
    let (q, r) = (get("/s"), ok_resp("srv"));
    c.on_data(Direction::Ingress, 0, q.len() as u64, &q, 1, thread(1));
    c.on_data(Direction::Egress, 0, r.len() as u64, &r, 2, thread(1));
    let mut out = Vec::new();
    c.drain(&mut out);
    assert_eq!(out.iter().map(sum).collect::<Vec<_>>(), vec![ok("GET", "/s", b"", 200, b"srv")]);
}

#[test]
fn request_version_is_the_minor_number() {
    let mut h = Harness::new();
    h.req(b"GET / HTTP/1.0\r\n\r\n");
    h.resp(b"HTTP/1.0 204 No Content\r\n\r\n");
    let out = h.drain();
    assert!(matches!(out[0].request.start, StartLine::Request { version: 0, .. }));
}


/// Empty lines before a start line (a CRLF after a body, RFC 9112 section 2.2) sent with
/// the previous message: skipped, so the next message starts, and is stamped, at its
/// start line. Stamped at the CRLF, the next response looked older than its request and
/// was dropped, and every later response paired with the request before its own.
#[test]
fn empty_lines_between_messages_are_not_their_start() {
    let mut h = Harness::new();
    h.req(&get("/1"));
    h.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\na\r\n");
    h.req(&get("/2"));
    h.resp(&ok_resp("b"));
    h.req(b"POST /3 HTTP/1.1\r\nContent-Length: 1\r\n\r\nc\r\n\r\n");
    h.resp(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nc\n");
    h.req(&get("/4"));
    h.resp(&ok_resp("d"));
    let out = h.drain();
    let expect = [ok("GET", "/1", b"", 200, b"a"), ok("GET", "/2", b"", 200, b"b"), ok("POST", "/3", b"c", 200, b"c"), ok("GET", "/4", b"", 200, b"d")];
    assert_eq!(out.iter().map(sum).collect::<Vec<_>>(), expect);
    let firsts: Vec<(u64, u64)> = out.iter().map(|x| (x.request.first_ts_ns, x.response.as_ref().map_or(0, |r| r.first_ts_ns))).collect();
    assert_eq!(firsts, [(1010, 1020), (1030, 1040), (1050, 1060), (1070, 1080)]);
}

/// A reason phrase with bytes above 0x7e (obs-text: UTF-8 or Latin-1) is kept as it came;
/// httparse gives "" for it.
#[test]
fn reason_phrase_with_obs_text_is_kept() {
    for reason in [&b"Caf\xc3\xa9"[..], b"OK \xc3\xa9t\xc3\xa9", b"\xff\xfe", b"Not Found", b""] {
        let mut h = Harness::new();
        h.req(&get("/r"));
        let sp = if reason.is_empty() { &b""[..] } else { b" " };
        h.resp(&cat(&[b"HTTP/1.1 200", sp, reason, b"\r\nContent-Length: 1\r\n\r\nx"]));
        let out = h.drain();
        assert_eq!(out.iter().map(sum).collect::<Vec<_>>(), vec![ok("GET", "/r", b"", 200, b"x")]);
        let Some(StartLine::Response { reason: got, .. }) = out[0].response.as_ref().map(|r| &r.start) else {
            panic!("no response");
        };
        assert_eq!(&got[..], reason, "{:?}", String::from_utf8_lossy(reason));
    }
}

/// A request field folded over two lines (obs-fold, which httparse refuses in requests): the
/// continuation is the value's, not a field of its own, so a folded secret stays with the
/// name that masks it.
#[test]
fn folded_request_field_continues_its_value() {
    let (exchange, fields) = request_fields(b"GET /f HTTP/1.1\r\nHost: x\r\nCookie: a=1;\r\n b=SECRET\r\nAuthorization:\r\n\tBearer T\r\nX-Last: z\r\n\r\n");
    // A lenient (marked) request, with its response.
    assert_eq!(exchange, Sum { note: Some(Note::ParseError), ..ok("GET", "/f", b"", 200, b"y") });
    let expect: [(&[u8], &[u8]); 4] =
        [(b"Host", b"x"), (b"Cookie", b"a=1;   b=SECRET"), (b"Authorization", b"Bearer T"), (b"X-Last", b"z")];
    assert_eq!(fields, expect.map(|(n, v)| (n.to_vec(), v.to_vec())));
}

/// An indented line that reads as a field line of its own is one (not the value before it
/// continued): an indented secret field is still masked by its name.
#[test]
fn indented_field_line_is_its_own_field() {
    let (_, fields) = request_fields(b"GET /i HTTP/1.1\r\nHost: x\r\n Authorization: Bearer T\r\n\r\n");
    let expect: [(&[u8], &[u8]); 2] = [(b"Host", b"x"), (b"Authorization", b"Bearer T")];
    assert_eq!(fields, expect.map(|(n, v)| (n.to_vec(), v.to_vec())));
}

/// Header fields as owned (name, value) pairs.
type Fields = Vec<(Vec<u8>, Vec<u8>)>;

/// The one exchange of `head` answered by a short response, and its request's fields.
fn request_fields(head: &[u8]) -> (Sum, Fields) {
    let mut h = Harness::new();
    h.req(head);
    h.resp(&ok_resp("y"));
    let out = h.drain();
    assert_eq!(out.len(), 1, "{out:?}");
    (sum(&out[0]), out[0].request.headers.iter().map(|(n, v)| (n.to_vec(), v.to_vec())).collect())
}
