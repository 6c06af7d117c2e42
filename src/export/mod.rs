//! The OTLP exporter behind `harness export otlp`: what the store records, sent to a team's
//! OpenTelemetry collector, resumably.
//!
//! Traces: a session is a trace; each turn an `invoke_agent` span; each tool call a child
//! `execute_tool` span with its real duration and outcome; each Gemini run an `invoke_agent`
//! span (provider `gcp.gemini`) under the turn that asked for it; reviews and denials are span
//! events of the turn. Attributes follow the OpenTelemetry GenAI semantic conventions. Metrics:
//! quota per provider and window, tokens and cost per model, lock denials, delegations and review
//! verdicts. Logs: the harness log's problems, and optionally every hook event.
//!
//! Resumable: each stream has a cursor in the store (migration 0010), moved only after the
//! collector accepted a batch, in its own short write. The trace cursor is the last event whose
//! spans are all sent plus the start of every turn and tool call still open there (the low-water
//! mark): a restart replays from the oldest of those without sending, and sends only what closes
//! past the cursor. Ids are hashed from the store, so a batch resent after a crash carries the
//! same ids.
//!
//! Privacy: prompts and tool inputs are left out unless the config includes them; ids and paths
//! can be hashed; every string passes through `crate::redact` when it is encoded (`otlp`).
//!
//! Called from the `harness` binary only (its network code, `http`, pulls in ureq); never from a
//! hook.

pub mod http;
pub mod ids;
pub mod logs;
pub mod metrics;
pub mod otlp;
pub mod traces;

use std::collections::{BTreeSet, HashMap};

use rusqlite::Connection;
use serde::{Deserialize, Serialize};

use crate::config::OtlpConfig;
use crate::error::Error;
use crate::store::Store;
use crate::store::export::{self as q, ExportEvent, FinishedRun};
use http::{Accepted, Signal};
use ids::SpanId;
use otlp::{Attr, Span, SpanEvent, Value, i, s};
use traces::{Builder, Closed, Keep, ToolEnd, TurnEnd};

/// Where encoded requests go: the collector, or the terminal for `--dry-run`.
pub trait Sink {
    /// Sends one request holding `items` spans, points or records. Ok when it was accepted.
    fn send(&mut self, signal: Signal, body: &str, items: usize) -> Result<Accepted, String>;
    /// A dry run moves no cursor.
    fn moves_cursor(&self) -> bool {
        true
    }
}

/// What leaves the machine, beyond ids, names, times and counts.
#[derive(Debug, Clone, Default)]
pub struct Privacy {
    pub include_prompts: bool,
    pub include_tool_input: bool,
    pub hash_ids: bool,
    pub hash_paths: bool,
    pub salt: String,
}

impl Privacy {
    fn id(&self, id: &str) -> String {
        if self.hash_ids {
            ids::pseudonym(&self.salt, id)
        } else {
            id.to_owned()
        }
    }

    /// Free text the harness or a tool wrote (a denial's reason, a tool's error): it names paths
    /// and sessions, so it is left out when either is hashed.
    pub(crate) fn text(&self, t: &str) -> Option<String> {
        (!self.hash_ids && !self.hash_paths).then(|| t.to_owned())
    }

    fn path(&self, p: &str) -> String {
        if self.hash_paths {
            ids::pseudonym(&self.salt, p)
        } else {
            p.to_owned()
        }
    }
}

/// How one export runs.
#[derive(Debug, Clone)]
pub struct Options {
    pub privacy: Privacy,
    pub batch_items: usize,
    pub batch_bytes: usize,
    pub open_limit_ms: i64,
    /// Only events at or after this time (when the cursor is behind it).
    pub since_ms: Option<i64>,
    /// Events read per page.
    pub page: usize,
    pub service_name: String,
    pub log_events: bool,
    /// Runs are exported once finished this long ago (a run's row is written at its end).
    pub run_settle_ms: i64,
    /// Start from the beginning whatever the cursors say (`--dry-run --reset`).
    pub ignore_cursors: bool,
}

