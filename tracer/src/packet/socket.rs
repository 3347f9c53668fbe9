//! The AF_PACKET socket: opened with no protocol so nothing arrives before the filter is
//! attached, then bound to the interface for every ethertype.
use std::{
    ffi::CString,
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
    sync::atomic::{AtomicU32, Ordering},
};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum PacketError {
    #[error("--iface any is not supported: name one interface (cooked captures of all interfaces would show each forwarded exchange twice)")]
    Any,
    #[error("no interface named {0:?}")]
    NoSuchInterface(String),
    #[error("{what}: {source}")]
    Sys { what: &'static str, source: io::Error },
}

fn sys(what: &'static str) -> PacketError {
    PacketError::Sys { what, source: io::Error::last_os_error() }
}

/// The capture interface's state, as `PacketSocket::link` finds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Link {
    Up,
    Down,
    /// Deleted, or moved to another network namespace: nothing more can come.
    Gone,
}

pub struct PacketSocket {
    fd: OwnedFd,
    /// The interface as named on the command line, and its index when it was opened.
    pub name: String,
    ifindex: i32,
    /// The loopback device shows each packet twice (outgoing, then incoming).
    pub loopback: bool,
    ring: Ring,
}

/// What the kernel said about a received frame: whether it is outgoing, when, and how
/// long it was.
pub struct Received {
    pub outgoing: bool,
    /// When the kernel saw the frame (CLOCK_REALTIME ns).
    pub ts_real_ns: u64,
    /// The frame's length before the filter cut it to the snap length: a BIG TCP
    /// super-packet's IP header says 0, and only this length gives its payload's.
    pub frame_len: usize,
}

/// The receive ring (TPACKET_V3): RING_BLOCKS blocks of RING_BLOCK bytes, mapped into
/// l7trace. The kernel writes each frame the filter keeps into the current block, and hands
/// the block over when it is full or RING_TIMEOUT_MS after its first frame: no syscall, no
/// socket buffer and no copy per frame on l7trace's side.
const RING_BLOCK: usize = 1 << 20;
const RING_BLOCKS: usize = 16;
const RING_TIMEOUT_MS: u32 = 5;
/// `tpacket3_hdr`'s size (48) rounded to TPACKET_ALIGNMENT (16): its `sockaddr_ll` follows.
const TPACKET3_HDRLEN: usize = 48;
const TP_STATUS_KERNEL: u32 = 0;
const TP_STATUS_USER: u32 = 1;
const TPACKET_V3: libc::c_int = 2;

/// `struct tpacket_req3`.
#[repr(C)]
struct TpacketReq3 {
    block_size: u32,
    block_nr: u32,
    frame_size: u32,
    frame_nr: u32,
    retire_blk_tov: u32,
    sizeof_priv: u32,
    feature_req_word: u32,
}

struct Ring {
    base: *mut u8,
}

impl Ring {
    /// Asks for the ring (TPACKET_V3) on the socket, and maps it.
    fn map(fd: &OwnedFd) -> Result<Ring, PacketError> {
        let version = TPACKET_V3;
        let req = TpacketReq3 {
            block_size: RING_BLOCK as u32,
            block_nr: RING_BLOCKS as u32,
            // Frames are packed in a block whatever their length; this only has to
            // divide the block.
            frame_size: 2048,
            frame_nr: (RING_BLOCK / 2048 * RING_BLOCKS) as u32,
            retire_blk_tov: RING_TIMEOUT_MS,
            sizeof_priv: 0,
            feature_req_word: 0,
        };
        // SAFETY: valid option pointers and lengths.
        unsafe {
            if libc::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_VERSION, &version as *const _ as *const libc::c_void, 4) < 0 {
                return Err(sys("setsockopt(PACKET_VERSION, TPACKET_V3)"));
            }
            let size = std::mem::size_of::<TpacketReq3>() as libc::socklen_t;
            if libc::setsockopt(fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_RX_RING, &req as *const _ as *const libc::c_void, size) < 0 {
                return Err(sys("setsockopt(PACKET_RX_RING)"));
            }
        }
        // SAFETY: maps the ring the kernel just made for this socket, shared.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                RING_BLOCK * RING_BLOCKS,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        if base == libc::MAP_FAILED {
            return Err(sys("mmap(PACKET_RX_RING)"));
        }
        Ok(Ring { base: base as *mut u8 })
    }
}

