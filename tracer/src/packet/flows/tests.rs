use std::net::SocketAddr;

use super::*;
use crate::packet::frame::{build_frame, parse_ethernet, tcp_flags::*};
use crate::protocols::Note;

struct Wire {
    table: FlowTable,
    out: Vec<FlowExchange>,
    ts: u64,
    c: SocketAddr,
    s: SocketAddr,
}

impl Wire {
    fn new() -> Self {
        Wire::with_announce(false)
    }

    fn with_announce(announce_requests: bool) -> Self {
        let cfg = FlowConfig {
            limits: Limits::default(),
            max_flows: 16,
            idle_timeout_ns: 60_000_000_000,
            announce_requests,
        };
        Wire {
            table: FlowTable::new(cfg),
            out: Vec::new(),
            ts: 1_000,
            c: "10.0.0.2:40000".parse().unwrap(),
            s: "10.0.0.1:8080".parse().unwrap(),
        }
    }

    fn send(&mut self, from_client: bool, seq: u32, flags: u8, payload: &[u8]) {
        let (a, b) = if from_client { (self.c, self.s) } else { (self.s, self.c) };
        let f = build_frame(a, b, seq, 0, flags, payload, None);
        let seg = parse_ethernet(&f, f.len()).unwrap();
        self.ts += 1_000;
        let out = &mut self.out;
        self.table.on_segment(&seg, self.ts, &mut |x| out.push(x));
    }

    /// The handshake (initial sequence numbers `c_isn`, `s_isn`), then REQ from the client.
    fn open_with_request(&mut self, c_isn: u32, s_isn: u32) {
        self.send(true, c_isn, SYN, b"");
        self.send(false, s_isn, SYN | ACK, b"");
        self.send(true, c_isn + 1, PSH_ACK, REQ);
    }

    fn finish(&mut self) -> Vec<FlowExchange> {
        let out = &mut self.out;
        self.table.tick(self.ts + 10_000_000_000, &mut |x| out.push(x));
        self.table.flush(self.ts + 20_000_000_000, &mut |x| out.push(x));
        std::mem::take(&mut self.out)
    }
}

const REQ: &[u8] = b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n";
const RESP: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n0123456789";

fn body(x: &FlowExchange) -> &[u8] {
    &x.exchange.response.as_ref().expect("response").body
}

#[test]
fn announced_request_comes_before_its_exchange() {
    let mut w = Wire::with_announce(true);
    w.open_with_request(100, 5000);
    assert_eq!(w.out.len(), 1, "the head is announced before any response");
    assert!(w.out[0].in_flight && w.out[0].exchange.response.is_none());
    w.send(false, 5001, PSH_ACK, RESP);
    let out = w.finish();
    assert_eq!(out.iter().map(|x| x.in_flight).collect::<Vec<_>>(), [true, false]);
    assert_eq!(out[0].exchange.request.first_ts_ns, out[1].exchange.request.first_ts_ns);
    assert_eq!(body(&out[1]), b"0123456789");
}

#[test]
fn new_syn_on_the_same_ports_starts_a_new_flow() {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    w.send(false, 5001, PSH_ACK, RESP);
    // No FIN seen (lost, or outside the capture); the client port is reused.
    w.open_with_request(900_000, 70_000);
    w.send(false, 70_001, PSH_ACK, RESP);
    let out = w.finish();
    assert_eq!(out.len(), 2, "{out:?}");
    for x in &out {
        assert!(x.exchange.complete(), "{x:?}");
        assert_eq!(body(x), b"0123456789");
    }
}

#[test]
fn handshake_exchange_and_close() {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    w.send(false, 5001, PSH_ACK, RESP);
    w.send(true, 101 + REQ.len() as u32, FIN_ACK, b"");
    w.send(false, 5001 + RESP.len() as u32, FIN_ACK, b"");
    let out = w.finish();
    assert_eq!(out.len(), 1);
    assert_eq!((out[0].client, out[0].server), (w.c, w.s));
    assert!(out[0].exchange.complete());
    assert_eq!(body(&out[0]), b"0123456789");
}

