//! What the harness does about one event, inside the transaction that records it: load the state
//! the policies need, ask them, apply the writes they imply, and return the decision.
//!
//! Policies stay pure (`crate::policy`); SQL stays in `crate::store`; this module only wires them.
//! Work that is not bounded by the store (reading a shell command for the files it writes, with
//! its path lookups; scoring a prompt) is done before the transaction by [`Prepared::of`], and
//! handed in ready.

use rusqlite::Transaction;

use crate::config::Config;
use crate::decision::{self, Decision};
use crate::event::Agent;
use crate::event::{Event, Kind, ToolClass};
use crate::policy::collision;
use crate::policy::file_lock::{self, Effect, ShellVerdict, Verdict, Write};
use crate::policy::quota as quota_policy;
use crate::policy::review_gate;
use crate::quota;
use crate::shell;
use crate::store::claims::{self, Claim, Held};
use crate::store::quota as quota_store;

/// The answer, or a request to ask again later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    Decide(Decision),
    /// A file write must wait for another agent's claim to lapse at `until_ms`, then be checked
    /// again (outside this transaction).
    WaitUntil(i64),
}

/// True when this event is a file write that the lock policy may deny: the one case where a
/// failure to check is the user's call (`locks.fail_closed`). A shell command is one when it
/// certainly writes a file (`shell` is what [`shell_writes`] found).
pub fn is_enforced_write(
    event: &Event<'_>,
    config: &Config,
    shell: Option<&shell::Writes>,
) -> bool {
    config.locks.enabled
        && matches!(event.kind, Kind::PreTool | Kind::PreShellStep)
        && event.session_id().is_some()
        && event.tool.as_ref().is_some_and(|t| match t.class {
            ToolClass::FileWrite => t.file.is_some(),
            ToolClass::Shell => shell.is_some_and(|w| w.certain().next().is_some()),
            _ => false,
        })
}

/// The files a shell tool call writes, for the lock policy: read from the command before the
/// transaction (the read is bounded, see `crate::shell`, but it looks paths up on disk). None
/// for any other event, or when locks are off.
pub fn shell_writes(event: &Event<'_>, config: &Config) -> Option<shell::Writes> {
    if !config.locks.enabled
        || event.session_id().is_none()
        || !matches!(
            event.kind,
            Kind::PreTool | Kind::PreShellStep | Kind::PostTool | Kind::PostToolFailure
        )
    {
        return None;
    }
    let tool = event
        .tool
        .as_ref()
        .filter(|t| t.class == ToolClass::Shell)?;
    let command = event.payload.tool_arg("command")?;
    let cwd = event.payload.cwd?;
    // Gemini CLI runs the command in `dir_path`, relative to its workspace directory.
    let dir = match event.payload.tool_arg("dir_path").filter(|d| !d.is_empty()) {
        Some(d) if tool.name == "run_shell_command" => crate::paths::canonical(Some(cwd), d),
        _ => std::path::PathBuf::from(cwd),
    };
    Some(shell::writes(command, dir.to_str()?))
}

/// A typed prompt's features, scores and project index stamp: read before the write
/// transaction (bounded: the text read is capped, the index is one `stat`), so the transaction
/// only looks up and stores.
pub struct PromptScores {
    features: crate::route::Features,
    scores: crate::route::Scores,
    /// The project's git index and its (mtime, length), what its cached size is keyed on.
    index: Option<(std::path::PathBuf, (i64, i64))>,
}

/// What [`respond`] needs that is read before the transaction: the files a shell command writes
/// ([`shell_writes`]) and a typed prompt's scores ([`prompt_scores`]).
/// Also the statements `respond` runs for the event whatever the store holds, to compile before
/// the write lock is taken ([`statements`]).
#[derive(Default)]
pub struct Prepared {
    pub shell: Option<shell::Writes>,
    pub prompt: Option<PromptScores>,
    pub statements: Vec<&'static str>,
}

impl Prepared {
    /// Reads both for `event`; `project_root` is the recording's.
    pub fn of(event: &Event<'_>, config: &Config, project_root: Option<&str>) -> Prepared {
        let prompt = prompt_scores(event, config, project_root);
        let mut statements = statements(event, config);
        if prompt.is_some() {
            // A scored prompt's decision is stored (`route_prompt`).
            statements.push(crate::store::routes::PUT_SQL);
        }
        Prepared {
            shell: shell_writes(event, config),
            prompt,
            statements,
        }
    }
}

