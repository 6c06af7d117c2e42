//! Configuration: one JSON file plus environment overrides, with one documented field per knob.
//!
//! The file is `$HARNESS_CONFIG`, else `$XDG_CONFIG_HOME/agent-harness/config.json` (by default
//! `~/.config/agent-harness/config.json`). It is optional; every knob has a default. Unknown
//! keys are errors, so a typo is reported instead of silently ignored. Hooks that meet a broken
//! file fall back to the defaults and log why; the `harness` CLI refuses to run and says what to
//! fix. Environment variables win over the file: `HARNESS_DB` (store path).
//!
//! The file is read like input from outside: a regular file only (opened non-blocking and
//! checked on the opened descriptor, so a FIFO cannot hang a hook and `/dev/zero` cannot grow
//! it), at most [`MAX_CONFIG_BYTES`]. A file that `HARNESS_CONFIG` names must exist: a typo in
//! the variable is reported, not silently replaced by the defaults. `HARNESS_CONFIG=/dev/null`
//! means "no config file".
//!
//! Owns reading and validating settings; must not act on them.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::error::{Error, Result};
use crate::paths;

/// All settings. Every section and field is optional in the file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The SQLite store.
    pub store: StoreConfig,
    /// File locks across agents.
    pub locks: LocksConfig,
    /// Gemini CLI runs (`/delegate-gemini`, `harness delegate`).
    pub gemini: GeminiConfig,
    /// Quota: knowing both providers' headroom and acting before the 429.
    pub quota: QuotaConfig,
    /// `harness statusline`.
    pub statusline: StatuslineConfig,
    /// `/review`: Gemini's critique of Claude's change, and the Stop gate that enforces a REJECT.
    pub review: ReviewConfig,
    /// Delegation advice at UserPromptSubmit.
    pub route: RouteConfig,
    /// `harness export`: sending what the store holds to a team's backend.
    pub export: ExportConfig,
    /// Memory across compaction, sessions and providers.
    pub memory: MemoryConfig,
}

/// `"export": {...}`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExportConfig {
    /// `harness export otlp`: OpenTelemetry over OTLP/HTTP (JSON).
    pub otlp: OtlpConfig,
}

/// `"export": {"otlp": {...}}`. The standard `OTEL_EXPORTER_OTLP_*` variables win over the file;
/// `harness export otlp --endpoint/--header` win over both.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's base URL; `/v1/traces`, `/v1/metrics`, `/v1/logs` are appended. Default:
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`, else `http://localhost:4318`.
    pub endpoint: Option<String>,
    /// Headers sent with every request (an API key for the backend, ...), before those of
    /// `OTEL_EXPORTER_OTLP_HEADERS`. Default none.
    pub headers: std::collections::BTreeMap<String, String>,
    /// One request may take this long, in seconds. Default 10.
    pub timeout_secs: u64,
    /// At most this many spans (or log records) per request. Default 512.
    pub batch_spans: usize,
    /// At most about this many bytes of JSON per request. Default 1048576 (1 MiB).
    pub batch_bytes: usize,
    /// A turn with no Stop yet is exported (ended at its last activity) once an event is recorded
    /// this long after that activity; until then the cursor waits before it. Default 3600 s.
    pub open_turn_secs: u64,
    /// Retries of one request (429, 5xx, no answer) end after this long, in seconds; the cursor
    /// stays put and the next run (or `--follow`'s next round) starts again there. Default 300.
    pub retry_secs: u64,
    /// `--follow`: how often the store is read for new records, in seconds. Default 5.
    pub interval_secs: u64,
    /// Send what people typed (the prompt of each turn, redacted). Default false.
    pub include_prompts: bool,
    /// Send tool inputs (`gen_ai.tool.call.arguments`, redacted). Default false.
    pub include_tool_input: bool,
    /// Send session, run and agent ids as salted SHA-256 hashes. Default false.
    pub hash_ids: bool,
    /// Send file and project paths as salted SHA-256 hashes. Default false.
    pub hash_paths: bool,
    /// The salt of those hashes (the same salt gives the same hash on every machine of a team).
    /// Default `agent-harness`.
    pub hash_salt: String,
    /// Also send every hook event as a log record (name, session, tool; no payload). Default false:
    /// only the problems from the harness log.
    pub log_events: bool,
    /// `service.name` of the resource. Default `agent-harness`.
    pub service_name: String,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        OtlpConfig {
            endpoint: None,
            headers: Default::default(),
            timeout_secs: 10,
            batch_spans: 512,
            batch_bytes: 1024 * 1024,
            open_turn_secs: 3600,
            retry_secs: 300,
            interval_secs: 5,
            include_prompts: false,
            include_tool_input: false,
            hash_ids: false,
            hash_paths: false,
            hash_salt: "agent-harness".into(),
            log_events: false,
            service_name: "agent-harness".into(),
        }
    }
}