impl Options {
    pub fn from_config(c: &OtlpConfig) -> Options {
        Options {
            privacy: Privacy {
                include_prompts: c.include_prompts,
                include_tool_input: c.include_tool_input,
                hash_ids: c.hash_ids,
                hash_paths: c.hash_paths,
                salt: c.hash_salt.clone(),
            },
            batch_items: c.batch_spans,
            batch_bytes: c.batch_bytes,
            open_limit_ms: c.open_turn_secs as i64 * 1000,
            since_ms: None,
            page: 500,
            service_name: c.service_name.clone(),
            log_events: c.log_events,
            run_settle_ms: 2000,
            ignore_cursors: false,
        }
    }
}

/// What one export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub events_read: u64,
    pub spans: u64,
    pub metric_points: u64,
    pub log_records: u64,
    pub requests: u64,
    /// Items the collector rejected for good (partial successes).
    pub rejected: u64,
    pub rejected_messages: Vec<String>,
    /// The trace cursor after the run: every span closed at or before this event id is sent.
    pub through: i64,
    /// Turns and tool calls still open there.
    pub open: usize,
}

/// An export that stopped: the store, or the collector.
#[derive(Debug)]
pub enum ExportError {
    Store(Error),
    Send(String),
}

impl std::fmt::Display for ExportError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ExportError::Store(e) => e.fmt(f),
            ExportError::Send(m) => f.write_str(m),
        }
    }
}

impl From<Error> for ExportError {
    fn from(e: Error) -> Self {
        ExportError::Store(e)
    }
}

fn db<'a>(
    path: &'a std::path::Path,
    what: &'static str,
) -> impl Fn(rusqlite::Error) -> ExportError + 'a {
    move |e| ExportError::Store(Error::db(what, path, e))
}

/// The trace stream's cursor.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceCursor {
    /// Every span closed by an event up to this id has been accepted.
    pub through: i64,
    /// The prompt / PreToolUse event ids of what was open at `through`.
    pub open: Vec<i64>,
}

pub const TRACES_STREAM: &str = "otlp.traces";
pub const RUNS_STREAM: &str = "otlp.runs";

fn read_cursor<T: for<'de> Deserialize<'de> + Default>(
    store: &mut Store,
    opts: &Options,
    stream: &str,
) -> Result<Option<T>, ExportError> {
    let path = store.path().to_path_buf();
    if opts.ignore_cursors {
        return Ok(None);
    }
    let conn = store.reader()?;
    let text = q::cursor(conn, stream).map_err(db(&path, "read the export cursor of"))?;
    Ok(text.map(|t| serde_json::from_str(&t).unwrap_or_default()))
}

/// A batch of encoded items.
struct Batch {
    json: String,
    items: usize,
}

impl Batch {
    fn new() -> Batch {
        Batch {
            json: String::new(),
            items: 0,
        }
    }

    fn push(&mut self, encode: impl FnOnce(&mut String)) {
        if self.items > 0 {
            self.json.push(',');
        }
        encode(&mut self.json);
        self.items += 1;
    }

    fn full(&self, o: &Options) -> bool {
        self.items >= o.batch_items || self.json.len() >= o.batch_bytes
    }
}

fn provider(agent: &str) -> &'static str {
    if agent == "gemini" {
        "gcp.gemini"
    } else {
        "anthropic"
    }
}

fn agent_name(agent: &str) -> &'static str {
    if agent == "gemini" {
        "gemini-cli"
    } else {
        "claude-code"
    }
}

fn turn_span_id(session: &str, start_id: i64) -> SpanId {
    ids::span_id(&[b"turn", session.as_bytes(), start_id.to_string().as_bytes()])
}

/// Session facts, cached for the run (bounded).
struct Facts {
    cache: HashMap<String, Option<q::SessionFacts>>,
}

impl Facts {
    fn get(
        &mut self,
        conn: &Connection,
        session: &str,
    ) -> rusqlite::Result<Option<q::SessionFacts>> {
        if let Some(f) = self.cache.get(session) {
            return Ok(f.clone());
        }
        if self.cache.len() > 10_000 {
            self.cache.clear();
        }
        let f = q::session_facts(conn, session)?;
        self.cache.insert(session.to_owned(), f.clone());
        Ok(f)
    }
}

fn common(attrs: &mut Vec<Attr>, p: &Privacy, agent: &str, session: &str) {
    attrs.push(s("gen_ai.provider.name", provider(agent)));
    attrs.push(s("gen_ai.conversation.id", p.id(session)));
}