impl Drop for Ring {
    fn drop(&mut self) {
        // SAFETY: the mapping made in `Ring::map`, unmapped once.
        unsafe { libc::munmap(self.base as *mut libc::c_void, RING_BLOCK * RING_BLOCKS) };
    }
}

/// A block the kernel handed over (see `PacketSocket::next_block`): its frames, in order.
/// Dropping it gives it back to the kernel.
pub struct Block<'a> {
    /// The block's first byte; RING_BLOCK bytes, the first BLOCK_HDR of them its header.
    base: *const u8,
    status: &'a AtomicU32,
    /// Frames not read yet, and where the next one starts.
    left: u32,
    off: usize,
}

/// `tpacket_block_desc` with its `tpacket_hdr_v1`: no frame starts before its end.
const BLOCK_HDR: usize = 48;

impl Block<'_> {
    /// The next frame: its bytes and what the kernel said about it; None past the last,
    /// or at a frame that would not lie inside the block. The bytes are the block's: they
    /// are borrowed until the next call.
    pub fn next_frame(&mut self) -> Option<(&[u8], Received)> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        let at = self.off;
        if at < BLOCK_HDR || at + TPACKET3_HDRLEN + 12 > RING_BLOCK {
            self.left = 0;
            return None;
        }
        // SAFETY: inside the block (checked above), which the kernel does not write while
        // it is handed over; unaligned reads of plain integers.
        let (next, sec, nsec, snaplen, len, mac, pkttype) = unsafe {
            let u32_at = |o: usize| std::ptr::read_unaligned(self.base.add(at + o) as *const u32);
            // tpacket3_hdr: next_offset @0, sec @4, nsec @8, snaplen @12, len @16, mac @24;
            // its sockaddr_ll follows, whose pkttype is @10.
            (
                u32_at(0),
                u32_at(4),
                u32_at(8),
                u32_at(12) as usize,
                u32_at(16),
                std::ptr::read_unaligned(self.base.add(at + 24) as *const u16) as usize,
                *self.base.add(at + TPACKET3_HDRLEN + 10),
            )
        };
        let start = at + mac;
        if mac < TPACKET3_HDRLEN || start + snaplen > RING_BLOCK {
            self.left = 0;
            return None;
        }
        self.off = if next == 0 { RING_BLOCK } else { at + next as usize };
        // SAFETY: as above; the slice ends before the next call (the borrow of `self`).
        let frame = unsafe { std::slice::from_raw_parts(self.base.add(start), snaplen) };
        let got = Received {
            outgoing: pkttype == PACKET_OUTGOING,
            ts_real_ns: sec as u64 * 1_000_000_000 + nsec as u64,
            frame_len: len as usize,
        };
        Some((frame, got))
    }
}

impl Drop for Block<'_> {
    fn drop(&mut self) {
        // Everything read from the block happens before the kernel may write it again.
        self.status.store(TP_STATUS_KERNEL, Ordering::Release);
    }
}

const ETH_P_ALL: u16 = 0x0003;
const PACKET_OUTGOING: u8 = 4;

/// The index of the interface `--iface` names; refused: `any`, and names no interface has.
/// Needs no privilege, so l7trace checks it first.
pub fn ifindex(iface: &str) -> Result<i32, PacketError> {
    if iface == "any" {
        return Err(PacketError::Any);
    }
    let name = CString::new(iface).map_err(|_| PacketError::NoSuchInterface(iface.into()))?;
    // SAFETY: valid C string.
    match unsafe { libc::if_nametoindex(name.as_ptr()) } as i32 {
        0 => Err(PacketError::NoSuchInterface(iface.into())),
        i => Ok(i),
    }
}