/// The statements [`respond`] runs for `event` whatever the store holds (those that depend on
/// what it finds are compiled when they run): compiled before the write lock is taken, so that
/// the lock is held for the work alone (see `Store::write_prepared`). A statement listed here
/// and not run costs its compilation, so only certain ones are.
pub fn statements(event: &Event<'_>, config: &Config) -> Vec<&'static str> {
    let mut out = Vec::new();
    if event.session_id().is_none() {
        return out;
    }
    let class = event.tool.as_ref().map(|t| t.class);
    let has_file = event.tool.as_ref().is_some_and(|t| t.file.is_some());
    if config.locks.enabled {
        if event.kind == Kind::PreTool && event.agent == Agent::Claude {
            out.push(claims::MOVED_ON_SQL);
        }
        let checks_file = matches!(
            event.kind,
            Kind::PreTool | Kind::PostTool | Kind::PermissionDenied | Kind::PostToolFailure
        );
        if checks_file && class == Some(ToolClass::FileWrite) && has_file {
            out.push(claims::HELD_SQL);
            if event.kind == Kind::PostTool {
                // The write went through: its holder's claim is refreshed and confirmed (the
                // PreToolUse before it took or refreshed it).
                out.extend([claims::TOUCH_SQL, claims::SET_PROVISIONAL_SQL]);
            }
        }
    }
    // The review gate's reads at every Stop of Claude's main agent (see `reviews::gate_state`).
    if event.kind == Kind::Stop && event.agent == Agent::Claude && config.review.enabled {
        use crate::store::reviews;
        out.extend([
            STOP_ID_SQL,
            reviews::LATEST_SQL,
            reviews::PREVIOUS_STOP_SQL,
            reviews::WRITTEN_SINCE_SQL,
        ]);
    }
    // The quota a person's prompt and a costly tool are checked against (see `respond`).
    if config.quota.enabled && event.agent == Agent::Claude {
        let prompt = event.kind == Kind::PromptSubmit && !event.synthetic_prompt;
        let costly = event.kind == Kind::PreTool && is_costly_tool(event, config);
        if prompt || costly {
            out.extend(crate::quota::LOAD_STATEMENTS);
        }
        if prompt {
            out.push(crate::store::quota::ALERTS_SQL);
        }
    }
    // What a Stop remembers of its turn (see `remember`).
    if event.kind == Kind::Stop && config.memory.enabled && event.payload.agent_id.is_none() {
        use crate::store::memory;
        out.extend([
            memory::TURN_SO_FAR_SQL,
            memory::ADD_SQL,
            memory::ADD_FTS_SQL,
        ]);
    }
    // Asked unless the answer is already a deny or a block, which a lock check rarely makes it.
    if decision::carries_context(event.payload.hook_event_name) && event.payload.agent_id.is_none()
    {
        out.push(claims::PENDING_NOTICES_SQL);
    }
    out
}

/// Whether the event's tool is one of `quota.block_tools`, checked against the quota.
fn is_costly_tool(event: &Event<'_>, config: &Config) -> bool {
    event
        .tool
        .as_ref()
        .is_some_and(|t| config.quota.block_tools.iter().any(|b| b == t.name))
}

/// Scores a prompt a person typed to Claude, when delegation advice is on; None otherwise.
pub fn prompt_scores(
    event: &Event<'_>,
    config: &Config,
    project_root: Option<&str>,
) -> Option<PromptScores> {
    use crate::route::{Features, model::Model, project};
    if event.kind != Kind::PromptSubmit
        || event.agent != Agent::Claude
        || !config.route.enabled
        || event.session_id().is_none()
        || event.payload.agent_id.is_some()
    {
        return None;
    }
    let prompt = event.payload.prompt?;
    if !crate::policy::route::is_typed(prompt, event.payload.source) {
        return None;
    }
    let model = Model::shipped()?;
    let features = Features::of(prompt);
    let scores = model.score(&features);
    let index = project_root.and_then(|r| {
        let index = project::index_path(std::path::Path::new(r))?;
        let stamp = project::index_stamp(&index)?;
        Some((index, stamp))
    });
    Some(PromptScores {
        features,
        scores,
        index,
    })
}

/// True when this event is a file write that the lock policy would check but whose path is
/// unknown (a payload too large to find it in).
pub fn is_unknown_write(event: &Event<'_>, config: &Config) -> bool {
    config.locks.enabled
        && event.kind == Kind::PreTool
        && event.session_id().is_some()
        && event
            .tool
            .as_ref()
            .is_some_and(|t| t.class == ToolClass::FileWrite && t.file.is_none())
}

fn write_of<'a>(
    event: &'a Event<'_>,
    path: &'a str,
    now_ms: i64,
    project_root: Option<&'a str>,
) -> Option<Write<'a>> {
    Some(Write {
        session_id: event.session_id()?,
        agent: event.agent,
        path,
        tool: event.tool.as_ref()?.name,
        project_root,
        now_ms,
    })
}

