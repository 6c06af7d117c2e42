//! `harness locks`: the files agents hold, their history (taken, taken over, released, denied),
//! and freeing them by hand.

use std::path::PathBuf;

use agent_harness::hook::now_ms;
use agent_harness::policy::file_lock::gone_word;
use agent_harness::store::claims::{self, Held};
use agent_harness::store::query::{self, LockLogFilter, LockLogRow};

use crate::fmt::{Col, Table, col};
use crate::{CliResult, Exit, fmt, open_store, say};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// One JSON object per claim (or per history entry).
    #[arg(long)]
    json: bool,
    /// The history instead: claims taken, taken over, released and denied, oldest first.
    #[arg(long)]
    history: bool,
    /// With --history: how many of the newest entries to show.
    #[arg(short = 'n', long, default_value_t = 30, requires = "history")]
    limit: usize,
    /// With --history: only entries of this session (an id or its first characters), as the
    /// one acting or the other holder.
    #[arg(short, long, requires = "history")]
    session: Option<String>,
    /// With --history: only entries since a span ago (10m, 2h, 7d) or a time.
    #[arg(long, requires = "history")]
    since: Option<String>,
}

/// Who a release by hand is logged as, in the lock history's `session_id`.
const CLI_ACTOR: &str = "harness-cli";

#[derive(clap::Subcommand)]
enum Command {
    /// Free files: one path, every claim of a session, or every stale claim.
    Release(ReleaseArgs),
}

#[derive(clap::Args)]
#[group(required = true, multiple = false)]
struct ReleaseArgs {
    /// The file to free (relative paths are taken from the current directory).
    path: Option<PathBuf>,
    /// Free every file this session holds (an id or its first characters).
    #[arg(long)]
    session: Option<String>,
    /// Free every claim that lapsed or whose holder ended or exited.
    #[arg(long)]
    stale: bool,
}

/// `live`, `lapsed`, `ended` or `exited`.
fn state(h: &Held, now: i64) -> &'static str {
    match h.gone {
        Some(g) => gone_word(g),
        None if h.claim.expires_ms <= now => "lapsed",
        None => "live",
    }
}

fn all_held(conn: &rusqlite::Connection) -> CliResult<Vec<Held>> {
    Ok(claims::list_held(conn)?)
}

pub fn run(args: Args) -> CliResult {
    match args.command {
        None if args.history => history(&args),
        None => list(args.json),
        Some(Command::Release(r)) => release(r),
    }
}

/// The session a lock log entry names, shortened, or `by hand` for the CLI.
fn who(session: &str) -> String {
    if session == CLI_ACTOR {
        "by hand".into()
    } else {
        fmt::short(session).to_owned()
    }
}

/// An entry of the lock history for people: what happened, to whom, and a note naming the other
/// holder.
fn describe(r: &LockLogRow) -> (&'static str, String, String) {
    let other = r.other.as_deref().map(who).unwrap_or_else(|| "?".into());
    match r.action.as_str() {
        "grant" => ("taken", who(&r.session_id), String::new()),
        "deny" => ("denied", who(&r.session_id), format!("held by {other}")),
        "lapse" => (
            "taken over",
            who(&r.session_id),
            format!("from {other} (its claim lapsed)"),
        ),
        "orphan" => (
            "taken over",
            who(&r.session_id),
            format!("from {other} (its session ended or exited)"),
        ),
        "release" if r.session_id == CLI_ACTOR => {
            ("released", other, "by hand (harness locks release)".into())
        }
        "release" => ("released", who(&r.session_id), String::new()),
        "refused" => (
            "freed",
            who(&r.session_id),
            "its write never happened (declined or refused)".into(),
        ),
        _ => ("other", who(&r.session_id), r.action.clone()),
    }
}

const HISTORY_COLUMNS: [Col; 5] = [
    col("TIME", 11),
    col("ACTION", 10),
    col("SESSION", 8),
    col("PATH", 70),
    col("NOTE", 60),
];

