//! File locks: an agent that writes a file holds a claim on it; another live agent's write to it
//! is denied, with a reason that names the holder and says what to do.
//!
//! A claim is re-entrant for its holder, refreshed by each of its writes, and lapses `ttl_secs`
//! after the last one. A holder whose session ended or whose client process exited no longer
//! counts: its claims are free (taken over as "orphan"). Releasing at SessionEnd (and at Stop,
//! when configured) is the driver's, through `store::claims`.
//!
//! A shell command that certainly writes a file another live agent holds is denied before it
//! runs ([`before_shell`]); it takes no claim, before or after (see `policy::collision`).

use crate::config::LocksConfig;
use crate::event::Agent;
use crate::store::claims::{Gone, Held};
use crate::time::{local_clock, span};

/// A write (or write attempt) by one agent to one file.
#[derive(Debug, Clone, Copy)]
pub struct Write<'a> {
    pub session_id: &'a str,
    pub agent: Agent,
    /// Canonical absolute path.
    pub path: &'a str,
    pub tool: &'a str,
    pub project_root: Option<&'a str>,
    pub now_ms: i64,
}

/// What to do to the claims table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Nothing changes.
    None,
    /// Take the claim: a new one, or over a claim that lapsed or whose holder is gone.
    Grant {
        /// The previous holder and why the claim was free: `lapse` or `orphan`.
        took_over: Option<(String, &'static str)>,
    },
    /// The holder wrote again: push the lapse time out.
    Refresh,
}

/// The answer to a write attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Allow(Effect),
    /// Another live agent holds the file.
    Deny {
        reason: String,
        holder: String,
    },
    /// The holder's claim lapses within the configured wait: ask again at `until_ms`.
    Wait {
        until_ms: i64,
    },
}

/// Why a claim held by someone else does not stop this write, if it does not.
fn free_because(held: &Held, now_ms: i64) -> Option<&'static str> {
    if held.gone.is_some() {
        Some("orphan")
    } else if held.claim.expires_ms <= now_ms {
        Some("lapse")
    } else {
        None
    }
}

/// Before a file write (PreToolUse / BeforeTool).
pub fn before_write(w: &Write<'_>, held: Option<&Held>, cfg: &LocksConfig) -> Verdict {
    let Some(held) = held else {
        return Verdict::Allow(Effect::Grant { took_over: None });
    };
    if held.claim.session_id == w.session_id {
        return Verdict::Allow(Effect::Refresh);
    }
    if let Some(why) = free_because(held, w.now_ms) {
        return Verdict::Allow(Effect::Grant {
            took_over: Some((held.claim.session_id.clone(), why)),
        });
    }
    let wait_ms = (cfg.wait_secs as i64).saturating_mul(1000);
    if wait_ms > 0 && held.claim.expires_ms - w.now_ms <= wait_ms {
        return Verdict::Wait {
            until_ms: held.claim.expires_ms,
        };
    }
    Verdict::Deny {
        reason: deny_reason(w, held),
        holder: held.claim.session_id.clone(),
    }
}

/// After a file write went through (PostToolUse / AfterTool): the writer holds the file.
pub fn after_write(w: &Write<'_>, held: Option<&Held>) -> Effect {
    match held {
        None => Effect::Grant { took_over: None },
        Some(h) if h.claim.session_id == w.session_id => Effect::Refresh,
        Some(h) => match free_because(h, w.now_ms) {
            Some(why) => Effect::Grant {
                took_over: Some((h.claim.session_id.clone(), why)),
            },
            // Someone else claimed it between this agent's check and its write: leave them be.
            None => Effect::None,
        },
    }
}

/// `claude session 27bffab0 in /home/me/proj`.
pub fn describe_holder(held: &Held) -> String {
    let c = &held.claim;
    let short = c.session_id.get(..8).unwrap_or(&c.session_id);
    match &c.project_root {
        Some(root) => format!("{} session {short} in {root}", c.agent),
        None => format!("{} session {short}", c.agent),
    }
}

