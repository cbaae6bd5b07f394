//! What a thread was doing, as `/proc/PID/task/TID/stat` reports it.

use serde::Serialize;

/// The scheduler state of a thread (the third field of its `stat` file).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ThreadState {
    Running,
    /// Waiting interruptibly, e.g. blocked in `read` or `nanosleep`.
    Sleeping,
    /// Waiting uninterruptibly (usually disk I/O).
    DiskSleep,
    /// Stopped by a signal (job control).
    Stopped,
    /// Stopped by a tracer (a debugger or relive).
    TracingStop,
    Zombie,
    Dead,
    Idle,
    Unknown,
}

impl ThreadState {
    pub fn from_code(code: char) -> ThreadState {
        match code {
            'R' => ThreadState::Running,
            'S' => ThreadState::Sleeping,
            'D' => ThreadState::DiskSleep,
            'T' => ThreadState::Stopped,
            't' => ThreadState::TracingStop,
            'Z' => ThreadState::Zombie,
            'X' | 'x' => ThreadState::Dead,
            'I' => ThreadState::Idle,
            _ => ThreadState::Unknown,
        }
    }

    /// A thread that has exited (and awaits being reaped): it runs nothing.
    pub fn has_exited(self) -> bool {
        matches!(self, ThreadState::Zombie | ThreadState::Dead)
    }

    pub fn name(self) -> &'static str {
        match self {
            ThreadState::Running => "running",
            ThreadState::Sleeping => "sleeping",
            ThreadState::DiskSleep => "disk-sleep",
            ThreadState::Stopped => "stopped",
            ThreadState::TracingStop => "tracing-stop",
            ThreadState::Zombie => "zombie",
            ThreadState::Dead => "dead",
            ThreadState::Idle => "idle",
            ThreadState::Unknown => "unknown",
        }
    }
}

/// One thread, listed without stopping it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThreadInfo {
    pub tid: u32,
    pub state: ThreadState,
    /// The thread's name (`comm`).
    pub name: String,
}

/// The stack pointer and PC of a blocked thread from its
/// `/proc/PID/task/TID/syscall` line (`NR ARG1..ARG6 SP PC`, or `-1 SP PC`
/// when blocked outside a system call); `None` for `running` or anything
/// unreadable.
pub fn parse_syscall_position(line: &str) -> Option<(u64, u64)> {
    let fields: Vec<&str> = line.split_whitespace().collect();
    let hex = |s: &str| u64::from_str_radix(s.strip_prefix("0x")?, 16).ok();
    match fields.as_slice() {
        [.., sp, pc] if fields.len() == 3 || fields.len() == 9 => Some((hex(pc)?, hex(sp)?)),
        _ => None,
    }
}

/// Fields of a `stat` line after the `(comm)` field, which may itself
/// contain spaces and parentheses: split at the last `)`.
pub(crate) fn stat_fields(stat: &str) -> Option<(String, Vec<&str>)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let name = stat.get(open + 1..close)?.to_string();
    Some((name, stat.get(close + 1..)?.split_whitespace().collect()))
}

/// The parent pid in a `stat` line: the second field after the command
/// name, which is in parentheses and may hold anything (spaces, `)`,
/// bytes that are not UTF-8: such a worker was skipped).
pub(crate) fn parent_in_stat(stat: &[u8]) -> Option<u32> {
    let close = stat.iter().rposition(|&b| b == b')')?;
    let after = std::str::from_utf8(&stat[close + 1..]).ok()?;
    after.split_ascii_whitespace().nth(1)?.parse().ok()
}

/// Parses a thread's `stat` line into its name and state.
pub(crate) fn parse_stat(tid: u32, stat: &str) -> Option<ThreadInfo> {
    let (name, fields) = stat_fields(stat)?;
    let state = ThreadState::from_code(fields.first()?.chars().next()?);
    Some(ThreadInfo { tid, state, name })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_parent_is_read_past_any_command_name() {
        assert_eq!(parent_in_stat(b"42 (worker) S 7 42 42 0 -1"), Some(7));
        assert_eq!(parent_in_stat(b"42 (a) b) (c) S 9 1"), Some(9));
        assert_eq!(parent_in_stat(b"42 (\xff\xfe name) R 3 1"), Some(3));
        assert_eq!(
            parent_in_stat(&[b'4', b' ', b'(', 0xff, b')', b' ', b'S', b' ', b'5']),
            Some(5)
        );
        assert_eq!(parent_in_stat(b"42 (cut"), None);
        assert_eq!(parent_in_stat(b""), None);
    }

    #[test]
    fn names_with_parentheses_and_spaces() {
        let t = parse_stat(7, "7 (a) b (c)) S 1 7 7 0 -1").unwrap();
        assert_eq!((t.name.as_str(), t.state), ("a) b (c)", ThreadState::Sleeping));
        assert!(parse_stat(7, "garbage").is_none());
        assert_eq!(ThreadState::from_code('t').name(), "tracing-stop");
    }
}

#[cfg(test)]
mod position_tests {
    use super::parse_syscall_position;

    #[test]
    fn syscall_lines() {
        assert_eq!(
            parse_syscall_position("0 0x3 0x7ffd 0x400 0x0 0x0 0x0 0x7ffc10 0x7f1234\n"),
            Some((0x7f1234, 0x7ffc10))
        );
        assert_eq!(
            parse_syscall_position("-1 0x7ffc10 0x401000\n"),
            Some((0x401000, 0x7ffc10))
        );
        assert_eq!(parse_syscall_position("running\n"), None);
        assert_eq!(parse_syscall_position(""), None);
        assert_eq!(parse_syscall_position("0 zz 1 2 3 4 5 6 7"), None);
    }
}