fn turn_span(
    conn: &Connection,
    facts: &mut Facts,
    p: &Privacy,
    t: &traces::Turn,
) -> rusqlite::Result<Span> {
    let f = facts.get(conn, &t.session_id)?.unwrap_or_default();
    let usage = q::turn_usage(conn, &t.session_id, t.start_ms, t.end_ms)?;
    let mut attrs = vec![s("gen_ai.operation.name", "invoke_agent")];
    common(&mut attrs, p, &t.agent, &t.session_id);
    attrs.push(s("gen_ai.agent.name", agent_name(&t.agent)));
    attrs.push(s("gen_ai.agent.id", p.id(&t.session_id)));
    if let Some(m) = f.model.as_deref().or(usage.model.as_deref()) {
        attrs.push(s("gen_ai.request.model", m));
    }
    if let Some(m) = &usage.model {
        attrs.push(s("gen_ai.response.model", m.clone()));
    }
    if usage.responses > 0 {
        // Input tokens include the cached ones, as the conventions ask; the cache parts beside.
        attrs.push(i(
            "gen_ai.usage.input_tokens",
            usage.input_tokens + usage.cache_read_tokens + usage.cache_creation_tokens,
        ));
        attrs.push(i("gen_ai.usage.output_tokens", usage.output_tokens));
        attrs.push(i(
            "gen_ai.usage.cache_read.input_tokens",
            usage.cache_read_tokens,
        ));
        attrs.push(i(
            "gen_ai.usage.cache_creation.input_tokens",
            usage.cache_creation_tokens,
        ));
        let cost = crate::route::prices::claude_cost(
            usage.model.as_deref().or(f.model.as_deref()),
            crate::route::prices::Tokens {
                input: usage.input_tokens as u64,
                output: usage.output_tokens as u64,
                cache_write: usage.cache_creation_tokens as u64,
                cache_read: usage.cache_read_tokens as u64,
            },
        );
        if t.agent != "gemini" {
            attrs.push(("harness.cost_usd", Value::Double(cost)));
        }
    }
    attrs.push(s("harness.turn.end", t.end.as_str()));
    attrs.push(i("harness.turn.tool_calls", i64::from(t.tool_calls)));
    if let Some(root) = f.project_root.as_deref().or(f.cwd.as_deref()) {
        attrs.push(s("harness.project", p.path(root)));
    }
    if let Some(prompt) = &t.prompt {
        attrs.push(s("harness.prompt", prompt.clone()));
    }
    let mut events: Vec<SpanEvent> = t
        .denials
        .iter()
        .map(|d| {
            let mut a = vec![s("harness.denial.kind", d.kind)];
            if let Some(reason) = p.text(&d.reason) {
                a.push(s("harness.denial.reason", reason));
            }
            if let Some(tool) = &d.tool_name {
                a.push(s("gen_ai.tool.name", tool.clone()));
            }
            SpanEvent {
                time_ms: d.ts_ms,
                name: if d.kind == "lock" {
                    "harness.lock.denied"
                } else {
                    "harness.denied"
                },
                attrs: a,
            }
        })
        .collect();
    for r in q::reviews_between(conn, &t.session_id, t.start_ms, t.end_ms)? {
        events.push(SpanEvent {
            time_ms: r.finished_ms,
            name: "harness.review",
            attrs: vec![
                i("harness.review.id", r.id),
                s("harness.review.verdict", r.status),
                s("harness.review.trigger", r.trigger),
                i("harness.review.findings", r.findings),
            ],
        });
    }
    events.sort_by_key(|e| e.time_ms);
    let (status, status_message) = match t.end {
        TurnEnd::Failure => {
            let e = t.error.clone().unwrap_or_else(|| "stop_failure".into());
            attrs.push(s("error.type", e.clone()));
            (otlp::STATUS_ERROR, Some(e))
        }
        _ => (otlp::STATUS_UNSET, None),
    };
    Ok(Span {
        trace_id: ids::session_trace(&t.session_id),
        span_id: turn_span_id(&t.session_id, t.start_id),
        parent: None,
        name: format!("invoke_agent {}", agent_name(&t.agent)),
        kind: otlp::KIND_INTERNAL,
        start_ms: t.start_ms,
        end_ms: t.end_ms,
        attrs,
        events,
        links: Vec::new(),
        status,
        status_message,
    })
}

