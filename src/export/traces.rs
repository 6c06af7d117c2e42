//! From recorded events to finished turns and tool calls: the state machine behind the trace
//! export. A turn runs from a prompt (UserPromptSubmit, Gemini BeforeAgent) to its Stop
//! (AfterAgent, StopFailure), the session's next prompt, its SessionEnd, or — when none comes —
//! the first event recorded `open_limit_ms` after its last activity. A tool call runs from
//! PreToolUse to PostToolUse / PostToolUseFailure, matched by `tool_use_id` (Gemini sends none:
//! its calls are matched first-in first-out by tool name within the session).
//!
//! Pure and deterministic: the same events in the same order give the same closed items at the
//! same positions (the id of the event that closed each), which is what lets the exporter replay
//! from its low-water mark after a crash and send only what lies past its cursor. Must not read
//! the store or the clock.

use std::collections::{BTreeSet, HashMap, VecDeque};

use crate::store::export::ExportEvent;

/// What an event does here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    Prompt,
    Stop,
    StopFailure,
    PreTool,
    PostTool,
    PostToolFailure,
    SessionEnd,
    Other,
}

fn step(event: &str) -> Step {
    match event {
        "UserPromptSubmit" | "BeforeAgent" => Step::Prompt,
        "Stop" | "AfterAgent" => Step::Stop,
        "StopFailure" => Step::StopFailure,
        "PreToolUse" | "BeforeTool" => Step::PreTool,
        "PostToolUse" | "AfterTool" => Step::PostTool,
        "PostToolUseFailure" => Step::PostToolFailure,
        "SessionEnd" => Step::SessionEnd,
        _ => Step::Other,
    }
}

/// Why a turn ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TurnEnd {
    Stop,
    /// StopFailure: the turn ended on an API error.
    Failure,
    NextPrompt,
    SessionEnd,
    /// No end was recorded within the open-turn limit.
    Timeout,
}

impl TurnEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            TurnEnd::Stop => "stop",
            TurnEnd::Failure => "stop_failure",
            TurnEnd::NextPrompt => "next_prompt",
            TurnEnd::SessionEnd => "session_end",
            TurnEnd::Timeout => "timeout",
        }
    }
}

/// A denial the harness made during a turn (a span event).
#[derive(Debug, Clone)]
pub struct Denial {
    pub ts_ms: i64,
    pub tool_name: Option<String>,
    /// `lock`, `quota` or `other`.
    pub kind: &'static str,
    pub reason: String,
}

/// A finished turn.
#[derive(Debug, Clone)]
pub struct Turn {
    pub session_id: String,
    pub agent: String,
    /// The prompt event's row id (the turn's identity).
    pub start_id: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub end: TurnEnd,
    /// StopFailure's `error` (rate_limit, ...).
    pub error: Option<String>,
    pub prompt: Option<String>,
    pub tool_calls: u32,
    pub denials: Vec<Denial>,
}

/// How a tool call ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ToolEnd {
    Success,
    Failure,
    /// The harness denied it at PreToolUse: it never ran.
    Denied,
    /// Its turn ended first (interrupted, or a result never recorded).
    Unfinished,
}

impl ToolEnd {
    pub fn as_str(self) -> &'static str {
        match self {
            ToolEnd::Success => "success",
            ToolEnd::Failure => "failure",
            ToolEnd::Denied => "denied",
            ToolEnd::Unfinished => "interrupted",
        }
    }
}

/// A finished tool call.
#[derive(Debug, Clone)]
pub struct Tool {
    pub session_id: String,
    pub agent: String,
    pub start_id: i64,
    pub start_ms: i64,
    pub end_ms: i64,
    pub end: ToolEnd,
    pub tool_name: String,
    /// Claude's tool_use_id.
    pub call_id: Option<String>,
    pub file_path: Option<String>,
    /// The subagent the call ran in, if any.
    pub subagent: Option<String>,
    pub error: Option<String>,
    /// `tool_input` as JSON (kept only when the export includes tool inputs).
    pub input: Option<String>,
    /// The turn the call ran in (its prompt's row id).
    pub turn_start_id: Option<i64>,
}

/// A turn or a tool call, closed by the event at `position`.
#[derive(Debug, Clone)]
pub enum Closed {
    Turn(Turn),
    Tool(Tool),
}

#[derive(Debug)]
struct OpenTurn {
    agent: String,
    start_id: i64,
    start_ms: i64,
    last_ms: i64,
    prompt: Option<String>,
    tool_calls: u32,
    denials: Vec<Denial>,
}

