//! ELF x86-64 relocation types: their psABI names, the width of the field
//! each writes, whether it is PC-relative, and the field's value
//! ([`apply`]).

use object::elf;

/// `R_X86_64_*` numbers, as plain integers for matching.
pub const NONE: u32 = elf::R_X86_64_NONE.0;
pub const R64: u32 = elf::R_X86_64_64.0;
pub const PC32: u32 = elf::R_X86_64_PC32.0;
pub const PLT32: u32 = elf::R_X86_64_PLT32.0;
pub const R32: u32 = elf::R_X86_64_32.0;
pub const R32S: u32 = elf::R_X86_64_32S.0;
pub const R16: u32 = elf::R_X86_64_16.0;
pub const PC16: u32 = elf::R_X86_64_PC16.0;
pub const R8: u32 = elf::R_X86_64_8.0;
pub const PC8: u32 = elf::R_X86_64_PC8.0;
pub const GOTPCREL: u32 = elf::R_X86_64_GOTPCREL.0;
pub const GOTPCRELX: u32 = elf::R_X86_64_GOTPCRELX.0;
pub const REX_GOTPCRELX: u32 = elf::R_X86_64_REX_GOTPCRELX.0;
pub const PC64: u32 = elf::R_X86_64_PC64.0;
pub const GOTOFF64: u32 = elf::R_X86_64_GOTOFF64.0;
pub const GOTPC64: u32 = elf::R_X86_64_GOTPC64.0;
pub const SIZE64: u32 = elf::R_X86_64_SIZE64.0;
pub const TPOFF32: u32 = elf::R_X86_64_TPOFF32.0;
pub const TPOFF64: u32 = elf::R_X86_64_TPOFF64.0;
pub const GOTTPOFF: u32 = elf::R_X86_64_GOTTPOFF.0;
pub const TLSGD: u32 = elf::R_X86_64_TLSGD.0;
pub const TLSLD: u32 = elf::R_X86_64_TLSLD.0;
pub const DTPOFF32: u32 = elf::R_X86_64_DTPOFF32.0;
pub const DTPOFF64: u32 = elf::R_X86_64_DTPOFF64.0;

/// Bytes of the field a relocation of this type writes (psABI table).
pub fn width(r_type: u32) -> u64 {
    match r_type {
        NONE => 0,
        R8 | PC8 => 1,
        R16 | PC16 => 2,
        R64 | PC64 | DTPOFF64 | TPOFF64 | GOTOFF64 | GOTPC64 | SIZE64 => 8,
        _ => 4,
    }
}

/// The type's psABI name, as `readelf -r` prints it.
pub fn name(r_type: u32) -> Option<&'static str> {
    let t = elf::RelocationType(r_type);
    Some(match t {
        elf::R_X86_64_NONE => "R_X86_64_NONE",
        elf::R_X86_64_64 => "R_X86_64_64",
        elf::R_X86_64_PC32 => "R_X86_64_PC32",
        elf::R_X86_64_GOT32 => "R_X86_64_GOT32",
        elf::R_X86_64_PLT32 => "R_X86_64_PLT32",
        elf::R_X86_64_COPY => "R_X86_64_COPY",
        elf::R_X86_64_GLOB_DAT => "R_X86_64_GLOB_DAT",
        elf::R_X86_64_JUMP_SLOT => "R_X86_64_JUMP_SLOT",
        elf::R_X86_64_RELATIVE => "R_X86_64_RELATIVE",
        elf::R_X86_64_GOTPCREL => "R_X86_64_GOTPCREL",
        elf::R_X86_64_32 => "R_X86_64_32",
        elf::R_X86_64_32S => "R_X86_64_32S",
        elf::R_X86_64_16 => "R_X86_64_16",
        elf::R_X86_64_PC16 => "R_X86_64_PC16",
        elf::R_X86_64_8 => "R_X86_64_8",
        elf::R_X86_64_PC8 => "R_X86_64_PC8",
        elf::R_X86_64_DTPMOD64 => "R_X86_64_DTPMOD64",
        elf::R_X86_64_DTPOFF64 => "R_X86_64_DTPOFF64",
        elf::R_X86_64_TPOFF64 => "R_X86_64_TPOFF64",
        elf::R_X86_64_TLSGD => "R_X86_64_TLSGD",
        elf::R_X86_64_TLSLD => "R_X86_64_TLSLD",
        elf::R_X86_64_DTPOFF32 => "R_X86_64_DTPOFF32",
        elf::R_X86_64_GOTTPOFF => "R_X86_64_GOTTPOFF",
        elf::R_X86_64_TPOFF32 => "R_X86_64_TPOFF32",
        elf::R_X86_64_PC64 => "R_X86_64_PC64",
        elf::R_X86_64_GOTOFF64 => "R_X86_64_GOTOFF64",
        elf::R_X86_64_GOTPC32 => "R_X86_64_GOTPC32",
        elf::R_X86_64_GOT64 => "R_X86_64_GOT64",
        elf::R_X86_64_GOTPCREL64 => "R_X86_64_GOTPCREL64",
        elf::R_X86_64_GOTPC64 => "R_X86_64_GOTPC64",
        elf::R_X86_64_GOTPLT64 => "R_X86_64_GOTPLT64",
        elf::R_X86_64_PLTOFF64 => "R_X86_64_PLTOFF64",
        elf::R_X86_64_SIZE32 => "R_X86_64_SIZE32",
        elf::R_X86_64_SIZE64 => "R_X86_64_SIZE64",
        elf::R_X86_64_GOTPC32_TLSDESC => "R_X86_64_GOTPC32_TLSDESC",
        elf::R_X86_64_TLSDESC_CALL => "R_X86_64_TLSDESC_CALL",
        elf::R_X86_64_TLSDESC => "R_X86_64_TLSDESC",
        elf::R_X86_64_IRELATIVE => "R_X86_64_IRELATIVE",
        elf::R_X86_64_GOTPCRELX => "R_X86_64_GOTPCRELX",
        elf::R_X86_64_REX_GOTPCRELX => "R_X86_64_REX_GOTPCRELX",
        _ => return None,
    })
}