fn tool_span(p: &Privacy, t: &traces::Tool) -> Span {
    let mut attrs = vec![s("gen_ai.operation.name", "execute_tool")];
    common(&mut attrs, p, &t.agent, &t.session_id);
    attrs.push(s("gen_ai.tool.name", t.tool_name.clone()));
    attrs.push(s("gen_ai.tool.type", "function"));
    if let Some(id) = &t.call_id {
        attrs.push(s("gen_ai.tool.call.id", p.id(id)));
    }
    attrs.push(s(
        "gen_ai.agent.id",
        p.id(t.subagent.as_deref().unwrap_or(&t.session_id)),
    ));
    attrs.push(s("harness.tool.outcome", t.end.as_str()));
    if let Some(f) = &t.file_path {
        attrs.push(s("harness.file.path", p.path(f)));
    }
    if let Some(input) = &t.input {
        attrs.push(s(
            "gen_ai.tool.call.arguments",
            crate::text::clip(input, 4096),
        ));
    }
    let (status, message) = match t.end {
        ToolEnd::Success => (otlp::STATUS_OK, None),
        ToolEnd::Failure => {
            attrs.push(s("error.type", "tool_error"));
            (
                otlp::STATUS_ERROR,
                t.error.as_deref().and_then(|e| p.text(e)),
            )
        }
        ToolEnd::Denied => {
            attrs.push(s("error.type", "denied"));
            (
                otlp::STATUS_ERROR,
                t.error.as_deref().and_then(|e| p.text(e)),
            )
        }
        ToolEnd::Unfinished => {
            attrs.push(s("error.type", "interrupted"));
            (otlp::STATUS_ERROR, None)
        }
    };
    let key = t.call_id.clone().unwrap_or_else(|| t.start_id.to_string());
    Span {
        trace_id: ids::session_trace(&t.session_id),
        span_id: ids::span_id(&[b"tool", t.session_id.as_bytes(), key.as_bytes()]),
        parent: t.turn_start_id.map(|id| turn_span_id(&t.session_id, id)),
        name: format!("execute_tool {}", t.tool_name),
        kind: otlp::KIND_INTERNAL,
        start_ms: t.start_ms,
        end_ms: t.end_ms,
        attrs,
        events: Vec::new(),
        links: Vec::new(),
        status,
        status_message: message,
    }
}

fn run_span(conn: &Connection, p: &Privacy, r: &FinishedRun) -> rusqlite::Result<Span> {
    let mut attrs = vec![
        s("gen_ai.operation.name", "invoke_agent"),
        s("gen_ai.provider.name", "gcp.gemini"),
        s("gen_ai.agent.name", "gemini-cli"),
        s("gen_ai.agent.id", p.id(&r.run_id)),
        s("gen_ai.conversation.id", p.id(&r.run_id)),
        s("harness.run.mode", r.mode.clone()),
        s("harness.run.status", r.status.clone()),
    ];
    if let Some(m) = r.model.as_deref().or(r.models_used.as_deref()) {
        attrs.push(s("gen_ai.request.model", m));
    }
    if let Some(m) = &r.models_used {
        attrs.push(s("gen_ai.response.model", m.clone()));
    }
    if let Some(n) = r.input_tokens {
        attrs.push(i("gen_ai.usage.input_tokens", n));
    }
    if let Some(n) = r.output_tokens {
        attrs.push(i("gen_ai.usage.output_tokens", n));
    }
    if let Some(n) = r.requests {
        attrs.push(i("harness.run.requests", n));
    }
    if let Some(n) = r.tool_calls {
        attrs.push(i("harness.run.tool_calls", n));
    }
    if p.include_prompts {
        attrs.push(s("harness.prompt", crate::text::clip(&r.task, 4096)));
    }
    let (trace_id, parent, links) = match &r.requester {
        Some(req) => {
            let trace = ids::session_trace(req);
            let turn = q::turn_at(conn, req, r.created_ms)?;
            let parent = turn.map(|id| turn_span_id(req, id));
            let links = parent
                .map(|sp| {
                    vec![otlp::Link {
                        trace_id: trace,
                        span_id: sp,
                        attrs: vec![s("harness.link", "requested_by")],
                    }]
                })
                .unwrap_or_default();
            attrs.push(s("harness.run.requester", p.id(req)));
            (trace, parent, links)
        }
        None => (
            ids::trace_id(&[b"run", r.run_id.as_bytes()]),
            None,
            Vec::new(),
        ),
    };
    let mut links = links;
    // Gemini's own hooks, when installed, record the run as a session of its own (its id is the
    // run id): its trace is linked from here.
    if let Some(first) = q::first_turn(conn, &r.run_id)? {
        links.push(otlp::Link {
            trace_id: ids::session_trace(&r.run_id),
            span_id: turn_span_id(&r.run_id, first),
            attrs: vec![s("harness.link", "run_session")],
        });
    }
    let (status, message) = if r.status == "success" {
        (otlp::STATUS_OK, None)
    } else {
        let kind = r.error_kind.clone().unwrap_or_else(|| r.status.clone());
        attrs.push(s("error.type", kind.clone()));
        (otlp::STATUS_ERROR, Some(kind))
    };
    Ok(Span {
        trace_id,
        span_id: ids::span_id(&[b"run", r.run_id.as_bytes()]),
        parent,
        name: "invoke_agent gemini-cli".into(),
        kind: otlp::KIND_CLIENT,
        start_ms: r.started_ms.unwrap_or(r.created_ms),
        end_ms: r.finished_ms,
        attrs,
        events: Vec::new(),
        links,
        status,
        status_message: message,
    })
}

