//! Application-protocol parsers. Sans-IO: bytes and timestamps in, exchanges out.
//! Nothing here knows aya, the kernel or the terminal.

pub mod http1;

/// The side of the connection the traced process is on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Client,
    Server,
}

/// Direction of bytes relative to the traced process (not to the client/server pair).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// Written by the traced process (write, send*, sendfile).
    Egress,
    /// Read by the traced process (read, recv*).
    Ingress,
}

impl Role {
    /// The direction that carries requests for this side.
    pub fn request_direction(self) -> Direction {
        match self {
            Role::Client => Direction::Egress,
            Role::Server => Direction::Ingress,
        }
    }
}

/// The first line of a message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StartLine {
    Request { method: String, target: Vec<u8>, version: u8 },
    Response { version: u8, status: u16, reason: Vec<u8> },
}

/// One HTTP message as seen on the wire. Header names and values are raw bytes; sinks
/// sanitise them for display.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub start: StartLine,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    /// Decoded body size (chunk framing removed), captured or not.
    pub body_size: u64,
    /// The first `max_body` bytes of the decoded body that were captured.
    pub body: Vec<u8>,
    /// `body` is shorter than `body_size` (limit reached, or bytes counted but not copied).
    pub body_truncated: bool,
    /// Kernel timestamp (ns, CLOCK_MONOTONIC) of the first and last byte.
    pub first_ts_ns: u64,
    pub last_ts_ns: u64,
    /// Thread that wrote or read the first byte.
    pub tid: u32,
    /// Framed from start line to end of body with no lost byte.
    pub complete: bool,
    /// Bytes of this message known lost (gaps inside it).
    pub lost_bytes: u64,
}

/// Why an exchange is reported the way it is, when something went wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Note {
    Gap,
    ResponseTimeout,
    Closed,
    Upgrade,
    ParseError,
}

impl Note {
    pub fn as_str(self) -> &'static str {
        match self {
            Note::Gap => "gap",
            Note::ResponseTimeout => "response_timeout",
            Note::Closed => "closed",
            Note::Upgrade => "upgrade",
            Note::ParseError => "parse_error",
        }
    }
}

/// A request and the response paired with it (in order on the connection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exchange {
    pub request: Message,
    pub response: Option<Message>,
    pub note: Option<Note>,
}

impl Exchange {
    pub fn complete(&self) -> bool {
        self.request.complete && self.response.as_ref().is_some_and(|r| r.complete)
    }
    pub fn lost_bytes(&self) -> u64 {
        self.request.lost_bytes.saturating_add(self.response.as_ref().map_or(0, |r| r.lost_bytes))
    }
}

/// Limits that bound memory and time per connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Body bytes kept per message.
    pub max_body: usize,
    /// Unparsed bytes buffered per direction; beyond this, the oldest are dropped as a gap.
    pub max_buffer: usize,
    /// A request with no response after this long is emitted alone.
    pub response_timeout_ns: u64,
    /// Out-of-order bytes wait this long for the missing bytes before a gap is declared.
    pub reorder_timeout_ns: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: 4096,
            max_buffer: 1 << 20,
            response_timeout_ns: 10_000_000_000,
            reorder_timeout_ns: 200_000_000,
        }
    }
}
