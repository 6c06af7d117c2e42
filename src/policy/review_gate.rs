//! The review gate: whether a Claude session may end its turn (Stop), given its latest review.
//!
//! Pure: `(state, config) -> Verdict`. The store loads [`State`] (the session's latest review,
//! the files written since it, the turn's writes) and applies the [`Effect`]; the hook renders
//! the decision. Nothing here runs a reviewer: a Stop hook has a budget of milliseconds, so when
//! a review is wanted the gate blocks once and tells the model the exact command to run through
//! its Bash tool (`harness review --session <id>`), and gates the next Stop on that verdict.
//!
//! The loop is bounded three ways: each review thread (a REJECT and the fixes and re-reviews that
//! follow it) gets at most `review.max_rounds` blocks, counted here, not by Claude Code (which
//! ends a turn after 8 consecutive blocks, a count that restarts with every tool call); while
//! `stop_hook_active` is set (the turn goes on because a Stop hook blocked) the gate never gives
//! the same block twice for one verdict; and a reviewer that could not answer never blocks.

use crate::config::ReviewConfig;
use crate::decision::Decision;

/// A review's state, as the gate sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// `/review` recorded its criteria; `harness review --pending` has not run it yet.
    Requested,
    /// The gate asked for a review at Stop (the complexity trigger) and blocked once.
    Wanted,
    /// The reviewer is at work.
    Running,
    Approve,
    Reject,
    /// The reviewer could not answer (not installed, quota, timeout, invalid output twice).
    Unavailable,
    /// The user set the findings aside (`harness review --waive`).
    Waived,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Requested => "requested",
            Status::Wanted => "wanted",
            Status::Running => "running",
            Status::Approve => "approve",
            Status::Reject => "reject",
            Status::Unavailable => "unavailable",
            Status::Waived => "waived",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        [
            Status::Requested,
            Status::Wanted,
            Status::Running,
            Status::Approve,
            Status::Reject,
            Status::Unavailable,
            Status::Waived,
        ]
        .into_iter()
        .find(|k| k.as_str() == s)
    }
}

/// One finding of a verdict: where, what is wrong, and the fix.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Finding {
    pub file: String,
    /// The line the finding is about; none for a finding about a whole file.
    pub line: Option<u64>,
    /// `critical`, `major`, `minor`, ... as the reviewer said.
    pub severity: String,
    pub problem: String,
    pub fix: String,
}

/// What the gate last blocked with, for one review.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BlockKind {
    /// The findings of a REJECT.
    Findings,
    /// A request for a re-review of a change made after the review.
    Rereview,
    /// A request for a first review (the complexity trigger).
    Want,
}

impl BlockKind {
    pub fn as_str(self) -> &'static str {
        match self {
            BlockKind::Findings => "findings",
            BlockKind::Rereview => "rereview",
            BlockKind::Want => "want",
        }
    }

    pub fn parse(s: &str) -> Option<BlockKind> {
        match s {
            "findings" => Some(BlockKind::Findings),
            "rereview" => Some(BlockKind::Rereview),
            "want" => Some(BlockKind::Want),
            _ => None,
        }
    }
}

/// The session's latest review.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Latest {
    pub id: i64,
    pub status: Status,
    /// Set once the gate handed this review's thread to the user (the cap, or a wanted review
    /// that was not run): the gate is done with it.
    pub handed_off: bool,
    /// Blocks given for this review, and what the last one was.
    pub blocks: u32,
    pub last_block: Option<BlockKind>,
    /// Blocks given in its whole thread.
    pub thread_blocks: u32,
    pub summary: String,
    pub findings: Vec<Finding>,
    /// Files written (by file-writing tools) after its change was collected: the cheap
    /// fingerprint of "the change differs from the reviewed one".
    pub written_since: Vec<String>,
}

/// Everything the gate decides on, for one Stop.
#[derive(Debug, Clone, Default)]
pub struct State<'a> {
    pub session_id: &'a str,
    pub latest: Option<Latest>,
    /// Files this turn wrote after the latest review (or since the previous Stop), for the
    /// complexity trigger.
    pub turn_files: Vec<String>,
    /// Lines those writes added or replaced, when counted (`trigger_changed_lines` set).
    pub turn_lines: Option<u64>,
    /// The Stop payload's `stop_hook_active`: this turn goes on because a Stop hook blocked.
    pub stop_hook_active: bool,
    /// Background tasks (subagents, shells) still running when Stop fired (Claude Code
    /// 2.1.332 fires Stop with them at work): the change is still being made.
    pub background_running: usize,
}