impl PacketSocket {
    /// Opens the socket; call `bind` after attaching the filter.
    pub fn open(iface: &str) -> Result<Self, PacketError> {
        let ifindex = ifindex(iface)?;
        // SAFETY: plain syscall; protocol 0 receives nothing until bind.
        let raw = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW | libc::SOCK_NONBLOCK | libc::SOCK_CLOEXEC, 0) };
        if raw < 0 {
            return Err(sys("socket(AF_PACKET)"));
        }
        // SAFETY: we own the new fd.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let loopback = std::fs::read_to_string(format!("/sys/class/net/{iface}/type")).is_ok_and(|t| t.trim() == "772");
        let ring = Ring::map(&fd)?;
        Ok(PacketSocket { fd, name: iface.to_owned(), ifindex, loopback, ring })
    }

    pub fn bind(&self) -> Result<(), PacketError> {
        // SAFETY: zeroed sockaddr_ll is valid; fields set below.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        sll.sll_family = libc::AF_PACKET as u16;
        sll.sll_protocol = ETH_P_ALL.to_be();
        sll.sll_ifindex = self.ifindex;
        // SAFETY: valid sockaddr pointer and length.
        let r = unsafe {
            libc::bind(self.fd.as_raw_fd(), &sll as *const _ as *const libc::sockaddr, std::mem::size_of::<libc::sockaddr_ll>() as u32)
        };
        if r < 0 {
            return Err(sys("bind(AF_PACKET)"));
        }
        Ok(())
    }

    /// The next block of frames the kernel handed over, from block `*cursor` on (which
    /// then moves past it); None when the kernel still holds it. Blocks come in order.
    pub fn next_block(&self, cursor: &mut usize) -> Option<Block<'_>> {
        let i = *cursor % RING_BLOCKS;
        // SAFETY: block `i` lies inside the mapping, which lives as long as `self`.
        let base = unsafe { self.ring.base.add(i * RING_BLOCK) } as *const u8;
        // tpacket_block_desc: version @0, offset_to_priv @4, then tpacket_hdr_v1:
        // block_status @8, num_pkts @12, offset_to_first_pkt @16 (aligned: a page start).
        // SAFETY: an aligned u32 of the shared mapping, only ever accessed atomically here.
        let status = unsafe { &*(base.add(8) as *const AtomicU32) };
        if status.load(Ordering::Acquire) & TP_STATUS_USER == 0 {
            return None;
        }
        // SAFETY: the kernel wrote the block's header before handing it over (the
        // acquire above), and does not write the block again until `Block` gives it back.
        let (left, off) = unsafe { (*(base.add(12) as *const u32), *(base.add(16) as *const u32) as usize) };
        *cursor = (i + 1) % RING_BLOCKS;
        Some(Block { base, status, left, off })
    }

    /// The error the socket holds, cleared (SO_ERROR): ENETDOWN when its interface went
    /// down.
    pub fn take_error(&self) -> Option<io::Error> {
        match self.option(libc::SOL_SOCKET, libc::SO_ERROR, 0 as libc::c_int) {
            Ok(0) => None,
            Ok(err) => Some(io::Error::from_raw_os_error(err)),
            Err(e) => Some(e),
        }
    }

    /// A socket option's value (getsockopt), read into a `T` that starts as `init`.
    fn option<T>(&self, level: libc::c_int, name: libc::c_int, init: T) -> io::Result<T> {
        let mut value = init;
        let mut len = std::mem::size_of::<T>() as libc::socklen_t;
        // SAFETY: a buffer of `len` bytes we own, for the kernel to fill.
        let r = unsafe { libc::getsockopt(self.fd.as_raw_fd(), level, name, &mut value as *mut T as *mut libc::c_void, &mut len) };
        if r < 0 { Err(io::Error::last_os_error()) } else { Ok(value) }
    }

    /// What became of the interface (asked after the socket reported it down): a socket
    /// bound to it resumes when it comes up again; one whose interface was deleted or
    /// moved to another network namespace never receives again (the kernel unbinds it:
    /// its address then names no interface). Renamed, it is the same interface.
    pub fn link(&self) -> Link {
        // SAFETY: an all-zero sockaddr_ll is valid; getsockname fills it.
        let mut sll: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        let mut len = std::mem::size_of::<libc::sockaddr_ll>() as libc::socklen_t;
        // SAFETY: valid address buffer and length.
        let r = unsafe { libc::getsockname(self.fd.as_raw_fd(), &mut sll as *mut _ as *mut libc::sockaddr, &mut len) };
        if r < 0 || sll.sll_ifindex != self.ifindex {
            return Link::Gone;
        }
        // Its name now, for the flags.
        let mut name = [0 as libc::c_char; libc::IFNAMSIZ];
        // SAFETY: the buffer holds IFNAMSIZ bytes, as the call requires.
        if unsafe { libc::if_indextoname(self.ifindex as libc::c_uint, name.as_mut_ptr()) }.is_null() {
            return Link::Gone;
        }
        // SAFETY: an all-zero ifreq is valid; the name is NUL-terminated within IFNAMSIZ.
        let mut req: libc::ifreq = unsafe { std::mem::zeroed() };
        req.ifr_name = name;
        // SAFETY: SIOCGIFFLAGS reads the flags into the ifreq we own.
        if unsafe { libc::ioctl(self.fd.as_raw_fd(), libc::SIOCGIFFLAGS, &mut req) } < 0 {
            return Link::Gone;
        }
        // SAFETY: SIOCGIFFLAGS filled the flags member of the union.
        if unsafe { req.ifr_ifru.ifru_flags } as libc::c_int & libc::IFF_UP != 0 {
            Link::Up
        } else {
            Link::Down
        }
    }

    /// Packets the kernel dropped on this socket since the last call (PACKET_STATISTICS:
    /// its first two counters, packets and drops, read and reset).
    pub fn drops(&self) -> u64 {
        self.option(libc::SOL_PACKET, libc::PACKET_STATISTICS, [0u32; 2]).map_or(0, |[_, drops]| drops as u64)
    }
}