/// How every lock deny opens. Claude Code 2.1.332 shows a hook's deny to the model as
/// `PreToolUse:Write hook error: <reason>`, so the first words must say this is deliberate.
pub const DENY_OPENING: &str =
    "agent-harness: deliberate file lock held by another agent, not an error.";

fn deny_reason(w: &Write<'_>, held: &Held) -> String {
    let c = &held.claim;
    format!(
        "{DENY_OPENING} {path} is being edited by another agent: {holder} (last wrote it {ago} \
         ago; its claim lapses in {left}, at {at}). Do not write this file now: work on \
         something else and come back to it later, or ask the user. If that session is gone, \
         the user can free the file with: harness locks release {quoted}",
        path = w.path,
        holder = describe_holder(held),
        ago = span(w.now_ms - c.touched_ms),
        left = span(c.expires_ms - w.now_ms),
        at = local_clock(c.expires_ms),
        quoted = crate::shell::quote(w.path),
    )
}

/// The answer to a shell command before it runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ShellVerdict {
    /// No file it certainly writes is held by another live agent.
    Allow,
    /// It writes files other live agents hold: `holders` are (path, holder session).
    Deny {
        reason: String,
        holders: Vec<(String, String)>,
    },
    /// Every claim in the way lapses within the configured wait: ask again at `until_ms`.
    Wait { until_ms: i64 },
}

/// Before a shell command runs (PreToolUse(Bash) / BeforeTool(run_shell_command)): `written` are
/// the files it certainly writes, each with the claim on it, if any. The command is denied when
/// another live agent holds one of them; it waits (as a file write does) when every such claim
/// lapses within `locks.wait_secs`.
pub fn before_shell(
    session_id: &str,
    written: &[(String, Option<Held>)],
    cfg: &LocksConfig,
    now_ms: i64,
) -> ShellVerdict {
    let in_the_way: Vec<(&str, &Held)> = written
        .iter()
        .filter_map(|(path, held)| Some((path.as_str(), held.as_ref()?)))
        .filter(|(_, h)| h.claim.session_id != session_id && free_because(h, now_ms).is_none())
        .collect();
    if in_the_way.is_empty() {
        return ShellVerdict::Allow;
    }
    let wait_ms = (cfg.wait_secs as i64).saturating_mul(1000);
    let last_lapse = in_the_way
        .iter()
        .map(|(_, h)| h.claim.expires_ms)
        .max()
        .unwrap_or(now_ms);
    if wait_ms > 0 && last_lapse - now_ms <= wait_ms {
        return ShellVerdict::Wait {
            until_ms: last_lapse,
        };
    }
    ShellVerdict::Deny {
        reason: shell_deny_reason(&in_the_way, now_ms),
        holders: in_the_way
            .iter()
            .map(|(p, h)| ((*p).to_owned(), h.claim.session_id.clone()))
            .collect(),
    }
}

/// How many held files a shell deny names one by one.
const SHELL_DENY_NAMED: usize = 5;

fn shell_deny_reason(in_the_way: &[(&str, &Held)], now_ms: i64) -> String {
    let files: Vec<String> = in_the_way
        .iter()
        .take(SHELL_DENY_NAMED)
        .map(|(path, held)| {
            let c = &held.claim;
            format!(
                "{path} (held by {holder}; it last wrote it {ago} ago; the claim lapses in \
                 {left}, at {at}; if that session is gone, the user can free it with: harness \
                 locks release {quoted})",
                holder = describe_holder(held),
                ago = span(now_ms - c.touched_ms),
                left = span(c.expires_ms - now_ms),
                at = local_clock(c.expires_ms),
                quoted = crate::shell::quote(path),
            )
        })
        .collect();
    let more = match in_the_way.len().saturating_sub(SHELL_DENY_NAMED) {
        0 => String::new(),
        n => format!(" and {n} more"),
    };
    format!(
        "{DENY_OPENING} This command was not run, because it writes {} that another agent is editing: {}{more}. Do not \
         write {} now: run what does not write {}, work on something else and come back to it \
         later, or ask the user.",
        if in_the_way.len() == 1 {
            "a file"
        } else {
            "files"
        },
        files.join("; "),
        if in_the_way.len() == 1 { "it" } else { "them" },
        if in_the_way.len() == 1 { "it" } else { "them" },
    )
}

