//! The HTTP traffic of each scenario: a server thread and a client on loopback, in a child
//! process (l7trace does not trace its own process), and what the records must say.
use std::{
    io::{self, Read, Write},
    net::{Ipv6Addr, SocketAddr, TcpListener, TcpStream},
    os::fd::AsRawFd,
    thread,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    Get,
    Post,
    KeepAlive,
    Pipelining,
    Chunked,
    Ipv6,
    Sendfile,
    Splice,
    SpliceEnd,
    Iovecs,
    Upgrade,
}

pub const ALL: &[Scenario] = &[
    Scenario::Get,
    Scenario::Post,
    Scenario::KeepAlive,
    Scenario::Pipelining,
    Scenario::Chunked,
    Scenario::Ipv6,
    Scenario::Sendfile,
    Scenario::Splice,
    Scenario::SpliceEnd,
    Scenario::Iovecs,
    Scenario::Upgrade,
];

/// One exchange as both sides must report it.
pub struct Expect {
    pub method: &'static str,
    pub target: &'static str,
    pub request_body: &'static [u8],
    pub status: u16,
    pub response_body: &'static [u8],
    /// The server sends the body with sendfile: the server-side record counts it without
    /// copying it.
    pub sendfile: bool,
    /// The server moves the request body out of its socket with splice(2): its record
    /// must report those bytes as a gap (lost, not seen), the client's all of them.
    pub server_body_unseen: bool,
    /// The answer is a 101: the record says `upgrade`.
    pub upgrade: bool,
}

/// Frames of 1 KiB the Upgrade scenario sends after its 101, each in one write. The
/// kernel side must not copy them: the scenario's events stay under UPGRADE_MAX_EVENTS.
pub const UPGRADE_FRAMES: usize = 500;
pub const UPGRADE_MAX_EVENTS: u64 = 50;
const UPGRADE_ANSWER: &[u8] = b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";

const SENDFILE_BODY: &[u8] = &[b'x'; 3000];
/// Under the default --max-body, so the client's record holds all of it.
const SPLICED_BODY: &[u8] = &[b'u'; 3000];

impl Scenario {
    pub fn name(self) -> &'static str {
        match self {
            Scenario::Get => "get",
            Scenario::Post => "post",
            Scenario::KeepAlive => "keepalive",
            Scenario::Pipelining => "pipelining",
            Scenario::Chunked => "chunked",
            Scenario::Ipv6 => "ipv6",
            Scenario::Sendfile => "sendfile",
            Scenario::Splice => "splice",
            Scenario::SpliceEnd => "splice-end",
            Scenario::Iovecs => "iovecs",
            Scenario::Upgrade => "upgrade",
        }
    }

    pub fn from_name(s: &str) -> Option<Self> {
        ALL.iter().copied().find(|sc| sc.name() == s)
    }

    pub fn ipv6(self) -> bool {
        self == Scenario::Ipv6
    }

    pub fn expected(self) -> Vec<Expect> {
        let get = |target, status, body| Expect {
            method: "GET",
            target,
            request_body: b"",
            status,
            response_body: body,
            sendfile: false,
            server_body_unseen: false,
            upgrade: false,
        };
        match self {
            Scenario::Get | Scenario::Ipv6 => vec![get("/hello", 200, b"hello")],
            Scenario::Post => vec![Expect {
                method: "POST",
                target: "/echo",
                request_body: b"name=l7trace",
                status: 201,
                response_body: b"name=l7trace",
                sendfile: false,
                server_body_unseen: false,
                upgrade: false,
            }],
            Scenario::KeepAlive => vec![get("/k/1", 200, b"k1"), get("/k/2", 200, b"k2"), get("/k/3", 200, b"k3")],
            Scenario::Pipelining => vec![get("/p/1", 200, b"p1"), get("/p/2", 404, b"p2")],
            Scenario::Chunked => vec![get("/chunked", 200, b"hello world")],
            Scenario::Iovecs => vec![get("/iov", 200, b"iovecs!")],
            Scenario::Upgrade => vec![Expect { upgrade: true, ..get("/ws", 101, b"") }],
            Scenario::Sendfile => vec![Expect { sendfile: true, ..get("/file", 200, SENDFILE_BODY) }],
            Scenario::Splice => vec![
                Expect {
                    method: "POST",
                    request_body: SPLICED_BODY,
                    server_body_unseen: true,
                    ..get("/upload", 200, b"got /upload")
                },
                get("/second", 200, b"got /second"),
            ],
            // No read follows the splice: the socket's destruction shows the bytes.
            Scenario::SpliceEnd => vec![Expect {
                method: "POST",
                request_body: SPLICED_BODY,
                server_body_unseen: true,
                ..get("/upload", 200, b"got /upload")
            }],
        }
    }
}

