//! A way back for a thread that runs a system call with borrowed registers.
//!
//! relive runs `mmap` and `mprotect` inside the target by pointing one
//! stopped thread's registers at a `syscall` instruction. If relive died
//! (SIGKILL) before putting the thread's own registers back, the kernel
//! would detach the thread and it would run on with relive's registers and
//! crash. So before borrowing the thread, relive writes below its stack
//! pointer exactly what the kernel writes when it delivers a signal: a
//! signal frame holding the thread's registers, signal mask and FPU/SSE/AVX
//! state, and points the borrowed stack at it. The system call runs at a
//! `syscall; ret` pair already in the program's code; its `ret` goes to
//! `pop rax; ret`, which loads 15 and returns to a `syscall` again:
//! `rt_sigreturn`, which loads every register from the frame. The thread
//! then carries on exactly where it was stopped, whether or not relive is
//! still alive. When relive lives, it restores the registers itself and the
//! frame is never used (it lies in stack memory a signal may overwrite at
//! any time, so nothing is lost by writing it).

/// `FP_XSTATE_MAGIC1`: the software bytes of the `fxsave` area announce
/// an extended (XSAVE) state.
const FP_XSTATE_MAGIC1: u32 = 0x4650_5853;
/// `FP_XSTATE_MAGIC2`: written right after the XSAVE state.
const FP_XSTATE_MAGIC2: u32 = 0x4650_5845;
/// Where the software bytes (`struct _fpx_sw_bytes`) lie in the 512-byte
/// legacy area.
const SW_BYTES: usize = 464;
/// `UC_FP_XSTATE | UC_SIGCONTEXT_SS | UC_STRICT_RESTORE_SS`.
const UC_FLAGS: u64 = 0x1 | 0x2 | 0x4;
/// The x86-64 trap flag: never restored into the thread.
pub(super) const EFLAGS_TF: u64 = 0x100;
/// Not an `ss_flags` value `sigaltstack` accepts, so the `rt_sigreturn`
/// leaves the thread's alternate signal stack as it is (it ignores the
/// error): relive cannot read that setting.
const SS_FLAGS_KEEP: u32 = 3;
/// The System V red zone below the stack pointer, which leaf code may use.
const RED_ZONE: u64 = 128;
/// `rt_sigreturn`.
pub const SYS_RT_SIGRETURN: u64 = 15;
/// `restart_syscall`.
const SYS_RESTART_SYSCALL: u64 = 219;

/// `-ERESTARTSYS`, `-ERESTARTNOINTR`, `-ERESTARTNOHAND`: a system call the
/// stop interrupted, which the kernel restarts by re-running it.
const RESTART_BY_RERUNNING: [i64; 3] = [-512, -513, -514];
/// `-ERESTART_RESTARTBLOCK`: restarted through `restart_syscall`.
const RESTART_BLOCK: i64 = -516;

/// Byte offsets in the frame, from the kernel's `struct rt_sigframe`
/// (`pretcode`, then `struct ucontext`, then `siginfo`).
mod at {
    pub const UC_FLAGS: usize = 8;
    pub const SS_SP: usize = 24;
    pub const SS_FLAGS: usize = 32;
    pub const SS_SIZE: usize = 40;
    /// `uc_mcontext` (`struct sigcontext`).
    pub const MCONTEXT: usize = 48;
    pub const SIGMASK: usize = MCONTEXT + 256;
    /// The whole frame, `siginfo` (128 bytes) included.
    pub const END: usize = SIGMASK + 8 + 128;
}

/// Instructions of the target the way back runs through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gadgets {
    /// `0f 05 c3`: `syscall; ret`.
    pub syscall_ret: u64,
    /// `58 c3`: `pop rax; ret`.
    pub pop_rax_ret: u64,
}