/// When a provisional claim (taken before its write was seen done) lapses.
pub fn provisional_expiry(now_ms: i64, cfg: &LocksConfig) -> i64 {
    let secs = cfg.provisional_secs.min(cfg.ttl_secs);
    now_ms.saturating_add((secs.min(i64::MAX as u64 / 1000) as i64) * 1000)
}

/// The lapse time of a claim touched now.
pub fn expiry(now_ms: i64, cfg: &LocksConfig) -> i64 {
    now_ms.saturating_add((cfg.ttl_secs.min(i64::MAX as u64 / 1000) as i64) * 1000)
}

/// How recently a confirmed claim may have been touched for a holder's next write attempt to
/// leave it as it is.
pub const REFRESH_GRANULARITY_MS: i64 = 10_000;

/// Whether the holder's write attempt (PreToolUse) should refresh its claim. A confirmed claim
/// touched less than [`REFRESH_GRANULARITY_MS`] ago, with the full TTL from then, keeps its
/// expiry: refreshing it would move the lapse by less than that, and cost a page written to the
/// store (a quarter of what such a call writes) and a statement inside the write lock. In a run
/// of edits that is nearly every attempt, right after the previous write's PostToolUse. The write
/// itself (PostToolUse) always refreshes.
pub fn refresh_due(held: &Held, now_ms: i64, cfg: &LocksConfig) -> bool {
    held.provisional
        || now_ms.saturating_sub(held.claim.touched_ms) >= REFRESH_GRANULARITY_MS
        || held.claim.expires_ms < expiry(held.claim.touched_ms, cfg)
}

