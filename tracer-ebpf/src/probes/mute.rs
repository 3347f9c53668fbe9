//! Not a probe: a program userspace runs itself (`BPF_PROG_TEST_RUN`), never attached, to
//! stop the payload probes copying a connection it is done with (upgraded to another
//! protocol, or found not to be HTTP). A socket filter only because that is the oldest
//! program type userspace can run with bytes of its choosing; the "packet" is a frame
//! whose last 16 bytes are the connection's socket and id, in host order.
use aya_ebpf::{macros::socket_filter, programs::SkBuffContext};
use tracer_common::PROTO_IGNORED;

use crate::maps::CONNS;

/// 1: the connection is no longer followed (its Close still comes); 0: the socket's entry
/// is gone or belongs to a later connection, left as it is.
#[socket_filter]
pub fn l7_mute(ctx: SkBuffContext) -> i64 {
    let len = ctx.len() as usize;
    if len < 16 {
        return 0;
    }
    let Ok([sk, conn_id]) = ctx.load::<[u64; 2]>(len - 16) else {
        return 0;
    };
    let Some(conn) = CONNS.get_ptr_mut(&sk) else {
        return 0;
    };
    // SAFETY: map value pointer, used at once. One byte is stored: the probes' concurrent
    // updates of the entry's other fields are not overwritten, as a map update from
    // userspace (the whole value) would.
    unsafe {
        if (*conn).conn_id != conn_id {
            return 0;
        }
        (*conn).proto = PROTO_IGNORED;
    }
    1
}