#[derive(Debug)]
struct OpenTool {
    tool: Tool,
}

/// What the builder keeps from payloads.
#[derive(Debug, Clone, Copy, Default)]
pub struct Keep {
    pub prompts: bool,
    pub tool_input: bool,
}

/// The state machine. Its memory is the open turns and tool calls: at most a few per live session.
#[derive(Debug)]
pub struct Builder {
    open_limit_ms: i64,
    keep: Keep,
    turns: HashMap<String, OpenTurn>,
    /// Open tool calls by (session, key): `tool_use_id`, or `#name` for Gemini (a queue).
    tools: HashMap<(String, String), VecDeque<OpenTool>>,
    /// No open turn can time out before this (a lower bound, refreshed on each sweep).
    next_deadline: i64,
}

fn payload_str(payload: &serde_json::Value, key: &str) -> Option<String> {
    payload
        .get(key)
        .and_then(|v| v.as_str())
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

fn denial_kind(reason: &str) -> &'static str {
    let r = reason.to_ascii_lowercase();
    if r.contains("held by") || r.contains("lock") || r.contains("claim") {
        "lock"
    } else if r.contains("quota") || r.contains("rate limit") || r.contains("exhausted") {
        "quota"
    } else {
        "other"
    }
}

impl Builder {
    pub fn new(open_limit_ms: i64, keep: Keep) -> Builder {
        Builder {
            open_limit_ms,
            keep,
            turns: HashMap::new(),
            tools: HashMap::new(),
            next_deadline: i64::MAX,
        }
    }

    /// The row ids of the events that opened what is still open: a replay from the smallest of
    /// them rebuilds this state exactly.
    pub fn open_starts(&self) -> BTreeSet<i64> {
        let mut out: BTreeSet<i64> = self.turns.values().map(|t| t.start_id).collect();
        for q in self.tools.values() {
            out.extend(q.iter().map(|t| t.tool.start_id));
        }
        out
    }

    /// How many turns and tool calls are open.
    pub fn open_count(&self) -> usize {
        self.turns.len() + self.tools.values().map(VecDeque::len).sum::<usize>()
    }

    /// After a replay: forgets whatever was not open when the cursor was written (it was sent).
    pub fn retain_starts(&mut self, starts: &BTreeSet<i64>) {
        self.turns.retain(|_, t| starts.contains(&t.start_id));
        for q in self.tools.values_mut() {
            q.retain(|t| starts.contains(&t.tool.start_id));
        }
        self.tools.retain(|_, q| !q.is_empty());
        self.refresh_deadline();
    }

    fn refresh_deadline(&mut self) {
        self.next_deadline = self
            .turns
            .values()
            .map(|t| t.last_ms.saturating_add(self.open_limit_ms))
            .min()
            .unwrap_or(i64::MAX);
    }

    fn close_turn(
        &mut self,
        session: &str,
        end_ms: i64,
        end: TurnEnd,
        error: Option<String>,
        out: &mut Vec<Closed>,
    ) {
        let Some(t) = self.turns.remove(session) else {
            return;
        };
        // The turn's unfinished tool calls end with it.
        let keys: Vec<(String, String)> = self
            .tools
            .keys()
            .filter(|(s, _)| s == session)
            .cloned()
            .collect();
        let mut unfinished = Vec::new();
        for k in keys {
            if let Some(q) = self.tools.remove(&k) {
                unfinished.extend(q.into_iter().map(|o| o.tool));
            }
        }
        unfinished.sort_by_key(|t| t.start_id);
        for mut tool in unfinished {
            tool.end_ms = end_ms.max(tool.start_ms);
            tool.end = ToolEnd::Unfinished;
            out.push(Closed::Tool(tool));
        }
        out.push(Closed::Turn(Turn {
            session_id: session.to_owned(),
            agent: t.agent,
            start_id: t.start_id,
            start_ms: t.start_ms,
            end_ms: end_ms.max(t.start_ms),
            end,
            error,
            prompt: t.prompt,
            tool_calls: t.tool_calls,
            denials: t.denials,
        }));
    }

