//! Loading an SMF module into this process: one mapping per module with
//! its code (`r-x`), read-only data and GOT (`r--`) and writable data
//! (`rw-`) on separate pages, every relocation applied with its overflow
//! checked before the pages get their final protection.
//!
//! Imports resolve through a caller-supplied function (other modules, then
//! the host: see [`crate::memory::host_symbol`]). A call (`Plt32`) to an
//! import beyond rel32 reach goes through a 14-byte stub in the module's
//! code pages; `GotPcRel` uses a module-local GOT cell per symbol.

use std::collections::HashMap;

use crate::format::{Binding, Module, RelocType, SectionKind, SymbolType, ARCH_X86_64};
use crate::memory::{Access, Region, PAGE};

/// `jmp *0(%rip)` then the 8-byte target.
const STUB: [u8; 6] = [0xff, 0x25, 0, 0, 0, 0];
const STUB_LEN: u64 = 16;

/// Why a module cannot be loaded. Nothing stays mapped.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("the module is for architecture {0} (e_machine); this loader runs x86-64 (62) code")]
    Architecture(u16),
    #[error("import {symbol} is not defined by any loaded module or the host program")]
    MissingImport { symbol: String },
    #[error("relocation {kind:?} at {section}+{offset:#x} to {symbol}: value {value:#x} does not fit 32 bits")]
    Overflow {
        kind: RelocType,
        section: String,
        offset: u64,
        symbol: String,
        value: i128,
    },
    #[error("relocation field at {section}+{offset:#x} is outside the section's bytes")]
    Field { section: String, offset: u64 },
    #[error("mapping the module: {0}")]
    Map(#[from] std::io::Error),
}

/// A module in memory, relocated and protected. Dropping it unmaps it.
#[derive(Debug)]
pub struct LoadedModule {
    region: Region,
    /// Exported (global and weak) symbols: name -> address.
    exports: HashMap<String, u64>,
    /// Each section's address.
    sections: Vec<u64>,
    /// Objects (data symbols) defined by the module: name -> (address, size).
    objects: HashMap<String, (u64, u64)>,
    /// Exported functions: name -> entry.
    functions: HashMap<String, u64>,
}

struct Layout {
    /// Offset of each section in the region.
    sections: Vec<u64>,
    stubs: u64,
    got: u64,
    /// Page-aligned group boundaries: code, read-only, writable, end.
    groups: [u64; 4],
}

fn layout(module: &Module, imports: usize, got_cells: usize) -> Layout {
    let mut sections = vec![0; module.sections.len()];
    let mut at = 0u64;
    let mut place = |kinds: &[SectionKind], at: &mut u64| {
        for (i, s) in module.sections.iter().enumerate() {
            if kinds.contains(&s.kind) {
                *at = at.next_multiple_of(s.alignment.max(1));
                sections[i] = *at;
                *at += s.memory_size;
            }
        }
    };
    place(&[SectionKind::Code], &mut at);
    let stubs = at.next_multiple_of(16);
    let code_end = stubs + STUB_LEN * imports as u64;
    let mut ro = code_end.next_multiple_of(PAGE);
    let ro_start = ro;
    place(&[SectionKind::RoData], &mut ro);
    let got = ro.next_multiple_of(8);
    let ro_end = got + 8 * got_cells as u64;
    let mut rw = ro_end.next_multiple_of(PAGE);
    let rw_start = rw;
    place(&[SectionKind::Data, SectionKind::Bss], &mut rw);
    let end = rw.next_multiple_of(PAGE).max(rw_start + PAGE);
    Layout {
        sections,
        stubs,
        got,
        groups: [0, ro_start, rw_start, end],
    }
}