#[test]
fn connection_open_before_start_is_picked_up_at_a_message_start() {
    let mut w = Wire::new();
    // The tail of an earlier response: ignored, no flow yet.
    w.send(false, 9000, PSH_ACK, b"...end of an old body");
    w.send(true, 777, PSH_ACK, REQ);
    w.send(false, 9021, PSH_ACK, RESP);
    let out = w.finish();
    assert_eq!(out.len(), 1, "{out:?}");
    assert_eq!((out[0].client, out[0].server), (w.c, w.s));
    assert_eq!(body(&out[0]), b"0123456789");
}

#[test]
fn reordered_retransmitted_and_overlapping_segments() {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    let r = RESP;
    // Second half first, then the first half, then a retransmission and an overlap.
    w.send(false, 5001 + 20, PSH_ACK, &r[20..]);
    w.send(false, 5001, PSH_ACK, &r[..20]);
    w.send(false, 5001, PSH_ACK, &r[..20]);
    w.send(false, 5001 + 10, PSH_ACK, &r[10..30]);
    let out = w.finish();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].exchange.complete());
    assert_eq!(body(&out[0]), b"0123456789");
}

#[test]
fn sequence_wrap_around() {
    let mut w = Wire::new();
    let isn = u32::MAX - 10;
    w.send(true, isn, SYN, b"");
    w.send(false, u32::MAX - 3, SYN | ACK, b"");
    w.send(true, isn.wrapping_add(1), PSH_ACK, &REQ[..5]);
    w.send(true, isn.wrapping_add(6), PSH_ACK, &REQ[5..]);
    w.send(false, (u32::MAX - 3).wrapping_add(1), PSH_ACK, &RESP[..8]);
    w.send(false, (u32::MAX - 3).wrapping_add(9), PSH_ACK, &RESP[8..]);
    let out = w.finish();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].exchange.complete());
    assert_eq!(body(&out[0]), b"0123456789");
}

#[test]
fn lost_segment_in_body_is_marked_not_misparsed() {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    let head_len = RESP.len() - 10;
    w.send(false, 5001, PSH_ACK, &RESP[..head_len + 3]);
    // bytes 3..6 of the body never arrive
    w.send(false, 5001 + head_len as u32 + 6, PSH_ACK, &RESP[head_len + 6..]);
    let req2 = b"GET /b HTTP/1.1\r\n\r\n";
    w.send(true, 101 + REQ.len() as u32, PSH_ACK, req2);
    w.send(false, 5001 + RESP.len() as u32, PSH_ACK, b"HTTP/1.1 204 No Content\r\n\r\n");
    let out = w.finish();
    assert_eq!(out.len(), 2, "{out:?}");
    assert!(!out[0].exchange.complete());
    assert_eq!(out[0].exchange.lost_bytes(), 3);
    assert_eq!(out[0].exchange.response.as_ref().unwrap().body_size, 10);
    assert!(out[1].exchange.complete());
    assert_eq!(out[1].exchange.response.as_ref().unwrap().start, crate::protocols::StartLine::Response {
        version: 1,
        status: 204,
        reason: b"No Content"[..].into()
    });
}

#[test]
fn reset_ends_the_flow() {
    let mut w = Wire::new();
    w.send(true, 100, SYN, b"");
    w.send(true, 101, PSH_ACK, REQ);
    w.send(false, 1, RST, b"");
    let out = w.finish();
    assert_eq!(out.len(), 1);
    assert!(out[0].exchange.response.is_none());
}

#[test]
fn garbage_flows_yield_nothing() {
    let mut w = Wire::new();
    w.send(true, 100, SYN, b"");
    w.send(true, 101, PSH_ACK, &[0x16, 0x03, 0x01, 0x00, 0x10, 1, 2, 3]);
    w.send(false, 50, PSH_ACK, b"\x00\x01garbage HTTP/1.1 200 OK");
    assert!(w.finish().is_empty());
}