/// The registers a stopped thread must get back to carry on as if it had
/// never been stopped: a system call the stop interrupted is restarted
/// the way the kernel restarts it (the instruction pointer back on the
/// `syscall`, its number in `rax`), so restoring them from any kind of
/// stop, or from a signal frame, does the same thing. `restart_block`
/// says whether `restart_syscall` may be used (not after a
/// `rt_sigreturn`, which resets it: the call is run again instead).
pub fn resumable(saved: &crate::Registers, restart_block: bool) -> crate::Registers {
    let mut regs = *saved;
    let rax = saved.rax as i64;
    if (saved.orig_rax as i64) >= 0 {
        if RESTART_BY_RERUNNING.contains(&rax) || (rax == RESTART_BLOCK && !restart_block) {
            regs.rax = saved.orig_rax;
            regs.rip = saved.rip.wrapping_sub(2);
        } else if rax == RESTART_BLOCK {
            regs.rax = SYS_RESTART_SYSCALL;
            regs.rip = saved.rip.wrapping_sub(2);
        }
    }
    regs.orig_rax = u64::MAX;
    regs.eflags &= !EFLAGS_TF;
    regs
}

/// A frame built for one thread, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// Where to write `bytes`.
    pub addr: u64,
    pub bytes: Vec<u8>,
    /// The stack pointer the borrowed registers use: the return chain's
    /// first word.
    pub sp: u64,
}

