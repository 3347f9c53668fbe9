#!/usr/bin/env python3
"""Writes the seed corpora (fuzz/corpus/<target>/seed-*) from the parser's test fixtures.

Run from anywhere: python3 fuzz/seeds.py. The formats are described in src/lib.rs
(scripts) and fuzz_targets/events.rs (records); the record header is tracer-common's
EventHeader (120 bytes, little endian)."""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))

# (request bytes, response bytes), as in tracer/src/protocols/http1/tests.rs.
FIXTURES = {
    "get": (b"GET /index.html HTTP/1.1\r\nHost: a\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"),
    "post": (b"POST /submit HTTP/1.1\r\nHost: a\r\nContent-Length: 11\r\n\r\nhello world",
             b"HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok"),
    "chunked": (b"GET /chunked HTTP/1.1\r\nHost: a\r\n\r\n",
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nX-T: 1\r\n\r\n"),
    "head": (b"HEAD /big HTTP/1.1\r\nHost: a\r\n\r\nGET /next HTTP/1.1\r\n\r\n",
             b"HTTP/1.1 200 OK\r\nContent-Length: 1234\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nn"),
    "continue": (b"POST /up HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\ndata",
                 b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
    "upgrade": (b"GET /ws HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello",
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x82\x03abc"),
    "close_delimited": (b"GET /old HTTP/1.0\r\n\r\n",
                        b"HTTP/1.0 200 OK\r\nConnection: close\r\n\r\nall of this until the close"),
    "secrets": (b"GET / HTTP/1.1\r\nAuthorization: Bearer s3cret\r\nCookie: a=b\r\n\r\n",
                b"HTTP/1.1 204 No Content\r\nSet-Cookie: id=1; HttpOnly\r\n\r\n"),
    "bad_length": (b"POST /bad HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhelloGET /n HTTP/1.1\r\n\r\n",
                   b"HTTP/1.1 200 OK\r\nContent-Length: +2\r\n\r\nokHTTP/1.1 304 Not Modified\r\nContent-Length: x\r\n\r\n"),
    "obs_fold": (b"GET /fold HTTP/1.1\r\n\r\n",
                 b"HTTP/1.1 200 OK\r\nX-Folded: a\r\n\tb\r\nContent-Length: 2\r\n\r\nok"),
    "empty_lines": (b"\r\nPOST /p HTTP/1.1\r\nContent-Length: 1\r\n\r\nx\r\nGET /n HTTP/1.1\r\n\r\n",
                    b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\ny\r\n\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nn"),
    "many_fields": (b"GET /many HTTP/1.1\r\n" + b"".join(b"X-F%d: v\r\n" % i for i in range(200)) + b"\r\n",
                    b"HTTP/1.1 200 OK\r\n" + b"".join(b"Set-Cookie: c%d=v\r\n" % i for i in range(200)) + b"Content-Length: 1\r\n\r\nm"),
}


def data_op(direction, payload, hold=False):
    ctl = direction | (0x40 if hold else 0)
    return bytes([ctl]) + struct.pack("<H", len(payload)) + payload


def scripts():
    for name, (req, resp) in FIXTURES.items():
        # Whole, in order.
        yield name, bytes([0]) + data_op(0, req) + data_op(1, resp) + b"\x07"
        # Split in two, halves reordered, a tick, a resend of the tail.
        h = len(req) // 2
        s = bytes([0]) + data_op(0, req[:h])
        s += data_op(0, req[h:], hold=True) + b"\x06"
        s += b"\x05\x01" + data_op(1, resp)
        s += bytes([0x04 | 0x80, 3]) + struct.pack("<H", 3) + resp[-3:]
        yield name + "-split", s
    # A gap in the response, then more.
    req, resp = FIXTURES["get"]
    yield "gap", bytes([0]) + data_op(0, req * 2) + b"\x82\x10" + data_op(1, resp) + b"\x05\x20\x07"
    # Uncaptured tail.
    yield "uncaptured", bytes([0]) + data_op(0, req) + bytes([0x83]) + struct.pack("<H", 40) + resp[:40] + b"\x30"


HEADER = struct.Struct("<IIQQQQIIIIIHBBHHI16s16s16s")
assert HEADER.size == 120


def record(kind, dir_, pos, payload, ts, sock=0xffff8880, role=1, total=None):
    total = len(payload) if total is None else total
    h = HEADER.pack(kind, 0, ts, 77, sock, pos, total, len(payload), 100, 100, 5, 2, role, dir_,
                    40000, 8080, 0, bytes([127, 0, 0, 1]) + bytes(12),
                    bytes([127, 0, 0, 1]) + bytes(12), b"curl".ljust(16, b"\0"))
    r = h + payload
    return struct.pack("<H", len(r)) + r


def records():
    for name, (req, resp) in FIXTURES.items():
        # Client side: requests egress (dir 0), responses ingress (dir 1); kind 1 data, 2 close.
        out = record(1, 0, 0, req, 1000) + record(1, 1, 0, resp, 2000)
        out += struct.pack("<H", 0) + record(2, 0, 0, b"", 3000)
        yield name, out


def write(target, items):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    for name, blob in items:
        with open(os.path.join(d, "seed-" + name), "wb") as f:
            f.write(blob)


if __name__ == "__main__":
    write("http1", scripts())
    write("streambuf", scripts())
    write("events", records())
