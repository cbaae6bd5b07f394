//! ELF relocatable objects (gcc/clang `-c`) to one SMF module
//! (`relive smf pack`), as docs/smf.md describes.

use std::collections::HashMap;

use object::elf;
use object::{
    Object, ObjectSection, ObjectSymbol, RelocationFlags, RelocationTarget, SectionIndex, SymbolIndex, SymbolSection,
};

use crate::format::{
    fnv1a64, Binding, Module, RelocType, Relocation, Section, SectionKind, Symbol, SymbolType, ARCH_X86_64,
    FLAG_EXECUTABLE, FLAG_PIC, FLAG_RELOADABLE, MAX_ALIGN,
};
use crate::loader::has_function_key;

/// Why the objects cannot be packed; names the input and the place.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{input}: {reason}")]
pub struct PackError {
    pub input: String,
    pub reason: String,
}

const KINDS: [(SectionKind, &str); 4] = [
    (SectionKind::Code, ".text"),
    (SectionKind::Data, ".data"),
    (SectionKind::RoData, ".rodata"),
    (SectionKind::Bss, ".bss"),
];

/// Where an input symbol went.
#[derive(Clone)]
enum Mapped {
    /// An output symbol, plus an addend (section symbols: where the input
    /// section starts in the merged one).
    Symbol(u32, i64),
    /// An undefined reference by name (a definition in another input, or
    /// an import).
    Undefined(String),
    /// In a section that is not packed (debug info).
    Dropped,
}

struct Packer {
    sections: Vec<Section<'static>>,
    symbols: Vec<Symbol<'static>>,
    relocations: Vec<Relocation>,
    /// Output section symbol of each merged section.
    section_symbols: Vec<u32>,
    globals: HashMap<String, (u32, String)>,
    imports: HashMap<String, u32>,
}

/// Packs `inputs` (name, ELF object bytes); `entry` names the entry point
/// (default: `main` if some input defines it).
pub fn pack(inputs: &[(String, Vec<u8>)], entry: Option<&str>) -> Result<Module<'static>, PackError> {
    let mut p = Packer {
        sections: KINDS
            .iter()
            .map(|&(kind, name)| Section {
                name: name.into(),
                kind,
                bytes: Vec::new().into(),
                memory_size: 0,
                alignment: 1,
            })
            .collect(),
        symbols: Vec::new(),
        relocations: Vec::new(),
        section_symbols: Vec::new(),
        globals: HashMap::new(),
        imports: HashMap::new(),
    };
    for (i, &(_, name)) in KINDS.iter().enumerate() {
        p.section_symbols.push(p.symbols.len() as u32);
        p.symbols.push(Symbol {
            name: name.into(),
            kind: SymbolType::Section,
            binding: Binding::Local,
            section: Some(i as u32),
            value: 0,
            size: 0,
        });
    }
    // Pending relocations until every input's globals are known.
    let mut pending: Vec<(String, u32, u64, RelocType, Mapped, i64)> = Vec::new();
    let mut all = Vec::new();
    for (name, data) in inputs {
        all.extend_from_slice(data);
        p.input(name, data, &mut pending)?;
    }
    let function_starts = function_starts(&p.symbols);
    for (input, section, offset, kind, target, addend) in pending {
        let (symbol, extra) = match target {
            Mapped::Symbol(s, extra) => (s, extra),
            Mapped::Undefined(n) => (p.resolve(&n), 0),
            Mapped::Dropped => {
                return Err(PackError {
                    input,
                    reason: format!("relocation at {offset:#x} refers into a section that is not packed"),
                })
            }
        };
        let (symbol, addend) = to_function(
            &function_starts,
            p.section_symbols[0],
            kind,
            symbol,
            addend.wrapping_add(extra),
        );
        p.relocations.push(Relocation {
            section,
            kind,
            offset,
            symbol,
            addend,
        });
    }
    for s in &mut p.sections {
        if s.kind != SectionKind::Bss {
            s.memory_size = s.bytes.len() as u64;
        }
    }
    let entry_name = entry.or(p.globals.contains_key("main").then_some("main"));
    let entry = match entry_name {
        Some(n) => Some(p.globals.get(n).map(|&(i, _)| i).ok_or_else(|| PackError {
            input: "inputs".into(),
            reason: format!("entry point {n} is not defined by any input"),
        })?),
        None => None,
    };
    // Code with 32-bit absolute addresses (built without -fPIC) runs only
    // where the loader places it in the low 2 GiB.
    let mut flags = FLAG_RELOADABLE;
    if !p.relocations.iter().any(|r| r.kind.needs_low_placement()) {
        flags |= FLAG_PIC;
    }
    if entry.is_some() {
        flags |= FLAG_EXECUTABLE;
    }
    Ok(Module {
        version_minor: 0,
        platform: 1,
        arch: ARCH_X86_64,
        flags,
        sections: p.sections,
        symbols: p.symbols,
        relocations: p.relocations,
        entry,
        module_hash: 0,
        source_hash: fnv1a64(&all),
    })
}