/// What the store must do after the decision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    None,
    /// Count one block of this kind for the review.
    Blocked {
        review_id: i64,
        kind: BlockKind,
    },
    /// Record a wanted review (blocked once, for `kind`), with why.
    Want {
        trigger: &'static str,
        note: String,
    },
    /// The gate is done with the review's thread.
    HandOff {
        review_id: i64,
    },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    pub decision: Decision,
    pub effect: Effect,
}

fn pass() -> Verdict {
    Verdict {
        decision: Decision::Pass,
        effect: Effect::None,
    }
}

/// The command the model may run itself, through its Bash tool.
pub fn review_command(session_id: &str) -> String {
    format!("harness review --session {session_id}")
}

/// Decides one Stop.
pub fn at_stop(state: &State<'_>, config: &ReviewConfig) -> Verdict {
    if !config.enabled || state.background_running > 0 {
        return pass();
    }
    let cap = config.max_rounds;
    let command = review_command(state.session_id);
    if let Some(r) = state.latest.as_ref().filter(|r| !r.handed_off) {
        match r.status {
            Status::Reject => return on_reject(state, r, cap, &command),
            Status::Wanted => {
                // Asked for once and not run: the user decides, and the gate is done with it.
                return Verdict {
                    decision: Decision::Context(format!(
                        "agent-harness: a review of this change was asked for (review {}) but \
                         not run. Run `{command}` to have Gemini review it, or ignore this.",
                        r.id
                    )),
                    effect: Effect::HandOff { review_id: r.id },
                };
            }
            // A review at work is not judged yet; the others are settled.
            Status::Running | Status::Requested => return pass(),
            Status::Approve | Status::Unavailable | Status::Waived => {}
        }
    }
    trigger(state, config, &command)
}

fn on_reject(state: &State<'_>, r: &Latest, cap: u32, command: &str) -> Verdict {
    if r.thread_blocks >= cap {
        return Verdict {
            decision: Decision::Context(format!(
                "agent-harness: Gemini's review {} still REJECTs this change after {} rounds, \
                 so the turn ends here and the decision is yours. Read the findings with \
                 `harness reviews show {}`; then ask Claude to fix them, or set them aside with \
                 `harness review --waive [reason]`.",
                r.id, r.thread_blocks, r.id
            )),
            effect: Effect::HandOff { review_id: r.id },
        };
    }
    let changed = !r.written_since.is_empty();
    let kind = if changed {
        BlockKind::Rereview
    } else {
        BlockKind::Findings
    };
    // Honouring stop_hook_active: within a turn that goes on because of a block, the same block
    // for the same verdict is never given twice. A new verdict, or a first change after the
    // findings, is new.
    if state.stop_hook_active && r.blocks > 0 && r.last_block == Some(kind) {
        return Verdict {
            decision: Decision::Context(format!(
                "agent-harness: Gemini's review {} REJECTed this change and it was not reviewed \
                 again; the findings are still open (`harness reviews show {}`). Ask Claude to \
                 address them, or set them aside with `harness review --waive [reason]`.",
                r.id, r.id
            )),
            effect: Effect::None,
        };
    }
    let round = r.thread_blocks + 1;
    let last = if round == cap {
        " This is the last round: if the next review still rejects, the user decides."
    } else {
        ""
    };
    let text = if changed {
        format!(
            "agent-harness: the change differs from the one Gemini reviewed (review {}): {} \
             written since. Do not end the turn yet: run `{command}` with your Bash tool for a \
             re-review of the current change (round {round} of {cap}).{last}",
            r.id,
            list(&r.written_since, 5)
        )
    } else {
        format!(
            "agent-harness: Gemini's review {} REJECTed this change (round {round} of {cap}): {}\n\
             Findings:\n{}\nFix them, then run `{command}` with your Bash tool for a re-review \
             before you end the turn. If a finding is wrong, say why to the user; only the user \
             can set the findings aside (`harness review --waive [reason]`).{last}",
            r.id,
            r.summary.trim(),
            findings_text(&r.findings)
        )
    };
    Verdict {
        decision: Decision::Block(text),
        effect: Effect::Blocked {
            review_id: r.id,
            kind,
        },
    }
}