/// Whether a gone holder's reason reads as a word (for `harness locks`).
pub fn gone_word(g: Gone) -> &'static str {
    match g {
        Gone::Ended => "ended",
        Gone::ProcessExited => "exited",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::claims::Claim;

    const NOW: i64 = 1_800_000_000_000;

    fn write(session: &str) -> Write<'static> {
        let session: &'static str = Box::leak(session.to_owned().into_boxed_str());
        Write {
            session_id: session,
            agent: Agent::Claude,
            path: "/p/src/main.rs",
            tool: "Edit",
            project_root: Some("/p"),
            now_ms: NOW,
        }
    }

    fn held(session: &str, expires_in_ms: i64, gone: Option<Gone>) -> Held {
        Held {
            claim: Claim {
                path: "/p/src/main.rs".into(),
                session_id: session.into(),
                agent: "gemini".into(),
                project_root: Some("/p".into()),
                tool_name: Some("replace".into()),
                claimed_ms: NOW - 300_000,
                touched_ms: NOW - 120_000,
                expires_ms: NOW + expires_in_ms,
            },
            gone,
            provisional: false,
        }
    }

    fn cfg(wait_secs: u64) -> LocksConfig {
        LocksConfig {
            wait_secs,
            ..LocksConfig::default()
        }
    }

    #[test]
    fn a_free_file_is_granted() {
        assert_eq!(
            before_write(&write("aaaaaaaa-1"), None, &cfg(0)),
            Verdict::Allow(Effect::Grant { took_over: None })
        );
    }

    #[test]
    fn the_holder_reenters() {
        let h = held("aaaaaaaa-1", 60_000, None);
        assert_eq!(
            before_write(&write("aaaaaaaa-1"), Some(&h), &cfg(0)),
            Verdict::Allow(Effect::Refresh)
        );
        assert_eq!(after_write(&write("aaaaaaaa-1"), Some(&h)), Effect::Refresh);
    }

    #[test]
    fn another_live_holder_denies_with_a_reason_that_says_who_and_what_to_do() {
        let h = held("bbbbbbbb-2222", 13 * 60_000, None);
        let Verdict::Deny { reason, holder } =
            before_write(&write("aaaaaaaa-1"), Some(&h), &cfg(0))
        else {
            panic!("not denied")
        };
        assert_eq!(holder, "bbbbbbbb-2222");
        for part in [
            "/p/src/main.rs",
            "gemini session bbbbbbbb in /p",
            "last wrote it 2m ago",
            "lapses in 13m",
            "work on something else",
            "harness locks release /p/src/main.rs",
        ] {
            assert!(reason.contains(part), "{part:?} missing from {reason}");
        }
    }

    #[test]
    fn a_lapsed_or_orphaned_claim_is_taken_over() {
        let lapsed = held("bbbbbbbb-2", 0, None);
        assert_eq!(
            before_write(&write("aaaaaaaa-1"), Some(&lapsed), &cfg(0)),
            Verdict::Allow(Effect::Grant {
                took_over: Some(("bbbbbbbb-2".into(), "lapse"))
            })
        );
        for gone in [Gone::Ended, Gone::ProcessExited] {
            let orphan = held("bbbbbbbb-2", 600_000, Some(gone));
            assert_eq!(
                before_write(&write("aaaaaaaa-1"), Some(&orphan), &cfg(0)),
                Verdict::Allow(Effect::Grant {
                    took_over: Some(("bbbbbbbb-2".into(), "orphan"))
                })
            );
        }
    }

    #[test]
    fn a_bounded_wait_applies_only_to_claims_that_lapse_within_it() {
        let soon = held("bbbbbbbb-2", 5_000, None);
        assert_eq!(
            before_write(&write("aaaaaaaa-1"), Some(&soon), &cfg(10)),
            Verdict::Wait {
                until_ms: NOW + 5_000
            }
        );
        let later = held("bbbbbbbb-2", 60_000, None);
        assert!(matches!(
            before_write(&write("aaaaaaaa-1"), Some(&later), &cfg(10)),
            Verdict::Deny { .. }
        ));
        assert!(matches!(
            before_write(&write("aaaaaaaa-1"), Some(&soon), &cfg(0)),
            Verdict::Deny { .. }
        ));
    }

    #[test]
    fn after_a_write_the_writer_holds_the_file_unless_another_live_agent_does() {
        assert_eq!(
            after_write(&write("a"), None),
            Effect::Grant { took_over: None }
        );
        let other = held("b", 60_000, None);
        assert_eq!(after_write(&write("a"), Some(&other)), Effect::None);
        let lapsed = held("b", -1, None);
        assert_eq!(
            after_write(&write("a"), Some(&lapsed)),
            Effect::Grant {
                took_over: Some(("b".into(), "lapse"))
            }
        );
    }

    fn shell(written: &[(&str, Option<Held>)], wait_secs: u64) -> ShellVerdict {
        let written: Vec<(String, Option<Held>)> = written
            .iter()
            .map(|(p, h)| ((*p).to_owned(), h.clone()))
            .collect();
        before_shell("aaaaaaaa-1", &written, &cfg(wait_secs), NOW)
    }

    #[test]
    fn a_shell_command_writing_a_file_another_live_agent_holds_is_denied_as_a_deliberate_lock() {
        let h = held("bbbbbbbb-2222", 13 * 60_000, None);
        let ShellVerdict::Deny { reason, holders } =
            shell(&[("/p/free.rs", None), ("/p/src/main.rs", Some(h))], 0)
        else {
            panic!("not denied")
        };
        assert_eq!(
            holders,
            [("/p/src/main.rs".to_owned(), "bbbbbbbb-2222".to_owned())]
        );
        assert!(
            reason.starts_with(
                "agent-harness: deliberate file lock held by another agent, not an error."
            ),
            "{reason}"
        );
        for part in [
            "This command was not run",
            "/p/src/main.rs (held by gemini session bbbbbbbb in /p",
            "last wrote it 2m ago",
            "lapses in 13m",
            "harness locks release /p/src/main.rs",
            "work on something else",
        ] {
            assert!(reason.contains(part), "{part:?} missing from {reason}");
        }
        assert!(!reason.contains("free.rs"), "{reason}");
    }

    #[test]
    fn a_shell_command_over_free_own_lapsed_or_orphaned_files_is_allowed() {
        for h in [
            None,
            Some(held("aaaaaaaa-1", 60_000, None)),
            Some(held("bbbbbbbb-2", -1, None)),
            Some(held("bbbbbbbb-2", 60_000, Some(Gone::Ended))),
            Some(held("bbbbbbbb-2", 60_000, Some(Gone::ProcessExited))),
        ] {
            assert_eq!(shell(&[("/p/src/main.rs", h)], 0), ShellVerdict::Allow);
        }
        assert_eq!(shell(&[], 0), ShellVerdict::Allow);
    }

    #[test]
    fn a_shell_command_waits_only_when_every_claim_in_the_way_lapses_within_the_wait() {
        let soon = held("bbbbbbbb-2", 5_000, None);
        let later = held("cccccccc-3", 60_000, None);
        assert_eq!(
            shell(&[("/p/a", Some(soon.clone()))], 10),
            ShellVerdict::Wait {
                until_ms: NOW + 5_000
            }
        );
        assert!(matches!(
            shell(&[("/p/a", Some(soon)), ("/p/b", Some(later))], 10),
            ShellVerdict::Deny { holders, .. } if holders.len() == 2
        ));
    }

    #[test]
    fn a_shell_deny_over_many_files_names_a_few() {
        let many: Vec<(String, Option<Held>)> = (0..8)
            .map(|i| (format!("/p/f{i}"), Some(held("bbbbbbbb-2", 60_000, None))))
            .collect();
        let ShellVerdict::Deny { reason, holders } =
            before_shell("aaaaaaaa-1", &many, &cfg(0), NOW)
        else {
            panic!()
        };
        assert_eq!(holders.len(), 8);
        assert!(reason.contains("/p/f4 (held") && !reason.contains("/p/f5 (held"));
        assert!(reason.contains(" and 3 more."), "{reason}");
    }

    #[test]
    fn paths_with_spaces_are_quoted_in_the_release_command() {
        let mut w = write("aaaaaaaa-1");
        w.path = "/p/my file.rs";
        let mut h = held("bbbbbbbb-2", 60_000, None);
        h.claim.path = w.path.into();
        let Verdict::Deny { reason, .. } = before_write(&w, Some(&h), &cfg(0)) else {
            panic!()
        };
        assert!(
            reason.contains("harness locks release '/p/my file.rs'"),
            "{reason}"
        );
    }

    #[test]
    fn a_confirmed_claim_touched_moments_ago_is_not_refreshed_by_the_next_attempt() {
        let cfg = cfg(0);
        let touched = |ago_ms: i64, provisional: bool| {
            let mut h = held("aaaaaaaa-1", 0, None);
            h.claim.touched_ms = NOW - ago_ms;
            h.claim.expires_ms = expiry(h.claim.touched_ms, &cfg);
            h.provisional = provisional;
            h
        };
        assert!(!refresh_due(&touched(0, false), NOW, &cfg));
        assert!(!refresh_due(
            &touched(REFRESH_GRANULARITY_MS - 1, false),
            NOW,
            &cfg
        ));
        assert!(refresh_due(
            &touched(REFRESH_GRANULARITY_MS, false),
            NOW,
            &cfg
        ));
        // A provisional claim gets its window again; one whose expiry is short of the TTL (the TTL
        // was raised since) gets the full TTL.
        assert!(refresh_due(&touched(0, true), NOW, &cfg));
        let mut short = touched(0, false);
        short.claim.expires_ms -= 1;
        assert!(refresh_due(&short, NOW, &cfg));
    }
}