/// `/delegate-gemini [--write] <task>` (or the plugin's `/agent-harness:delegate-gemini`):
/// whether to write, and the task. The arguments come as JSON; they never pass a shell.
pub fn delegation<'a>(event: &Event<'a>) -> Option<(bool, &'a str)> {
    let name = event.payload.command_name?;
    if name != "delegate-gemini" && !name.ends_with(":delegate-gemini") {
        return None;
    }
    let args = event.payload.command_args.unwrap_or("").trim();
    match args.strip_prefix("--write") {
        Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
            Some((true, rest.trim_start()))
        }
        _ => Some((false, args)),
    }
}

/// When a lock effect is applied: before the write (the claim is provisional, see
/// `locks.provisional_secs`) or after it went through (the claim is confirmed).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase<'a> {
    /// `agent`: who writes, `""` for the session's main agent, else the subagent's id.
    Before {
        agent: &'a str,
    },
    After,
}

/// `/review [criteria]` (or the plugin's `/agent-harness:review`): the criteria as typed. They
/// come as JSON and never pass a shell.
pub fn review_request<'a>(event: &Event<'a>) -> Option<&'a str> {
    let name = event.payload.command_name?;
    (name == "review" || name.ends_with(":review"))
        .then(|| event.payload.command_args.unwrap_or("").trim())
}

/// Background tasks still at work in a Stop payload (`background_tasks`, Claude Code 2.1.145+;
/// 2.1.332 fires Stop while they run). An entry that says it finished does not count.
fn background_running(event: &Event<'_>) -> usize {
    let Some(tasks) = event
        .payload
        .raw
        .get("background_tasks")
        .and_then(|v| v.as_array())
    else {
        return 0;
    };
    tasks
        .iter()
        .filter(|t| {
            let status = t
                .get("status")
                .and_then(|s| s.as_str())
                .unwrap_or("running");
            !matches!(
                status,
                "completed" | "complete" | "done" | "failed" | "killed" | "stopped" | "cancelled"
            )
        })
        .count()
}

/// The id of the session's latest event: the Stop just recorded.
const STOP_ID_SQL: &str = "SELECT coalesce(max(id), 0) FROM events WHERE session_id = ?1";

/// The review gate at Stop: loads its state (store reads only; no git, no process), asks the
/// policy, and applies what it says.
fn review_gate_at_stop(
    tx: &Transaction<'_>,
    event: &Event<'_>,
    session: &str,
    config: &Config,
    now_ms: i64,
) -> rusqlite::Result<Decision> {
    use crate::store::reviews;
    let stop_id: i64 = tx
        .prepare_cached(STOP_ID_SQL)?
        .query_row([session], |r| r.get(0))?;
    let count_lines = config.review.trigger_changed_lines > 0;
    let mut state = reviews::gate_state(tx, session, stop_id, count_lines)?;
    state.stop_hook_active = event.payload.stop_hook_active.unwrap_or(false);
    state.background_running = background_running(event);
    let verdict = review_gate::at_stop(&state, &config.review);
    match verdict.effect {
        review_gate::Effect::None => {}
        review_gate::Effect::Blocked { review_id, kind } => {
            reviews::count_block(tx, review_id, kind)?;
        }
        review_gate::Effect::Want { trigger, note } => {
            let id = reviews::open(
                tx,
                session,
                now_ms,
                review_gate::Status::Wanted,
                trigger,
                Some(&note),
            )?;
            reviews::count_block(tx, id, review_gate::BlockKind::Want)?;
        }
        review_gate::Effect::HandOff { review_id } => reviews::hand_off(tx, review_id, now_ms)?,
    }
    Ok(verdict.decision)
}