/// The complexity trigger: a turn whose writes touch sensitive paths or pass the line count.
fn trigger(state: &State<'_>, config: &ReviewConfig, command: &str) -> Verdict {
    // A turn that goes on because of a block is not asked for a new review: it ends.
    if state.stop_hook_active || state.turn_files.is_empty() {
        return pass();
    }
    let sensitive: Vec<&String> = if config.trigger_sensitive {
        state
            .turn_files
            .iter()
            .filter(|f| is_sensitive(f, &config.sensitive_paths))
            .collect()
    } else {
        Vec::new()
    };
    let lines = state.turn_lines.unwrap_or(0);
    let (trigger, why) = if !sensitive.is_empty() {
        let names: Vec<String> = sensitive.iter().map(|s| (*s).clone()).collect();
        ("sensitive", format!("it touches {}", list(&names, 5)))
    } else if config.trigger_changed_lines > 0 && lines > config.trigger_changed_lines {
        (
            "lines",
            format!(
                "it changes about {lines} lines (over review.trigger_changed_lines, {})",
                config.trigger_changed_lines
            ),
        )
    } else {
        return pass();
    };
    Verdict {
        decision: Decision::Block(format!(
            "agent-harness: this change gets a cross-model review before the turn ends, because \
             {why}. Run `{command}` with your Bash tool (Gemini reads the change against the \
             task's acceptance criteria), then act on its verdict. This is asked once; the user \
             can turn it off with review.trigger_sensitive / review.trigger_changed_lines."
        )),
        effect: Effect::Want { trigger, note: why },
    }
}

/// True when `path` contains one of `patterns`, case-insensitively.
pub fn is_sensitive(path: &str, patterns: &[String]) -> bool {
    let path = path.to_lowercase();
    patterns
        .iter()
        .filter(|p| !p.is_empty())
        .any(|p| path.contains(&p.to_lowercase()))
}

/// Findings as `- file:line [severity] problem — fix: ...` lines, at most 20.
pub fn findings_text(findings: &[Finding]) -> String {
    let mut out: Vec<String> = findings
        .iter()
        .take(20)
        .map(|f| {
            let at = match f.line {
                Some(l) => format!("{}:{l}", f.file),
                None => f.file.clone(),
            };
            format!(
                "- {at} [{}] {} Fix: {}",
                f.severity,
                f.problem.trim(),
                f.fix.trim()
            )
        })
        .collect();
    if findings.len() > 20 {
        out.push(format!("- ... and {} more", findings.len() - 20));
    }
    if out.is_empty() {
        out.push("- (none given)".into());
    }
    out.join("\n")
}