/// `"store": {...}`
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// Path of the SQLite file. Default: `$XDG_STATE_HOME/agent-harness/harness.db`
    /// (`~/.local/state/agent-harness/harness.db`). `HARNESS_DB` overrides it.
    pub path: Option<PathBuf>,
    /// How long a hook waits for another process's write lock before it gives up, records the
    /// event in the spool file instead, and lets the session go on. Default 2000 ms.
    pub busy_timeout_ms: u64,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            path: None,
            busy_timeout_ms: 2000,
        }
    }
}

/// `"locks": {...}`: an agent that writes a file takes a claim on it; another live agent's write
/// to that file is denied until the claim is released or lapses.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LocksConfig {
    /// Enforce claims at all. Default true. When false, writes are recorded but never denied.
    pub enabled: bool,
    /// A claim lapses this long after its holder last wrote (or tried to write) the file.
    /// Default 900 s (15 minutes): long enough to cover a run of edits to one file, short enough
    /// that a file an agent moved on from is free again soon.
    pub ttl_secs: u64,
    /// Before denying, wait up to this long for the holder's claim to lapse (only when it lapses
    /// within this time). Default 0: deny at once.
    pub wait_secs: u64,
    /// Release a session's claims when its turn ends (Stop), not only at SessionEnd. Default
    /// false: a turn often ends with the work on a file half done.
    pub release_on_stop: bool,
    /// When the lock check itself fails (store locked, corrupt, ...), deny the write instead of
    /// allowing it. Default false: allow and log. On Claude Code releases that honour a hook's
    /// `onFailure` (2.1.332 on), `harness install` also sets `onFailure: "block"` on the
    /// PreToolUse hook, so that a hook that crashes or times out blocks the write too.
    pub fail_closed: bool,
    /// A claim taken before a write (PreToolUse, before the client asks the user) is provisional
    /// until the write is seen done (PostToolUse), and lapses this long after it was taken if it
    /// never is: a write the user declines must not keep the file from other agents. Freed at
    /// once on PermissionDenied / PostToolUseFailure. Default 120 s; capped at `ttl_secs`.
    pub provisional_secs: u64,
}

impl Default for LocksConfig {
    fn default() -> Self {
        LocksConfig {
            enabled: true,
            ttl_secs: 900,
            wait_secs: 0,
            release_on_stop: false,
            fail_closed: false,
            provisional_secs: 120,
        }
    }
}

/// `"gemini": {...}`: how the harness starts Gemini CLI.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GeminiConfig {
    /// The `gemini` program. Default: the one on PATH.
    pub binary: Option<PathBuf>,
    /// The model to ask for (`-m`). Default: none, so Gemini CLI uses its own setting (`auto`).
    pub model: Option<String>,
    /// After a quota error, one retry with this model. Default `gemini-2.5-flash`; `""` turns the
    /// retry off.
    pub fallback_model: String,
    /// A run is stopped (its whole process group) after this long. Default 600 s.
    pub timeout_secs: u64,
    /// `harness delegate` (and so `/delegate-gemini`) waits this long for the answer; a run that
    /// takes longer goes on in the background and its answer reaches the session on its next
    /// prompt or tool call. Default 90 s (Claude Code gives a slash command's shell step 120 s).
    pub wait_secs: u64,
    /// At most this many runs at once on this machine; others queue. Default 2.
    pub max_concurrent: u32,
    /// How much of Gemini's answer goes back into Claude's context, in characters (the end is
    /// kept; `harness runs show` has all that was stored). Default 6000.
    pub result_chars: usize,
    /// Trust the run's folder (Gemini then loads its `.gemini/` settings, hooks and MCP servers):
    /// `true` always, `false` never (Gemini decides). Default: when Claude Code's trust dialog
    /// was accepted for the folder or Gemini trusts it.
    pub trust_workspace: Option<bool>,
}

