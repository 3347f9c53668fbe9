//! Clients: byte-exact raw TCP, and Debian's curl.

use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::time::Duration;

use super::server::{header, read_body, read_headers, read_line};

/// A response as the raw client read it.
#[derive(Clone, Debug)]
pub struct Response {
    pub version: String,
    pub status: u16,
    pub reason: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// A TCP client whose writes the test controls exactly; it reads and writes through one
/// fd.
pub struct RawClient {
    reader: BufReader<TcpStream>,
    /// The thread that made the client, as l7trace should report it.
    pub tid: u32,
    pub comm: String,
}

impl RawClient {
    pub fn connect(addr: SocketAddr) -> RawClient {
        let stream = TcpStream::connect(addr).unwrap_or_else(|e| panic!("connect {addr}: {e}"));
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let reader = BufReader::new(stream);
        RawClient {
            reader,
            tid: super::gettid(),
            comm: super::thread_comm(),
        }
    }

    pub fn stream(&self) -> &TcpStream {
        self.reader.get_ref()
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.stream().local_addr().unwrap()
    }

    pub fn peer_addr(&self) -> SocketAddr {
        self.stream().peer_addr().unwrap()
    }

    /// All of `bytes` in one write().
    pub fn send(&mut self, bytes: &[u8]) {
        let mut stream = self.stream();
        stream.write_all(bytes).expect("write request");
    }

    /// One write() per byte, with Nagle off so each is its own segment.
    pub fn send_bytewise(&mut self, bytes: &[u8]) {
        let mut stream = self.stream();
        stream.set_nodelay(true).unwrap();
        for (i, b) in bytes.iter().enumerate() {
            stream
                .write_all(std::slice::from_ref(b))
                .expect("write byte");
            // A pause after each of the first bytes lets the peer's reads return them one
            // at a time, as they do on a loaded machine: the first read of the stream is
            // then a single byte, whatever the scheduler does.
            if i < 8 {
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
        }
    }

    /// Reads one response; `to_head` when it answers a HEAD (no body whatever the headers).
    pub fn read_response(&mut self, to_head: bool) -> Response {
        let line = read_line(&mut self.reader).expect("status line (EOF?)");
        let mut parts = line.splitn(3, ' ');
        let version = parts.next().unwrap_or_default().to_owned();
        let status: u16 = parts
            .next()
            .and_then(|s| s.parse().ok())
            .expect("status code");
        let reason = parts.next().unwrap_or_default().to_owned();
        let headers = read_headers(&mut self.reader).expect("response headers");
        let bodyless = to_head || status == 204 || status == 304 || status / 100 == 1;
        let body = if bodyless {
            Vec::new()
        } else {
            read_body(&mut self.reader, &headers).expect("response body")
        };
        Response {
            version,
            status,
            reason,
            headers,
            body,
        }
    }

    /// Sends `METHOD TARGET` with a Host header and reads the response.
    pub fn exchange(&mut self, method: &str, target: &str) -> Response {
        let req = request(method, target, &self.peer_addr().to_string(), &[]);
        self.send(req.as_bytes());
        self.read_response(method == "HEAD")
    }
}

/// The bytes of a body-less request.
pub fn request(method: &str, target: &str, host: &str, extra: &[(&str, &str)]) -> String {
    let mut s = format!("{method} {target} HTTP/1.1\r\nHost: {host}\r\n");
    for (n, v) in extra {
        s.push_str(&format!("{n}: {v}\r\n"));
    }
    s.push_str("\r\n");
    s
}

/// What a curl run did.
pub struct CurlRun {
    pub pid: u32,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

impl CurlRun {
    pub fn stdout_text(&self) -> String {
        String::from_utf8_lossy(&self.stdout).into_owned()
    }
}

/// Runs Debian's curl with `args` (no proxy, errors shown, failure on HTTP errors off)
/// and asserts it exits 0.
pub fn curl(args: &[&str]) -> CurlRun {
    curl_wrapped(&[], args)
}

/// `WRAPPER... curl -sS --noproxy '*' --max-time 20 ARGS` (a wrapper that ends by exec'ing
/// the rest, such as `ip netns exec NS`, so the pid is curl's); asserts it exits 0.
pub fn curl_wrapped(wrapper: &[&str], args: &[&str]) -> CurlRun {
    let mut cmd = match wrapper.split_first() {
        Some((program, rest)) => {
            let mut c = Command::new(program);
            c.args(rest).arg("curl");
            c
        }
        None => Command::new("curl"),
    };
    let child = cmd
        .args(["-sS", "--noproxy", "*", "--max-time", "20"])
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start curl");
    let pid = child.id();
    let out = child.wait_with_output().expect("wait curl");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(
        out.status.success(),
        "curl {args:?} (wrapper {wrapper:?}) failed ({}): {stderr}",
        out.status
    );
    CurlRun {
        pid,
        stdout: out.stdout,
        stderr,
    }
}

pub fn response_header<'a>(r: &'a Response, name: &str) -> Option<&'a str> {
    header(&r.headers, name)
}

/// The response `http_pair` answers with.
pub const OK_2: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

/// One request for `target` and its response (`OK_2`) over a fresh connection pair
/// through `listener` (client side, server side), both ends in this thread: connect,
/// accept, write, read, write, read.
pub fn http_pair(listener: &TcpListener, target: &str) -> (TcpStream, TcpStream) {
    let mut client = TcpStream::connect(listener.local_addr().unwrap()).expect("connect");
    let (mut server, _) = listener.accept().expect("accept");
    let req = format!("GET {target} HTTP/1.1\r\nHost: x\r\n\r\n");
    client.write_all(req.as_bytes()).unwrap();
    let mut buf = vec![0; req.len()];
    server.read_exact(&mut buf).unwrap();
    server.write_all(OK_2).unwrap();
    let mut back = vec![0; OK_2.len()];
    client.read_exact(&mut back).unwrap();
    (client, server)
}

/// Close with an RST (SO_LINGER 0) when dropped.
pub fn set_linger_zero(s: &TcpStream) {
    let l = libc::linger { l_onoff: 1, l_linger: 0 };
    // SAFETY: valid socket fd and option buffer of the right size.
    unsafe {
        libc::setsockopt(
            std::os::fd::AsRawFd::as_raw_fd(s),
            libc::SOL_SOCKET,
            libc::SO_LINGER,
            &l as *const libc::linger as *const libc::c_void,
            std::mem::size_of::<libc::linger>() as libc::socklen_t,
        )
    };
}