/// Applies a lock effect for a write.
fn apply(
    tx: &Transaction<'_>,
    w: &Write<'_>,
    effect: &Effect,
    config: &Config,
    phase: Phase<'_>,
    held: Option<&Held>,
) -> rusqlite::Result<()> {
    let full = file_lock::expiry(w.now_ms, &config.locks);
    let provisional = file_lock::provisional_expiry(w.now_ms, &config.locks);
    let expires = match phase {
        Phase::After => full,
        Phase::Before { .. } => provisional,
    };
    match effect {
        Effect::None => Ok(()),
        Effect::Refresh => match phase {
            Phase::After => {
                claims::touch(tx, w.path, w.session_id, w.now_ms, full)?;
                claims::set_provisional(tx, w.path, None)
            }
            // A confirmed claim stays confirmed for its full TTL; a provisional one only gets
            // the short window again.
            Phase::Before { .. } if held.is_some_and(|h| h.provisional) => {
                claims::touch(tx, w.path, w.session_id, w.now_ms, provisional)
            }
            Phase::Before { .. }
                if held.is_some_and(|h| !file_lock::refresh_due(h, w.now_ms, &config.locks)) =>
            {
                Ok(())
            }
            Phase::Before { .. } => claims::touch(tx, w.path, w.session_id, w.now_ms, full),
        },
        Effect::Grant { took_over } => {
            claims::put(
                tx,
                &Claim {
                    path: w.path.to_owned(),
                    session_id: w.session_id.to_owned(),
                    agent: w.agent.as_str().to_owned(),
                    project_root: w.project_root.map(str::to_owned),
                    tool_name: Some(w.tool.to_owned()),
                    claimed_ms: w.now_ms,
                    touched_ms: w.now_ms,
                    expires_ms: expires,
                },
            )?;
            let agent = match phase {
                Phase::Before { agent } => Some(agent),
                Phase::After => None,
            };
            claims::set_provisional(tx, w.path, agent)?;
            if let Some((previous, why)) = took_over {
                claims::log(tx, w.now_ms, w.path, w.session_id, why, Some(previous))?;
            }
            claims::log(tx, w.now_ms, w.path, w.session_id, "grant", None)
        }
    }
}

/// How long a per-minute rate limit counts as exhaustion.
const PER_MINUTE_MS: i64 = 2 * 60_000;
/// How long a rate limit with no known reset counts as exhaustion.
const UNKNOWN_RESET_MS: i64 = 15 * 60_000;

/// Claude answered with a rate-limit error: it is out until the reset the message names, else
/// two minutes for a per-minute limit, else the last official reset, else the end of the
/// estimated 5-hour block, else fifteen minutes from now.
fn claude_rate_limited(
    tx: &Transaction<'_>,
    message: Option<&str>,
    now_ms: i64,
) -> rusqlite::Result<()> {
    let from_message = message.and_then(|m| quota::reset_in_message(m, now_ms));
    let figures = quota_store::figures(tx)?;
    let latest_reset = |official: bool| {
        figures
            .iter()
            .filter(|f| f.provider == "claude" && f.official == official)
            .filter_map(|f| f.resets_at_ms.filter(|r| *r > now_ms).map(|r| (f, r)))
            // The window that is full, else the soonest reset.
            .max_by_key(|(f, r)| (f.used_pct.unwrap_or(0.0) >= 99.0, -r))
            .map(|(_, r)| r)
    };
    let per_minute = message.is_some_and(|m| {
        let m = m.to_ascii_lowercase();
        m.contains("per-minute") || m.contains("per minute")
    });
    let (until, from) = match (from_message, latest_reset(true), latest_reset(false)) {
        (Some(t), _, _) => (t, "message"),
        // A per-minute limit (an API key's) is over in a minute or two, whatever else is known.
        _ if per_minute => (now_ms + PER_MINUTE_MS, "per-minute"),
        (None, Some(t), _) => (t, "statusline"),
        (None, None, Some(t)) => (t, "block"),
        // Nothing says when: assume a short limit, so that a hiccup never locks anyone out.
        (None, None, None) => (now_ms + UNKNOWN_RESET_MS, "guess"),
    };
    let reason = match message {
        Some(m) => format!("the API said: {}", crate::redact::redact_str(m.trim())),
        None => "the API answered 429".into(),
    };
    quota_store::put_exhaustion(
        tx,
        &quota_store::Exhaustion {
            provider: "claude".into(),
            since_ms: now_ms,
            until_ms: until,
            until_from: from.into(),
            reason,
        },
    )
}

/// The transcript whose new usage a call stores for the estimates: the session's (or, at
/// SubagentStop, the subagent's) at the ends and starts of turns. Claude Code writes a turn's last
/// response after the Stop hook, so the next prompt and SessionEnd read on too.
pub fn transcript_to_read<'a>(event: &Event<'a>) -> Option<&'a str> {
    if event.agent != Agent::Claude {
        return None;
    }
    match event.kind {
        Kind::Stop | Kind::PromptSubmit | Kind::SessionEnd => event.payload.transcript_path,
        Kind::SubagentStop => event.payload.agent_transcript_path,
        _ => None,
    }
}

/// At a Stop: whether a subagent of the session is still at work. Claude Code 2.1.332 lists it in
/// `background_tasks`; without that field (older releases), a SubagentStart with no
/// SubagentStop yet says so.
fn subagent_still_running(
    tx: &Transaction<'_>,
    event: &Event<'_>,
    session: &str,
) -> rusqlite::Result<bool> {
    if event.payload.background_tasks.is_some() {
        return Ok(!event.payload.running_subagents(1).is_empty());
    }
    claims::has_running_subagent(tx, session)
}