/// Each named function's start in the merged code: offset -> symbol (the
/// first of aliases).
fn function_starts(symbols: &[Symbol]) -> HashMap<u64, u32> {
    let mut starts = HashMap::new();
    for (i, s) in symbols.iter().enumerate() {
        if has_function_key(s) && s.section == Some(0) {
            starts.entry(s.value).or_insert(i as u32);
        }
    }
    starts
}

/// A reference through the code's section symbol that lands exactly on a
/// function's start, restated against that function (the same address
/// when bound to code). The assembler writes calls and address-takings of
/// a `static` function in another section (`-ffunction-sections`, or a
/// table of handlers in data) this way; against the function itself, a
/// registry binds them to its stable entry, so code still running, or a
/// table, reaches the new version after a reload. For Pc32/Plt32 the
/// place referred to is `addend + 4` (the field ends the instruction, as
/// in a call, jump or `lea`); for the absolute kinds it is `addend`.
fn to_function(starts: &HashMap<u64, u32>, code_section: u32, kind: RelocType, symbol: u32, addend: i64) -> (u32, i64) {
    if symbol != code_section {
        return (symbol, addend);
    }
    let place = match kind {
        RelocType::Pc32 | RelocType::Plt32 => addend.checked_add(4),
        RelocType::Abs64 | RelocType::Abs32 | RelocType::Abs32S => Some(addend),
        RelocType::GotPcRel => None,
    };
    match place
        .and_then(|p| u64::try_from(p).ok())
        .and_then(|p| starts.get(&p).map(|&f| (f, p)))
    {
        Some((function, start)) => (function, addend - start as i64),
        None => (symbol, addend),
    }
}

fn error(input: &str, reason: impl Into<String>) -> PackError {
    PackError {
        input: input.to_string(),
        reason: reason.into(),
    }
}

impl Packer {
    fn resolve(&mut self, name: &str) -> u32 {
        if let Some(&(i, _)) = self.globals.get(name) {
            return i;
        }
        if let Some(&i) = self.imports.get(name) {
            return i;
        }
        let i = self.symbols.len() as u32;
        self.symbols.push(Symbol {
            name: name.to_string().into(),
            kind: SymbolType::None,
            binding: Binding::Global,
            section: None,
            value: 0,
            size: 0,
        });
        self.imports.insert(name.to_string(), i);
        i
    }