    /// Feeds one event (in id order); what it closes is appended to `out`.
    pub fn feed(&mut self, ev: &ExportEvent, out: &mut Vec<Closed>) {
        if ev.ts_ms > self.next_deadline {
            let expired: Vec<(String, i64)> = self
                .turns
                .iter()
                .filter(|(_, t)| ev.ts_ms > t.last_ms.saturating_add(self.open_limit_ms))
                .map(|(s, t)| (s.clone(), t.last_ms))
                .collect();
            let mut expired = expired;
            expired.sort();
            for (session, last) in expired {
                self.close_turn(&session, last, TurnEnd::Timeout, None, out);
            }
            self.refresh_deadline();
        }
        let Some(session) = ev.session_id.as_deref() else {
            return;
        };
        let st = step(&ev.event);
        if st == Step::Other && !self.turns.contains_key(session) {
            return;
        }
        let payload: serde_json::Value = if matches!(
            st,
            Step::Prompt | Step::StopFailure | Step::PreTool | Step::PostToolFailure
        ) {
            serde_json::from_str(&ev.payload).unwrap_or(serde_json::Value::Null)
        } else {
            serde_json::Value::Null
        };
        if let Some(t) = self.turns.get_mut(session) {
            t.last_ms = t.last_ms.max(ev.ts_ms);
        }
        match st {
            Step::Prompt => {
                self.close_turn(session, ev.ts_ms, TurnEnd::NextPrompt, None, out);
                let prompt = self
                    .keep
                    .prompts
                    .then(|| payload_str(&payload, "prompt"))
                    .flatten();
                self.turns.insert(
                    session.to_owned(),
                    OpenTurn {
                        agent: ev.agent.clone(),
                        start_id: ev.id,
                        start_ms: ev.ts_ms,
                        last_ms: ev.ts_ms,
                        prompt,
                        tool_calls: 0,
                        denials: Vec::new(),
                    },
                );
                self.refresh_deadline();
            }
            Step::Stop => self.close_turn(session, ev.ts_ms, TurnEnd::Stop, None, out),
            Step::StopFailure => {
                let error = payload_str(&payload, "error");
                self.close_turn(session, ev.ts_ms, TurnEnd::Failure, error, out);
            }
            Step::SessionEnd => self.close_turn(session, ev.ts_ms, TurnEnd::SessionEnd, None, out),
            Step::PreTool => self.pre_tool(session, ev, &payload, out),
            Step::PostTool | Step::PostToolFailure => {
                let key = match &ev.tool_use_id {
                    Some(id) => id.clone(),
                    None => format!("#{}", ev.tool_name.as_deref().unwrap_or("")),
                };
                let k = (session.to_owned(), key);
                let Some(q) = self.tools.get_mut(&k) else {
                    return;
                };
                let Some(open) = q.pop_front() else {
                    return;
                };
                if q.is_empty() {
                    self.tools.remove(&k);
                }
                let mut tool = open.tool;
                tool.end_ms = ev.ts_ms.max(tool.start_ms);
                if st == Step::PostTool {
                    tool.end = ToolEnd::Success;
                } else {
                    tool.end = ToolEnd::Failure;
                    tool.error = payload_str(&payload, "error").map(|e| crate::text::clip(&e, 200));
                }
                out.push(Closed::Tool(tool));
            }
            Step::Other => {}
        }
    }