impl AsFd for PacketSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        self.fd.as_fd()
    }
}

impl AsRawFd for PacketSocket {
    fn as_raw_fd(&self) -> i32 {
        self.fd.as_raw_fd()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a tpacket3_hdr at `at` with its frame `bytes` at `at + mac`.
    fn put_frame(block: &mut [u8], at: usize, next: u32, mac: u16, bytes: &[u8], pkttype: u8) {
        let put = |b: &mut [u8], o: usize, v: &[u8]| b[at + o..at + o + v.len()].copy_from_slice(v);
        put(block, 0, &next.to_ne_bytes());
        put(block, 4, &7u32.to_ne_bytes());
        put(block, 8, &5u32.to_ne_bytes());
        put(block, 12, &(bytes.len() as u32).to_ne_bytes());
        put(block, 16, &(bytes.len() as u32 + 100).to_ne_bytes());
        put(block, 24, &mac.to_ne_bytes());
        put(block, TPACKET3_HDRLEN + 10, &[pkttype]);
        put(block, mac as usize, bytes);
    }

    #[test]
    fn block_frames_are_read_in_order_and_one_outside_the_block_ends_it() {
        let mut words = vec![0u64; RING_BLOCK / 8];
        // SAFETY: the vector's own bytes, as many as it holds.
        let block = unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut u8, RING_BLOCK) };
        put_frame(block, 64, 128, 80, b"first", 0);
        put_frame(block, 192, 256, 80, b"second", PACKET_OUTGOING);
        // Its bytes would run past the block's end.
        put_frame(block, 448, 0, 80, b"", 0);
        block[448 + 12..448 + 16].copy_from_slice(&(RING_BLOCK as u32).to_ne_bytes());
        let status = AtomicU32::new(TP_STATUS_USER);
        let mut b = Block { base: block.as_ptr(), status: &status, left: 4, off: 64 };
        let (f, got) = b.next_frame().unwrap();
        assert_eq!(f, b"first");
        assert_eq!((got.outgoing, got.ts_real_ns, got.frame_len), (false, 7_000_000_005, 105));
        let (f, got) = b.next_frame().unwrap();
        assert_eq!((f, got.outgoing), (&b"second"[..], true));
        assert!(b.next_frame().is_none());
        assert!(b.next_frame().is_none(), "nothing after a frame outside the block");
        drop(b);
        assert_eq!(status.load(Ordering::Relaxed), TP_STATUS_KERNEL, "the block is given back");
    }
}
