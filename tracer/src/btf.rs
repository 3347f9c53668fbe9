//! Field offsets of kernel structures, from the kernel's BTF (/sys/kernel/btf/vmlinux).
//!
//! The kernel side reads a few fields that no stable interface gives (a TCP socket's
//! `copied_seq`): their offsets differ between kernel builds, so the loader looks them up
//! here and hands them over as read-only globals; 0 (not found) turns the reading off.
//! Only what that needs: structs and unions, their members, anonymous members followed.
//!
//! The file (5 MB and more) is read in pieces, never held whole: it would be most of
//! l7trace's peak memory. What stays is one offset per type (about 4 bytes x 150,000).
use std::{fs::File, io, os::unix::fs::FileExt, path::Path};

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: io::Error },
    #[error("not BTF, or a layout this reader does not know: {0}")]
    Format(&'static str),
}

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
/// Anonymous members nest (a union of structs of ...); deeper than this is not followed.
const MAX_DEPTH: usize = 4;
/// Bytes read at a time while walking a section.
const CHUNK: usize = 64 << 10;

/// Random reads from a BTF blob: the kernel's file, or bytes in memory (tests).
pub trait Blob {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()>;
}

impl Blob for File {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        self.read_exact_at(buf, off)
    }
}

impl Blob for [u8] {
    fn read_at(&self, off: u64, buf: &mut [u8]) -> io::Result<()> {
        let start = usize::try_from(off).map_err(|_| io::ErrorKind::UnexpectedEof)?;
        let src = self.get(start..start + buf.len()).ok_or(io::ErrorKind::UnexpectedEof)?;
        buf.copy_from_slice(src);
        Ok(())
    }
}

/// The kernel's BTF, indexed for offset lookups.
pub struct Btf<B: Blob + ?Sized> {
    blob: Box<B>,
    type_section: std::ops::Range<u64>,
    strings: std::ops::Range<u64>,
    /// Where each type's record starts, by type id (id 0 is `void`, which has none).
    types: Vec<u32>,
}

impl Btf<File> {
    /// The running kernel's BTF.
    pub fn kernel() -> Result<Self, BtfError> {
        let path = Path::new("/sys/kernel/btf/vmlinux");
        let file = File::open(path).map_err(|source| BtfError::Read { path: path.display().to_string(), source })?;
        Btf::index(Box::new(file))
    }
}

impl<B: Blob + ?Sized> Btf<B> {
    /// Walks the type section once, remembering where each record starts.
    pub fn index(blob: Box<B>) -> Result<Self, BtfError> {
        let mut hdr = [0u8; 24];
        blob.read_at(0, &mut hdr).map_err(|_| BtfError::Format("header cut short"))?;
        let word = |i: usize| u32::from_le_bytes([hdr[i], hdr[i + 1], hdr[i + 2], hdr[i + 3]]) as u64;
        if u16::from_le_bytes([hdr[0], hdr[1]]) != MAGIC {
            return Err(BtfError::Format("bad magic (or not little-endian)"));
        }
        let hdr_len = word(4);
        let types_at = hdr_len + word(8);
        let types_end = types_at + word(12);
        let strings = hdr_len + word(16)..hdr_len + word(16) + word(20);
        let mut types = vec![0];
        let mut reader = Chunks::new(&*blob, types_at, types_end);
        while reader.pos < types_end {
            let at = u32::try_from(reader.pos).map_err(|_| BtfError::Format("type section beyond 4 GiB"))?;
            let mut rec = [0u8; 12];
            reader.read(&mut rec).map_err(|_| BtfError::Format("type record cut short"))?;
            let info = u32::from_le_bytes([rec[4], rec[5], rec[6], rec[7]]);
            reader.skip(extra_len(info).ok_or(BtfError::Format("unknown type kind"))? as u64);
            types.push(at);
        }
        if reader.pos != types_end {
            return Err(BtfError::Format("type section cut short"));
        }
        Ok(Btf { blob, type_section: types_at..types_end, strings, types })
    }

    /// Byte offset of `member` in the struct (or union) named `ty`, looking inside its
    /// anonymous struct and union members too. None when either is absent, or the member
    /// is a bit field.
    pub fn member_offset(&self, ty: &str, member: &str) -> Option<u32> {
        let (ty_off, member_off) = (self.string_offset(ty)?, self.string_offset(member)?);
        let mut reader = Chunks::new(&*self.blob, self.type_section.start, self.type_section.end);
        let id = (1..self.types.len()).find(|&id| {
            let mut rec = [0u8; 8];
            reader.pos = self.types[id] as u64;
            reader.read(&mut rec).is_ok_and(|()| {
                let (name, info) = (u32::from_le_bytes([rec[0], rec[1], rec[2], rec[3]]), rec[7] as u32);
                name == ty_off && matches!(info & 0x1f, KIND_STRUCT | KIND_UNION)
            })
        })?;
        self.find_member(id, member_off, 0)
    }

