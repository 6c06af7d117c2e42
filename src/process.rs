//! The client process behind a hook call, and whether a remembered process still runs.
//!
//! A hook is spawned by Claude Code (directly in exec form, or through `/bin/sh -c`) or by Gemini
//! CLI (through `bash -c`). The harness remembers the client's pid and start time at SessionStart
//! so that an agent whose process is gone can be told apart from a live one, even after the pid
//! is reused. Linux `/proc` only; elsewhere nothing is known and every process counts as alive.

use serde::{Deserialize, Serialize};

/// A process, identified by pid and start time (clock ticks since boot).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientProcess {
    pub pid: u32,
    pub start_ticks: u64,
}

struct Stat {
    comm: String,
    ppid: u32,
    start_ticks: u64,
}

fn stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // `pid (comm) state ppid ...`; comm may itself hold spaces and parentheses.
    let open = text.find('(')?;
    let close = text.rfind(')')?;
    let comm = text.get(open + 1..close)?.to_owned();
    let fields: Vec<&str> = text.get(close + 2..)?.split(' ').collect();
    // After the comm: state is field 3 of stat(5), ppid 4, starttime 22.
    Some(Stat {
        comm,
        ppid: fields.get(1)?.parse().ok()?,
        start_ticks: fields.get(19)?.parse().ok()?,
    })
}

/// The process that runs the hook: the parent, or the grandparent when the parent is the shell
/// that a shell-form hook command runs in.
pub fn client_process() -> Option<ClientProcess> {
    let mut pid = std::os::unix::process::parent_id();
    let mut st = stat(pid)?;
    if matches!(st.comm.as_str(), "sh" | "dash" | "bash" | "zsh") && st.ppid > 1 {
        pid = st.ppid;
        st = stat(pid)?;
    }
    Some(ClientProcess {
        pid,
        start_ticks: st.start_ticks,
    })
}

/// This process, with its start time (to name files that outlive it only if it dies).
pub fn this_process() -> ClientProcess {
    let pid = std::process::id();
    ClientProcess {
        pid,
        start_ticks: stat(pid).map_or(0, |s| s.start_ticks),
    }
}

/// True unless the process is known to be gone (no such pid, or the pid now belongs to a process
/// that started at another time).
pub fn is_alive(p: ClientProcess) -> bool {
    if !std::path::Path::new("/proc/self/stat").exists() {
        return true;
    }
    stat(p.pid).is_some_and(|s| s.start_ticks == p.start_ticks)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_alive_and_a_changed_start_is_not() {
        let me = std::process::id();
        let st = stat(me).unwrap();
        let p = ClientProcess {
            pid: me,
            start_ticks: st.start_ticks,
        };
        assert!(is_alive(p));
        assert!(!is_alive(ClientProcess {
            start_ticks: st.start_ticks + 1,
            ..p
        }));
        assert!(!is_alive(ClientProcess {
            pid: u32::MAX - 1,
            start_ticks: 0
        }));
    }

    #[test]
    fn the_client_is_found_past_a_shell() {
        // The test runner is this process's parent; it is not a shell, so it is the client.
        let client = client_process().unwrap();
        assert!(client.pid > 0);
    }
}
