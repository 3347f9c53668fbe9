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


# tcpstream: the conversation the header describes (format in fuzz_targets/tcpstream.rs).
def conversation(conf, sizes):
    """Where each request and each response ends in its stream."""
    req_end, resp_end, c, s = [], [], 0, 0
    for i in range((conf & 3) + 1):
        rq, rs = sizes[i]
        if conf & (4 << i):
            c += len(b"POST /x%d HTTP/1.1\r\nHost: h\r\nContent-Length: %d\r\n\r\n" % (i, rq)) + rq
        else:
            c += len(b"GET /x%d HTTP/1.1\r\nHost: h\r\n\r\n" % i)
        s += len(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % rs) + rs
        req_end.append(c)
        resp_end.append(s)
    return req_end, resp_end


def tcp_header(conf, c_isn, s_isn, sizes, net=0):
    h = bytes([conf]) + struct.pack("<II", c_isn, s_isn)
    for rq, rs in sizes:
        h += struct.pack("<HH", rq, rs)
    return h + bytes([net])


def chunks(start, end, size=200):
    return [(a, min(a + size, end)) for a in range(start, end, size)]


def seg_op(direction, start, end, hold=False, release=False):
    """The segment start..end (at most 256 bytes) at its absolute position."""
    ctl = direction | 3 << 1 | (0x10 if hold else 0) | (0x20 if release else 0)
    return bytes([ctl]) + struct.pack("<H", start) + bytes([end - start - 1])


def next_op(direction, n, back=None):
    """n bytes (at most 256) where the sender is, or that far back (a retransmission)."""
    if back is None:
        return bytes([direction, n - 1])
    return bytes([direction | 1 << 1, back, n - 1])


def tcpstream():
    # Four exchanges, the second and fourth POSTs; a body near each end of the 2 KiB range.
    conf = 3 | 4 << 1 | 4 << 3
    sizes = [(0, 5), (11, 300), (0, 0), (1500, 1999)]
    req_end, resp_end = conversation(conf, sizes)
    exchanges = list(zip([0] + req_end, req_end, [0] + resp_end, resp_end))

    def in_order(dup=False):
        out = b""
        for c0, c1, s0, s1 in exchanges:
            for d, (a, b) in [(0, r) for r in chunks(c0, c1)] + [(1, r) for r in chunks(s0, s1)]:
                out += next_op(d, b - a)
                if dup:
                    # The same segment again, then one across its end and the next's start.
                    out += next_op(d, b - a, back=b - a)
                    out += next_op(d, min(40, b - a), back=min(20, b - a))
        return out

    def reversed_():
        out = b""
        for d, end in [(0, req_end[-1]), (1, resp_end[-1])]:
            cs = chunks(0, end)
            out += b"".join(seg_op(d, a, b, hold=True, release=(a, b) == cs[-1]) for a, b in cs)
        return out

    header = tcp_header(conf, 1000, 7_000_000, sizes)
    yield "in_order", header + in_order()
    yield "reversed", header + reversed_()
    yield "duplicates", header + in_order(dup=True)
    # Both initial sequence numbers just below 2^32: the streams wrap 32 and 64 bytes in.
    yield "wrap", tcp_header(conf | 0xc0, 32, 64, sizes) + in_order(dup=True)
    yield "ipv6_vlan", tcp_header(conf, 1000, 7_000_000, sizes, net=3) + reversed_()
    # Nothing scripted: the closing pass delivers it all in order.
    yield "fill_only", tcp_header(conf, 1000, 7_000_000, sizes)


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
    write("tcpstream", tcpstream())