    fn find_member(&self, id: usize, member: u32, depth: usize) -> Option<u32> {
        let [_, info, _] = self.record(id)?;
        let kind = (info >> 24) & 0x1f;
        if kind != KIND_STRUCT && kind != KIND_UNION {
            return None;
        }
        let bitfield_layout = info >> 31 != 0;
        let at = *self.types.get(id)? as u64 + 12;
        for m in 0..(info & 0xffff) as u64 {
            let [name_off, ty, raw] = self.words(at + 12 * m)?;
            let (bits, size) = if bitfield_layout { (raw & 0xff_ffff, raw >> 24) } else { (raw, 0) };
            if name_off == 0 && depth < MAX_DEPTH {
                let inner = self.strip_modifiers(ty as usize)?;
                if let Some(off) = self.find_member(inner, member, depth + 1) {
                    return Some(bits / 8 + off);
                }
            } else if name_off == member {
                return (size == 0 && bits % 8 == 0).then_some(bits / 8);
            }
        }
        None
    }

    /// Through typedef, volatile, const and restrict to the type they qualify.
    fn strip_modifiers(&self, mut id: usize) -> Option<usize> {
        for _ in 0..8 {
            // Id 0 is `void`, without a record; `record` refuses ids past the end.
            let [_, info, next] = self.record(id).filter(|_| id != 0)?;
            match (info >> 24) & 0x1f {
                8..=11 => id = next as usize,
                _ => return Some(id),
            }
        }
        None
    }

    /// Type `id`'s record: name offset, info, size or type.
    fn record(&self, id: usize) -> Option<[u32; 3]> {
        self.words(*self.types.get(id)? as u64)
    }

    fn words(&self, at: u64) -> Option<[u32; 3]> {
        let mut b = [0u8; 12];
        self.blob.read_at(at, &mut b).ok()?;
        let w = |i: usize| u32::from_le_bytes([b[i], b[i + 1], b[i + 2], b[i + 3]]);
        Some([w(0), w(4), w(8)])
    }

    /// Where `name` is in the string section (names are stored once).
    fn string_offset(&self, name: &str) -> Option<u32> {
        let want = name.as_bytes();
        let mut buf = vec![0u8; CHUNK];
        // The string being read: its start, and whether its bytes so far match `want`.
        let (mut start, mut len, mut matching) = (0u64, 0usize, true);
        let mut at = self.strings.start;
        while at < self.strings.end {
            let n = (self.strings.end - at).min(CHUNK as u64) as usize;
            self.blob.read_at(at, &mut buf[..n]).ok()?;
            for (k, &byte) in buf[..n].iter().enumerate() {
                if byte == 0 {
                    if matching && len == want.len() {
                        return u32::try_from(start).ok();
                    }
                    (start, len, matching) = (at + k as u64 + 1 - self.strings.start, 0, true);
                } else {
                    matching = matching && want.get(len) == Some(&byte);
                    len += 1;
                }
            }
            at += n as u64;
        }
        None
    }
}

/// Sequential reads of `[pos, end)` of a blob, a chunk at a time.
struct Chunks<'a, B: Blob + ?Sized> {
    blob: &'a B,
    buf: Vec<u8>,
    /// Blob offset of `buf[0]`.
    buf_at: u64,
    pos: u64,
    end: u64,
}

impl<'a, B: Blob + ?Sized> Chunks<'a, B> {
    fn new(blob: &'a B, pos: u64, end: u64) -> Self {
        Chunks { blob, buf: Vec::new(), buf_at: pos, pos, end }
    }

