//! `harness delegate`: hand a task to Gemini CLI and print its answer for Claude (or a person).
//! `harness runs`: the runs so far.
//!
//! The run itself happens in a detached worker (`harness delegate --worker RUN`, its own process
//! group) so that this command can stop waiting after `gemini.wait_secs` without stopping the
//! run; the worker then leaves the answer for the requesting session's next hook.

use std::io::Read;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use agent_harness::error::Error;
use agent_harness::gemini::{self, Mode, Request};
use agent_harness::store::Store;
use agent_harness::store::runs::{self, Run};
use agent_harness::time::now_ms;

use crate::fmt::{Table, col, num};
use crate::{CliError, CliResult, Exit, config, db_path, fmt, open_store, say};

#[derive(clap::Args)]
pub struct Args {
    /// The task (several words are joined); `-` reads it from stdin.
    task: Vec<String>,
    /// Let Gemini edit files in the workspace (no shell), under the harness's file locks.
    #[arg(long)]
    write: bool,
    /// The Gemini model (default: gemini.model, else Gemini CLI's own choice).
    #[arg(long)]
    model: Option<String>,
    /// How long to wait for the answer before leaving the run in the background (seconds).
    #[arg(long)]
    wait: Option<u64>,
    /// The Claude Code session asking (for the brief and for a late answer); default
    /// $CLAUDE_CODE_SESSION_ID.
    #[arg(long)]
    session: Option<String>,
    /// Take the task that /delegate-gemini recorded for the session, instead of TASK.
    #[arg(long)]
    pending: bool,
    /// Print the run as JSON instead of the report.
    #[arg(long)]
    json: bool,
    /// Internal: run a prepared run to its end (the detached worker).
    #[arg(long, hide = true)]
    worker: Option<String>,
}

