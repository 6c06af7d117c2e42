//! `harness locks`: the files agents hold, and freeing them by hand.

use std::io::Write;
use std::path::PathBuf;

use agent_harness::hook::now_ms;
use agent_harness::policy::file_lock::gone_word;
use agent_harness::store::claims::{self, Held};
use agent_harness::store::query;

use crate::{CliError, CliResult, Exit, fmt, open_store};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// One JSON object per claim.
    #[arg(long)]
    json: bool,
}

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
    let mut out = Vec::new();
    for claim in claims::list(conn)? {
        let gone = claims::holder_gone(conn, &claim.session_id)?;
        out.push(Held { claim, gone });
    }
    Ok(out)
}

pub fn run(args: Args) -> CliResult {
    match args.command {
        None => list(args.json),
        Some(Command::Release(r)) => release(r),
    }
}

fn list(json: bool) -> CliResult {
    let mut store = open_store()?;
    let conn = store.reader()?;
    let now = now_ms();
    let held = all_held(conn)?;
    let mut out = std::io::stdout().lock();
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
            writeln!(out, "{v}")?;
        }
        return Ok(Exit::Ok);
    }
    if held.is_empty() {
        writeln!(out, "No file is claimed.")?;
        return Ok(Exit::Ok);
    }
    writeln!(
        out,
        "{:<8}  {:<6}  {:<6}  {:<9}  {:<10}  {:<8}  PATH",
        "HOLDER", "AGENT", "STATE", "CLAIMED", "LAST WRITE", "LEFT"
    )?;
    for h in &held {
        let c = &h.claim;
        let left = if state(h, now) == "live" {
            fmt::span(c.expires_ms - now)
        } else {
            "-".into()
        };
        writeln!(
            out,
            "{:<8}  {:<6}  {:<6}  {:<9}  {:<10}  {:<8}  {}",
            fmt::short(&c.session_id),
            c.agent,
            state(h, now),
            fmt::ago(now, c.claimed_ms),
            fmt::ago(now, c.touched_ms),
            left,
            fmt::path(&c.path)
        )?;
    }
    Ok(Exit::Ok)
}

fn release(args: ReleaseArgs) -> CliResult {
    let mut store = open_store()?;
    let db = store.path().to_path_buf();
    let now = now_ms();
    let mut out = std::io::stdout().lock();
    if let Some(path) = args.path {
        let cwd = std::env::current_dir()?;
        let path = agent_harness::paths::canonical(cwd.to_str(), &path.to_string_lossy());
        let path = path.to_string_lossy().into_owned();
        let released = store.write(|tx| {
            claims::release_path(tx, &path, "harness-cli", now)
                .map_err(|e| agent_harness::error::Error::db("release a claim in", &db, e))
        })?;
        match released {
            Some(c) => writeln!(
                out,
                "Released {} (held by {} session {}).",
                path,
                c.agent,
                fmt::short(&c.session_id)
            )?,
            None => writeln!(out, "No claim on {path}.")?,
        }
        return Ok(Exit::Ok);
    }
    if let Some(prefix) = args.session {
        let ids = query::sessions_with_prefix(store.reader()?, &prefix)?;
        if ids.is_empty() {
            return Err(CliError::Message(format!(
                "no session starts with {prefix:?} (see `harness sessions`)"
            )));
        }
        if ids.len() > 1 {
            return Err(CliError::Message(format!(
                "{prefix:?} names {} sessions; give more of the id",
                ids.len()
            )));
        }
        let paths = store.write(|tx| {
            claims::release_session(tx, &ids[0], now)
                .map_err(|e| agent_harness::error::Error::db("release claims in", &db, e))
        })?;
        writeln!(
            out,
            "Released {} claim(s) of session {}.",
            paths.len(),
            fmt::short(&ids[0])
        )?;
        for p in paths {
            writeln!(out, "  {}", fmt::path(&p))?;
        }
        return Ok(Exit::Ok);
    }
    let stale: Vec<Held> = all_held(store.reader()?)?
        .into_iter()
        .filter(|h| state(h, now) != "live")
        .collect();
    store.write(|tx| {
        for h in &stale {
            claims::release_path(tx, &h.claim.path, "harness-cli", now)
                .map_err(|e| agent_harness::error::Error::db("release a claim in", &db, e))?;
        }
        Ok(())
    })?;
    writeln!(out, "Released {} stale claim(s).", stale.len())?;
    for h in &stale {
        writeln!(out, "  {} ({})", fmt::path(&h.claim.path), state(h, now))?;
    }
    Ok(Exit::Ok)
}
