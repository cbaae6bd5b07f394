//! `/proc/PID/maps`: what is mapped where.

use serde::Serialize;

/// One line of `/proc/PID/maps`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Mapping {
    pub start: u64,
    pub end: u64,
    /// `rwxp`-style permissions as the kernel prints them.
    pub perms: String,
    /// Offset into the mapped file.
    pub offset: u64,
    pub dev: String,
    pub inode: u64,
    /// The file (or `[heap]`, `[stack]`, `[vdso]`…); empty for anonymous memory.
    pub path: String,
}

impl Mapping {
    pub fn readable(&self) -> bool {
        self.perms.as_bytes().first() == Some(&b'r')
    }
    pub fn writable(&self) -> bool {
        self.perms.as_bytes().get(1) == Some(&b'w')
    }
    pub fn executable(&self) -> bool {
        self.perms.as_bytes().get(2) == Some(&b'x')
    }
    /// Whether the mapping is backed by a file on disk (not anonymous or a
    /// kernel pseudo-mapping such as `[vdso]`).
    pub fn is_file(&self) -> bool {
        self.inode != 0 && self.path.starts_with('/')
    }
    pub fn contains(&self, addr: u64) -> bool {
        self.start <= addr && addr < self.end
    }
}

/// Parses one line; `None` if it is malformed.
pub fn parse_line(line: &str) -> Option<Mapping> {
    let mut fields = line.splitn(6, ' ');
    let range = fields.next()?;
    let perms = fields.next()?;
    let offset = fields.next()?;
    let dev = fields.next()?;
    let inode = fields.next()?;
    let path = fields.next().unwrap_or("").trim_start();
    let (start, end) = range.split_once('-')?;
    let mapping = Mapping {
        start: u64::from_str_radix(start, 16).ok()?,
        end: u64::from_str_radix(end, 16).ok()?,
        perms: perms.to_string(),
        offset: u64::from_str_radix(offset, 16).ok()?,
        dev: dev.to_string(),
        inode: inode.parse().ok()?,
        path: path.to_string(),
    };
    (mapping.start <= mapping.end && perms.len() == 4).then_some(mapping)
}

/// Whether `[addr, addr + len)` lies entirely within mappings (which may be
/// adjacent), so that a read or write cannot stray into unmapped memory.
pub fn covers(maps: &[Mapping], addr: u64, len: usize) -> bool {
    let Some(end) = addr.checked_add(len as u64) else {
        return false;
    };
    let mut at = addr;
    while at < end {
        match maps.iter().find(|m| m.contains(at)) {
            Some(m) => at = m.end,
            None => return false,
        }
    }
    len > 0 || maps.iter().any(|m| m.contains(addr))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_kernel_lines() {
        let m = parse_line("00400000-0043b000 r-xp 00010000 fd:01 1234567                    /tmp/x/ent.com").unwrap();
        assert_eq!(
            (m.start, m.end, m.offset, m.inode),
            (0x400000, 0x43b000, 0x10000, 1234567)
        );
        assert!(m.readable() && m.executable() && !m.writable() && m.is_file());
        assert_eq!(m.path, "/tmp/x/ent.com");
        let anon = parse_line("7ffd1000-7ffd2000 rw-p 00000000 00:00 0 ").unwrap();
        assert!(!anon.is_file());
        let vdso = parse_line("7fff0000-7fff2000 r-xp 00000000 00:00 0                          [vdso]").unwrap();
        assert_eq!(vdso.path, "[vdso]");
        let spaces = parse_line("1000-2000 r--p 00000000 08:01 42 /tmp/a file (deleted)").unwrap();
        assert_eq!(spaces.path, "/tmp/a file (deleted)");
        assert!(parse_line("garbage").is_none());
        assert!(parse_line("2000-1000 r--p 0 0 0").is_none());
    }

    #[test]
    fn coverage_spans_adjacent_mappings_only() {
        let maps = vec![
            parse_line("1000-2000 r--p 00000000 00:00 0").unwrap(),
            parse_line("2000-3000 rw-p 00000000 00:00 0").unwrap(),
            parse_line("4000-5000 rw-p 00000000 00:00 0").unwrap(),
        ];
        assert!(covers(&maps, 0x1ff0, 0x20));
        assert!(!covers(&maps, 0x2ff0, 0x20));
        assert!(!covers(&maps, 0x500, 1));
        assert!(!covers(&maps, u64::MAX - 1, 4));
    }
}