impl Default for GeminiConfig {
    fn default() -> Self {
        GeminiConfig {
            binary: None,
            model: None,
            fallback_model: "gemini-2.5-flash".into(),
            timeout_secs: 600,
            wait_secs: 90,
            max_concurrent: 2,
            result_chars: 6000,
            trust_workspace: None,
        }
    }
}

/// `"quota": {...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct QuotaConfig {
    /// Act on quota at all (advice, blocking). Default true; figures are recorded either way.
    pub enabled: bool,
    /// Advise (once per window) when the tighter window of a provider passes this share, in
    /// percent. Default 80.
    pub warn_pct: f64,
    /// Deny the tools in `block_tools` when Claude's window passes this share (official figures
    /// or an actual rate limit only; estimates never block). Default 95.
    pub block_pct: f64,
    /// The costly tools denied at `block_pct`. Default `["Agent", "Task"]` (subagent spawns).
    pub block_tools: Vec<String>,
    /// The Claude plan for estimates from transcripts: `none` (default: estimates are shown as
    /// token counts, never as percentages), `pro`, `max5`, `max20`, or `custom` with the two
    /// budgets below. The presets are rough community figures, not Anthropic's.
    pub plan: String,
    /// Tokens (input + output) per 5-hour block, overriding the plan's.
    pub block_tokens: Option<u64>,
    /// Tokens (input + output) per 7 days, overriding the plan's.
    pub week_tokens: Option<u64>,
    /// Gemini requests per day (Pacific midnight to midnight) the estimate is measured against.
    /// Default 20: the AI Studio free tier's daily limit per project and model for the Flash
    /// models (Gemini 2.5 Flash, 3 Flash) since December 2025, the lowest a working account has.
    /// Google no longer publishes per-model figures (AI Studio's rate-limit page shows a
    /// project's own); set yours, e.g. a paid tier's. Counted from the runs the harness made, the
    /// router's call included: an estimate that advises, while a run's own quota errors (exit
    /// 173) are what marks Gemini out. The personal Google login's 1,000 a day is gone: Gemini CLI
    /// refuses those accounts since 2026-06-18.
    pub gemini_daily_requests: u64,
}

impl Default for QuotaConfig {
    fn default() -> Self {
        QuotaConfig {
            enabled: true,
            warn_pct: 80.0,
            block_pct: 95.0,
            block_tools: vec!["Agent".into(), "Task".into()],
            plan: "none".into(),
            block_tokens: None,
            week_tokens: None,
            gemini_daily_requests: 20,
        }
    }
}

impl QuotaConfig {
    /// (tokens per 5-hour block, tokens per week) for estimates, if a plan or budgets are set.
    pub fn budgets(&self) -> (Option<u64>, Option<u64>) {
        let preset = match self.plan.as_str() {
            "pro" => (Some(44_000), Some(440_000)),
            "max5" => (Some(220_000), Some(2_200_000)),
            "max20" => (Some(880_000), Some(8_800_000)),
            _ => (None, None),
        };
        (
            self.block_tokens.or(preset.0),
            self.week_tokens.or(preset.1),
        )
    }
}

/// `"statusline": {...}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StatuslineConfig {
    /// The line, with `{claude}`, `{gemini}`, `{locks}`, `{ctx}`, `{cost}`, `{model}`, `{cache}`
    /// (a cold prompt cache, or a warm one within 5 minutes of expiring: Claude Code 2.1.332+) and
    /// `{spend}` (a gateway's spend limit); parts that have nothing to show are dropped with their
    /// separator. Default `{claude} · {gemini} · {locks} · {ctx} · {cache} · {spend}`.
    pub format: String,
}