/// Builds the way back for a thread stopped with registers `saved`,
/// signal mask `sigmask` and XSAVE state `xstate` (as `PTRACE_GETREGSET`
/// `NT_X86_XSTATE` gives it). `None` when the state is not one a signal
/// frame can carry.
pub fn build(saved: &crate::Registers, sigmask: u64, xstate: &[u8], gadgets: Gadgets) -> Option<Frame> {
    if xstate.len() < 512 + 64 {
        return None;
    }
    let mut xstate = xstate.to_vec();
    let word = |b: &[u8], at: usize| u32::from_le_bytes(b[at..at + 4].try_into().unwrap());
    // The kernel fills the software bytes for ptrace; make sure they say
    // what a signal frame says (else only the legacy SSE state would be
    // restored).
    if word(&xstate, SW_BYTES) != FP_XSTATE_MAGIC1 || word(&xstate, SW_BYTES + 16) as usize != xstate.len() {
        let features = u64::from_le_bytes(xstate[512..520].try_into().unwrap());
        let len = xstate.len() as u32;
        xstate[SW_BYTES..SW_BYTES + 4].copy_from_slice(&FP_XSTATE_MAGIC1.to_le_bytes());
        xstate[SW_BYTES + 4..SW_BYTES + 8].copy_from_slice(&(len + 4).to_le_bytes());
        xstate[SW_BYTES + 8..SW_BYTES + 16].copy_from_slice(&features.to_le_bytes());
        xstate[SW_BYTES + 16..SW_BYTES + 20].copy_from_slice(&len.to_le_bytes());
    }
    xstate.extend_from_slice(&FP_XSTATE_MAGIC2.to_le_bytes());

    // Downwards from the red zone: the XSAVE state (64-byte aligned, as
    // XRSTOR needs), the frame, and the return chain right below it.
    let top = saved.rsp.checked_sub(RED_ZONE)?;
    let fpstate = top.checked_sub(xstate.len() as u64)? & !63;
    let frame = fpstate.checked_sub(at::END as u64)? & !15;
    // The chain: [pop rax; ret] [15] then the frame's first word, which is
    // the `syscall` `pop rax; ret` returns to (the kernel's `pretcode`).
    let sp = frame.checked_sub(16)?;
    let mut bytes = vec![0u8; (fpstate - sp) as usize + xstate.len()];
    let put = |bytes: &mut [u8], offset: usize, value: u64| {
        bytes[offset..offset + 8].copy_from_slice(&value.to_le_bytes());
    };
    put(&mut bytes, 0, gadgets.pop_rax_ret);
    put(&mut bytes, 8, SYS_RT_SIGRETURN);
    let f = (frame - sp) as usize;
    put(&mut bytes, f, gadgets.syscall_ret);
    put(&mut bytes, f + at::UC_FLAGS, UC_FLAGS);
    put(&mut bytes, f + at::SS_SP, 0);
    bytes[f + at::SS_FLAGS..f + at::SS_FLAGS + 4].copy_from_slice(&SS_FLAGS_KEEP.to_le_bytes());
    put(&mut bytes, f + at::SS_SIZE, 0);
    let regs = resumable(saved, false);
    let mc = f + at::MCONTEXT;
    for (i, value) in [
        regs.r8,
        regs.r9,
        regs.r10,
        regs.r11,
        regs.r12,
        regs.r13,
        regs.r14,
        regs.r15,
        regs.rdi,
        regs.rsi,
        regs.rbp,
        regs.rbx,
        regs.rdx,
        regs.rax,
        regs.rcx,
        regs.rsp,
        regs.rip,
        regs.eflags,
    ]
    .into_iter()
    .enumerate()
    {
        put(&mut bytes, mc + i * 8, value);
    }
    // cs, gs, fs, ss: 16 bits each.
    for (i, value) in [regs.cs, regs.gs, regs.fs, regs.ss].into_iter().enumerate() {
        bytes[mc + 144 + i * 2..mc + 146 + i * 2].copy_from_slice(&(value as u16).to_le_bytes());
    }
    put(&mut bytes, mc + 184, fpstate);
    put(&mut bytes, f + at::SIGMASK, sigmask);
    let x = (fpstate - sp) as usize;
    bytes[x..x + xstate.len()].copy_from_slice(&xstate);
    Some(Frame { addr: sp, bytes, sp })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Registers;

    fn regs() -> Registers {
        Registers {
            rip: 0x401000,
            rsp: 0x7ffd_0000_1008,
            rax: 7,
            orig_rax: u64::MAX,
            eflags: 0x246 | EFLAGS_TF,
            cs: 0x33,
            ss: 0x2b,
            ..Registers::default()
        }
    }

    #[test]
    fn a_stop_inside_a_system_call_resumes_by_rerunning_it() {
        let mut r = regs();
        r.orig_rax = 230; // clock_nanosleep
        r.rax = (-516i64) as u64;
        let back = resumable(&r, true);
        assert_eq!((back.rax, back.rip, back.orig_rax), (219, 0x400ffe, u64::MAX));
        // After rt_sigreturn restart_syscall would fail: run it again.
        assert_eq!(resumable(&r, false).rax, 230);
        r.rax = (-512i64) as u64;
        assert_eq!(resumable(&r, true).rax, 230);
        // A call that finished is not run again.
        r.rax = 0;
        assert_eq!(resumable(&r, true).rip, 0x401000);
        assert_eq!(resumable(&r, true).eflags & EFLAGS_TF, 0);
    }

    #[test]
    fn the_frame_lies_below_the_red_zone_and_holds_the_registers() {
        let gadgets = Gadgets {
            syscall_ret: 0x7f00_0000_1000,
            pop_rax_ret: 0x7f00_0000_2000,
        };
        let xstate = vec![0u8; 832];
        let frame = build(&regs(), 0xff, &xstate, gadgets).unwrap();
        assert!(frame.addr + frame.bytes.len() as u64 <= regs().rsp - RED_ZONE);
        let word = |at: usize| u64::from_le_bytes(frame.bytes[at..at + 8].try_into().unwrap());
        assert_eq!(
            (word(0), word(8), word(16)),
            (gadgets.pop_rax_ret, 15, gadgets.syscall_ret)
        );
        let mc = 16 + at::MCONTEXT;
        assert_eq!(word(mc + 15 * 8), regs().rsp);
        assert_eq!(word(mc + 16 * 8), regs().rip);
        let fpstate = word(mc + 184);
        assert_eq!(fpstate % 64, 0);
        let x = (fpstate - frame.addr) as usize;
        let magic2 = u32::from_le_bytes(frame.bytes[x + 832..x + 836].try_into().unwrap());
        assert_eq!(magic2, FP_XSTATE_MAGIC2);
        assert!(build(&regs(), 0, &[0u8; 100], gadgets).is_none());
    }
}
