//! What a hook answers, and how that answer is rendered for the client that asked.
//!
//! Owns the output contract of both clients: Claude Code reads `hookSpecificOutput`
//! (`permissionDecision`, `additionalContext`) or a top-level `decision: "block"`; Gemini CLI
//! ignores `permissionDecision` and honours a top-level `decision: "deny"|"block"` + `reason`.
//! A tool deny therefore carries both forms, which both clients were observed to honour.
//!
//! Every hook exits 0. An exit of 2 would block in Claude Code but is ignored by Gemini CLI when
//! stdout holds JSON, and any other non-zero code means "warn" to one client and "deny" to the
//! other; a JSON answer means the same to both. stdout carries one JSON object or nothing.

use serde_json::{Value, json};

use crate::event::Kind;

/// A policy's answer to one event. The strictest of several wins; reasons are joined.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Decision {
    /// Nothing to say.
    #[default]
    Pass,
    /// Text for the model's context (SessionStart, UserPromptSubmit, tool events, ...).
    Context(String),
    /// Refuse a tool call (PreToolUse / BeforeTool), with the reason the model will read.
    Deny(String),
    /// Block the event: a prompt (UserPromptSubmit / BeforeAgent; the user reads the reason) or
    /// the end of a turn (Stop / AfterAgent; the model reads the reason and goes on).
    Block(String),
}

impl Decision {
    fn rank(&self) -> u8 {
        match self {
            Decision::Pass => 0,
            Decision::Context(_) => 1,
            Decision::Deny(_) => 2,
            Decision::Block(_) => 3,
        }
    }

    fn text(&self) -> Option<&str> {
        match self {
            Decision::Pass => None,
            Decision::Context(t) | Decision::Deny(t) | Decision::Block(t) => Some(t),
        }
    }

    /// Combines two answers: the stricter wins; texts of the same strictness are joined.
    pub fn and(self, other: Decision) -> Decision {
        use std::cmp::Ordering::*;
        match self.rank().cmp(&other.rank()) {
            Greater => self,
            Less => other,
            Equal => match (self.text(), other.text()) {
                (Some(a), Some(b)) => {
                    let joined = format!("{a}\n\n{b}");
                    match self {
                        Decision::Context(_) => Decision::Context(joined),
                        Decision::Deny(_) => Decision::Deny(joined),
                        _ => Decision::Block(joined),
                    }
                }
                _ => self,
            },
        }
    }
}

/// Events whose answer can put text into the model's context without other effects: Claude
/// Code's SessionStart, UserPromptSubmit, UserPromptExpansion, PreToolUse, PostToolUse and
/// PostToolUseFailure (`additionalContext`), Gemini CLI's SessionStart, BeforeAgent and AfterTool.
/// Not Stop: there `additionalContext` makes the conversation go on; not PreCompact: there any
/// stdout joins the compaction instructions.
pub fn carries_context(event: &str) -> bool {
    matches!(
        event,
        "SessionStart"
            | "UserPromptSubmit"
            | "UserPromptExpansion"
            | "PreToolUse"
            | "PostToolUse"
            | "PostToolUseFailure"
            | "BeforeAgent"
            | "AfterTool"
    )
}

/// Renders a decision as the stdout JSON for `event` (the client's own event name), or nothing.
pub fn render(decision: &Decision, kind: Kind, event: &str) -> Option<String> {
    let out: Value = match decision {
        Decision::Pass => return None,
        Decision::Context(text) if carries_context(event) => {
            json!({"hookSpecificOutput": {"hookEventName": event, "additionalContext": text}})
        }
        // Claude's Stop: a note for the user (`systemMessage` is shown to the user only and
        // does not make the turn go on, as `additionalContext` would).
        Decision::Context(text) if kind == Kind::Stop && event == "Stop" => {
            json!({"systemMessage": text})
        }
        Decision::Context(_) => return None,
        Decision::Deny(reason) => match kind {
            // PreSkillShellCommand takes the same answer as PreToolUse (Claude Code 2.1.332).
            Kind::PreTool | Kind::PreShellStep => json!({
                "decision": "block",
                "reason": reason,
                "hookSpecificOutput": {
                    "hookEventName": event,
                    "permissionDecision": "deny",
                    "permissionDecisionReason": reason,
                },
            }),
            _ => return None,
        },
        Decision::Block(reason) => match (kind, event) {
            (Kind::PromptSubmit, "BeforeAgent") | (Kind::Stop, "AfterAgent") => {
                json!({"decision": "deny", "reason": reason})
            }
            (Kind::PromptSubmit | Kind::Stop | Kind::SubagentStop | Kind::PreTool, _) => {
                json!({"decision": "block", "reason": reason})
            }
            _ => return None,
        },
    };
    Some(out.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(d: &Decision, kind: Kind, event: &str) -> Option<Value> {
        render(d, kind, event).map(|s| serde_json::from_str(&s).unwrap())
    }

    #[test]
    fn the_stricter_decision_wins_and_equals_join() {
        let ctx = |s: &str| Decision::Context(s.into());
        assert_eq!(Decision::Pass.and(ctx("a")), ctx("a"));
        assert_eq!(ctx("a").and(ctx("b")), ctx("a\n\nb"));
        assert_eq!(
            ctx("a").and(Decision::Deny("no".into())),
            Decision::Deny("no".into())
        );
        assert_eq!(
            Decision::Deny("x".into()).and(Decision::Deny("y".into())),
            Decision::Deny("x\n\ny".into())
        );
    }

    #[test]
    fn pass_prints_nothing() {
        assert_eq!(render(&Decision::Pass, Kind::PreTool, "PreToolUse"), None);
    }

    #[test]
    fn a_deny_carries_both_clients_forms() {
        let v = parsed(&Decision::Deny("held".into()), Kind::PreTool, "PreToolUse").unwrap();
        assert_eq!(v["decision"], "block");
        assert_eq!(v["reason"], "held");
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "PreToolUse");
        assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny");
        assert_eq!(v["hookSpecificOutput"]["permissionDecisionReason"], "held");
        // A deny means nothing outside a tool call.
        assert_eq!(
            render(&Decision::Deny("x".into()), Kind::Stop, "Stop"),
            None
        );
    }

    #[test]
    fn context_names_the_event_and_skips_events_that_cannot_carry_it() {
        let v = parsed(
            &Decision::Context("c".into()),
            Kind::PromptSubmit,
            "UserPromptSubmit",
        )
        .unwrap();
        assert_eq!(v["hookSpecificOutput"]["hookEventName"], "UserPromptSubmit");
        assert_eq!(v["hookSpecificOutput"]["additionalContext"], "c");
        assert_eq!(
            render(
                &Decision::Context("c".into()),
                Kind::PreCompact,
                "PreCompact"
            ),
            None
        );
    }

    #[test]
    fn blocks_use_each_clients_word() {
        let claude = parsed(&Decision::Block("r".into()), Kind::Stop, "Stop").unwrap();
        assert_eq!(claude, json!({"decision": "block", "reason": "r"}));
        let gemini = parsed(
            &Decision::Block("r".into()),
            Kind::PromptSubmit,
            "BeforeAgent",
        )
        .unwrap();
        assert_eq!(gemini, json!({"decision": "deny", "reason": "r"}));
    }
}