/// Decides about `event`, already recorded as `event_id`, and applies what follows. `pre` is
/// what [`Prepared::of`] read for it, before the transaction.
pub fn respond(
    tx: &Transaction<'_>,
    event: &Event<'_>,
    project_root: Option<&str>,
    config: &Config,
    now_ms: i64,
    transcript: Option<quota::ingest::Read>,
    pre: &Prepared,
) -> rusqlite::Result<Response> {
    let shell = pre.shell.as_ref();
    let Some(session) = event.session_id() else {
        return Ok(Response::Decide(Decision::Pass));
    };
    let mut decision = Decision::Pass;
    let file = event
        .tool
        .as_ref()
        .and_then(|t| t.file.as_ref())
        .map(|f| f.to_string_lossy().into_owned());
    let class = event.tool.as_ref().map(|t| t.class);

    // The agent starts another tool: a write it claimed a file for and never finished was
    // refused (headless runs say so with no event at all).
    if config.locks.enabled && event.kind == Kind::PreTool && event.agent == Agent::Claude {
        let agent = event.payload.agent_id.unwrap_or("");
        claims::drop_moved_on(tx, session, agent, file.as_deref().unwrap_or(""), now_ms)?;
    }
    match (event.kind, class) {
        (Kind::PreTool, Some(ToolClass::FileWrite)) if config.locks.enabled => {
            if let Some(path) = &file {
                let held = claims::held(tx, path, session)?;
                // A claim found through another path to the same file (a hard link) is that
                // file's claim: act on it under the path it was taken on.
                let path = held
                    .as_ref()
                    .map_or(path.as_str(), |h| h.claim.path.as_str());
                let verdict = write_of(event, path, now_ms, project_root)
                    .map(|w| (file_lock::before_write(&w, held.as_ref(), &config.locks), w));
                match verdict {
                    Some((Verdict::Allow(effect), w)) => {
                        let agent = event.payload.agent_id.unwrap_or("");
                        let before = Phase::Before { agent };
                        apply(tx, &w, &effect, config, before, held.as_ref())?
                    }
                    Some((Verdict::Deny { reason, holder }, _)) => {
                        claims::log(tx, now_ms, path, session, "deny", Some(&holder))?;
                        decision = Decision::Deny(reason);
                    }
                    Some((Verdict::Wait { until_ms }, _)) => {
                        return Ok(Response::WaitUntil(until_ms));
                    }
                    None => {}
                }
            }
        }
        (Kind::PostTool, Some(ToolClass::FileWrite)) if config.locks.enabled => {
            if let Some(path) = &file {
                let held = claims::held(tx, path, session)?;
                let path = held
                    .as_ref()
                    .map_or(path.as_str(), |h| h.claim.path.as_str());
                if let Some(w) = write_of(event, path, now_ms, project_root) {
                    let effect = file_lock::after_write(&w, held.as_ref());
                    apply(tx, &w, &effect, config, Phase::After, held.as_ref())?;
                }
            }
        }
        // The write never happened (the user or a rule refused it, or it failed): a claim taken
        // for it before it was known to happen is freed. A claim an earlier write confirmed
        // stays.
        (Kind::PermissionDenied | Kind::PostToolFailure, Some(ToolClass::FileWrite))
            if config.locks.enabled =>
        {
            if let Some(path) = &file {
                let held = claims::held(tx, path, session)?;
                let path = held
                    .as_ref()
                    .map_or(path.as_str(), |h| h.claim.path.as_str());
                let why = match event.kind {
                    Kind::PermissionDenied => "refused",
                    _ => "failed",
                };
                claims::drop_provisional(tx, path, session, now_ms, why)?;
            }
        }
        // Before it runs: a command that certainly writes a held file is denied. No claim is
        // taken for it, now or after it ran.
        (Kind::PreTool | Kind::PreShellStep, Some(ToolClass::Shell)) if config.locks.enabled => {
            if let Some(writes) = shell {
                let mut written: Vec<(String, Option<Held>)> = Vec::new();
                for p in writes.certain() {
                    let p = p.to_string_lossy().into_owned();
                    let held = claims::held(tx, &p, session)?;
                    written.push((p, held));
                }
                match file_lock::before_shell(session, &written, &config.locks, now_ms) {
                    ShellVerdict::Allow => {}
                    ShellVerdict::Deny { reason, holders } => {
                        for (path, holder) in &holders {
                            claims::log(tx, now_ms, path, session, "deny", Some(holder))?;
                        }
                        decision = Decision::Deny(reason);
                    }
                    ShellVerdict::Wait { until_ms } => return Ok(Response::WaitUntil(until_ms)),
                }
            }
        }
        (Kind::PostTool | Kind::PostToolFailure, Some(ToolClass::Shell))
            if config.locks.enabled =>
        {
            if let Some(writes) = shell {
                let mut written: Vec<(String, Option<Held>)> = Vec::new();
                for t in &writes.targets {
                    let p = t.path.to_string_lossy().into_owned();
                    let held = claims::held(tx, &p, session)?;
                    written.push((p, held));
                }
                let label = format!(
                    "{} session {}",
                    event.agent.as_str(),
                    session.get(..8).unwrap_or(session)
                );
                let partial = writes.bound.is_some();
                let notices = collision::after_shell(session, &label, &written, partial, now_ms);
                for (holder, text) in &notices.for_holders {
                    claims::notify(tx, holder, now_ms, text)?;
                }
                if let Some(text) = notices.for_writer {
                    decision = Decision::Context(text);
                }
            }
        }
        (Kind::PromptExpansion, _) => {
            if let Some((write, task)) = delegation(event) {
                let task = crate::redact::redact_str(task);
                crate::store::runs::add_delegation(tx, session, now_ms, &task, write)?;
            }
            if let Some(criteria) = review_request(event) {
                let criteria = crate::redact::redact_str(criteria);
                crate::store::reviews::request(tx, session, now_ms, &criteria)?;
            }
        }
        (Kind::SessionEnd, _) => {
            claims::release_session(tx, session, now_ms)?;
        }
        (Kind::StopFailure, _) if event.payload.error == Some("rate_limit") => {
            claude_rate_limited(tx, event.payload.last_assistant_message, now_ms)?;
        }
        _ => {}
    }
    // Usage for the estimates: what this session's transcript gained (read before the
    // transaction, see [`transcript_to_read`]).
    if let Some(read) = transcript {
        quota::ingest::store_one(tx, read, &config.quota, now_ms)?;
    }
    if event.kind == Kind::Stop && config.locks.enabled && event.agent == Agent::Claude {
        // The turn is over: a write of the main agent still unconfirmed never happened.
        claims::drop_moved_on(tx, session, "", "", now_ms)?;
    }
    if event.kind == Kind::Stop {
        // A background agent of this session may still be writing (Claude Code 2.1.332 ends the
        // main turn while it works): its files stay held until a later Stop or SessionEnd.
        if config.locks.release_on_stop && !subagent_still_running(tx, event, session)? {
            claims::release_session(tx, session, now_ms)?;
        }
        // A turn that ended normally shows the API answers again.
        if event.agent == Agent::Claude && quota_store::clear_exhaustion(tx, "claude", now_ms)? {
            quota_store::rearm(tx, "claude", "exhausted")?;
        }
        // The review gate, for Claude's main agent only (Gemini runs the harness started have
        // their own AfterAgent, and a reviewer must never be gated on a review).
        if event.agent == Agent::Claude && config.review.enabled {
            decision = decision.and(review_gate_at_stop(tx, event, session, config, now_ms)?);
        }
    }
    // Loaded once per prompt: the quota advice and the delegation advice both read it.
    let mut prompt_quota: Option<quota::Quota> = None;
    if config.quota.enabled && event.agent == Agent::Claude {
        match event.kind {
            // A prompt the client made up (a background agent's report) is not the user's: no
            // advice or block rides on it.
            Kind::PromptSubmit if !event.synthetic_prompt => {
                let q = quota::load(tx, &config.quota, now_ms)?;
                let q = &*prompt_quota.insert(q);
                let fired: Vec<_> = quota_store::alerts(tx)?
                    .into_iter()
                    .map(|(k, _)| k)
                    .collect();
                let verdict = quota_policy::on_prompt(q, &fired, &config.quota, now_ms);
                for k in &verdict.fire {
                    quota_store::put_alert(tx, k, now_ms)?;
                }
                decision = decision.and(verdict.decision);
            }
            Kind::PreTool if is_costly_tool(event, config) => {
                let q = quota::load(tx, &config.quota, now_ms)?;
                let tool = event.tool.as_ref().map_or("", |t| t.name);
                decision = decision.and(quota_policy::on_tool(tool, &q, &config.quota, now_ms));
            }
            _ => {}
        }
    }

    if event.kind == Kind::PromptSubmit
        && event.agent == Agent::Claude
        && config.route.enabled
        && let Some(scored) = &pre.prompt
        && let Some(advice) = route_prompt(
            tx,
            event,
            session,
            scored,
            project_root,
            config,
            now_ms,
            prompt_quota.take(),
        )?
    {
        decision = decision.and(advice);
    }

    if config.memory.enabled && event.payload.agent_id.is_none() {
        decision = decision.and(remember(tx, event, session, project_root, config, now_ms)?);
    }

    // Notices waiting for this agent ride on the first hook that can carry context to it: to
    // the session's main agent, never to a subagent (whose context, and the notice, end with it).
    if matches!(decision, Decision::Pass | Decision::Context(_))
        && decision::carries_context(event.payload.hook_event_name)
        && event.payload.agent_id.is_none()
    {
        let pending = claims::pending_notices(tx, session)?;
        if !pending.is_empty() {
            let ids: Vec<i64> = pending.iter().map(|(id, _)| *id).collect();
            let text: Vec<String> = pending.into_iter().map(|(_, t)| t).collect();
            decision = decision.and(Decision::Context(text.join("\n\n")));
            claims::delivered(tx, &ids, now_ms)?;
        }
    }
    Ok(Response::Decide(decision))
}