impl Default for StatuslineConfig {
    fn default() -> Self {
        StatuslineConfig {
            format: "{claude} · {gemini} · {locks} · {ctx} · {cache} · {spend}".into(),
        }
    }
}

/// `"route": {...}`: delegation advice. At each prompt a person types, the UserPromptSubmit hook
/// scores the prompt and, when Gemini is the better or the only affordable choice, adds two or
/// three lines to the context saying what to hand over, why, and how. It never blocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RouteConfig {
    /// Score prompts and advise at all. Default true.
    pub enabled: bool,
    /// The score (0 to 1: the classifier's probability that the task suits Gemini, moved by size,
    /// quota and history) at which the note is given. Default 0.5. Higher: fewer, surer notes.
    pub threshold: f64,
    /// Per task type (`codebase`, `research`, `summarise`, `media`, `docs`, `edit`, `debug`,
    /// `refactor`, `tests`, `question`): `gemini` (advise whenever the prompt leans that way),
    /// `claude` (never advise for it) or `auto` (the default: the score decides).
    pub prefer: std::collections::BTreeMap<String, String>,
    /// Words or paths that always keep a prompt on Claude (case-insensitive substrings of the
    /// prompt), e.g. `["secret", "src/billing/"]`. Default none.
    pub keep_on_claude: Vec<String>,
}

impl Default for RouteConfig {
    fn default() -> Self {
        RouteConfig {
            enabled: true,
            threshold: 0.5,
            prefer: Default::default(),
            keep_on_claude: Vec::new(),
        }
    }
}

/// `"memory": {...}`: what the harness remembers (turn summaries, snapshots before a compaction,
/// notes) and hands back: after a compaction (the snapshot), at the start of a session (a brief of
/// the project), and to Gemini CLI at each prompt (what matches it).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryConfig {
    /// Remember and hand back at all. Default true. When false nothing is captured or handed
    /// back; `harness memory` still reads and edits what is stored.
    pub enabled: bool,
    /// The most a hand-back adds to the model's context, in bytes. Default 2048; 256 to 16384.
    pub budget_bytes: usize,
    /// Give a new or resumed session the project's brief. Default true.
    pub brief: bool,
}

impl Default for MemoryConfig {
    fn default() -> Self {
        MemoryConfig {
            enabled: true,
            budget_bytes: 2048,
            brief: true,
        }
    }
}

/// The range `memory.budget_bytes` may take.
pub const MEMORY_BUDGET_RANGE: std::ops::RangeInclusive<usize> = 256..=16_384;

/// `"review": {...}`: `harness review` sends the session's change to Gemini against acceptance
/// criteria; while its verdict is an unresolved REJECT, the session's Stop is blocked (at most
/// `max_rounds` times per review thread). A reviewer that is unavailable never blocks.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReviewConfig {
    /// Gate Stop on reviews at all (and ask for one when the trigger below fires). Default true.
    /// `harness review` still works when false; its verdict just does not block.
    pub enabled: bool,
    /// Stop blocks per review thread (a REJECT, the fixes and re-reviews that follow it) before
    /// the gate lets the turn end and hands the decision to the user. Default 3; at most 6, well
    /// under the 8 consecutive Stop blocks after which Claude Code ends a turn by itself.
    pub max_rounds: u32,
    /// Ask for a review at Stop when the turn wrote a file whose path contains one of
    /// `sensitive_paths`. Default true.
    pub trigger_sensitive: bool,
    /// Path fragments (matched case-insensitively anywhere in the written file's path) that make
    /// a change sensitive. Default: auth, crypto, secret, credential, migration, `.github/
    /// workflows`, `.gitlab-ci`, `deploy`, `Dockerfile`, `.env`.
    pub sensitive_paths: Vec<String>,
    /// Ask for a review at Stop when the turn's file edits add or replace more than this many
    /// lines (counted from the Write/Edit inputs the store holds). Default 0: off.
    pub trigger_changed_lines: u64,
    /// The most of the change (diff text and untracked files) put in the review prompt, in bytes;
    /// what is left out is named in the prompt. Default 200000.
    pub max_change_bytes: usize,
    /// The most files named in one review; the rest are listed as left out. Default 200.
    pub max_files: usize,
    /// The most of one untracked file's text put in the prompt, in bytes. Default 20000.
    pub max_untracked_file_bytes: usize,
    /// How long one reviewer run may take, in seconds (the repair retry gets the same). Default
    /// 100: the model runs `harness review` through its Bash tool, which stops a command after
    /// 120 s unless told otherwise.
    pub timeout_secs: u64,
}