fn send(
    sink: &mut dyn Sink,
    signal: Signal,
    body: &str,
    items: usize,
    report: &mut Report,
) -> Result<(), ExportError> {
    let accepted = sink.send(signal, body, items).map_err(ExportError::Send)?;
    report.requests += 1;
    if accepted.rejected > 0 {
        report.rejected += accepted.rejected as u64;
    }
    if let Some(m) = accepted.message {
        report.rejected_messages.push(m);
    }
    Ok(())
}

/// Exports the spans of every turn and tool call closed since the trace cursor, then the runs
/// finished since the run cursor. `now_ms` only decides which runs have settled.
pub fn export_traces(
    store: &mut Store,
    sink: &mut dyn Sink,
    opts: &Options,
    now_ms: i64,
    report: &mut Report,
) -> Result<(), ExportError> {
    export_traces_from(store, sink, opts, now_ms, report, &mut None)
}

/// What a long-lived exporter keeps between rounds: the cursor it last wrote and the open turns
/// and tool calls there, so that a round need not replay from the low-water mark.
#[derive(Debug)]
pub struct TraceState {
    cursor: TraceCursor,
    builder: Builder,
}

/// [`export_traces`], reusing `state` from the previous round when the store's cursor is still
/// the one it left (no other exporter moved it). `state` is left empty after a failure.
pub fn export_traces_from(
    store: &mut Store,
    sink: &mut dyn Sink,
    opts: &Options,
    now_ms: i64,
    report: &mut Report,
    state: &mut Option<TraceState>,
) -> Result<(), ExportError> {
    let path = store.path().to_path_buf();
    let resource = otlp::Resource::new(&opts.service_name);
    let mut cursor: TraceCursor = read_cursor(store, opts, TRACES_STREAM)?.unwrap_or_default();
    let kept = state
        .take()
        .filter(|st| st.cursor == cursor && opts.since_ms.is_none());
    if let Some(since) = opts.since_ms {
        let conn = store.reader()?;
        let first = q::first_id_at(conn, since).map_err(db(&path, "read"))?;
        if first - 1 > cursor.through {
            cursor = TraceCursor {
                through: first - 1,
                open: Vec::new(),
            };
        }
    }
    let keep = Keep {
        prompts: opts.privacy.include_prompts,
        tool_input: opts.privacy.include_tool_input,
    };
    let reused = kept.is_some();
    let mut builder = match kept {
        Some(st) => st.builder,
        None => Builder::new(opts.open_limit_ms, keep),
    };
    // Replay from the low-water mark, sending nothing, to rebuild what was open at the cursor.
    if let (false, Some(&low)) = (reused, cursor.open.iter().min()) {
        let mut after = low - 1;
        let mut sink_out = Vec::new();
        'replay: loop {
            let conn = store.reader()?;
            let page = q::events_after(conn, after, opts.page).map_err(db(&path, "read"))?;
            if page.is_empty() {
                break;
            }
            for ev in &page {
                if ev.id > cursor.through {
                    break 'replay;
                }
                builder.feed(ev, &mut sink_out);
                sink_out.clear();
                after = ev.id;
            }
        }
        builder.retain_starts(&cursor.open.iter().copied().collect::<BTreeSet<_>>());
    }
    let mut facts = Facts {
        cache: HashMap::new(),
    };
    let mut batch = Batch::new();
    let mut pos = cursor.through;
    let mut written = cursor;
    let mut closed = Vec::new();
    loop {
        let page: Vec<ExportEvent> = {
            let conn = store.reader()?;
            q::events_after(conn, pos, opts.page).map_err(db(&path, "read"))?
        };
        if page.is_empty() {
            break;
        }
        for ev in &page {
            report.events_read += 1;
            builder.feed(ev, &mut closed);
            pos = ev.id;
            if !closed.is_empty() {
                let conn = store.reader()?;
                for c in closed.drain(..) {
                    let sp = match &c {
                        Closed::Turn(t) => turn_span(conn, &mut facts, &opts.privacy, t)
                            .map_err(db(&path, "read"))?,
                        Closed::Tool(t) => tool_span(&opts.privacy, t),
                    };
                    batch.push(|out| otlp::span(out, &sp));
                }
            }
            if batch.full(opts) {
                flush_traces(
                    store,
                    sink,
                    &resource,
                    &mut batch,
                    pos,
                    &builder,
                    &mut written,
                    now_ms,
                    report,
                )?;
            }
        }
    }
    if batch.items > 0 || written.through != pos {
        flush_traces(
            store,
            sink,
            &resource,
            &mut batch,
            pos,
            &builder,
            &mut written,
            now_ms,
            report,
        )?;
    }
    report.through = written.through;
    report.open = builder.open_count();
    *state = Some(TraceState {
        cursor: written,
        builder,
    });
    export_runs(store, sink, opts, &resource, now_ms, report)
}