/// The name and number, for messages (`R_X86_64_32S (type 11)`; `type
/// 99` for a number the psABI does not know).
pub fn describe(r_type: u32) -> String {
    match name(r_type) {
        Some(name) => format!("{name} (type {r_type})"),
        None => format!("type {r_type}"),
    }
}

/// Whether the field holds a distance from the field itself (`S + A - P`:
/// the addend is offset by the distance from the field to the end of the
/// instruction).
pub fn pc_relative(r_type: u32) -> bool {
    matches!(
        r_type,
        PC32 | PLT32 | GOTPCREL | GOTPCRELX | REX_GOTPCRELX | PC64 | GOTTPOFF | TLSGD | TLSLD
    )
}

/// A relocated field's bytes (little-endian, the type's width long).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Field {
    bytes: [u8; 8],
    len: usize,
}

impl Field {
    pub fn bytes(&self) -> &[u8] {
        &self.bytes[..self.len]
    }
}

/// Why a field could not be computed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unfit {
    /// The value does not fit the field (a 32-bit distance beyond ±2 GiB,
    /// an absolute 32-bit address above 4 GiB).
    Overflow(i128),
    /// A type the linkers do not compute (TLS, GOT-relative forms, ...).
    Unsupported,
}

/// The field of relocation type `r_type` at place `p` for symbol value
/// `s` and addend `a`, as the psABI computes it: `S + A` for the absolute
/// types, `S + A - P` for the PC-relative ones. For the GOT-relative types
/// (`GOTPCREL`, `GOTPCRELX`, `REX_GOTPCRELX`) `s` is the address of the
/// symbol's GOT cell (`G + GOT`), which the caller placed.
pub fn apply(r_type: u32, s: u64, a: i64, p: u64) -> Result<Field, Unfit> {
    let (s, a, p) = (i128::from(s), i128::from(a), i128::from(p));
    let field = |value: u64, len: usize| Field {
        bytes: value.to_le_bytes(),
        len,
    };
    match r_type {
        R64 => Ok(field((s + a) as u64, 8)),
        PC64 => Ok(field((s + a - p) as u64, 8)),
        PC32 | PLT32 | GOTPCREL | GOTPCRELX | REX_GOTPCRELX => {
            let v = s + a - p;
            i32::try_from(v)
                .map(|v| field(v as u32 as u64, 4))
                .map_err(|_| Unfit::Overflow(v))
        }
        R32 => {
            let v = s + a;
            u32::try_from(v)
                .map(|v| field(v.into(), 4))
                .map_err(|_| Unfit::Overflow(v))
        }
        R32S => {
            let v = s + a;
            i32::try_from(v)
                .map(|v| field(v as u32 as u64, 4))
                .map_err(|_| Unfit::Overflow(v))
        }
        _ => Err(Unfit::Unsupported),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_as_the_psabi_computes_them() {
        assert_eq!(apply(R64, 0x1000, 8, 0).unwrap().bytes(), 0x1008u64.to_le_bytes());
        assert_eq!(
            apply(PC32, 0x1000, -4, 0x2000).unwrap().bytes(),
            (-0x1004i32).to_le_bytes()
        );
        assert_eq!(apply(PLT32, 0x1000, -4, 0x1000).unwrap().bytes(), (-4i32).to_le_bytes());
        assert_eq!(
            apply(R32, 0xffff_fff0, 0xf, 0).unwrap().bytes(),
            0xffff_ffffu32.to_le_bytes()
        );
        assert_eq!(apply(R32S, 0x10, -0x20, 0).unwrap().bytes(), (-0x10i32).to_le_bytes());
        assert_eq!(apply(PC64, 0, 0, 8).unwrap().bytes(), (-8i64).to_le_bytes());
    }

    #[test]
    fn what_does_not_fit_is_an_overflow() {
        assert_eq!(apply(PC32, 0x1_0000_0000, 0, 0), Err(Unfit::Overflow(0x1_0000_0000)));
        assert_eq!(apply(R32, 0x1_0000_0000, 0, 0), Err(Unfit::Overflow(0x1_0000_0000)));
        assert_eq!(apply(R32S, 0x8000_0000, 0, 0), Err(Unfit::Overflow(0x8000_0000)));
        assert_eq!(apply(R32, 0, -1, 0), Err(Unfit::Overflow(-1)));
        assert_eq!(apply(TPOFF32, 0, 0, 0), Err(Unfit::Unsupported));
    }

    #[test]
    fn names_and_widths() {
        assert_eq!(name(R32S), Some("R_X86_64_32S"));
        assert_eq!(describe(R32S), "R_X86_64_32S (type 11)");
        assert_eq!(describe(999), "type 999");
        assert_eq!(width(R64), 8);
        assert_eq!(width(PC32), 4);
        assert!(pc_relative(PLT32) && !pc_relative(R32S));
    }
}