impl Default for ReviewConfig {
    fn default() -> Self {
        ReviewConfig {
            enabled: true,
            max_rounds: 3,
            trigger_sensitive: true,
            sensitive_paths: [
                "auth",
                "crypto",
                "secret",
                "credential",
                "migration",
                ".github/workflows",
                ".gitlab-ci",
                "deploy",
                "dockerfile",
                ".env",
            ]
            .map(String::from)
            .to_vec(),
            trigger_changed_lines: 0,
            max_change_bytes: 200_000,
            max_files: 200,
            max_untracked_file_bytes: 20_000,
            timeout_secs: 100,
        }
    }
}

/// The most `review.max_rounds` may be: Claude Code ends a turn after 8 consecutive Stop blocks
/// by itself, and the gate must end the loop well before, by its own count.
pub const MAX_REVIEW_ROUNDS: u32 = 6;

impl Config {
    /// Where the config file is looked for.
    pub fn file_path() -> Option<PathBuf> {
        std::env::var_os("HARNESS_CONFIG")
            .map(PathBuf::from)
            .or_else(|| paths::config_home().map(|d| d.join("agent-harness/config.json")))
    }

    /// Reads the config file if it exists. A missing default file is the defaults; a missing
    /// file that `HARNESS_CONFIG` names, an unreadable or an invalid one is an error naming the
    /// file and the problem.
    pub fn load() -> Result<Config> {
        let named = std::env::var_os("HARNESS_CONFIG").is_some_and(|v| !v.is_empty());
        match Config::file_path() {
            Some(path) if named => Config::load_named(&path),
            Some(path) => Config::load_from(&path),
            None => Ok(Config::default()),
        }
    }

