//! The consumer side of the BPF ring buffer, read in batches.
//!
//! aya's `RingBuf` publishes its consumer position after every record. The kernel's
//! producers read that position on every reserve (under the ring's lock, from the programs
//! of the traced processes' syscalls): each store by the reader on another CPU makes that
//! read a cache miss in the traced process. Here the position is published once per
//! `PUBLISH_BYTES` read and at the end of each round, so the producers mostly find the
//! line where they left it, and the ring is still freed long before it fills.
//!
//! The data pages are mapped once, not twice in a row as aya does for records that wrap
//! around the ring's end: the kernel maps every page at mmap time, so each mapping counts
//! the whole ring in the process's resident set (8 MiB here). The rare record that wraps
//! is copied whole into a buffer instead.
use std::{
    io,
    os::fd::{AsFd, AsRawFd, RawFd},
    ptr::NonNull,
    sync::atomic::{AtomicU32, AtomicUsize, Ordering},
};

use aya::maps::MapData;

/// Record header flags (kernel `BPF_RINGBUF_BUSY_BIT`, `BPF_RINGBUF_DISCARD_BIT`).
const BUSY: u32 = 1 << 31;
const DISCARD: u32 = 1 << 30;
/// Record header size (`BPF_RINGBUF_HDR_SZ`): length word and page offset word.
const HDR: usize = 8;
/// Bytes read between two publications of the consumer position: 1/32 of the 8 MiB ring.
const PUBLISH_BYTES: usize = 256 << 10;

/// One shared mapping, unmapped on drop.
struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

impl Mapping {
    fn new(fd: RawFd, len: usize, prot: libc::c_int, offset: usize) -> io::Result<Mapping> {
        // SAFETY: a fresh shared mapping of the ring's fd; no existing memory is touched.
        let p = unsafe { libc::mmap(std::ptr::null_mut(), len, prot, libc::MAP_SHARED, fd, offset as libc::off_t) };
        if p == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let ptr = NonNull::new(p as *mut u8).ok_or_else(|| io::Error::other("mmap returned null"))?;
        Ok(Mapping { ptr, len })
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: our own mapping, no borrow of it outlives `self`.
        unsafe { libc::munmap(self.ptr.as_ptr() as *mut libc::c_void, self.len) };
    }
}

pub struct RingReader {
    /// Keeps the map, and so its fd, alive.
    map: MapData,
    /// The consumer page (read-write): the consumer position at offset 0.
    cons: Mapping,
    /// The producer page (the producer position at offset 0), then the data pages.
    prod: Mapping,
    page: usize,
    size: usize,
    /// Where the next record starts; published to the kernel up to `published`.
    pos: usize,
    published: usize,
    /// The producer position last read.
    prod_pos: usize,
    /// A record that wraps around the ring's end, put back together.
    wrapped: Vec<u8>,
}

impl RingReader {
    /// `size`: the ring's data size in bytes (a power of two, a multiple of the page size).
    pub fn new(map: MapData, size: usize) -> io::Result<RingReader> {
        if !size.is_power_of_two() {
            return Err(io::Error::other(format!("ring size {size} is not a power of two")));
        }
        // SAFETY: sysconf has no preconditions.
        let page = unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as usize;
        let fd = map.fd().as_fd().as_raw_fd();
        let cons = Mapping::new(fd, page, libc::PROT_READ | libc::PROT_WRITE, 0)?;
        let prod = Mapping::new(fd, page + size, libc::PROT_READ, page)?;
        let mut r =
            RingReader { map, cons, prod, page, size, pos: 0, published: 0, prod_pos: 0, wrapped: Vec::new() };
        // A ring used before (not here, but cheap to honour): start where its reader was.
        r.pos = r.cons_pos().load(Ordering::Acquire);
        r.published = r.pos;
        r.prod_pos = r.producer_pos();
        Ok(r)
    }

    fn cons_pos(&self) -> &AtomicUsize {
        // SAFETY: the consumer page starts with the kernel's `consumer_pos`, an aligned
        // unsigned long that only this reader writes; the mapping lives as long as `self`.
        unsafe { &*(self.cons.ptr.as_ptr() as *const AtomicUsize) }
    }

    fn producer_pos(&self) -> usize {
        // SAFETY: the producer page starts with `producer_pos`, written by the kernel with
        // release semantics; acquire makes the records before it visible.
        unsafe { &*(self.prod.ptr.as_ptr() as *const AtomicUsize) }.load(Ordering::Acquire)
    }

    /// Hands up to `max` committed records to `f`, in ring order; true when it stopped at
    /// `max` (more may wait). A record still being written ends the round (false, as an
    /// empty ring does): it is read in the next one, in its place.
    pub fn read(&mut self, max: usize, f: &mut impl FnMut(&[u8])) -> bool {
        for _ in 0..max {
            if self.pos == self.prod_pos {
                self.prod_pos = self.producer_pos();
                if self.pos == self.prod_pos {
                    self.publish();
                    return false;
                }
            }
            let off = self.pos & (self.size - 1);
            // SAFETY: `off` is 8-aligned (records are) and a header never crosses the end
            // (the size is a multiple of 8); the kernel commits a record by clearing BUSY
            // with a full barrier, and the acquire load pairs with it.
            let hdr = unsafe { &*(self.data(off) as *const AtomicU32) }.load(Ordering::Acquire);
            if hdr & BUSY != 0 {
                self.publish();
                return false;
            }
            let len = (hdr & !(BUSY | DISCARD)) as usize;
            if len > self.size - HDR {
                // Not a record the kernel could have written: stop rather than read past
                // the mapping (never seen; the ring's own invariant).
                tracing::error!("ring buffer record of {len} bytes at {}: reading stopped", self.pos);
                self.publish();
                return false;
            }
            if hdr & DISCARD == 0 {
                f(self.record(off + HDR, len));
            }
            self.pos += (HDR + len).next_multiple_of(8);
            if self.pos - self.published >= PUBLISH_BYTES {
                self.publish();
            }
        }
        self.publish();
        true
    }

    /// The data byte at ring offset `off` (< size).
    fn data(&self, off: usize) -> *const u8 {
        // SAFETY: the data pages follow the producer page; `off` < size keeps it inside.
        unsafe { self.prod.ptr.as_ptr().add(self.page + off) }
    }

    /// The `len` bytes of a committed record starting at ring offset `start` (which may be
    /// the ring's end: the record then starts at 0). They stay untouched by producers until
    /// the consumer position passes them, after the caller is done with the slice.
    fn record(&mut self, start: usize, len: usize) -> &[u8] {
        let start = start & (self.size - 1);
        let first = len.min(self.size - start);
        // SAFETY: `start + first` <= size: inside the data mapping; committed bytes (see
        // above).
        let head = unsafe { std::slice::from_raw_parts(self.data(start), first) };
        if first == len {
            return head;
        }
        // SAFETY: the rest wraps to the start of the data pages; `len` < size.
        let tail = unsafe { std::slice::from_raw_parts(self.data(0), len - first) };
        self.wrapped.clear();
        self.wrapped.extend_from_slice(head);
        self.wrapped.extend_from_slice(tail);
        &self.wrapped
    }

    fn publish(&mut self) {
        if self.published != self.pos {
            // Release: the records' reads are done before the kernel may reuse their room.
            self.cons_pos().store(self.pos, Ordering::Release);
            self.published = self.pos;
        }
    }

    pub fn as_raw_fd(&self) -> RawFd {
        self.map.fd().as_fd().as_raw_fd()
    }
}