/// A close-delimited (HTTP/1.0) response: it ends where the server's stream ends.
const RESP_10: &[u8] = b"HTTP/1.0 200 OK\r\n\r\n0123456789";

/// REQ answered by RESP_10 except its last `lost` bytes, which never arrive; then the FIN
/// (or RST) of the server at the stream's real end.
fn close_delimited_with_lost_tail(lost: usize, end_flags: u8) -> Wire {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    w.send(false, 5001, PSH_ACK, &RESP_10[..RESP_10.len() - lost]);
    w.send(false, 5001 + RESP_10.len() as u32, end_flags, b"");
    w
}

fn assert_lost_tail(out: &[FlowExchange], lost: u64) {
    assert_eq!(out.len(), 1, "{out:?}");
    let x = &out[0].exchange;
    assert!(!x.complete(), "{x:?}");
    assert_eq!(x.lost_bytes(), lost);
    assert_eq!(x.note, Some(Note::Gap));
}

#[test]
fn bytes_lost_before_the_fin_are_a_gap_after_the_reorder_window() {
    let mut w = close_delimited_with_lost_tail(4, FIN_ACK);
    w.send(true, 101 + REQ.len() as u32, FIN_ACK, b"");
    let out = w.finish();
    assert_lost_tail(&out, 4);
    assert_eq!(body(&out[0]), b"012345");
}

#[test]
fn bytes_lost_before_a_reset_are_a_gap() {
    let mut w = close_delimited_with_lost_tail(3, RST);
    assert_lost_tail(&w.finish(), 3);
}

#[test]
fn bytes_lost_before_the_fin_are_a_gap_at_once_when_the_flow_ends() {
    let mut w = close_delimited_with_lost_tail(4, FIN_ACK);
    w.send(true, 101 + REQ.len() as u32, FIN_ACK, b"");
    // The port is reused at once, within the reorder window: the old flow ends here.
    w.open_with_request(900_000, 70_000);
    let out = std::mem::take(&mut w.out);
    assert_lost_tail(&out, 4);
}

#[test]
fn fin_right_after_the_last_byte_completes_a_close_delimited_body() {
    let mut w = close_delimited_with_lost_tail(0, FIN_ACK);
    // A reset after the FIN carries the FIN's sequence number plus one: no byte is missing.
    w.send(false, 5002 + RESP_10.len() as u32, RST, b"");
    let out = w.finish();
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].exchange.complete(), "{out:?}");
    assert_eq!(out[0].exchange.lost_bytes(), 0);
}

#[test]
fn port_reused_within_the_reorder_window_after_both_fins_ends_the_old_flow_closed() {
    let mut w = Wire::new();
    // As `curl --local-port` three times in a row against an HTTP/1.0 server.
    for (c_isn, s_isn) in [(100, 5000), (900_000, 70_000), (2_000_000, 300_000)] {
        w.open_with_request(c_isn, s_isn);
        w.send(false, s_isn + 1, PSH_ACK, RESP_10);
        w.send(false, s_isn + 1 + RESP_10.len() as u32, FIN_ACK, b"");
        w.send(true, c_isn + 1 + REQ.len() as u32, FIN_ACK, b"");
    }
    let out = w.finish();
    assert_eq!(out.len(), 3, "{out:?}");
    for x in &out {
        assert!(x.exchange.complete(), "{x:?}");
        assert_eq!(body(x), b"0123456789");
    }
}