#[derive(clap::Args)]
pub struct RunsArgs {
    #[command(subcommand)]
    command: Option<RunsCommand>,
    /// How many runs to list.
    #[arg(short = 'n', long, default_value_t = 20)]
    limit: usize,
    /// One JSON object per run.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Subcommand)]
enum RunsCommand {
    /// Everything stored about one run (an id or its first characters).
    Show { run: String },
}

/// How long /delegate-gemini's recorded task stays available to `--pending`.
const PENDING_FRESH_MS: i64 = 10 * 60 * 1000;

pub fn run(args: Args) -> CliResult {
    let config = config()?;
    let db = db_path(&config)?;
    if let Some(run_id) = args.worker {
        let run = gemini::execute(&db, &run_id, &config)?;
        return Ok(if run.status == "success" {
            Exit::Ok
        } else {
            Exit::Failure
        });
    }
    let mut store = open_store()?;
    let session = match requester(&mut store, args.session.as_deref()) {
        Ok(s) => s,
        // From a slash command the refusal is the report (a failing `!` step would abort the
        // command with a bare error).
        Err(CliError::Message(m)) if args.pending => {
            return report_only(&format!("agent-harness: {m}"));
        }
        Err(e) => return Err(e),
    };
    let cwd = std::env::current_dir()?;

    let mut delegation_id = None;
    let (task, write) = if args.pending {
        let Some(session) = &session else {
            return report_only(
                "agent-harness: /delegate-gemini could not tell which session asked (no \
                 --session and no CLAUDE_CODE_SESSION_ID), so it found no task to run.",
            );
        };
        let taken = store.write(|tx| {
            runs::take_delegation(tx, session, now_ms() - PENDING_FRESH_MS, now_ms())
                .map_err(|e| Error::db("take a delegation from", &db, e))
        })?;
        match taken {
            Some((id, task, write)) => {
                delegation_id = Some(id);
                (task, write || args.write)
            }
            None => {
                return report_only(
                    "agent-harness: no /delegate-gemini task is waiting for this session (the \
                     hook that records it did not run: check `harness doctor`).",
                );
            }
        }
    } else {
        let mut task = args.task.join(" ");
        if task == "-" {
            task.clear();
            std::io::stdin().read_to_string(&mut task)?;
        }
        (task, args.write)
    };
    if task.trim().is_empty() {
        let msg = "agent-harness: the task for Gemini is empty; say what Gemini should do \
                   (/delegate-gemini <task>)";
        if args.pending {
            return report_only(msg);
        }
        return Err(CliError::Message(
            "no task: give it as arguments, or `-` to read stdin".into(),
        ));
    }

    let request = Request {
        requester: session,
        task,
        cwd,
        mode: if write { Mode::Write } else { Mode::ReadOnly },
        model: args.model,
    };
    let prepared = gemini::prepare(&mut store, &request, &config)?;
    if let Some(id) = delegation_id {
        store.write(|tx| {
            runs::link_delegation(tx, id, &prepared.run_id)
                .map_err(|e| Error::db("link a delegation in", &db, e))
        })?;
    }
    let worker = spawn_worker(&prepared.run_id)?;
    let wait = Duration::from_secs(args.wait.unwrap_or(config.gemini.wait_secs));
    let run = {
        let _progress = crate::progress::Progress::start("waiting for Gemini CLI");
        wait_for(&mut store, worker, &prepared.run_id, wait)?
    };
    let mut out = fmt::out();
    if args.json {
        out.json(&run_json(&run))?;
    } else {
        out.block(report(&run, config.gemini.result_chars))?;
        if let Some(check) = write_check(&run) {
            out.block(check)?;
        }
    }
    // From a slash command a failure is part of the report (a failing `!` step would abort the
    // command with a bare error); by hand it is the exit code too.
    Ok(if run.status == "error" && !args.pending {
        Exit::Failure
    } else {
        Exit::Ok
    })
}

/// After a `--write` run that changed files: their diff stat, and a request that Claude check
/// Gemini's changes against the task before building on them.
fn write_check(run: &Run) -> Option<String> {
    if run.mode != "write" {
        return None;
    }
    let files: Vec<String> = run
        .files_written
        .as_deref()
        .and_then(|f| serde_json::from_str(f).ok())
        .unwrap_or_default();
    if files.is_empty() {
        return None;
    }
    let cwd = std::path::PathBuf::from(run.cwd.as_deref().unwrap_or("."));
    let stat = agent_harness::review::change::diff_stat(&cwd, &files)
        .unwrap_or_else(|| format!(" {} (not in git: no diff stat)", files.join(", ")));
    Some(format!(
        "Gemini changed files in the workspace:\n{stat}\nBefore building on these changes, \
         check them against the task (`git diff -- {}`): they are another model's work.",
        files.join(" ")
    ))
}

/// The session asking: `--session` (a whole id or a unique prefix of a recorded one), else
/// $CLAUDE_CODE_SESSION_ID as it is. A `--session` that names no recorded session, or several,
/// is refused: a run would get an empty brief and its late answer would reach no one.
fn requester(store: &mut Store, given: Option<&str>) -> CliResult<Option<String>> {
    // An unexpanded `${CLAUDE_SESSION_ID}` from an old Claude Code counts as not given.
    let usable = |s: &str| !s.is_empty() && !s.starts_with("${");
    if let Some(given) = given.filter(|s| usable(s)) {
        return match crate::sessions::resolve_one(store.reader()?, given) {
            Ok(id) => Ok(Some(id)),
            // A whole id the store has not heard of yet (its hooks are not installed, or have
            // not run): nothing to brief from, but a late answer can still find it.
            Err(_) if is_whole_id(given) && query_is_unknown(store, given)? => {
                Ok(Some(given.to_owned()))
            }
            Err(e) => Err(e),
        };
    }
    Ok(std::env::var("CLAUDE_CODE_SESSION_ID")
        .ok()
        .filter(|s| usable(s)))
}

/// Whether `s` has the shape of a whole session id (a UUID: Claude Code's and Gemini CLI's).
fn is_whole_id(s: &str) -> bool {
    s.len() == 36
        && s.char_indices().all(|(i, c)| match i {
            8 | 13 | 18 | 23 => c == '-',
            _ => c.is_ascii_hexdigit(),
        })
}

/// Whether no recorded session has `id` as a prefix (so it names nothing, not several).
fn query_is_unknown(store: &mut Store, id: &str) -> CliResult<bool> {
    Ok(agent_harness::store::query::sessions_with_prefix(store.reader()?, id)?.is_empty())
}

fn report_only(text: &str) -> CliResult {
    fmt::out().block(text)?;
    Ok(Exit::Ok)
}

/// A run's report for people (and for Claude through /delegate-gemini): its error on one line,
/// so that a multi-line error cannot break the report apart, and everything made safe to print.
fn report(run: &Run, cap: usize) -> String {
    let mut shown = run.clone();
    shown.error = shown
        .error
        .as_deref()
        .map(|e| agent_harness::text::one_line(e.trim()));
    gemini::report(&shown, cap)
}

/// Starts `harness delegate --worker RUN` detached: own process group, no terminal, no pipes.
/// It outlives this process when the wait runs out.
fn spawn_worker(run_id: &str) -> CliResult<Child> {
    use std::os::unix::process::CommandExt;
    let exe = std::env::current_exe()?;
    Command::new(exe)
        .args(["delegate", "--worker", run_id])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| CliError::Message(format!("cannot start the Gemini worker: {e}")))
}