    /// [`Config::load_from`] for a file the user named: it must exist.
    pub fn load_named(path: &Path) -> Result<Config> {
        // The conventional "no file" (as GIT_CONFIG=/dev/null): not a regular file, but meant.
        if path == Path::new("/dev/null") {
            return Ok(Config::default());
        }
        if std::fs::symlink_metadata(path).is_err_and(|e| e.kind() == std::io::ErrorKind::NotFound)
        {
            return Err(Error::io(
                "read config file",
                path,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "HARNESS_CONFIG names it, but it does not exist (create it, or unset \
                     HARNESS_CONFIG for the default place)",
                ),
            ));
        }
        Config::load_from(path)
    }

    pub fn load_from(path: &Path) -> Result<Config> {
        let text = match read_bounded(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Config::default()),
            Err(e) => return Err(Error::io("read config file", path, e)),
        };
        if text.trim().is_empty() {
            return Ok(Config::default());
        }
        let config: Config = serde_json::from_str(&text).map_err(|e| Error::Config {
            path: path.to_path_buf(),
            message: explain(&text, &e),
        })?;
        config.validate().map_err(|message| Error::Config {
            path: path.to_path_buf(),
            message,
        })?;
        Ok(config)
    }

    /// Checks what the types cannot: ranges and names.
    pub fn validate(&self) -> Result<(), String> {
        let q = &self.quota;
        if !["none", "pro", "max5", "max20", "custom"].contains(&q.plan.as_str()) {
            return Err(format!(
                "quota.plan must be one of none, pro, max5, max20, custom (got {:?})",
                q.plan
            ));
        }
        if q.plan == "custom" && q.block_tokens.is_none() && q.week_tokens.is_none() {
            return Err(
                "quota.plan \"custom\" needs quota.block_tokens or quota.week_tokens".into(),
            );
        }
        if !(q.warn_pct > 0.0 && q.warn_pct <= q.block_pct) {
            return Err(format!(
                "quota.warn_pct ({}) must be above 0 and at most quota.block_pct ({})",
                q.warn_pct, q.block_pct
            ));
        }
        if self.locks.ttl_secs == 0 || self.locks.ttl_secs > 7 * 86_400 {
            return Err("locks.ttl_secs must be between 1 and 604800 (a week)".into());
        }
        // A hook that outlives its client's timeout (30 s as installed) is killed, and a killed
        // hook never blocks: waits must end well before that.
        if self.locks.wait_secs > MAX_LOCK_WAIT_SECS {
            return Err(format!(
                "locks.wait_secs must be at most {MAX_LOCK_WAIT_SECS} (the hooks' timeout is 30 s)"
            ));
        }
        if self.store.busy_timeout_ms > MAX_BUSY_TIMEOUT_MS {
            return Err(format!(
                "store.busy_timeout_ms must be at most {MAX_BUSY_TIMEOUT_MS} (the hooks' timeout is 30 s)"
            ));
        }
        if self.review.max_rounds == 0 || self.review.max_rounds > MAX_REVIEW_ROUNDS {
            return Err(format!(
                "review.max_rounds must be between 1 and {MAX_REVIEW_ROUNDS} (Claude Code ends a \
                 turn after 8 Stop blocks by itself)"
            ));
        }
        if self.review.timeout_secs == 0 {
            return Err("review.timeout_secs must be at least 1".into());
        }
        let r = &self.route;
        if !(r.threshold > 0.0 && r.threshold <= 1.0) {
            return Err(format!(
                "route.threshold must be above 0 and at most 1 (got {})",
                r.threshold
            ));
        }
        for (ty, pref) in &r.prefer {
            if crate::route::TaskType::parse(ty).is_none() {
                return Err(format!(
                    "route.prefer: unknown task type {ty:?} (codebase, research, summarise, media, \
                     docs, edit, debug, refactor, tests, question)"
                ));
            }
            if !["gemini", "claude", "auto"].contains(&pref.as_str()) {
                return Err(format!(
                    "route.prefer.{ty} must be gemini, claude or auto (got {pref:?})"
                ));
            }
        }
        let o = &self.export.otlp;
        if o.batch_spans == 0 || o.batch_spans > 100_000 {
            return Err("export.otlp.batch_spans must be between 1 and 100000".into());
        }
        if o.batch_bytes < 4096 {
            return Err("export.otlp.batch_bytes must be at least 4096".into());
        }
        if o.timeout_secs == 0 || o.interval_secs == 0 || o.open_turn_secs == 0 {
            return Err(
                "export.otlp.timeout_secs, interval_secs and open_turn_secs must be at least 1"
                    .into(),
            );
        }
        if let Some(e) = &o.endpoint
            && !(e.starts_with("http://") || e.starts_with("https://"))
        {
            return Err(format!(
                "export.otlp.endpoint must be an http:// or https:// URL (got {e:?})"
            ));
        }
        if !MEMORY_BUDGET_RANGE.contains(&self.memory.budget_bytes) {
            return Err(format!(
                "memory.budget_bytes must be between {} and {} (got {})",
                MEMORY_BUDGET_RANGE.start(),
                MEMORY_BUDGET_RANGE.end(),
                self.memory.budget_bytes
            ));
        }
        if self.gemini.max_concurrent == 0 || self.gemini.timeout_secs == 0 {
            return Err("gemini.max_concurrent and gemini.timeout_secs must be at least 1".into());
        }
        Ok(())
    }

    /// The store's path: `HARNESS_DB`, else the config's `store.path`, else the XDG default.
    pub fn db_path(&self) -> Result<PathBuf> {
        if let Some(p) = std::env::var_os("HARNESS_DB").filter(|p| !p.is_empty()) {
            return Ok(PathBuf::from(p));
        }
        if let Some(p) = &self.store.path {
            return Ok(p.clone());
        }
        default_db_path()
    }
}

/// The largest config file read: far above any real one (a few hundred bytes).
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;

fn read_bounded(path: &Path) -> std::io::Result<String> {
    read_regular_file(path, MAX_CONFIG_BYTES)
}

