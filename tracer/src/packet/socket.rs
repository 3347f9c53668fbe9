//! The AF_PACKET socket: opened with no protocol so nothing arrives before the filter is
//! attached, then bound to the interface for every ethertype.
use std::{
    ffi::CString,
    io,
    os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd},
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
}

/// What the kernel said about a received frame: whether it is outgoing, when, and how
/// long it was.
pub struct Received {
    pub outgoing: bool,
    /// When the kernel saw the frame (CLOCK_REALTIME ns, SO_TIMESTAMPNS).
    pub ts_real_ns: Option<u64>,
    /// The frame's length before the filter cut it to the snap length (PACKET_AUXDATA),
    /// or what was read when the kernel did not say.
    pub frame_len: usize,
}

/// Frames read per recvmmsg(2).
pub const BATCH_FRAMES: usize = 32;
/// Bytes kept of one frame: loopback's MTU (65536) plus its link header.
const FRAME_MAX: usize = (1 << 16) + 64;

/// Buffers for `recv_batch`: one call reads up to `BATCH_FRAMES` frames (2 MiB).
pub struct RecvBatch {
    bufs: Vec<Box<[u8]>>,
    names: Vec<libc::sockaddr_ll>,
    iovs: Vec<libc::iovec>,
    /// Room for the timestamp (32 bytes) and the auxdata (40 bytes) control messages.
    controls: Vec<[u64; 12]>,
    hdrs: Vec<libc::mmsghdr>,
}

impl Default for RecvBatch {
    fn default() -> Self {
        fn zeroed<T>() -> T {
            // SAFETY: only used for sockaddr_ll, iovec and mmsghdr, for which all-zero
            // bytes are a valid value.
            unsafe { std::mem::zeroed() }
        }
        RecvBatch {
            bufs: (0..BATCH_FRAMES).map(|_| vec![0u8; FRAME_MAX].into_boxed_slice()).collect(),
            names: (0..BATCH_FRAMES).map(|_| zeroed()).collect(),
            iovs: (0..BATCH_FRAMES).map(|_| zeroed()).collect(),
            controls: vec![[0u64; 12]; BATCH_FRAMES],
            hdrs: (0..BATCH_FRAMES).map(|_| zeroed()).collect(),
        }
    }
}

impl RecvBatch {
    /// Frame `i` of the last `recv_batch`: its bytes and what the kernel said about it.
    pub fn frame(&self, i: usize) -> (&[u8], Received) {
        let h = &self.hdrs[i];
        let len = (h.msg_len as usize).min(FRAME_MAX);
        let (ts_real_ns, frame_len) = control(&h.msg_hdr);
        let got = Received {
            outgoing: self.names[i].sll_pkttype == PACKET_OUTGOING,
            ts_real_ns,
            frame_len: frame_len.map_or(len, |l| l as usize),
        };
        (&self.bufs[i][..len], got)
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
        let s = PacketSocket { fd, name: iface.to_owned(), ifindex, loopback };
        // Room for bursts: 16 MiB (FORCE works as root, above rmem_max).
        let size: libc::c_int = 16 << 20;
        // Each frame's own arrival time: frames read in one batch must not share the read's.
        // Each frame's length before the snap length cut it: a BIG TCP super-packet's IP
        // header says 0, and only this length gives its payload's.
        let on: libc::c_int = 1;
        // SAFETY: valid option pointers and lengths.
        unsafe {
            libc::setsockopt(s.fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_RCVBUFFORCE, &size as *const _ as *const libc::c_void, 4);
            libc::setsockopt(s.fd.as_raw_fd(), libc::SOL_SOCKET, libc::SO_TIMESTAMPNS, &on as *const _ as *const libc::c_void, 4);
            libc::setsockopt(s.fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_AUXDATA, &on as *const _ as *const libc::c_void, 4);
        }
        Ok(s)
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

    /// As many frames as wait, up to the batch's size, in one recvmmsg(2); returns how many
    /// (0 when nothing is waiting). Read them with `RecvBatch::frame`.
    pub fn recv_batch(&self, batch: &mut RecvBatch) -> io::Result<usize> {
        let n = batch.bufs.len();
        for i in 0..n {
            batch.iovs[i] = libc::iovec { iov_base: batch.bufs[i].as_mut_ptr() as *mut libc::c_void, iov_len: FRAME_MAX };
            // SAFETY: an all-zero msghdr is valid; the pointers set below point into the
            // batch, which outlives the call.
            let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
            msg.msg_name = &mut batch.names[i] as *mut _ as *mut libc::c_void;
            msg.msg_namelen = std::mem::size_of::<libc::sockaddr_ll>() as u32;
            msg.msg_iov = &mut batch.iovs[i];
            msg.msg_iovlen = 1;
            msg.msg_control = batch.controls[i].as_mut_ptr() as *mut libc::c_void;
            msg.msg_controllen = std::mem::size_of::<[u64; 12]>();
            batch.hdrs[i] = libc::mmsghdr { msg_hdr: msg, msg_len: 0 };
        }
        // SAFETY: `n` valid mmsghdrs whose buffers live in `batch`; no timeout.
        let got = unsafe {
            libc::recvmmsg(self.fd.as_raw_fd(), batch.hdrs.as_mut_ptr(), n as u32, libc::MSG_DONTWAIT, std::ptr::null_mut())
        };
        if got < 0 {
            let e = io::Error::last_os_error();
            return if e.kind() == io::ErrorKind::WouldBlock { Ok(0) } else { Err(e) };
        }
        Ok(got as usize)
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

    /// Packets the kernel dropped on this socket since the last call (PACKET_STATISTICS).
    pub fn drops(&self) -> u64 {
        #[repr(C)]
        struct TpacketStats {
            packets: u32,
            drops: u32,
        }
        let mut st = TpacketStats { packets: 0, drops: 0 };
        let mut len = std::mem::size_of::<TpacketStats>() as libc::socklen_t;
        // SAFETY: valid option buffer and length.
        let r = unsafe {
            libc::getsockopt(self.fd.as_raw_fd(), libc::SOL_PACKET, libc::PACKET_STATISTICS, &mut st as *mut _ as *mut libc::c_void, &mut len)
        };
        if r < 0 { 0 } else { st.drops as u64 }
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

/// The SCM_TIMESTAMPNS and PACKET_AUXDATA control messages of a received frame: its
/// timestamp and its length before the filter cut it.
fn control(msg: &libc::msghdr) -> (Option<u64>, Option<u32>) {
    let (mut ts_ns, mut frame_len) = (None, None);
    // SAFETY: the CMSG macros walk the control buffer the kernel filled, within
    // msg_controllen; the payloads are read unaligned.
    unsafe {
        let mut c = libc::CMSG_FIRSTHDR(msg);
        while !c.is_null() {
            match ((*c).cmsg_level, (*c).cmsg_type) {
                (libc::SOL_SOCKET, libc::SCM_TIMESTAMPNS) => {
                    let ts: libc::timespec = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::timespec);
                    ts_ns = Some(ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64);
                }
                (libc::SOL_PACKET, libc::PACKET_AUXDATA) => {
                    let aux: libc::tpacket_auxdata = std::ptr::read_unaligned(libc::CMSG_DATA(c) as *const libc::tpacket_auxdata);
                    frame_len = Some(aux.tp_len);
                }
                _ => {}
            }
            c = libc::CMSG_NXTHDR(msg, c);
        }
    }
    (ts_ns, frame_len)
}