#[test]
fn port_reused_while_the_old_flow_is_open_leaves_it_unfinished() {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    w.send(false, 5001, PSH_ACK, RESP_10);
    // No FIN seen: the close-delimited body's end is unknown.
    w.open_with_request(900_000, 70_000);
    let out = std::mem::take(&mut w.out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(!out[0].exchange.complete());
    assert_eq!(out[0].exchange.note, Some(Note::Unfinished));
}

/// A response whose tail (and FIN) the capture socket dropped: nothing on the wire says
/// where it ended. When the kernel reported drops while the flow was live, the exchange
/// says `gap` and counts the rest of its declared body as lost; without drops it is only
/// unfinished (l7trace stopped following it), nothing lost.
fn tail_never_seen(kernel_dropped: bool) -> FlowExchange {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    w.send(false, 5001, PSH_ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n0123456789");
    if kernel_dropped {
        w.table.kernel_dropped(w.ts);
    }
    let out = w.finish();
    assert_eq!(out.len(), 1, "{out:?}");
    out.into_iter().next().unwrap()
}

#[test]
fn tail_lost_with_kernel_drops_is_a_gap_with_its_lost_bytes() {
    let x = tail_never_seen(true).exchange;
    assert_eq!(x.note, Some(Note::Gap));
    assert!(!x.complete());
    let r = x.response.as_ref().unwrap();
    assert_eq!((r.body_size, r.lost_bytes), (1000, 990));
    assert_eq!(r.body, b"0123456789");
    assert_eq!(x.lost_bytes(), 990);
}

#[test]
fn tail_not_seen_without_kernel_drops_is_unfinished_not_lost() {
    let x = tail_never_seen(false).exchange;
    assert_eq!(x.note, Some(Note::Unfinished));
    let r = x.response.as_ref().unwrap();
    assert_eq!((r.body_size, r.lost_bytes), (10, 0));
    assert_eq!(x.lost_bytes(), 0);
}

#[test]
fn kernel_drops_do_not_touch_flows_that_end_or_start_after_them() {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    w.table.kernel_dropped(w.ts);
    // The answer comes whole after the drops: complete.
    w.send(false, 5001, PSH_ACK, RESP);
    // A flow opened after the drops and abandoned mid-body is unfinished, not a gap.
    w.c = "10.0.0.3:40001".parse().unwrap();
    w.open_with_request(700, 9000);
    w.send(false, 9001, PSH_ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\nabc");
    let out = w.finish();
    let notes: Vec<_> = out.iter().map(|x| x.exchange.note).collect();
    assert_eq!(notes, [None, Some(Note::Unfinished)], "{out:?}");
    assert!(out[0].exchange.complete());
}

/// A flow whose response (head of 41 bytes, Content-Length 1000) has sent "01234" when the
/// capture socket reports drops.
fn part_of_body_then_drops() -> Wire {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    w.send(false, 5001, PSH_ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n01234");
    w.table.kernel_dropped(w.ts);
    w
}

#[test]
fn a_packet_from_after_the_drops_clears_its_direction_only() {
    // The response's direction gets a packet after the report: whatever was dropped
    // before it is a gap at its place, not a lost tail; the flow is only unfinished.
    let mut w = part_of_body_then_drops();
    // The head is 41 bytes, then "01234": the stream goes on at 46.
    w.send(false, 5001 + 46, PSH_ACK, b"56789");
    let out = w.finish();
    assert_eq!(out[0].exchange.note, Some(Note::Unfinished), "{out:?}");
    assert_eq!(out[0].exchange.lost_bytes(), 0);
    assert_eq!(body(&out[0]), b"0123456789");
    // Only the request's direction moves after the report: the response's tail may be
    // among the drops.
    let mut w = part_of_body_then_drops();
    w.send(true, 101 + REQ.len() as u32, ACK | FIN, b"");
    let out = w.finish();
    assert_eq!(out[0].exchange.note, Some(Note::Gap), "{out:?}");
    assert_eq!(out[0].exchange.lost_bytes(), 995);
}

#[test]
fn a_retransmission_after_the_drops_does_not_clear_them() {
    // Old bytes sent again after the report show nothing of the tail past them.
    let mut w = part_of_body_then_drops();
    w.send(false, 5001, PSH_ACK, b"HTTP/1.1 200 OK\r\n");
    let out = w.finish();
    assert_eq!(out[0].exchange.note, Some(Note::Gap), "{out:?}");
    assert_eq!(out[0].exchange.lost_bytes(), 995);
}

#[test]
fn drops_reported_just_before_the_end_are_not_taken_for_a_lost_tail() {
    // Exit (or eviction) within the reorder window of the report: the transfer may just
    // have been under way, its rest not sent yet.
    let mut w = part_of_body_then_drops();
    let out = &mut w.out;
    w.table.flush(w.ts + 1_000_000, &mut |x| out.push(x));
    assert_eq!(w.out[0].exchange.note, Some(Note::Unfinished), "{:?}", w.out);
    assert_eq!(w.out[0].exchange.lost_bytes(), 0);
}

/// REQ answered by RESP_10 (close-delimited), then both FINs: every byte is in.
fn close_delimited_complete(w: &mut Wire, c_isn: u32, s_isn: u32) {
    w.open_with_request(c_isn, s_isn);
    w.send(false, s_isn + 1, PSH_ACK, RESP_10);
    w.send(false, s_isn + 1 + RESP_10.len() as u32, FIN_ACK, b"");
    w.send(true, c_isn + 1 + REQ.len() as u32, FIN_ACK, b"");
}

#[test]
fn both_fins_with_every_byte_in_end_the_flow_at_once() {
    let mut w = Wire::new();
    close_delimited_complete(&mut w, 100, 5000);
    // No tick: nothing can be overtaken, the exchange is out and the flow gone.
    let out = std::mem::take(&mut w.out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].exchange.complete(), "{out:?}");
    assert_eq!(body(&out[0]), b"0123456789");
    assert_eq!(w.table.active(), 0);
    // Late copies within the reorder window (a retransmitted answer, a FIN, a reset) are
    // the ended connection's, not one picked up mid-way: nothing more, nothing counted.
    w.send(false, 5001, PSH_ACK, RESP_10);
    w.send(true, 101, PSH_ACK, REQ);
    w.send(false, 5001 + RESP_10.len() as u32, FIN_ACK, b"");
    w.send(true, 102 + REQ.len() as u32, RST, b"");
    assert_eq!(w.table.active(), 0);
    assert!(w.finish().is_empty());
    assert_eq!(w.table.stats.orphan_responses, 0);
    assert_eq!(w.table.stats.flows, 1);
}

#[test]
fn both_fins_with_a_byte_missing_wait_for_it() {
    let mut w = Wire::new();
    w.open_with_request(100, 5000);
    w.send(false, 5001 + 5, PSH_ACK, &RESP_10[5..]);
    w.send(false, 5001 + RESP_10.len() as u32, FIN_ACK, b"");
    w.send(true, 101 + REQ.len() as u32, FIN_ACK, b"");
    assert!(w.out.is_empty(), "{:?}", w.out);
    assert_eq!(w.table.active(), 1);
    // The overtaken segment arrives within the window: the flow is whole, and ends.
    w.send(false, 5001, PSH_ACK, &RESP_10[..5]);
    let out = std::mem::take(&mut w.out);
    assert_eq!(out.len(), 1, "{out:?}");
    assert!(out[0].exchange.complete(), "{out:?}");
    assert_eq!(body(&out[0]), b"0123456789");
    assert_eq!(w.table.active(), 0);
}

#[test]
fn ended_flows_are_remembered_for_the_window_only_and_at_most_max_flows() {
    let mut w = Wire::new();
    // Twice the table's bound (16) of connections, each from its own port.
    for i in 0..32u16 {
        w.c.set_port(41_000 + i);
        close_delimited_complete(&mut w, 100, 5000);
    }
    assert_eq!(w.out.len(), 32);
    assert_eq!(w.table.ended.len(), 16);
    assert_eq!(w.table.ended_order.len(), 16);
    // The oldest were forgotten: a copy of the first connection's request is again taken
    // for one picked up mid-way (as it is once the window has passed).
    w.c.set_port(41_000);
    w.send(true, 101, PSH_ACK, REQ);
    assert_eq!(w.table.active(), 1);
    let out = &mut w.out;
    w.table.tick(w.ts + Limits::default().reorder_timeout_ns + 1, &mut |x| out.push(x));
    assert!(w.table.ended.is_empty() && w.table.ended_order.is_empty());
}
