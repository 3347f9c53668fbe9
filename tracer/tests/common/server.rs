//! A small HTTP/1.1 server on std::net, a thread per connection, whose replies the test
//! writes byte for byte (so it can send chunked bodies, one-byte writes, HEAD, 204...).

use std::io::{BufRead, BufReader, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A request as the server parsed it.
#[derive(Clone, Debug)]
pub struct Request {
    pub method: String,
    pub target: String,
    pub version: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn header(&self, name: &str) -> Option<&str> {
        header(&self.headers, name)
    }
}

pub fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// The exact bytes of a response and how to write them.
#[derive(Clone, Debug)]
pub struct Reply {
    pub wire: Vec<u8>,
    /// Bytes per write(); 0 writes all at once.
    pub write_size: usize,
    /// Close the connection after this reply.
    pub close: bool,
}

impl Reply {
    pub fn raw(wire: impl Into<Vec<u8>>) -> Reply {
        Reply {
            wire: wire.into(),
            write_size: 0,
            close: false,
        }
    }

    /// `200 OK` with Content-Length and a text body.
    pub fn ok(body: impl Into<Vec<u8>>) -> Reply {
        Reply::with_status(200, "OK", &[("Content-Type", "text/plain")], body)
    }

    /// A response with Content-Length and `body`.
    pub fn with_status(
        status: u16,
        reason: &str,
        headers: &[(&str, &str)],
        body: impl Into<Vec<u8>>,
    ) -> Reply {
        let body = body.into();
        let mut wire = format!("HTTP/1.1 {status} {reason}\r\n");
        for (n, v) in headers {
            wire.push_str(&format!("{n}: {v}\r\n"));
        }
        wire.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let mut wire = wire.into_bytes();
        wire.extend_from_slice(&body);
        Reply::raw(wire)
    }

    /// `200 OK`, chunked, one chunk per element of `chunks`, then `trailers`.
    pub fn chunked(chunks: &[&[u8]], trailers: &[(&str, &str)]) -> Reply {
        let mut wire =
            b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n"
                .to_vec();
        if !trailers.is_empty() {
            let names: Vec<&str> = trailers.iter().map(|(n, _)| *n).collect();
            wire.extend_from_slice(format!("Trailer: {}\r\n", names.join(", ")).as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        for c in chunks {
            wire.extend_from_slice(format!("{:x}\r\n", c.len()).as_bytes());
            wire.extend_from_slice(c);
            wire.extend_from_slice(b"\r\n");
        }
        wire.extend_from_slice(b"0\r\n");
        for (n, v) in trailers {
            wire.extend_from_slice(format!("{n}: {v}\r\n").as_bytes());
        }
        wire.extend_from_slice(b"\r\n");
        Reply::raw(wire)
    }

    pub fn in_writes_of(mut self, n: usize) -> Reply {
        self.write_size = n;
        self
    }
}

/// The reply of the default handler: `hello from TARGET` (and for POST, the body size),
/// headers only for HEAD.
pub fn default_reply(req: &Request) -> Reply {
    let body = if req.method == "POST" {
        format!("got {} bytes for {}", req.body.len(), req.target)
    } else {
        format!("hello from {}", req.target)
    };
    if req.method == "HEAD" {
        let wire = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        return Reply::raw(wire);
    }
    Reply::ok(body)
}

/// One request the server read, with the thread that read it.
#[derive(Clone, Debug)]
pub struct Served {
    pub tid: u32,
    pub comm: String,
    pub peer: SocketAddr,
    pub request: Request,
}

type Handler = dyn Fn(&Request) -> Reply + Send + Sync;

pub struct HttpServer {
    pub addr: SocketAddr,
    log: Arc<Mutex<Vec<Served>>>,
    stop: Arc<AtomicBool>,
}

impl HttpServer {
    /// On 127.0.0.1, a free port, answering with `default_reply`.
    pub fn start_default() -> HttpServer {
        HttpServer::start("127.0.0.1:0", default_reply)
    }

    /// On `bind` (e.g. "127.0.0.1:0", "[::1]:0"), answering with `handler`; each
    /// connection is read and written through the one fd that accept() returned.
    pub fn start(
        bind: &str,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> HttpServer {
        HttpServer::spawn(bind, false, Arc::new(handler))
    }

    /// Like `start`, but replies are written on a dup() of the accepted fd (Rust's
    /// `try_clone`), as servers that split a socket into reader and writer do.
    pub fn start_writing_on_dup(
        bind: &str,
        handler: impl Fn(&Request) -> Reply + Send + Sync + 'static,
    ) -> HttpServer {
        HttpServer::spawn(bind, true, Arc::new(handler))
    }

    fn spawn(bind: &str, write_on_dup: bool, handler: Arc<Handler>) -> HttpServer {
        let listener = TcpListener::bind(bind).unwrap_or_else(|e| panic!("bind {bind}: {e}"));
        let addr = listener.local_addr().expect("local_addr");
        let log = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let (log2, stop2) = (Arc::clone(&log), Arc::clone(&stop));
        std::thread::Builder::new()
            .name("l7t-accept".into())
            .spawn(move || accept_loop(listener, write_on_dup, handler, log2, stop2))
            .expect("spawn accept thread");
        HttpServer { addr, log, stop }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// `host:port` for a Host header or URL.
    pub fn authority(&self) -> String {
        self.addr.to_string()
    }

    /// Every request read so far, in order.
    pub fn served(&self) -> Vec<Served> {
        self.log.lock().unwrap().clone()
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn accept_loop(
    listener: TcpListener,
    write_on_dup: bool,
    handler: Arc<Handler>,
    log: Arc<Mutex<Vec<Served>>>,
    stop: Arc<AtomicBool>,
) {
    for conn in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(conn) = conn else { continue };
        let (handler, log) = (Arc::clone(&handler), Arc::clone(&log));
        // Named so the comm l7trace reports for this thread is known.
        let _ = std::thread::Builder::new()
            .name("l7t-srv".into())
            .spawn(move || serve_conn(conn, write_on_dup, &*handler, &log));
    }
}

fn serve_conn(conn: TcpStream, write_on_dup: bool, handler: &Handler, log: &Mutex<Vec<Served>>) {
    let Ok(peer) = conn.peer_addr() else { return };
    let (tid, comm) = (super::gettid(), super::thread_comm());
    let dup = if write_on_dup {
        match conn.try_clone() {
            Ok(d) => Some(d),
            Err(_) => return,
        }
    } else {
        None
    };
    let writer: &TcpStream = dup.as_ref().unwrap_or(&conn);
    let mut reader = BufReader::new(&conn);
    while let Some(request) = read_request(&mut reader, writer) {
        let reply = handler(&request);
        let close = reply.close
            || request
                .header("Connection")
                .is_some_and(|v| v.eq_ignore_ascii_case("close"));
        log.lock().unwrap().push(Served {
            tid,
            comm: comm.clone(),
            peer,
            request,
        });
        if write_in_pieces(writer, &reply.wire, reply.write_size).is_err() {
            return;
        }
        if close {
            let _ = writer.shutdown(Shutdown::Write);
            return;
        }
    }
}

pub fn write_in_pieces(mut w: &TcpStream, bytes: &[u8], size: usize) -> std::io::Result<()> {
    if size == 0 {
        return w.write_all(bytes);
    }
    for piece in bytes.chunks(size) {
        w.write_all(piece)?;
    }
    Ok(())
}

/// Reads one request; None at EOF or on a malformed one. Answers `Expect: 100-continue`.
fn read_request(r: &mut impl BufRead, mut w: &TcpStream) -> Option<Request> {
    let line = read_line(r)?;
    let mut parts = line.splitn(3, ' ');
    let (method, target, version) = (parts.next()?, parts.next()?, parts.next()?);
    let headers = read_headers(r)?;
    if header(&headers, "Expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue")) {
        w.write_all(b"HTTP/1.1 100 Continue\r\n\r\n").ok()?;
    }
    let body = read_body(r, &headers)?;
    Some(Request {
        method: method.to_owned(),
        target: target.to_owned(),
        version: version.to_owned(),
        headers,
        body,
    })
}

/// One CRLF-terminated line without its CRLF; None at EOF.
pub fn read_line(r: &mut impl BufRead) -> Option<String> {
    let mut buf = Vec::new();
    let n = r.read_until(b'\n', &mut buf).ok()?;
    if n == 0 {
        return None;
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

pub fn read_headers(r: &mut impl BufRead) -> Option<Vec<(String, String)>> {
    let mut headers = Vec::new();
    loop {
        let line = read_line(r)?;
        if line.is_empty() {
            return Some(headers);
        }
        let (n, v) = line.split_once(':')?;
        headers.push((n.trim().to_owned(), v.trim().to_owned()));
    }
}

/// A message body framed by Content-Length or chunked (decoded); empty otherwise.
pub fn read_body(r: &mut impl BufRead, headers: &[(String, String)]) -> Option<Vec<u8>> {
    if header(headers, "Transfer-Encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
        return read_chunked(r);
    }
    let len: usize = header(headers, "Content-Length").map_or(Some(0), |v| v.parse().ok())?;
    let mut body = vec![0; len];
    r.read_exact(&mut body).ok()?;
    Some(body)
}

fn read_chunked(r: &mut impl BufRead) -> Option<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let size_line = read_line(r)?;
        let size_hex = size_line.split(';').next()?.trim();
        let size = usize::from_str_radix(size_hex, 16).ok()?;
        if size == 0 {
            read_headers(r)?; // trailers
            return Some(body);
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).ok()?;
        read_line(r)?;
    }
}
