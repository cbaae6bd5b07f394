//! Machine architectures, named the way users type them.

use serde::Serialize;

/// A CPU architecture an image (or one of an APE's images) is built for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Arch {
    X86_64,
    Aarch64,
    I386,
    Arm,
    Riscv64,
    Ppc64,
    S390x,
    /// An ELF `e_machine` this crate has no name for.
    Other(u16),
}

impl Arch {
    /// Maps an ELF `e_machine` value.
    pub fn from_e_machine(e_machine: u16) -> Arch {
        use object::elf as E;
        match object::elf::Machine(e_machine) {
            E::EM_X86_64 => Arch::X86_64,
            E::EM_AARCH64 => Arch::Aarch64,
            E::EM_386 => Arch::I386,
            E::EM_ARM => Arch::Arm,
            E::EM_RISCV => Arch::Riscv64,
            E::EM_PPC64 => Arch::Ppc64,
            E::EM_S390 => Arch::S390x,
            _ => Arch::Other(e_machine),
        }
    }

    /// The canonical name printed in reports (`x86_64`, `aarch64`, …).
    pub fn name(self) -> String {
        match self {
            Arch::X86_64 => "x86_64".into(),
            Arch::Aarch64 => "aarch64".into(),
            Arch::I386 => "i386".into(),
            Arch::Arm => "arm".into(),
            Arch::Riscv64 => "riscv64".into(),
            Arch::Ppc64 => "ppc64".into(),
            Arch::S390x => "s390x".into(),
            Arch::Other(m) => format!("e_machine-{m}"),
        }
    }

    /// The suffix Cosmopolitan uses for this architecture's `.symtab.<suffix>`
    /// ZIP entry (see `libc/runtime/symbols.internal.h`).
    pub fn cosmo_suffix(self) -> Option<&'static str> {
        match self {
            Arch::X86_64 => Some("amd64"),
            Arch::Aarch64 => Some("arm64"),
            Arch::Ppc64 => Some("ppc64"),
            Arch::S390x => Some("s390x"),
            Arch::Riscv64 => Some("riscv"),
            _ => None,
        }
    }

    /// Inverse of [`Arch::cosmo_suffix`].
    pub fn from_cosmo_suffix(suffix: &str) -> Option<Arch> {
        [Arch::X86_64, Arch::Aarch64, Arch::Ppc64, Arch::S390x, Arch::Riscv64]
            .into_iter()
            .find(|a| a.cosmo_suffix() == Some(suffix))
    }

    /// Parses what a user may type: canonical names and common aliases
    /// (`amd64`, `x64`, `arm64`, …).
    pub fn parse(text: &str) -> Option<Arch> {
        match text.to_ascii_lowercase().as_str() {
            "x86_64" | "x86-64" | "amd64" | "x64" => Some(Arch::X86_64),
            "aarch64" | "arm64" => Some(Arch::Aarch64),
            "i386" | "i686" | "x86" => Some(Arch::I386),
            "arm" | "arm32" => Some(Arch::Arm),
            "riscv64" | "riscv" => Some(Arch::Riscv64),
            "ppc64" | "ppc64le" | "powerpc64" => Some(Arch::Ppc64),
            "s390x" => Some(Arch::S390x),
            _ => None,
        }
    }

    /// The architecture this program was compiled for, if it has a name here.
    pub fn host() -> Arch {
        if cfg!(target_arch = "aarch64") {
            Arch::Aarch64
        } else {
            Arch::X86_64
        }
    }
}

impl std::fmt::Display for Arch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.name())
    }
}

impl Serialize for Arch {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for a in [Arch::X86_64, Arch::Aarch64, Arch::Riscv64, Arch::Ppc64, Arch::S390x] {
            assert_eq!(Arch::parse(&a.name()), Some(a));
            assert_eq!(Arch::from_cosmo_suffix(a.cosmo_suffix().unwrap()), Some(a));
        }
        assert_eq!(Arch::parse("AMD64"), Some(Arch::X86_64));
        assert_eq!(Arch::from_e_machine(62), Arch::X86_64);
        assert_eq!(Arch::from_e_machine(183), Arch::Aarch64);
        assert_eq!(Arch::from_e_machine(9999).name(), "e_machine-9999");
    }
}
