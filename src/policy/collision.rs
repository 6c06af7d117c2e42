//! Collisions through the shell: a shell command wrote a file that another live agent holds.
//! Both agents are told: the one that ran the command at once, the holder on its next hook.
//! This is the after-the-fact half: a command that certainly wrote a held file was denied before
//! it ran (`file_lock::before_shell`); what reaches here is what could not be known in advance, or
//! was claimed while the command ran. No claim is taken for a shell write.

use crate::store::claims::Held;
use crate::time::span;

use super::file_lock::describe_holder;

/// What to tell whom after a shell command.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Notices {
    /// For the agent that ran the command.
    pub for_writer: Option<String>,
    /// For each holder: (session id, text).
    pub for_holders: Vec<(String, String)>,
}

/// `written`: each path the command wrote with the claim on it, if any. `writer` is the session
/// that ran it, `writer_label` how to name it to others (`claude session 27bffab0`). `partial`:
/// the command was too long to read whole (a bound of `crate::shell` was hit).
pub fn after_shell(
    writer: &str,
    writer_label: &str,
    written: &[(String, Option<Held>)],
    partial: bool,
    now_ms: i64,
) -> Notices {
    let collisions: Vec<(&String, &Held)> = written
        .iter()
        .filter_map(|(path, held)| held.as_ref().map(|h| (path, h)))
        .filter(|(_, h)| {
            h.claim.session_id != writer && h.gone.is_none() && h.claim.expires_ms > now_ms
        })
        .collect();
    if collisions.is_empty() {
        return Notices::default();
    }
    let list: Vec<String> = collisions
        .iter()
        .map(|(path, h)| format!("{path} (held by {})", describe_holder(h)))
        .collect();
    let partial = if partial {
        " (the command was too long to check every file it writes)"
    } else {
        ""
    };
    let for_writer = format!(
        "agent-harness: collision: that shell command wrote {} while another agent is editing \
         it{partial}. Tell the user, check the file's content, and do not write it again until \
         the other agent is done (its claim shows in `harness locks`).",
        list.join(", ")
    );
    let mut for_holders: Vec<(String, String)> = Vec::new();
    for (path, h) in &collisions {
        let text = format!(
            "agent-harness: collision: {writer_label} ran a shell command that wrote {path}, \
             a file you are editing (you last wrote it {} ago). Re-read it before your next edit.",
            span(now_ms - h.claim.touched_ms)
        );
        for_holders.push((h.claim.session_id.clone(), text));
    }
    Notices {
        for_writer: Some(for_writer),
        for_holders,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::claims::{Claim, Gone};

    const NOW: i64 = 1_800_000_000_000;

    fn held(session: &str, expires_in: i64, gone: Option<Gone>) -> Option<Held> {
        Some(Held {
            claim: Claim {
                path: "/p/a.rs".into(),
                session_id: session.into(),
                agent: "claude".into(),
                project_root: Some("/p".into()),
                tool_name: Some("Edit".into()),
                claimed_ms: NOW - 60_000,
                touched_ms: NOW - 60_000,
                expires_ms: NOW + expires_in,
            },
            gone,
            provisional: false,
        })
    }

    #[test]
    fn a_write_to_another_live_agents_file_tells_both() {
        let n = after_shell(
            "me",
            "gemini session me",
            &[
                ("/p/a.rs".into(), held("holder-123456", 60_000, None)),
                ("/p/free.rs".into(), None),
            ],
            false,
            NOW,
        );
        let mine = n.for_writer.unwrap();
        assert!(
            mine.contains("/p/a.rs (held by claude session holder-1 in /p)"),
            "{mine}"
        );
        assert!(!mine.contains("free.rs"));
        assert_eq!(n.for_holders.len(), 1);
        assert_eq!(n.for_holders[0].0, "holder-123456");
        assert!(
            n.for_holders[0]
                .1
                .contains("gemini session me ran a shell command that wrote /p/a.rs")
        );
        assert!(n.for_holders[0].1.contains("1m ago"));
        assert!(!mine.contains("too long"));
    }

    #[test]
    fn a_command_read_only_in_part_says_so() {
        let n = after_shell(
            "me",
            "x",
            &[("/p/a.rs".into(), held("other", 60_000, None))],
            true,
            NOW,
        );
        assert!(
            n.for_writer
                .unwrap()
                .contains("too long to check every file")
        );
    }

    #[test]
    fn own_lapsed_and_orphaned_claims_are_no_collision() {
        for h in [
            held("me", 60_000, None),
            held("other", -1, None),
            held("other", 60_000, Some(Gone::Ended)),
            held("other", 60_000, Some(Gone::ProcessExited)),
        ] {
            assert_eq!(
                after_shell("me", "x", &[("/p/a.rs".into(), h)], false, NOW),
                Notices::default()
            );
        }
    }
}