    fn input(
        &mut self,
        input: &str,
        data: &[u8],
        pending: &mut Vec<(String, u32, u64, RelocType, Mapped, i64)>,
    ) -> Result<(), PackError> {
        let file = object::File::parse(data).map_err(|e| error(input, format!("not an object file: {e}")))?;
        if file.kind() != object::ObjectKind::Relocatable || file.format() != object::BinaryFormat::Elf {
            return Err(error(input, "not an ELF relocatable object (compile with -c)"));
        }
        if file.architecture() != object::Architecture::X86_64 {
            return Err(error(
                input,
                format!("built for {:?}; SMF v1 holds x86-64 code", file.architecture()),
            ));
        }
        // Input section -> (output section, offset in it).
        let mut placed: HashMap<SectionIndex, (u32, u64)> = HashMap::new();
        for s in file.sections() {
            let name = s.name().unwrap_or("?");
            let constructors = [".init_array", ".fini_array", ".ctors", ".dtors", ".preinit_array"];
            if s.size() > 0 && constructors.iter().any(|c| name.starts_with(c)) {
                return Err(error(
                    input,
                    format!("section {name}: constructors and destructors are not supported"),
                ));
            }
            let kind = match s.kind() {
                object::SectionKind::Text => SectionKind::Code,
                object::SectionKind::Data => SectionKind::Data,
                object::SectionKind::ReadOnlyData
                | object::SectionKind::ReadOnlyString
                | object::SectionKind::ReadOnlyDataWithRel => SectionKind::RoData,
                object::SectionKind::UninitializedData => SectionKind::Bss,
                object::SectionKind::Tls | object::SectionKind::UninitializedTls if s.size() > 0 => {
                    return Err(error(
                        input,
                        format!("section {name}: thread-local storage is not supported"),
                    ))
                }
                _ => continue,
            };
            if name == ".eh_frame" || s.size() == 0 {
                continue;
            }
            let align = s.align().max(1);
            if !align.is_power_of_two() || align > MAX_ALIGN {
                return Err(error(
                    input,
                    format!("section {name}: alignment {align} is not supported"),
                ));
            }
            let out_index = KINDS.iter().position(|&(k, _)| k == kind).expect("every kind") as u32;
            let out = &mut self.sections[out_index as usize];
            out.alignment = out.alignment.max(align);
            let offset = if kind == SectionKind::Bss {
                let at = out.memory_size.next_multiple_of(align);
                out.memory_size = at
                    .checked_add(s.size())
                    .filter(|&end| end <= 1 << 32)
                    .ok_or_else(|| error(input, format!("section {name}: too large")))?;
                at
            } else {
                let bytes = s.data().map_err(|e| error(input, format!("section {name}: {e}")))?;
                let at = (out.bytes.len() as u64).next_multiple_of(align);
                let merged = out.bytes.to_mut();
                merged.resize(at as usize, 0);
                merged.extend_from_slice(bytes);
                at
            };
            placed.insert(s.index(), (out_index, offset));
        }

        // Symbols.
        let mut mapped: HashMap<SymbolIndex, Mapped> = HashMap::new();
        for sym in file.symbols() {
            let name = sym.name().unwrap_or("").to_string();
            let m = match sym.section() {
                SymbolSection::Undefined => Mapped::Undefined(name.clone()),
                SymbolSection::Common => {
                    return Err(error(
                        input,
                        format!("{name} is a COMMON symbol: compile with -fno-common (the default since GCC 10)"),
                    ))
                }
                SymbolSection::Section(idx) => match placed.get(&idx) {
                    None => Mapped::Dropped,
                    Some(&(out, offset)) => {
                        if sym.kind() == object::SymbolKind::Section {
                            Mapped::Symbol(self.section_symbols[out as usize], offset as i64)
                        } else {
                            let index = self.symbols.len() as u32;
                            let binding = if sym.is_weak() {
                                Binding::Weak
                            } else if sym.is_global() {
                                Binding::Global
                            } else {
                                Binding::Local
                            };
                            self.symbols.push(Symbol {
                                name: name.clone().into(),
                                kind: match sym.kind() {
                                    object::SymbolKind::Text => SymbolType::Function,
                                    object::SymbolKind::Data => SymbolType::Object,
                                    _ => SymbolType::None,
                                },
                                binding,
                                section: Some(out),
                                value: offset + sym.address(),
                                size: sym.size(),
                            });
                            if binding != Binding::Local {
                                if let Some((_, other)) = self.globals.get(&name) {
                                    return Err(error(input, format!("{name} is also defined in {other}")));
                                }
                                self.globals.insert(name.clone(), (index, input.to_string()));
                            }
                            Mapped::Symbol(index, 0)
                        }
                    }
                },
                _ => continue,
            };
            mapped.insert(sym.index(), m);
        }

        // Relocations of packed sections.
        for s in file.sections() {
            let Some(&(out, base)) = placed.get(&s.index()) else {
                continue;
            };
            let section_name = s.name().unwrap_or("?");
            for (offset, rel) in s.relocations() {
                let RelocationFlags::Elf { r_type } = rel.flags() else {
                    continue;
                };
                let kind = match r_type {
                    elf::R_X86_64_NONE => continue,
                    elf::R_X86_64_64 => RelocType::Abs64,
                    elf::R_X86_64_PC32 => RelocType::Pc32,
                    elf::R_X86_64_PLT32 => RelocType::Plt32,
                    elf::R_X86_64_GOTPCREL | elf::R_X86_64_GOTPCRELX | elf::R_X86_64_REX_GOTPCRELX => {
                        RelocType::GotPcRel
                    }
                    elf::R_X86_64_32 => RelocType::Abs32,
                    elf::R_X86_64_32S => RelocType::Abs32S,
                    other => {
                        return Err(error(
                            input,
                            format!(
                                "{section_name}+{offset:#x}: relocation {} is not supported (SMF v1 has Abs64, Pc32, Plt32, GotPcRel, Abs32, Abs32S; build without TLS)",
                                relive_x86::rtype::describe(other.0)
                            ),
                        ))
                    }
                };
                let RelocationTarget::Symbol(idx) = rel.target() else {
                    return Err(error(
                        input,
                        format!("{section_name}+{offset:#x}: relocation without a symbol"),
                    ));
                };
                let target = mapped.get(&idx).cloned().unwrap_or(Mapped::Dropped);
                pending.push((input.to_string(), out, base + offset, kind, target, rel.addend()));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_landing_on_a_function_start_are_restated_against_the_function() {
        // Code section symbol 0; function 7 starts at 0x40, function 8 at 0.
        let starts = HashMap::from([(0x40, 7), (0, 8)]);
        let at = |kind, symbol, addend| to_function(&starts, 0, kind, symbol, addend);
        assert_eq!(at(RelocType::Plt32, 0, 0x40 - 4), (7, -4), "a call");
        assert_eq!(at(RelocType::Pc32, 0, -4), (8, -4), "a call or lea at offset 0");
        assert_eq!(at(RelocType::Abs64, 0, 0x40), (7, 0), "a pointer in data");
        assert_eq!(
            at(RelocType::Pc32, 0, 0x41 - 4),
            (0, 0x3d),
            "inside a function: unchanged"
        );
        assert_eq!(at(RelocType::Abs64, 0, -8), (0, -8), "before the section: unchanged");
        assert_eq!(at(RelocType::GotPcRel, 0, 0x40 - 4), (0, 0x3c), "GOT cells: unchanged");
        assert_eq!(
            at(RelocType::Pc32, 3, 0x40 - 4),
            (3, 0x3c),
            "another section: unchanged"
        );
    }
}