    fn pre_tool(
        &mut self,
        session: &str,
        ev: &ExportEvent,
        payload: &serde_json::Value,
        out: &mut Vec<Closed>,
    ) {
        let tool_name = ev.tool_name.clone().unwrap_or_default();
        let turn = self.turns.get_mut(session);
        let turn_start_id = turn.as_ref().map(|t| t.start_id);
        let denied = ev
            .decision
            .as_deref()
            .and_then(|d| d.strip_prefix("deny:"))
            .map(|r| r.trim().trim_start_matches("agent-harness: ").to_owned());
        if let Some(t) = turn {
            t.tool_calls += 1;
            if let Some(reason) = &denied {
                t.denials.push(Denial {
                    ts_ms: ev.ts_ms,
                    tool_name: ev.tool_name.clone(),
                    kind: denial_kind(reason),
                    reason: crate::text::clip(reason, 300),
                });
            }
        }
        let input = self
            .keep
            .tool_input
            .then(|| payload.get("tool_input").map(|v| v.to_string()))
            .flatten();
        let tool = Tool {
            session_id: session.to_owned(),
            agent: ev.agent.clone(),
            start_id: ev.id,
            start_ms: ev.ts_ms,
            end_ms: ev.ts_ms,
            end: ToolEnd::Unfinished,
            tool_name: tool_name.clone(),
            call_id: ev.tool_use_id.clone(),
            file_path: ev.file_path.clone(),
            subagent: payload_str(payload, "agent_id"),
            error: None,
            input,
            turn_start_id,
        };
        if let Some(reason) = denied {
            out.push(Closed::Tool(Tool {
                end: ToolEnd::Denied,
                error: Some(crate::text::clip(&reason, 200)),
                ..tool
            }));
            return;
        }
        let key = match &ev.tool_use_id {
            Some(id) => id.clone(),
            None => format!("#{tool_name}"),
        };
        self.tools
            .entry((session.to_owned(), key))
            .or_default()
            .push_back(OpenTool { tool });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(
        id: i64,
        ts: i64,
        event: &str,
        tool: Option<(&str, &str)>,
        decision: Option<&str>,
    ) -> ExportEvent {
        ExportEvent {
            id,
            ts_ms: ts,
            session_id: Some("s".into()),
            agent: "claude".into(),
            event: event.into(),
            tool_name: tool.map(|t| t.0.into()),
            tool_use_id: tool.map(|t| t.1.into()).filter(|t: &String| !t.is_empty()),
            file_path: None,
            truncated: false,
            decision: decision.map(str::to_owned),
            payload: r#"{"prompt":"hi","error":"boom"}"#.into(),
        }
    }

    fn run(b: &mut Builder, evs: &[ExportEvent]) -> Vec<(i64, Closed)> {
        let mut all = Vec::new();
        for e in evs {
            let mut out = Vec::new();
            b.feed(e, &mut out);
            all.extend(out.into_iter().map(|c| (e.id, c)));
        }
        all
    }

    #[test]
    fn a_turn_with_two_tools_closes_at_stop() {
        let mut b = Builder::new(3_600_000, Keep::default());
        let got = run(
            &mut b,
            &[
                ev(1, 100, "UserPromptSubmit", None, None),
                ev(2, 110, "PreToolUse", Some(("Bash", "t1")), None),
                ev(3, 120, "PreToolUse", Some(("Read", "t2")), None),
                ev(4, 150, "PostToolUse", Some(("Read", "t2")), None),
                ev(5, 200, "PostToolUseFailure", Some(("Bash", "t1")), None),
                ev(6, 300, "Stop", None, None),
            ],
        );
        assert_eq!(got.len(), 3);
        let Closed::Tool(read) = &got[0].1 else {
            panic!()
        };
        assert_eq!(
            (read.tool_name.as_str(), read.start_ms, read.end_ms),
            ("Read", 120, 150)
        );
        assert_eq!(read.turn_start_id, Some(1));
        let Closed::Tool(bash) = &got[1].1 else {
            panic!()
        };
        assert_eq!(
            (bash.end, bash.error.as_deref()),
            (ToolEnd::Failure, Some("boom"))
        );
        let Closed::Turn(turn) = &got[2].1 else {
            panic!()
        };
        assert_eq!((turn.start_ms, turn.end_ms, turn.tool_calls), (100, 300, 2));
        assert_eq!(turn.prompt, None, "prompts are not kept unless asked");
        assert_eq!(b.open_count(), 0);
    }

    #[test]
    fn an_open_turn_holds_the_low_water_mark_until_it_times_out() {
        let mut b = Builder::new(
            1000,
            Keep {
                prompts: true,
                tool_input: false,
            },
        );
        let got = run(
            &mut b,
            &[
                ev(1, 100, "UserPromptSubmit", None, None),
                ev(2, 600, "Notification", None, None),
            ],
        );
        assert!(got.is_empty());
        assert_eq!(b.open_starts().into_iter().collect::<Vec<_>>(), vec![1]);
        let mut other = ev(3, 1700, "SessionStart", None, None);
        other.session_id = Some("t".into());
        let got = run(&mut b, &[other]);
        let Closed::Turn(turn) = &got[0].1 else {
            panic!()
        };
        assert_eq!(
            (turn.end, turn.end_ms, turn.prompt.as_deref()),
            (TurnEnd::Timeout, 600, Some("hi"))
        );
        assert!(b.open_starts().is_empty());
    }

    #[test]
    fn a_denied_tool_is_a_span_and_a_turn_event() {
        let mut b = Builder::new(3_600_000, Keep::default());
        let got = run(
            &mut b,
            &[
                ev(1, 100, "UserPromptSubmit", None, None),
                ev(
                    2,
                    110,
                    "PreToolUse",
                    Some(("Edit", "t1")),
                    Some("deny: agent-harness: /p/a.rs is held by claude session x"),
                ),
                ev(3, 300, "Stop", None, None),
            ],
        );
        let Closed::Tool(t) = &got[0].1 else { panic!() };
        assert_eq!(t.end, ToolEnd::Denied);
        let Closed::Turn(turn) = &got[1].1 else {
            panic!()
        };
        assert_eq!(turn.denials.len(), 1);
        assert_eq!(turn.denials[0].kind, "lock");
    }

    #[test]
    fn gemini_calls_match_first_in_first_out_by_name() {
        let mut b = Builder::new(3_600_000, Keep::default());
        let got = run(
            &mut b,
            &[
                ev(1, 100, "BeforeAgent", None, None),
                ev(2, 110, "BeforeTool", Some(("read_file", "")), None),
                ev(3, 120, "AfterTool", Some(("read_file", "")), None),
                ev(4, 130, "AfterAgent", None, None),
            ],
        );
        let Closed::Tool(t) = &got[0].1 else { panic!() };
        assert_eq!((t.start_ms, t.end_ms, t.end), (110, 120, ToolEnd::Success));
    }

    /// What a closed item is: (turn or tool, its start event).
    fn key(c: &Closed) -> (u8, i64) {
        match c {
            Closed::Turn(t) => (0, t.start_id),
            Closed::Tool(t) => (1, t.start_id),
        }
    }

    #[test]
    fn a_resume_from_any_cursor_sends_exactly_what_lies_past_it() {
        // Random interleavings of three sessions (a fixed xorshift seed per case): prompts, tool
        // calls and their ends, stops, session ends, gaps past the open-turn limit.
        let mut resumed_with_open = 0;
        for seed in 1..40u64 {
            let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15);
            let mut next = move || {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x
            };
            let mut evs = Vec::new();
            let mut ts = 0;
            let mut open_tools: Vec<(usize, String)> = Vec::new();
            for id in 1..=300 {
                ts += 1 + (next() % 50) as i64;
                if next() % 40 == 0 {
                    ts += 2000;
                }
                let s = (next() % 3) as usize;
                let (event, tool) = match next() % 10 {
                    0 | 1 => ("UserPromptSubmit", None),
                    2..=4 => {
                        let call = format!("c{id}");
                        open_tools.push((s, call.clone()));
                        ("PreToolUse", Some(call))
                    }
                    5..=7 if !open_tools.is_empty() => {
                        let (_, call) = open_tools.remove((next() as usize) % open_tools.len());
                        ("PostToolUse", Some(call))
                    }
                    8 => ("Stop", None),
                    9 if next() % 4 == 0 => ("SessionEnd", None),
                    _ => ("Notification", None),
                };
                let mut e = ev(id, ts, event, tool.as_deref().map(|c| ("Bash", c)), None);
                // A tool call's end comes from the session that started it.
                e.session_id = Some(format!("s{s}"));
                evs.push(e);
            }
            let full: Vec<(i64, (u8, i64))> = {
                let mut b = Builder::new(1000, Keep::default());
                run(&mut b, &evs)
                    .iter()
                    .map(|(p, c)| (*p, key(c)))
                    .collect()
            };
            for cut in [0usize, 1, 37, 150, 299] {
                let mut b = Builder::new(1000, Keep::default());
                run(&mut b, &evs[..cut]);
                let open = b.open_starts();
                let through = if cut == 0 { 0 } else { evs[cut - 1].id };
                // A new process: replay from the low-water mark without sending, then go on.
                let mut resumed = Builder::new(1000, Keep::default());
                if let Some(&low) = open.iter().min() {
                    resumed_with_open += 1;
                    let replay: Vec<ExportEvent> = evs
                        .iter()
                        .filter(|e| e.id >= low && e.id <= through)
                        .cloned()
                        .collect();
                    run(&mut resumed, &replay);
                    resumed.retain_starts(&open);
                }
                let after: Vec<(i64, (u8, i64))> = run(&mut resumed, &evs[cut..])
                    .iter()
                    .map(|(p, c)| (*p, key(c)))
                    .collect();
                let want: Vec<(i64, (u8, i64))> =
                    full.iter().filter(|(p, _)| *p > through).cloned().collect();
                assert_eq!(after, want, "seed {seed}, cut {cut}");
            }
        }
        assert!(
            resumed_with_open > 100,
            "{resumed_with_open} resumes had something open"
        );
    }
}