#[allow(clippy::too_many_arguments)]
fn flush_traces(
    store: &mut Store,
    sink: &mut dyn Sink,
    resource: &otlp::Resource,
    batch: &mut Batch,
    pos: i64,
    builder: &Builder,
    written: &mut TraceCursor,
    now_ms: i64,
    report: &mut Report,
) -> Result<(), ExportError> {
    if batch.items > 0 {
        let body = otlp::traces_request(resource, &batch.json);
        send(sink, Signal::Traces, &body, batch.items, report)?;
        report.spans += batch.items as u64;
    }
    *batch = Batch::new();
    let next = TraceCursor {
        through: pos,
        open: builder.open_starts().into_iter().collect(),
    };
    if sink.moves_cursor() && next != *written {
        let text = serde_json::to_string(&next).unwrap_or_default();
        q::put_cursor(store, TRACES_STREAM, &text, now_ms)?;
    }
    *written = next;
    Ok(())
}

/// The run stream's cursor: the last run sent, by (finished_ms, run_id).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCursor {
    pub finished_ms: i64,
    pub run_id: String,
}

fn export_runs(
    store: &mut Store,
    sink: &mut dyn Sink,
    opts: &Options,
    resource: &otlp::Resource,
    now_ms: i64,
    report: &mut Report,
) -> Result<(), ExportError> {
    let path = store.path().to_path_buf();
    let mut cursor: RunCursor = read_cursor(store, opts, RUNS_STREAM)?.unwrap_or_default();
    if let Some(since) = opts.since_ms
        && cursor.finished_ms < since
    {
        cursor = RunCursor {
            finished_ms: since,
            run_id: String::new(),
        };
    }
    loop {
        let (spans, last) = {
            let conn = store.reader()?;
            let runs = q::runs_finished_after(
                conn,
                (cursor.finished_ms, &cursor.run_id),
                now_ms - opts.run_settle_ms,
                opts.batch_items,
            )
            .map_err(db(&path, "read"))?;
            let Some(last) = runs.last() else {
                return Ok(());
            };
            let last = RunCursor {
                finished_ms: last.finished_ms,
                run_id: last.run_id.clone(),
            };
            let mut spans = Batch::new();
            for r in &runs {
                let sp = run_span(conn, &opts.privacy, r).map_err(db(&path, "read"))?;
                spans.push(|out| otlp::span(out, &sp));
            }
            (spans, last)
        };
        let body = otlp::traces_request(resource, &spans.json);
        send(sink, Signal::Traces, &body, spans.items, report)?;
        report.spans += spans.items as u64;
        if sink.moves_cursor() {
            let text = serde_json::to_string(&last).unwrap_or_default();
            q::put_cursor(store, RUNS_STREAM, &text, now_ms)?;
        }
        cursor = last;
    }
}