/// The text of a regular file of at most `max` bytes, opened without blocking (a FIFO's open
/// would wait for a writer) and checked on the opened descriptor (no stat-then-open race). For
/// every small settings-like file the harness reads.
pub fn read_regular_file(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Error as IoError, ErrorKind, Read};
    let (file, _) = crate::private_file::open_regular(path)?;
    let mut bytes = Vec::new();
    file.take(max + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > max {
        return Err(IoError::new(
            ErrorKind::InvalidData,
            format!("larger than {} KiB; a config is a few lines", max / 1024),
        ));
    }
    String::from_utf8(bytes).map_err(|_| IoError::new(ErrorKind::InvalidData, "not UTF-8 text"))
}

/// The longest `locks.wait_secs`: with two store waits at most, a hook still ends well inside
/// the 30 s timeout `harness install` gives it.
pub const MAX_LOCK_WAIT_SECS: u64 = 10;
/// The longest `store.busy_timeout_ms`.
pub const MAX_BUSY_TIMEOUT_MS: u64 = 5000;

/// `$XDG_STATE_HOME/agent-harness/harness.db`.
pub fn default_db_path() -> Result<PathBuf> {
    paths::default_state_dir()
        .map(|d| d.join("harness.db"))
        .ok_or(Error::NoStateDir)
}

/// A config parse error for people: the key it is about (`locks.ttl_secs`) before serde's
/// message, and the types in words (`a whole number`, not `u64`).
fn explain(text: &str, e: &serde_json::Error) -> String {
    let mut message = e.to_string();
    for (rust, words) in [
        ("expected u64", "expected a whole number"),
        ("expected u32", "expected a whole number"),
        ("expected u16", "expected a whole number"),
        ("expected u8", "expected a whole number"),
        ("expected usize", "expected a whole number"),
        ("expected i64", "expected a whole number"),
        ("expected i32", "expected a whole number"),
        ("expected f64", "expected a number"),
        ("expected f32", "expected a number"),
        ("expected a boolean", "expected true or false"),
        ("expected a sequence", "expected a list"),
        ("expected a map", "expected an object"),
    ] {
        message = message.replace(rust, words);
    }
    if e.is_data()
        && let Some(key) = key_at(text, e.line(), e.column())
    {
        return format!("{key}: {message}");
    }
    message
}