/// Waits for the worker to exit or `wait` to pass, then settles, in one transaction with the
/// worker's last write, whether the answer is printed here or left for the requester's next hook.
fn wait_for(store: &mut Store, mut worker: Child, run_id: &str, wait: Duration) -> CliResult<Run> {
    let db = store.path().to_path_buf();
    let deadline = Instant::now() + wait;
    while Instant::now() < deadline {
        if let Ok(Some(_)) = worker.try_wait() {
            break;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    loop {
        let done = |r: &Run| matches!(r.status.as_str(), "success" | "error");
        let decided = store.write(|tx| {
            let wrap = |e| Error::db("read a run from", &db, e);
            let Some(mut run) = runs::get(tx, run_id).map_err(wrap)? else {
                return Ok(None);
            };
            if done(&run) {
                run.waiter = "delivered".into();
            } else if Instant::now() >= deadline {
                run.waiter = "gone".into();
            } else {
                return Ok(None);
            }
            tx.execute(
                "UPDATE runs SET waiter = ?2 WHERE run_id = ?1",
                rusqlite::params![run_id, run.waiter],
            )
            .map_err(wrap)?;
            Ok(Some(run))
        })?;
        if let Some(run) = decided {
            return Ok(run);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn run_json(r: &Run) -> serde_json::Value {
    serde_json::json!({
        "run_id": r.run_id, "requester": r.requester, "task": r.task, "cwd": r.cwd,
        "model": r.model, "models_used": r.models_used, "mode": r.mode, "status": r.status,
        "error_kind": r.error_kind, "error": r.error, "exit_code": r.exit_code,
        "created": fmt::rfc3339(r.created_ms), "duration_ms": r.duration_ms,
        "requests": r.requests, "input_tokens": r.input_tokens, "output_tokens": r.output_tokens,
        "total_tokens": r.total_tokens, "cached_tokens": r.cached_tokens,
        "tool_calls": r.tool_calls,
        "files_written": r.files_written.as_deref().and_then(|f| serde_json::from_str::<serde_json::Value>(f).ok()),
        "retried_with": r.retried_with, "result": r.result,
    })
}

pub fn runs(args: RunsArgs) -> CliResult {
    let mut store = open_store()?;
    let conn = store.reader()?;
    let mut out = fmt::out();
    if let Some(RunsCommand::Show { run }) = args.command {
        let found = runs::with_prefix(conn, &run)?;
        let run = match found.as_slice() {
            [one] => one,
            [] => {
                return Err(CliError::Message(format!(
                    "no run starts with {:?} (see `harness runs`)",
                    agent_harness::text::one_line(&run)
                )));
            }
            _ => {
                return Err(CliError::Message(format!(
                    "{:?} names {} runs; give more of the id",
                    agent_harness::text::one_line(&run),
                    found.len()
                )));
            }
        };
        if args.json {
            out.json(&run_json(run))?;
        } else {
            out.block(report(run, usize::MAX))?;
            say!(out)?;
            out.block(format!("task: {}", run.task))?;
            if let Some(cwd) = &run.cwd {
                say!(out, "cwd: {}", fmt::path(cwd))?;
            }
            if let Some(error) = &run.error
                && error.trim().contains('\n')
            {
                say!(out)?;
                say!(out, "error, whole:")?;
                out.block(indent(error.trim(), "  "))?;
            }
        }
        return Ok(Exit::Ok);
    }
    let rows = runs::recent(conn, args.limit)?;
    if args.json {
        for r in &rows {
            out.json(&run_json(r))?;
        }
        return Ok(Exit::Ok);
    }
    if rows.is_empty() {
        say!(
            out,
            "No Gemini runs yet. /delegate-gemini <task> in Claude Code, or harness delegate <task>."
        )?;
        return Ok(Exit::Ok);
    }
    let now = now_ms();
    for line in runs_table(&rows, now) {
        out.line(line)?;
    }
    Ok(Exit::Ok)
}

/// The `harness runs` listing: one aligned row per run, and under a failed run its error on one
/// indented line.
fn runs_table(rows: &[Run], now: i64) -> Vec<String> {
    let mut table = Table::new(&[
        col("RUN", 15),
        col("STATUS", 13),
        col("MODE", 9),
        col("STARTED", 10),
        num("TOOK", 7),
        num("TOKENS", 9),
        col("TASK", 60),
    ]);
    for r in rows {
        let status = match (r.status.as_str(), r.error_kind.as_deref()) {
            ("error", Some(kind)) => kind.to_owned(),
            (s, _) => s.to_owned(),
        };
        table.row(vec![
            r.run_id.clone(),
            status,
            r.mode.clone(),
            fmt::ago(now, r.created_ms),
            r.duration_ms.map(fmt::span).unwrap_or_else(|| "-".into()),
            r.total_tokens
                .map(|t| t.to_string())
                .unwrap_or_else(|| "-".into()),
            r.task.clone(),
        ]);
    }
    let mut lines = table.lines().into_iter();
    let mut out: Vec<String> = lines.next().into_iter().collect();
    for (r, line) in rows.iter().zip(lines) {
        out.push(line.trim_end().to_owned());
        if r.status == "error"
            && let Some(e) = r.error.as_deref().map(str::trim).filter(|e| !e.is_empty())
        {
            out.push(format!("  ↳ {}", agent_harness::text::fit(e, 100)));
        }
    }
    out
}

/// Every line of `text` with `prefix` in front.
fn indent(text: &str, prefix: &str) -> String {
    text.lines()
        .map(|l| format!("{prefix}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}