/// Sends the metrics snapshot (one request).
pub fn export_metrics(
    store: &mut Store,
    sink: &mut dyn Sink,
    opts: &Options,
    now_ms: i64,
    report: &mut Report,
) -> Result<(), ExportError> {
    let path = store.path().to_path_buf();
    let resource = otlp::Resource::new(&opts.service_name);
    let metrics = {
        let conn = store.reader()?;
        metrics::snapshot(conn, now_ms).map_err(db(&path, "read"))?
    };
    if metrics.is_empty() {
        return Ok(());
    }
    let mut batch = Batch::new();
    let mut points = 0;
    for m in &metrics {
        points += m.points.len();
        batch.push(|out| otlp::metric(out, m));
    }
    let body = otlp::metrics_request(&resource, &batch.json);
    send(sink, Signal::Metrics, &body, points, report)?;
    report.metric_points += points as u64;
    Ok(())
}

pub const LOG_STREAM: &str = "otlp.logs";
pub const EVENT_LOG_STREAM: &str = "otlp.events";

/// Sends the harness log's new lines, and (with `log_events`) every hook event since its cursor,
/// as log records.
pub fn export_logs(
    store: &mut Store,
    sink: &mut dyn Sink,
    opts: &Options,
    now_ms: i64,
    report: &mut Report,
) -> Result<(), ExportError> {
    let path = store.path().to_path_buf();
    let resource = otlp::Resource::new(&opts.service_name);
    let log = crate::log::path_for(store.path());
    let mut cursor: logs::LogCursor = read_cursor(store, opts, LOG_STREAM)?.unwrap_or_default();
    loop {
        let (lines, next) = logs::read_lines(&log, &cursor, opts.batch_bytes)
            .map_err(|e| ExportError::Store(Error::io("read", &log, e)))?;
        if lines.is_empty() {
            break;
        }
        for chunk in lines.chunks(opts.batch_items) {
            let mut batch = Batch::new();
            for line in chunk {
                let r = logs::problem(line, &opts.privacy, now_ms);
                batch.push(|out| otlp::log_record(out, &r));
            }
            let body = otlp::logs_request(&resource, &batch.json);
            send(sink, Signal::Logs, &body, batch.items, report)?;
            report.log_records += batch.items as u64;
        }
        // A chunk that failed above leaves the cursor at the start of the lines read: some of
        // them may be sent again, none skipped.
        if sink.moves_cursor() && next != cursor {
            let text = serde_json::to_string(&next).unwrap_or_default();
            q::put_cursor(store, LOG_STREAM, &text, now_ms)?;
        }
        cursor = next;
    }
    if !opts.log_events {
        return Ok(());
    }
    let mut after: i64 = read_cursor(store, opts, EVENT_LOG_STREAM)?.unwrap_or(0);
    if let Some(since) = opts.since_ms {
        let conn = store.reader()?;
        after = after.max(q::first_id_at(conn, since).map_err(db(&path, "read"))? - 1);
    }
    loop {
        let page = {
            let conn = store.reader()?;
            q::events_after(conn, after, opts.batch_items).map_err(db(&path, "read"))?
        };
        let Some(last) = page.last().map(|e| e.id) else {
            return Ok(());
        };
        let mut batch = Batch::new();
        for ev in &page {
            let r = logs::event(ev, &opts.privacy, now_ms);
            batch.push(|out| otlp::log_record(out, &r));
        }
        let body = otlp::logs_request(&resource, &batch.json);
        send(sink, Signal::Logs, &body, batch.items, report)?;
        report.log_records += batch.items as u64;
        if sink.moves_cursor() {
            q::put_cursor(store, EVENT_LOG_STREAM, &last.to_string(), now_ms)?;
        }
        after = last;
    }
}