fn history(args: &Args) -> CliResult {
    let mut store = open_store()?;
    let conn = store.reader()?;
    let now = now_ms();
    let mut filter = LockLogFilter {
        sessions: None,
        since_ms: args
            .since
            .as_deref()
            .map(|s| fmt::parse_since(s, now))
            .transpose()?,
    };
    if let Some(prefix) = &args.session {
        filter.sessions = Some(crate::events::resolve_session(conn, prefix)?);
    }
    let rows = query::lock_history(conn, &filter, args.limit)?;
    let mut out = fmt::out();
    if args.json {
        for r in &rows {
            out.json(&serde_json::json!({
                "id": r.id, "time": fmt::rfc3339(r.ts_ms), "ts_ms": r.ts_ms, "path": r.path,
                "session_id": r.session_id, "action": r.action, "other": r.other,
            }))?;
        }
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        say!(
            out,
            "No lock history yet: no agent has taken, released or been denied a file."
        )?;
        return Ok(Exit::Ok);
    }
    let mut table = Table::new(&HISTORY_COLUMNS);
    for (i, r) in rows.iter().enumerate() {
        // A take-over is logged as itself and then as the grant it led to: one row for people.
        let took_over = |p: &LockLogRow| {
            matches!(p.action.as_str(), "lapse" | "orphan")
                && (p.ts_ms, &p.path, &p.session_id) == (r.ts_ms, &r.path, &r.session_id)
        };
        if r.action == "grant" && i > 0 && took_over(&rows[i - 1]) {
            continue;
        }
        let (action, session, note) = describe(r);
        table.row(vec![
            fmt::clock(r.ts_ms),
            action.into(),
            session,
            fmt::path(&r.path),
            note,
        ]);
    }
    table.print(&mut out)?;
    Ok(Exit::Ok)
}

fn list(json: bool) -> CliResult {
    let mut store = open_store()?;
    let conn = store.reader()?;
    let now = now_ms();
    let held = all_held(conn)?;
    let mut out = fmt::out();
    if json {
        for h in &held {
            let c = &h.claim;
            let v = serde_json::json!({
                "path": c.path, "session_id": c.session_id, "agent": c.agent,
                "project_root": c.project_root, "tool_name": c.tool_name,
                "state": state(h, now),
                "claimed": fmt::rfc3339(c.claimed_ms), "last_write": fmt::rfc3339(c.touched_ms),
                "expires": fmt::rfc3339(c.expires_ms),
                "seconds_left": ((c.expires_ms - now) / 1000).max(0),
            });
            out.json(&v)?;
        }
        return Ok(Exit::Ok);
    }
    if held.is_empty() {
        say!(
            out,
            "No file is claimed. (`harness locks --history` shows past claims and denials.)"
        )?;
        return Ok(Exit::Ok);
    }
    let mut table = Table::new(&[
        col("HOLDER", 8),
        col("AGENT", 6),
        col("STATE", 6),
        col("CLAIMED", 10),
        col("LAST WRITE", 10),
        col("LEFT", 8),
        col("PATH", 200),
    ]);
    for h in &held {
        let c = &h.claim;
        let left = if state(h, now) == "live" {
            fmt::span(c.expires_ms - now)
        } else {
            "-".into()
        };
        table.row(vec![
            fmt::short(&c.session_id).to_owned(),
            c.agent.clone(),
            state(h, now).into(),
            fmt::ago(now, c.claimed_ms),
            fmt::ago(now, c.touched_ms),
            left,
            fmt::path(&c.path),
        ]);
    }
    table.print(&mut out)?;
    Ok(Exit::Ok)
}

fn release(args: ReleaseArgs) -> CliResult {
    let mut store = open_store()?;
    let db = store.path().to_path_buf();
    let now = now_ms();
    let mut out = fmt::out();
    if let Some(path) = args.path {
        let cwd = std::env::current_dir()?;
        let path = agent_harness::paths::canonical(cwd.to_str(), &path.to_string_lossy());
        let path = path.to_string_lossy().into_owned();
        let released = store.write(|tx| {
            claims::release_path(tx, &path, CLI_ACTOR, now)
                .map_err(|e| agent_harness::error::Error::db("release a claim in", &db, e))
        })?;
        match released {
            Some(c) => say!(
                out,
                "Released {} (held by {} session {}).",
                path,
                c.agent,
                fmt::short(&c.session_id)
            )?,
            None => say!(out, "No claim on {path}.")?,
        }
        return Ok(Exit::Ok);
    }
    if let Some(prefix) = args.session {
        let id = crate::sessions::resolve_one(store.reader()?, &prefix)?;
        let paths = store.write(|tx| {
            claims::release_session(tx, &id, now)
                .map_err(|e| agent_harness::error::Error::db("release claims in", &db, e))
        })?;
        say!(
            out,
            "Released {} claim(s) of session {}.",
            paths.len(),
            fmt::short(&id)
        )?;
        for p in paths {
            say!(out, "  {}", fmt::path(&p))?;
        }
        return Ok(Exit::Ok);
    }
    let stale: Vec<Held> = all_held(store.reader()?)?
        .into_iter()
        .filter(|h| state(h, now) != "live")
        .collect();
    store.write(|tx| {
        for h in &stale {
            claims::release_path(tx, &h.claim.path, CLI_ACTOR, now)
                .map_err(|e| agent_harness::error::Error::db("release a claim in", &db, e))?;
        }
        Ok(())
    })?;
    say!(out, "Released {} stale claim(s).", stale.len())?;
    for h in &stale {
        say!(out, "  {} ({})", fmt::path(&h.claim.path), state(h, now))?;
    }
    Ok(Exit::Ok)
}