    fn read(&mut self, out: &mut [u8]) -> io::Result<()> {
        if self.pos + out.len() as u64 > self.end {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        if self.pos < self.buf_at || self.pos + out.len() as u64 > self.buf_at + self.buf.len() as u64 {
            let n = (self.end - self.pos).min(CHUNK as u64).max(out.len() as u64) as usize;
            self.buf.resize(n, 0);
            self.blob.read_at(self.pos, &mut self.buf)?;
            self.buf_at = self.pos;
        }
        let i = (self.pos - self.buf_at) as usize;
        out.copy_from_slice(&self.buf[i..i + out.len()]);
        self.pos += out.len() as u64;
        Ok(())
    }

    fn skip(&mut self, n: u64) {
        self.pos += n;
    }
}

/// Bytes that follow a type's 12-byte record, by its kind; None for a kind unknown here.
fn extra_len(info: u32) -> Option<usize> {
    let vlen = (info & 0xffff) as usize;
    Some(match (info >> 24) & 0x1f {
        // int, var, decl_tag: one word
        1 | 14 | 17 => 4,
        // ptr, fwd, typedef, volatile, const, restrict, func, float, type_tag
        2 | 7..=12 | 16 | 18 => 0,
        3 => 12,
        4 | 5 | 15 | 19 => 12 * vlen,
        6 | 13 => 8 * vlen,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A BTF blob of `types` (records, already encoded) and `strings`.
    fn blob(types: &[u32], strings: &[u8]) -> Vec<u8> {
        let type_len = types.len() as u32 * 4;
        let mut b = Vec::new();
        b.extend_from_slice(&MAGIC.to_le_bytes());
        b.extend_from_slice(&[1, 0]);
        for w in [24u32, 0, type_len, type_len, strings.len() as u32] {
            b.extend_from_slice(&w.to_le_bytes());
        }
        for w in types {
            b.extend_from_slice(&w.to_le_bytes());
        }
        b.extend_from_slice(strings);
        b
    }

    fn parse(types: &[u32]) -> Result<Btf<[u8]>, BtfError> {
        Btf::index(blob(types, STRINGS).into_boxed_slice())
    }

    fn info(kind: u32, vlen: u32, kind_flag: bool) -> u32 {
        kind << 24 | vlen | (kind_flag as u32) << 31
    }

    // Strings: 0 "", 1 "int", 5 "sock", 10 "seq", 14 "a", 16 "b", 18 "flags", 24 "sockets"
    const STRINGS: &[u8] = b"\0int\0sock\0seq\0a\0b\0flags\0sockets\0";

    /// 1: int; 2: anonymous union { int a; int seq; }; 3: const (2);
    /// 4: struct sock { int a @0; <anonymous const union> @64 bits; int b @128 bits }
    #[rustfmt::skip]
    const SAMPLE: &[u32] = &[
        1, (1 << 24), 4, 32, // int, 32 bits
        0, (KIND_UNION << 24) | 2, 4, 14, 1, 0, 10, 1, 0, // union { a, seq }
        0, (10 << 24), 2, // const union
        5, (KIND_STRUCT << 24) | 3, 24, 14, 1, 0, 0, 3, 64, 16, 1, 128,
    ];

    #[test]
    fn finds_direct_and_anonymous_members() {
        let btf = parse(SAMPLE).expect("parse");
        assert_eq!(btf.member_offset("sock", "a"), Some(0));
        assert_eq!(btf.member_offset("sock", "b"), Some(16));
        // Inside the anonymous union at byte 8, through its const qualifier.
        assert_eq!(btf.member_offset("sock", "seq"), Some(8));
        assert_eq!(btf.member_offset("sock", "flags"), None);
        // A name that only starts like another is not it.
        assert_eq!(btf.member_offset("sockets", "a"), None);
        assert_eq!(btf.member_offset("nothing", "a"), None);
    }

    #[test]
    fn bit_fields_are_not_offered() {
        // struct sock { int flags : 3 @ bit 5; int seq @ bit 32 } with the bit-field layout.
        #[rustfmt::skip]
        let types = [
            1, info(1, 0, false), 4, 32,
            5, info(KIND_STRUCT, 2, true), 8, 18, 1, 3 << 24 | 5, 10, 1, 32,
        ];
        let btf = parse(&types).expect("parse");
        assert_eq!(btf.member_offset("sock", "flags"), None);
        assert_eq!(btf.member_offset("sock", "seq"), Some(4));
    }

    /// This machine's kernel has BTF (the kernel side needs it for its fast path): the
    /// fields the loader hands over are found, inside the socket structures.
    #[test]
    fn kernel_btf_gives_the_socket_offsets() {
        let btf = Btf::kernel().expect("kernel BTF");
        let seq = btf.member_offset("tcp_sock", "copied_seq").expect("tcp_sock.copied_seq");
        let nxt = btf.member_offset("tcp_sock", "rcv_nxt").expect("tcp_sock.rcv_nxt");
        let ulp = btf.member_offset("inet_connection_sock", "icsk_ulp_ops").expect("icsk_ulp_ops");
        let wseq = btf.member_offset("tcp_sock", "write_seq").expect("tcp_sock.write_seq");
        // Both lie past the embedded `struct sock` (hundreds of bytes), and the
        // inet_connection_sock is the start of a tcp_sock.
        assert_eq!(btf.member_offset("inet_sock", "sk"), Some(0));
        assert!(ulp > 256 && seq > ulp && nxt > ulp && wseq > ulp, "copied_seq @{seq}, rcv_nxt @{nxt}, write_seq @{wseq}, icsk_ulp_ops @{ulp}");
    }

    #[test]
    fn refuses_what_is_not_btf() {
        let index = |b: Vec<u8>| Btf::index(b.into_boxed_slice()).map(|_| ());
        assert!(index(b"\x7fELF and more bytes than a header".to_vec()).is_err());
        let mut cut = blob(SAMPLE, STRINGS);
        cut.truncate(40);
        assert!(index(cut).is_err());
        // An unknown kind stops the walk rather than misreading what follows.
        assert!(parse(&[1, info(30, 0, false), 4]).is_err());
    }
}