/// Delegation advice for a prompt a person typed, scored before the transaction: stores the
/// decision (its outcome is settled later by the readers) and returns the note when Gemini is
/// selected.
#[allow(clippy::too_many_arguments)]
fn route_prompt(
    tx: &Transaction<'_>,
    event: &Event<'_>,
    session: &str,
    scored: &PromptScores,
    project_root: Option<&str>,
    config: &Config,
    now_ms: i64,
    loaded: Option<quota::Quota>,
) -> rusqlite::Result<Option<Decision>> {
    use crate::policy::route::{self as route_policy, Headroom, Input, Settings};
    use crate::route::project;
    use crate::store::routes;
    let Some(prompt) = event.payload.prompt else {
        return Ok(None);
    };
    let PromptScores {
        features,
        scores,
        index,
    } = scored;
    // The project's size: cached by the git index's stamp, taken before the transaction; the
    // 12-byte index header is read again only when the index changed.
    let project_files = match project_root.zip(index.as_ref()) {
        Some((root, (index, (mtime, len)))) => match routes::project_size(tx, root)? {
            Some((m, l, files)) if m == *mtime && l == *len => Some(files as u64),
            _ => {
                let files = project::tracked_files(index);
                if let Some(n) = files {
                    routes::put_project_size(tx, root, *mtime, *len, n as i64, now_ms)?;
                }
                files
            }
        },
        None => None,
    };
    // The quota the prompt's own advice already loaded in this transaction, else loaded now.
    let q = match loaded {
        Some(q) => q,
        None => quota::load(tx, &config.quota, now_ms)?,
    };
    let headroom = Headroom {
        claude_used_pct: q.claude.tightest().and_then(|w| w.used_pct),
        claude_out_until_ms: q.claude.exhausted.as_ref().map(|e| e.until_ms),
        gemini_used_pct: q.gemini.tightest().and_then(|w| w.used_pct),
        gemini_out_until_ms: q.gemini.exhausted.as_ref().map(|e| e.until_ms),
    };
    let mut input = Input {
        prompt,
        features,
        scores,
        project_files,
        headroom,
        past: Default::default(),
    };
    let settings = Settings {
        threshold: config.route.threshold,
        prefer: &config.route.prefer,
        keep_on_claude: &config.route.keep_on_claude,
        warn_pct: config.quota.warn_pct,
    };
    // History is read only where it could change the pick (a score near the bar).
    let mut advice = route_policy::advise(&input, &settings, now_ms);
    if route_policy::history_matters(&advice) {
        input.past = routes::past(tx, scores.top_gemini().as_str(), now_ms)?;
        advice = route_policy::advise(&input, &settings, now_ms);
    }
    let model_factors: serde_json::Map<String, serde_json::Value> = crate::route::TaskType::ALL
        .iter()
        .zip(scores.probs)
        .map(|(t, p)| {
            (
                t.as_str().to_owned(),
                serde_json::json!((p * 1000.0).round() / 1000.0),
            )
        })
        .collect();
    let factors = serde_json::json!({
        "claude": advice.claude,
        "gemini": advice.gemini,
        "model": model_factors,
        "pasted_chars": features.pasted_chars,
        "paste": features.paste.as_str(),
        "project_files": project_files,
    });
    routes::put(
        tx,
        &routes::Route {
            id: 0,
            session_id: session.to_owned(),
            decided_ms: now_ms,
            project_root: project_root.map(str::to_owned),
            task: crate::redact::redact_str(&advice.task).into_owned(),
            task_type: advice.task_type.as_str().to_owned(),
            complexity: advice.complexity.to_owned(),
            score: advice.score,
            bar: advice.bar,
            selected: advice.selected.as_str().to_owned(),
            reason: crate::redact::redact_str(&advice.reason).into_owned(),
            factors,
            outcome: None,
            run_id: None,
            run_status: None,
            turn_tokens: None,
            turn_cost_usd: None,
            gemini_cost_usd: None,
        },
    )?;
    Ok(advice
        .note
        .map(|n| Decision::Context(crate::redact::redact_str(&n).into_owned())))
}