fn list(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s.push_str(&format!(" and {} more", items.len() - n));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reject(thread_blocks: u32, blocks: u32, last: Option<BlockKind>) -> Latest {
        Latest {
            id: 7,
            status: Status::Reject,
            handed_off: false,
            blocks,
            last_block: last,
            thread_blocks,
            summary: "Off by one.".into(),
            findings: vec![Finding {
                file: "src/a.rs".into(),
                line: Some(12),
                severity: "major".into(),
                problem: "The loop skips the last item.".into(),
                fix: "Use ..= instead of ..".into(),
            }],
            written_since: vec![],
        }
    }

    fn state(latest: Option<Latest>) -> State<'static> {
        State {
            session_id: "s-1",
            latest,
            ..State::default()
        }
    }

    fn cfg() -> ReviewConfig {
        ReviewConfig::default()
    }

    fn block_text(v: &Verdict) -> &str {
        match &v.decision {
            Decision::Block(t) => t,
            other => panic!("expected a block, got {other:?}"),
        }
    }

    #[test]
    fn no_review_and_no_writes_passes() {
        assert_eq!(at_stop(&state(None), &cfg()), pass());
    }

    #[test]
    fn a_reject_blocks_with_its_findings_and_the_exact_command() {
        let v = at_stop(&state(Some(reject(0, 0, None))), &cfg());
        let t = block_text(&v);
        assert!(t.contains("src/a.rs:12"), "{t}");
        assert!(t.contains("The loop skips the last item."), "{t}");
        assert!(t.contains("Fix: Use ..= instead of .."), "{t}");
        assert!(t.contains("`harness review --session s-1`"), "{t}");
        assert!(t.contains("harness review --waive"), "{t}");
        assert!(t.contains("round 1 of 3"), "{t}");
        assert_eq!(
            v.effect,
            Effect::Blocked {
                review_id: 7,
                kind: BlockKind::Findings
            }
        );
    }

    #[test]
    fn the_cap_hands_off_to_the_user_whatever_else_holds() {
        for active in [false, true] {
            let mut s = state(Some(reject(3, 1, Some(BlockKind::Findings))));
            s.stop_hook_active = active;
            let v = at_stop(&s, &cfg());
            assert!(
                matches!(&v.decision, Decision::Context(t) if t.contains("decision is yours")),
                "{v:?}"
            );
            assert_eq!(v.effect, Effect::HandOff { review_id: 7 });
        }
    }

    #[test]
    fn the_last_round_says_so() {
        let v = at_stop(&state(Some(reject(2, 0, None))), &cfg());
        assert!(block_text(&v).contains("last round"));
    }

    #[test]
    fn stop_hook_active_never_repeats_the_same_block_for_one_verdict() {
        let mut s = state(Some(reject(1, 1, Some(BlockKind::Findings))));
        s.stop_hook_active = true;
        let v = at_stop(&s, &cfg());
        assert!(matches!(v.decision, Decision::Context(_)), "{v:?}");
        assert_eq!(v.effect, Effect::None);
        // Without it (a new turn), the open findings block again.
        s.stop_hook_active = false;
        assert!(matches!(at_stop(&s, &cfg()).decision, Decision::Block(_)));
        // A new verdict in the same thread blocks even while active.
        s.stop_hook_active = true;
        s.latest = Some(reject(1, 0, None));
        assert!(matches!(at_stop(&s, &cfg()).decision, Decision::Block(_)));
    }

    #[test]
    fn a_change_after_the_review_asks_for_a_re_review_not_the_old_findings() {
        let mut r = reject(1, 1, Some(BlockKind::Findings));
        r.written_since = vec!["/p/src/a.rs".into()];
        let mut s = state(Some(r));
        s.stop_hook_active = true;
        let v = at_stop(&s, &cfg());
        let t = block_text(&v);
        assert!(t.contains("differs from the one Gemini reviewed"), "{t}");
        assert!(t.contains("/p/src/a.rs"), "{t}");
        assert!(!t.contains("The loop skips"), "{t}");
        assert_eq!(
            v.effect,
            Effect::Blocked {
                review_id: 7,
                kind: BlockKind::Rereview
            }
        );
    }

    #[test]
    fn background_tasks_still_running_are_not_judged() {
        let mut s = state(Some(reject(0, 0, None)));
        s.background_running = 1;
        assert_eq!(at_stop(&s, &cfg()), pass());
    }

    #[test]
    fn settled_and_running_reviews_do_not_block() {
        for status in [
            Status::Approve,
            Status::Unavailable,
            Status::Waived,
            Status::Running,
            Status::Requested,
        ] {
            let mut r = reject(0, 0, None);
            r.status = status;
            assert_eq!(at_stop(&state(Some(r)), &cfg()), pass(), "{status:?}");
        }
        let mut r = reject(3, 3, Some(BlockKind::Findings));
        r.handed_off = true;
        assert_eq!(at_stop(&state(Some(r)), &cfg()), pass());
    }

    #[test]
    fn a_sensitive_write_asks_for_a_review_once() {
        let mut s = state(None);
        s.turn_files = vec!["/p/src/auth/login.rs".into(), "/p/README.md".into()];
        let v = at_stop(&s, &cfg());
        assert!(block_text(&v).contains("harness review --session s-1"));
        assert!(matches!(
            v.effect,
            Effect::Want {
                trigger: "sensitive",
                ..
            }
        ));
        // Once wanted and not run, the next Stop lets go and closes it.
        let mut w = reject(1, 1, Some(BlockKind::Want));
        w.status = Status::Wanted;
        s.latest = Some(w);
        let v = at_stop(&s, &cfg());
        assert!(matches!(v.decision, Decision::Context(_)));
        assert_eq!(v.effect, Effect::HandOff { review_id: 7 });
        // Off when the user turned it off.
        let mut off = cfg();
        off.trigger_sensitive = false;
        s.latest = None;
        assert_eq!(at_stop(&s, &off), pass());
    }

    #[test]
    fn the_line_trigger_is_off_by_default_and_counts_when_set() {
        let mut s = state(None);
        s.turn_files = vec!["/p/src/big.rs".into()];
        s.turn_lines = Some(900);
        assert_eq!(at_stop(&s, &cfg()), pass());
        let mut c = cfg();
        c.trigger_changed_lines = 500;
        assert!(matches!(
            at_stop(&s, &c).effect,
            Effect::Want {
                trigger: "lines",
                ..
            }
        ));
    }

    #[test]
    fn the_gate_is_off_when_review_is_disabled() {
        let mut c = cfg();
        c.enabled = false;
        assert_eq!(at_stop(&state(Some(reject(0, 0, None))), &c), pass());
    }
}