/// Whether the VM or host has ::1.
pub fn has_ipv6() -> bool {
    TcpListener::bind((Ipv6Addr::LOCALHOST, 0)).is_ok()
}

/// A free loopback port (the child binds it again; nothing else runs in the VM).
pub fn free_port(ipv6: bool) -> io::Result<u16> {
    let l = if ipv6 { TcpListener::bind("[::1]:0")? } else { TcpListener::bind("127.0.0.1:0")? };
    Ok(l.local_addr()?.port())
}

/// Child process: serve and request as the scenario says.
pub fn run_child(sc: Scenario, port: u16) -> io::Result<()> {
    let addr: SocketAddr = if sc.ipv6() { ([0u16, 0, 0, 0, 0, 0, 0, 1], port).into() } else { ([127, 0, 0, 1], port).into() };
    let listener = TcpListener::bind(addr)?;
    let server = thread::spawn(move || -> io::Result<()> {
        let (stream, _) = listener.accept()?;
        serve(sc, Peer::new(stream))
    });
    let client = request(sc, Peer::new(TcpStream::connect(addr)?));
    let served = server.join().map_err(|_| io::Error::other("server thread panicked"))?;
    client.and(served)
}

fn serve(sc: Scenario, mut p: Peer) -> io::Result<()> {
    let ok = |body: &str| format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n{body}", body.len());
    match sc {
        Scenario::Get | Scenario::Ipv6 => {
            p.message()?;
            p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")?;
        }
        Scenario::Post => {
            let (_, body) = p.message()?;
            let head = format!("HTTP/1.1 201 Created\r\nContent-Length: {}\r\n\r\n", body.len());
            p.send(&[head.as_bytes(), &body].concat())?;
        }
        Scenario::KeepAlive => {
            for i in 1..=3 {
                p.message()?;
                p.send(ok(&format!("k{i}")).as_bytes())?;
            }
        }
        Scenario::Pipelining => {
            p.message()?;
            p.message()?;
            p.send(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\np1HTTP/1.1 404 Not Found\r\nContent-Length: 2\r\n\r\np2")?;
        }
        Scenario::Chunked => {
            p.message()?;
            p.send(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhel\r\n8\r\nlo world\r\n0\r\n\r\n")?;
        }
        Scenario::Sendfile => {
            p.message()?;
            let path = std::env::temp_dir().join(format!("vmtest-sendfile-{}", std::process::id()));
            std::fs::write(&path, SENDFILE_BODY)?;
            let file = std::fs::File::open(&path)?;
            let _ = std::fs::remove_file(&path);
            p.send(format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", SENDFILE_BODY.len()).as_bytes())?;
            let mut left = SENDFILE_BODY.len();
            while left > 0 {
                // SAFETY: two open fds; a null offset uses the file position.
                let n = unsafe { libc::sendfile(p.stream.as_raw_fd(), file.as_raw_fd(), std::ptr::null_mut(), left) };
                if n <= 0 {
                    return Err(io::Error::last_os_error());
                }
                left -= n as usize;
            }
        }
        Scenario::Iovecs => {
            p.message()?;
            let mut parts: Vec<&[u8]> = vec![b"HTTP/1.1", b" ", b"200", b" ", b"OK", b"\r\n"];
            for _ in 0..10 {
                parts.extend([b"X-Part".as_slice(), b": ", b"v", b"\r\n"]);
            }
            parts.extend([b"Content-Length: 7\r\n".as_slice(), b"\r\n", b"iov", b"ecs", b"!"]);
            p.send_iovecs(&parts)?;
        }
        Scenario::Upgrade => {
            p.message()?;
            p.send(UPGRADE_ANSWER)?;
            // Time for l7trace to read the answer and give the connection up (it polls
            // every 20 ms).
            thread::sleep(std::time::Duration::from_secs(1));
            for _ in 0..UPGRADE_FRAMES {
                p.send(&[0x82; 1024])?;
            }
        }
        Scenario::Splice | Scenario::SpliceEnd => {
            p.head_exactly()?;
            splice_out(&p.stream, SPLICED_BODY.len())?;
            p.send(ok("got /upload").as_bytes())?;
            if sc == Scenario::SpliceEnd {
                let mut rest = Vec::new();
                let _ = p.stream.read_to_end(&mut rest);
                return Ok(());
            }
            p.message()?;
            p.send(ok("got /second").as_bytes())?;
        }
    }
    // Wait for the client to close first, so each side sees every byte before teardown.
    let mut rest = Vec::new();
    let _ = p.stream.read_to_end(&mut rest);
    Ok(())
}

fn request(sc: Scenario, mut p: Peer) -> io::Result<()> {
    let get = |target: &str, close: bool| {
        format!("GET {target} HTTP/1.1\r\nHost: vmtest\r\nUser-Agent: vmtest{}\r\n\r\n", if close { "\r\nConnection: close" } else { "" })
    };
    match sc {
        Scenario::Get | Scenario::Ipv6 => {
            p.send(get("/hello", true).as_bytes())?;
            p.message()?;
        }
        Scenario::Post => {
            p.send(b"POST /echo HTTP/1.1\r\nHost: vmtest\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 12\r\n\r\nname=l7trace")?;
            p.message()?;
        }
        Scenario::KeepAlive => {
            for i in 1..=3 {
                p.send(get(&format!("/k/{i}"), false).as_bytes())?;
                p.message()?;
            }
        }
        Scenario::Pipelining => {
            p.send(format!("{}{}", get("/p/1", false), get("/p/2", false)).as_bytes())?;
            p.message()?;
            p.message()?;
        }
        Scenario::Chunked => {
            p.send(get("/chunked", false).as_bytes())?;
            p.message()?;
        }
        Scenario::Sendfile => {
            p.send(get("/file", false).as_bytes())?;
            p.message()?;
        }
        Scenario::Iovecs => {
            let mut parts: Vec<&[u8]> = vec![b"GET", b" ", b"/iov", b" ", b"HTTP/1.1", b"\r\n"];
            for _ in 0..8 {
                parts.extend([b"X-Req: r".as_slice(), b"\r\n"]);
            }
            parts.extend([b"Host: vmtest\r\n".as_slice(), b"\r\n"]);
            p.send_iovecs(&parts)?;
            p.message()?;
        }
        Scenario::Upgrade => {
            p.send(b"GET /ws HTTP/1.1\r\nHost: vmtest\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")?;
            p.message()?;
            p.take(UPGRADE_FRAMES * 1024)?;
        }
        Scenario::Splice | Scenario::SpliceEnd => {
            let head = format!("POST /upload HTTP/1.1\r\nHost: vmtest\r\nContent-Length: {}\r\n\r\n", SPLICED_BODY.len());
            p.send(&[head.as_bytes(), SPLICED_BODY].concat())?;
            p.message()?;
            if sc == Scenario::SpliceEnd {
                return p.stream.shutdown(std::net::Shutdown::Both);
            }
            p.send(get("/second", false).as_bytes())?;
            p.message()?;
        }
    }
    p.stream.shutdown(std::net::Shutdown::Both)
}

/// Moves `len` bytes out of the socket into a pipe with splice(2), and drains the pipe.
fn splice_out(s: &TcpStream, len: usize) -> io::Result<()> {
    let mut fds = [0i32; 2];
    // SAFETY: a valid two-int array.
    if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    let (mut left, mut sink) = (len, [0u8; 4096]);
    let mut result = Ok(());
    while left > 0 && result.is_ok() {
        // SAFETY: open fds; null offsets (neither end is seekable).
        let n = unsafe { libc::splice(s.as_raw_fd(), std::ptr::null_mut(), fds[1], std::ptr::null_mut(), left, 0) };
        if n <= 0 {
            result = Err(io::Error::other(format!("splice: {}", io::Error::last_os_error())));
            break;
        }
        let mut moved = n as usize;
        while moved > 0 {
            // SAFETY: our own buffer and pipe.
            let r = unsafe { libc::read(fds[0], sink.as_mut_ptr().cast(), moved.min(sink.len())) };
            if r <= 0 {
                result = Err(io::Error::last_os_error());
                break;
            }
            moved -= r as usize;
        }
        left -= n as usize;
    }
    // SAFETY: our own pipe fds.
    unsafe {
        libc::close(fds[0]);
        libc::close(fds[1]);
    }
    result
}

/// A stream with a read buffer: messages framed by Content-Length or chunked encoding.
struct Peer {
    stream: TcpStream,
    buf: Vec<u8>,
}

impl Peer {
    fn new(stream: TcpStream) -> Self {
        Peer { stream, buf: Vec::new() }
    }

    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// One writev of an iovec per part (more than 16: varnish writes a head so).
    fn send_iovecs(&mut self, parts: &[&[u8]]) -> io::Result<()> {
        let iov: Vec<libc::iovec> = parts.iter().map(|p| libc::iovec { iov_base: p.as_ptr() as *mut _, iov_len: p.len() }).collect();
        let want: usize = parts.iter().map(|p| p.len()).sum();
        // SAFETY: iovecs over live buffers, on the open socket.
        let n = unsafe { libc::writev(self.stream.as_raw_fd(), iov.as_ptr(), iov.len() as i32) };
        if n as usize != want {
            return Err(io::Error::other(format!("writev of {} iovecs: {n} of {want} bytes", parts.len())));
        }
        Ok(())
    }

    fn fill(&mut self) -> io::Result<()> {
        let mut chunk = [0u8; 4096];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed mid-message"));
        }
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(())
    }

    fn take_until(&mut self, pat: &[u8]) -> io::Result<Vec<u8>> {
        loop {
            if let Some(i) = self.buf.windows(pat.len()).position(|w| w == pat) {
                return Ok(self.buf.drain(..i + pat.len()).collect());
            }
            self.fill()?;
        }
    }

    fn take(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            self.fill()?;
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// A head and not one byte more (peeked first), so what follows stays in the socket.
    fn head_exactly(&mut self) -> io::Result<()> {
        let mut peek = [0u8; 4096];
        loop {
            let n = self.stream.peek(&mut peek)?;
            if n == 0 {
                return Err(io::Error::new(io::ErrorKind::UnexpectedEof, "peer closed before a head"));
            }
            if let Some(end) = peek[..n].windows(4).position(|w| w == b"\r\n\r\n") {
                let mut head = vec![0u8; end + 4];
                return self.stream.read_exact(&mut head);
            }
            thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// One message: head and decoded body.
    fn message(&mut self) -> io::Result<(String, Vec<u8>)> {
        let head = String::from_utf8_lossy(&self.take_until(b"\r\n\r\n")?).into_owned();
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.trim().eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let mut body = Vec::new();
        if header("transfer-encoding").is_some_and(|v| v.eq_ignore_ascii_case("chunked")) {
            loop {
                let line = self.take_until(b"\r\n")?;
                let size = usize::from_str_radix(String::from_utf8_lossy(&line).trim(), 16)
                    .map_err(|e| io::Error::other(format!("chunk size: {e}")))?;
                let chunk = self.take(size + 2)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else if let Some(n) = header("content-length").and_then(|v| v.parse().ok()) {
            body = self.take(n)?;
        }
        Ok((head, body))
    }
}