/// The dotted key whose value sits at `line`:`column` (1-based, as serde_json counts) of a JSON
/// text, found by a small scan that tracks objects, arrays and the last key read.
fn key_at(text: &str, line: usize, column: usize) -> Option<String> {
    // Byte offset of the position.
    let mut offset = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line {
            offset += column.min(l.len());
            break;
        }
        offset += l.len();
    }
    enum Frame {
        Object(Option<String>),
        Array(usize),
    }
    let mut stack: Vec<Frame> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    let mut last_string: Option<String> = None;
    while i < bytes.len() && i < offset {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                last_string = text.get(start..i.min(bytes.len())).map(str::to_owned);
            }
            b':' => {
                if let Some(Frame::Object(key)) = stack.last_mut() {
                    *key = last_string.take();
                }
            }
            b',' => match stack.last_mut() {
                Some(Frame::Object(key)) => *key = None,
                Some(Frame::Array(n)) => *n += 1,
                None => {}
            },
            b'{' => stack.push(Frame::Object(None)),
            b'[' => stack.push(Frame::Array(0)),
            b'}' | b']' => {
                stack.pop();
            }
            _ => {}
        }
        i += 1;
    }
    let parts: Vec<String> = stack
        .iter()
        .filter_map(|f| match f {
            Frame::Object(Some(k)) => Some(k.clone()),
            Frame::Object(None) => None,
            Frame::Array(n) => Some(n.to_string()),
        })
        .collect();
    (!parts.is_empty()).then(|| parts.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(name: &str, text: &str) -> PathBuf {
        let path =
            std::env::temp_dir().join(format!("ah-config-{name}-{}.json", std::process::id()));
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn missing_and_empty_files_are_defaults() {
        let c = Config::load_from(Path::new("/nonexistent/config.json")).unwrap();
        assert_eq!(c.store.busy_timeout_ms, 2000);
        let p = write("empty", "  \n");
        assert_eq!(Config::load_from(&p).unwrap().store.busy_timeout_ms, 2000);
    }

    #[test]
    fn a_fifo_a_device_or_a_huge_file_is_refused_without_hanging() {
        // Before: a FIFO hung the reader until a writer came; /dev/zero grew without end.
        let fifo = std::env::temp_dir().join(format!("ah-config-fifo-{}", std::process::id()));
        let _ = std::fs::remove_file(&fifo);
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let huge = write("huge", &" ".repeat(MAX_CONFIG_BYTES as usize + 1));
        for (path, says) in [
            (fifo.clone(), "not a regular file"),
            (PathBuf::from("/dev/zero"), "not a regular file"),
            (huge, "larger than 1024 KiB"),
        ] {
            let (tx, rx) = std::sync::mpsc::channel();
            let p = path.clone();
            std::thread::spawn(move || {
                let _ = tx.send(Config::load_named(&p).map(|_| ()));
            });
            let got = rx
                .recv_timeout(std::time::Duration::from_secs(5))
                .unwrap_or_else(|_| panic!("reading {} blocked", path.display()));
            let msg = got.unwrap_err().to_string();
            assert!(msg.contains(says), "{}: {msg}", path.display());
            assert!(msg.contains(path.to_str().unwrap()), "{msg}");
        }
        let _ = std::fs::remove_file(&fifo);
    }

    #[test]
    fn a_named_file_that_does_not_exist_is_an_error_and_dev_null_is_no_file() {
        let msg = Config::load_named(Path::new("/nonexistent/config.json"))
            .unwrap_err()
            .to_string();
        assert!(msg.contains("/nonexistent/config.json"), "{msg}");
        assert!(msg.contains("does not exist"), "{msg}");
        let c = Config::load_named(Path::new("/dev/null")).unwrap();
        assert_eq!(c.store.busy_timeout_ms, 2000);
    }

    #[test]
    fn partial_files_keep_other_defaults() {
        let p = write("partial", r#"{"store": {"busy_timeout_ms": 50}}"#);
        let c = Config::load_from(&p).unwrap();
        assert_eq!(c.store.busy_timeout_ms, 50);
        assert!(c.store.path.is_none());
    }

    #[test]
    fn unknown_keys_and_bad_json_name_the_file_and_the_problem() {
        let p = write("typo", r#"{"store": {"busy_timeout": 50}}"#);
        let msg = Config::load_from(&p).unwrap_err().to_string();
        assert!(msg.contains(p.to_str().unwrap()), "{msg}");
        assert!(msg.contains("unknown field `busy_timeout`"), "{msg}");

        let p = write("plan", r#"{"quota": {"plan": "max200"}}"#);
        let msg = Config::load_from(&p).unwrap_err().to_string();
        assert!(msg.contains("quota.plan must be one of"), "{msg}");
        let p = write("pcts", r#"{"quota": {"warn_pct": 99, "block_pct": 90}}"#);
        assert!(
            Config::load_from(&p)
                .unwrap_err()
                .to_string()
                .contains("warn_pct")
        );

        let p = write("bad", "{ nope");
        let msg = Config::load_from(&p).unwrap_err().to_string();
        assert!(msg.contains("config file"), "{msg}");
        assert!(msg.contains("line 1"), "{msg}");
    }

    #[test]
    fn a_type_error_names_its_key_in_words() {
        let text = r#"{"store": {"busy_timeout_ms": 5}, "locks": {"ttl_secs": "15m"}}"#;
        let e = serde_json::from_str::<Config>(text).unwrap_err();
        let m = explain(text, &e);
        assert!(m.starts_with("locks.ttl_secs: invalid type: string"), "{m}");
        assert!(m.contains("expected a whole number"), "{m}");
        let text = "{\n  \"locks\": {\n    \"ttl\": 3\n  }\n}";
        let e = serde_json::from_str::<Config>(text).unwrap_err();
        assert!(
            explain(text, &e).starts_with("locks: unknown field `ttl`"),
            "{}",
            explain(text, &e)
        );
        assert_eq!(
            key_at(r#"{"a": [1, {"b": "x"}]}"#, 1, 18).as_deref(),
            Some("a.1.b")
        );
    }
}
