//! x86-64 facts both of relive's linkers share (the patch engine's, which
//! links objects into a running process, and SMF's, which loads modules in
//! process): what each ELF relocation type means and how its field is
//! computed ([`rtype`]), and the jumps relive writes ([`jump`]). Written
//! once here, so the two cannot drift apart.
#![forbid(unsafe_code)]

pub mod jump;
pub mod rtype;
