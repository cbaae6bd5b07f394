//! Which processes `patch` and `revert` act on: one by pid, a pid and its
//! descendants that run the same program (`--tree`: a prefork server's
//! parent and workers), or every process running a file (`--exe`).

use std::path::PathBuf;

use crate::not_found::NoProcessRuns;

/// How the user named the processes.
#[derive(Clone, Debug)]
pub enum Named {
    Pid(u32),
    /// `--exe PATH` (passed to clap as `exe:PATH` in the pid's place).
    Exe(PathBuf),
}

/// Parses the pid positional: a pid, or `exe:PATH` (`--exe PATH`).
pub fn parse_named(text: &str) -> Result<Named, String> {
    match text.strip_prefix("exe:") {
        Some(path) if !path.is_empty() => Ok(Named::Exe(path.into())),
        _ => crate::output::parse_pid(text)
            .map(Named::Pid)
            .map_err(|e| format!("{e}: name the process first (PID), or anywhere as --pid PID or --exe PATH")),
    }
}

/// The process options every command that changes processes takes.
#[derive(clap::Args, Clone)]
pub struct Which {
    /// The process, by pid (`--pid PID` works too). `--exe PATH` in its
    /// place: every process running that executable file.
    #[arg(value_name = "PID", value_parser = parse_named)]
    pub named: Named,
    /// Also every descendant of PID that runs the same program (workers
    /// forked by a server; a child that ran another program is left out).
    #[arg(long)]
    pub tree: bool,
}

/// The processes chosen, and those of the tree left out (and why).
pub struct Chosen {
    pub pids: Vec<u32>,
    pub skipped: Vec<(u32, String)>,
}

impl Which {
    /// Whether more than one process may be meant (the report then lists
    /// each process).
    pub fn many(&self) -> bool {
        self.tree || matches!(self.named, Named::Exe(_))
    }

    /// The one process named, when it is named by pid.
    pub fn pid(&self) -> Option<u32> {
        match self.named {
            Named::Pid(pid) => Some(pid),
            Named::Exe(_) => None,
        }
    }

    /// The processes, now.
    pub fn choose(&self) -> anyhow::Result<Chosen> {
        if let Named::Exe(exe) = &self.named {
            if self.tree {
                return Err(anyhow::anyhow!(
                    "--tree takes a pid (the root of the tree); --exe already names every process running {}",
                    exe.display()
                ));
            }
            // A file that is not there runs in no process either.
            let pids = relive_process::running(exe).unwrap_or_default();
            if pids.is_empty() {
                return Err(NoProcessRuns(exe.display().to_string()).into());
            }
            return Ok(Chosen {
                pids,
                skipped: Vec::new(),
            });
        }
        let root = self.pid().expect("named by pid");
        let mut chosen = Chosen {
            pids: vec![root],
            skipped: Vec::new(),
        };
        if self.tree {
            let (same, other) = relive_patch::fleet::tree(root);
            chosen.pids.extend(same);
            chosen.skipped = other;
        }
        Ok(chosen)
    }

    /// Processes of the same selection that appeared since `known` was
    /// chosen (forked meanwhile): they are changed too.
    pub fn newcomers(&self, known: &[u32], skipped: &[(u32, String)]) -> Vec<u32> {
        if !self.many() {
            return Vec::new();
        }
        self.choose()
            .map(|c| {
                c.pids
                    .into_iter()
                    .filter(|p| !known.contains(p) && !skipped.iter().any(|(s, _)| s == p))
                    .collect()
            })
            .unwrap_or_default()
    }
}
