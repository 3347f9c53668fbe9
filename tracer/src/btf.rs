//! Field offsets of kernel structures, from the kernel's BTF (/sys/kernel/btf/vmlinux).
//!
//! The kernel side reads a few fields that no stable interface gives (a TCP socket's
//! `copied_seq`): their offsets differ between kernel builds, so the loader looks them up
//! here and hands them over as read-only globals; 0 (not found) turns the reading off.
//! Only what that needs: structs and unions, their members, anonymous members followed.
use std::path::Path;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum BtfError {
    #[error("reading {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("not BTF, or a layout this reader does not know: {0}")]
    Format(&'static str),
}

const MAGIC: u16 = 0xeb9f;
const KIND_STRUCT: u32 = 4;
const KIND_UNION: u32 = 5;
/// Anonymous members nest (a union of structs of ...); deeper than this is not followed.
const MAX_DEPTH: usize = 4;

/// The kernel's BTF, read once, walked for offsets.
pub struct Btf {
    data: Vec<u8>,
    strings: std::ops::Range<usize>,
    /// Byte offset of each type record, by type id (id 0 is `void`, which has none).
    types: Vec<usize>,
}

impl Btf {
    /// The running kernel's BTF.
    pub fn kernel() -> Result<Btf, BtfError> {
        Btf::read(Path::new("/sys/kernel/btf/vmlinux"))
    }

    pub fn read(path: &Path) -> Result<Btf, BtfError> {
        let data = std::fs::read(path).map_err(|source| BtfError::Read { path: path.display().to_string(), source })?;
        Btf::parse(data)
    }

    pub fn parse(data: Vec<u8>) -> Result<Btf, BtfError> {
        let u32_at = |off: usize| -> Result<u32, BtfError> {
            data.get(off..off + 4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .ok_or(BtfError::Format("header cut short"))
        };
        if data.len() < 24 || u16::from_le_bytes([data[0], data[1]]) != MAGIC {
            return Err(BtfError::Format("bad magic (or not little-endian)"));
        }
        let hdr_len = u32_at(4)? as usize;
        let (type_off, type_len) = (u32_at(8)? as usize, u32_at(12)? as usize);
        let (str_off, str_len) = (u32_at(16)? as usize, u32_at(20)? as usize);
        let types_at = hdr_len + type_off;
        let strings = hdr_len + str_off..hdr_len + str_off + str_len;
        if types_at + type_len > data.len() || strings.end > data.len() {
            return Err(BtfError::Format("sections beyond the end"));
        }
        let mut types = vec![0];
        let mut at = types_at;
        while at < types_at + type_len {
            types.push(at);
            let info = u32_at(at + 4)?;
            at += 12 + extra_len(info).ok_or(BtfError::Format("unknown type kind"))?;
        }
        Ok(Btf { data, strings, types })
    }

    /// Byte offset of `member` in the struct (or union) named `ty`, looking inside its
    /// anonymous struct and union members too. None when either is absent, or the member
    /// is a bit field.
    pub fn member_offset(&self, ty: &str, member: &str) -> Option<u32> {
        let id = (1..self.types.len()).find(|&id| {
            let kind = self.kind(id);
            (kind == KIND_STRUCT || kind == KIND_UNION) && self.name(self.word(id, 0)) == Some(ty.as_bytes())
        })?;
        self.find_member(id, member.as_bytes(), 0)
    }

    fn find_member(&self, id: usize, member: &[u8], depth: usize) -> Option<u32> {
        let info = self.word(id, 1);
        let kind = (info >> 24) & 0x1f;
        if kind != KIND_STRUCT && kind != KIND_UNION {
            return None;
        }
        let bitfield_layout = info >> 31 != 0;
        for m in 0..(info & 0xffff) as usize {
            let at = self.types[id] + 12 + 12 * m;
            let (name_off, ty, raw) = (self.u32_at(at), self.u32_at(at + 4), self.u32_at(at + 8));
            let (bits, size) = if bitfield_layout { (raw & 0xff_ffff, raw >> 24) } else { (raw, 0) };
            if name_off == 0 && depth < MAX_DEPTH {
                let inner = self.strip_modifiers(ty as usize)?;
                if let Some(off) = self.find_member(inner, member, depth + 1) {
                    return Some(bits / 8 + off);
                }
            } else if self.name(name_off) == Some(member) {
                return (size == 0 && bits % 8 == 0).then_some(bits / 8);
            }
        }
        None
    }

    /// Through typedef, volatile, const and restrict to the type they qualify.
    fn strip_modifiers(&self, mut id: usize) -> Option<usize> {
        for _ in 0..8 {
            // Id 0 is `void`, without a record; an id past the end is a broken blob.
            if id == 0 || id >= self.types.len() {
                return None;
            }
            match self.kind(id) {
                8..=11 => id = self.word(id, 2) as usize,
                _ => return Some(id),
            }
        }
        None
    }

    fn kind(&self, id: usize) -> u32 {
        (self.word(id, 1) >> 24) & 0x1f
    }

    /// Word `i` of type `id`'s record (0: name, 1: info, 2: size or type).
    fn word(&self, id: usize, i: usize) -> u32 {
        self.u32_at(self.types[id] + 4 * i)
    }

    fn u32_at(&self, off: usize) -> u32 {
        // In bounds: `parse` walked every record inside the type section.
        let b = &self.data[off..off + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }

    fn name(&self, off: u32) -> Option<&[u8]> {
        let start = self.strings.start + off as usize;
        let rest = self.data.get(start..self.strings.end)?;
        Some(&rest[..rest.iter().position(|&b| b == 0)?])
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

    fn info(kind: u32, vlen: u32, kind_flag: bool) -> u32 {
        kind << 24 | vlen | (kind_flag as u32) << 31
    }

    // Strings: 0 "", 1 "int", 5 "sock", 10 "seq", 14 "a", 16 "b", 18 "flags"
    const STRINGS: &[u8] = b"\0int\0sock\0seq\0a\0b\0flags\0";

    /// 1: int; 2: anonymous union { int a; int seq; }; 3: const (2);
    /// 4: struct sock { int a @0; <anonymous const union> @64 bits; int b @128 bits }
    fn sample() -> Btf {
        let types = [
            1, info(1, 0, false), 4, 32, // int, 32 bits
            0, info(KIND_UNION, 2, false), 4, 14, 1, 0, 10, 1, 0, // union { a, seq }
            0, info(10, 0, false), 2, // const union
            5, info(KIND_STRUCT, 3, false), 24, 14, 1, 0, 0, 3, 64, 16, 1, 128,
        ];
        Btf::parse(blob(&types, STRINGS)).expect("parse")
    }

    #[test]
    fn finds_direct_and_anonymous_members() {
        let btf = sample();
        assert_eq!(btf.member_offset("sock", "a"), Some(0));
        assert_eq!(btf.member_offset("sock", "b"), Some(16));
        // Inside the anonymous union at byte 8, through its const qualifier.
        assert_eq!(btf.member_offset("sock", "seq"), Some(8));
        assert_eq!(btf.member_offset("sock", "flags"), None);
        assert_eq!(btf.member_offset("nothing", "a"), None);
    }

    #[test]
    fn bit_fields_are_not_offered() {
        // struct sock { int flags : 3 @ bit 5; int seq @ bit 32 } with the bit-field layout.
        let types = [
            1, info(1, 0, false), 4, 32,
            5, info(KIND_STRUCT, 2, true), 8, 18, 1, 3 << 24 | 5, 10, 1, 32,
        ];
        let btf = Btf::parse(blob(&types, STRINGS)).expect("parse");
        assert_eq!(btf.member_offset("sock", "flags"), None);
        assert_eq!(btf.member_offset("sock", "seq"), Some(4));
    }

    /// This machine's kernel has BTF (the kernel side needs it for its fast path): the
    /// fields the loader hands over are found, inside the socket structures.
    #[test]
    fn kernel_btf_gives_the_socket_offsets() {
        let btf = Btf::kernel().expect("kernel BTF");
        let seq = btf.member_offset("tcp_sock", "copied_seq").expect("tcp_sock.copied_seq");
        let ulp = btf.member_offset("inet_connection_sock", "icsk_ulp_ops").expect("icsk_ulp_ops");
        // Both lie past the embedded `struct sock` (hundreds of bytes), and the
        // inet_connection_sock is the start of a tcp_sock.
        let sock = btf.member_offset("inet_sock", "sk").expect("inet_sock.sk");
        assert_eq!(sock, 0);
        assert!(ulp > 256 && seq > ulp, "copied_seq @{seq}, icsk_ulp_ops @{ulp}");
    }

    #[test]
    fn refuses_what_is_not_btf() {
        assert!(Btf::parse(b"\x7fELF and more bytes than a header".to_vec()).is_err());
        let mut cut = blob(&[1, info(1, 0, false), 4, 32], STRINGS);
        cut.truncate(30);
        assert!(Btf::parse(cut).is_err());
        // An unknown kind stops the walk rather than misreading what follows.
        assert!(Btf::parse(blob(&[1, info(30, 0, false), 4], STRINGS)).is_err());
    }
}