/// Memory, for the session's main agent: the turn summary at Stop, the snapshot at PreCompact
/// (both captured where the session cannot lose them, never left for SessionEnd), and the
/// hand-backs: the snapshot after a compaction, the project's brief at a new or resumed session,
/// and for Gemini CLI what matches each prompt. Reads are bounded (see `store::memory`).
fn remember(
    tx: &Transaction<'_>,
    event: &Event<'_>,
    session: &str,
    project_root: Option<&str>,
    config: &Config,
    now_ms: i64,
) -> rusqlite::Result<Decision> {
    use crate::memory;
    use crate::store::memory as store;
    let p = event.payload;
    let project = store::project_of(project_root, p.cwd);
    let agent = event.agent.as_str();
    let budget = config.memory.budget_bytes;
    match event.kind {
        Kind::Stop => {
            let (prompt, files) = store::turn_so_far(tx, session)?;
            // Gemini's AfterAgent carries its turn's prompt and answer; Claude's Stop the answer.
            let prompt = p.prompt.map(str::to_owned).or(prompt);
            let reply = p.last_assistant_message.or(p.prompt_response);
            let turn = memory::Turn {
                prompt: prompt
                    .as_deref()
                    .filter(|p| !crate::event::is_synthetic_prompt(p)),
                files,
                reply,
            };
            if let Some(text) = memory::turn_text(&turn, &project) {
                store::add(tx, "turn", Some(session), agent, &project, now_ms, &text)?;
            }
            Ok(Decision::Pass)
        }
        Kind::PreCompact => {
            let state = store::session_state(tx, session, agent, &project, now_ms)?;
            if let Some(text) = memory::snapshot(&state, budget) {
                store::add(
                    tx,
                    "snapshot",
                    Some(session),
                    agent,
                    &project,
                    now_ms,
                    &text,
                )?;
            }
            Ok(Decision::Pass)
        }
        Kind::SessionStart if p.source == Some("compact") => {
            let text = match store::latest_snapshot(tx, &project, session)? {
                Some(text) => Some(text),
                // No PreCompact was seen (a hook not installed, or it failed): built now.
                None => {
                    let state = store::session_state(tx, session, agent, &project, now_ms)?;
                    memory::snapshot(&state, budget)
                }
            };
            Ok(text.map_or(Decision::Pass, Decision::Context))
        }
        Kind::SessionStart
            if config.memory.brief && matches!(p.source, Some("startup" | "resume") | None) =>
        {
            // One seek tells whether the project has memory at all, and whether the brief kept
            // from the last time is still current; only then is it made again (and kept), with
            // the quota as it is then (the brief says when: the quota policy gives the live
            // advice at the next prompt).
            let (Some(newest), kept) = store::brief_state(tx, &project)? else {
                return Ok(Decision::Pass);
            };
            let text = match kept {
                Some((upto, text)) if upto == newest => text,
                _ => {
                    let lines = || {
                        let q = quota::load(tx, &config.quota, now_ms)?;
                        Ok(memory::quota_lines(&q, now_ms))
                    };
                    let text = store::project_state(tx, &project, "", lines)?
                        .and_then(|s| memory::brief(&s, budget, now_ms))
                        .unwrap_or_default();
                    store::put_brief(tx, &project, newest, &text)?;
                    text
                }
            };
            Ok(match text.is_empty() {
                true => Decision::Pass,
                false => Decision::Context(text),
            })
        }
        Kind::PromptSubmit if event.agent == Agent::Gemini => {
            let Some(prompt) = p.prompt else {
                return Ok(Decision::Pass);
            };
            // Ranked here over the project's newest items, not through the full-text index:
            // a common word's postings over a large store are unbounded work for a hook.
            let items: Vec<memory::Item> = store::newest(tx, &project, memory::SEARCH_REACH)?
                .into_iter()
                .filter(|i| i.session_id.as_deref() != Some(session) && i.kind != "snapshot")
                .collect();
            let found = memory::rank(prompt, items, 3);
            Ok(memory::relevant(&found, budget, now_ms).map_or(Decision::Pass, Decision::Context))
        }
        _ => Ok(Decision::Pass),
    }
}
