//! x86-64 general-purpose registers of a stopped thread.
//!
//! Named after the registers, not after one OS's structure, so that the
//! macOS (`x86_thread_state64_t`) and Windows (`CONTEXT`) backends can fill
//! the same type.

use serde::Serialize;

/// The integer registers of one x86-64 thread.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Registers {
    pub rip: u64,
    pub rsp: u64,
    pub rbp: u64,
    pub rax: u64,
    pub rbx: u64,
    pub rcx: u64,
    pub rdx: u64,
    pub rsi: u64,
    pub rdi: u64,
    pub r8: u64,
    pub r9: u64,
    pub r10: u64,
    pub r11: u64,
    pub r12: u64,
    pub r13: u64,
    pub r14: u64,
    pub r15: u64,
    pub eflags: u64,
    /// The system call number the thread was in, or `u64::MAX` (-1) when it
    /// was not in one. Linux uses it to restart interrupted system calls, so
    /// code that makes the thread run something else must set it to -1 and
    /// restore it afterwards.
    pub orig_rax: u64,
    pub fs_base: u64,
    pub gs_base: u64,
    pub cs: u64,
    pub ss: u64,
    pub ds: u64,
    pub es: u64,
    pub fs: u64,
    pub gs: u64,
}

impl Registers {
    /// The program counter: where the thread will continue.
    pub fn pc(&self) -> u64 {
        self.rip
    }
}