impl LoadedModule {
    /// Maps and relocates `module`; `import` gives the address of each
    /// symbol the module does not define.
    pub fn load(module: &Module, import: &dyn Fn(&str) -> Option<u64>) -> Result<LoadedModule, LoadError> {
        if module.arch != ARCH_X86_64 {
            return Err(LoadError::Architecture(module.arch));
        }
        // GOT cells: one per symbol reached through GotPcRel.
        let mut got_index: HashMap<u32, u64> = HashMap::new();
        for r in module.relocations.iter().filter(|r| r.kind == RelocType::GotPcRel) {
            let next = got_index.len() as u64;
            got_index.entry(r.symbol).or_insert(next);
        }
        let import_count = module.symbols.iter().filter(|s| s.section.is_none()).count();
        let plan = layout(module, import_count, got_index.len());
        let mut region = Region::new(plan.groups[3])?;
        let base = region.addr();
        let sections: Vec<u64> = plan.sections.iter().map(|o| base + o).collect();

        // Every symbol's address; imports resolved now.
        let mut addresses = Vec::with_capacity(module.symbols.len());
        let mut stub_of: HashMap<u32, u64> = HashMap::new();
        for (i, s) in module.symbols.iter().enumerate() {
            let addr = match s.section {
                Some(sec) => sections[sec as usize] + s.value,
                None => {
                    let addr = import(&s.name).ok_or_else(|| LoadError::MissingImport { symbol: s.name.clone() })?;
                    stub_of.insert(i as u32, base + plan.stubs + STUB_LEN * stub_of.len() as u64);
                    addr
                }
            };
            addresses.push(addr);
        }

        // Section bytes, relocated in a copy, then written.
        let mut images: Vec<Vec<u8>> = module.sections.iter().map(|s| s.bytes.clone()).collect();
        for r in &module.relocations {
            let s = i128::from(addresses[r.symbol as usize]);
            let a = i128::from(r.addend);
            let p = i128::from(sections[r.section as usize] + r.offset);
            let overflow = |value: i128| LoadError::Overflow {
                kind: r.kind,
                section: module.sections[r.section as usize].name.clone(),
                offset: r.offset,
                symbol: module.symbols[r.symbol as usize].name.clone(),
                value,
            };
            let fit32 = |v: i128| i32::try_from(v).map_err(|_| overflow(v));
            let field: Vec<u8> = match r.kind {
                RelocType::Abs64 => ((s + a) as u64).to_le_bytes().to_vec(),
                RelocType::Pc32 => fit32(s + a - p)?.to_le_bytes().to_vec(),
                RelocType::Plt32 => match fit32(s + a - p) {
                    Ok(v) => v.to_le_bytes().to_vec(),
                    Err(e) => match stub_of.get(&r.symbol) {
                        Some(&stub) => fit32(i128::from(stub) + a - p)?.to_le_bytes().to_vec(),
                        None => return Err(e),
                    },
                },
                RelocType::GotPcRel => {
                    let cell = base + plan.got + 8 * got_index[&r.symbol];
                    fit32(i128::from(cell) + a - p)?.to_le_bytes().to_vec()
                }
            };
            let at = r.offset as usize;
            let section = &mut images[r.section as usize];
            let Some(dst) = section.get_mut(at..at + field.len()) else {
                return Err(LoadError::Field {
                    section: module.sections[r.section as usize].name.clone(),
                    offset: r.offset,
                });
            };
            dst.copy_from_slice(&field);
        }
        for (i, image) in images.iter().enumerate() {
            region.write(plan.sections[i], image);
        }
        for (&symbol, &stub) in &stub_of {
            let mut bytes = STUB.to_vec();
            bytes.extend_from_slice(&addresses[symbol as usize].to_le_bytes());
            region.write(stub - base, &bytes);
        }
        for (&symbol, &cell) in &got_index {
            region.write(plan.got + 8 * cell, &addresses[symbol as usize].to_le_bytes());
        }
        let [code, ro, rw, end] = plan.groups;
        region.protect(code, ro - code, Access::ReadExecute)?;
        region.protect(ro, rw - ro, Access::Read)?;
        region.protect(rw, end - rw, Access::ReadWrite)?;

        let mut exports = HashMap::new();
        let mut objects = HashMap::new();
        let mut functions = HashMap::new();
        for (i, s) in module.symbols.iter().enumerate() {
            if s.section.is_some() && s.binding != Binding::Local {
                exports.insert(s.name.clone(), addresses[i]);
                match s.kind {
                    SymbolType::Object => {
                        objects.insert(s.name.clone(), (addresses[i], s.size));
                    }
                    SymbolType::Function => {
                        functions.insert(s.name.clone(), addresses[i]);
                    }
                    _ => {}
                }
            }
        }
        Ok(LoadedModule {
            region,
            exports,
            sections,
            objects,
            functions,
        })
    }

    /// The address of exported symbol `name`.
    pub fn symbol(&self, name: &str) -> Option<u64> {
        self.exports.get(name).copied()
    }

    /// Calls exported function `name` with up to six integer arguments;
    /// `None` if the module exports no such function.
    pub fn call(&self, name: &str, args: &[u64]) -> Option<u64> {
        let addr = *self.functions.get(name)?;
        let mut all = [0u64; 6];
        let n = args.len().min(6);
        all[..n].copy_from_slice(&args[..n]);
        crate::memory::call_in(&self.region, addr, all)
    }

    /// The current bytes of exported data object `name`.
    pub fn read_object(&self, name: &str) -> Option<Vec<u8>> {
        let &(addr, size) = self.objects.get(name)?;
        self.region.read(addr, size)
    }

    /// Exported data objects: name -> (address, size).
    pub fn objects(&self) -> &HashMap<String, (u64, u64)> {
        &self.objects
    }

    /// Where each section was placed.
    pub fn section_addresses(&self) -> &[u64] {
        &self.sections
    }

    /// The mapping's address range.
    pub fn range(&self) -> (u64, u64) {
        (self.region.addr(), self.region.addr() + self.region.len())
    }
}
