//! The one hook driver: stdin → event → store → policies → decision → output.
//!
//! Every `harness-*` hook binary is `hook::run(<its name>)`. The binary's name only labels errors;
//! what happens is decided by the payload's `hook_event_name`, so a binary wired to the wrong
//! event (a misconfigured matcher) still records the event it was given.
//!
//! Fail mode, for every hook: recording never breaks a session. Whatever goes wrong (no input,
//! broken JSON, a payload over the read bound, a broken config file, a store that is locked,
//! corrupt, unwritable or full, a panic), the hook exits 0, writes one line starting
//! `agent-harness:` to stderr, and appends the problem to the log beside the store. An event that
//! cannot be stored waits in the spool (see `store::spool`); a corrupt store is moved aside and
//! recreated. stdout carries one JSON object or nothing.

use std::io::{IsTerminal, Write};
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

mod respond;

use crate::config::Config;
use crate::decision::{self, Decision};
use crate::error::{Error, Result};
use crate::event::{Event, Kind};
use crate::payload::{self, HookPayload};
use crate::process;
use crate::quota::ingest;
use crate::store::record::Recording;
use crate::store::{Store, spool};

use respond::Response;

pub use crate::time::now_ms;

/// What one hook call leaves behind besides the store: its stdout, and problems to report.
#[derive(Default)]
struct Outcome {
    stdout: Option<String>,
    problems: Vec<String>,
    /// Where to log problems, once the store's path is known.
    log: Option<PathBuf>,
    /// Set while checking a file write that the user wants denied when the check fails
    /// (`locks.fail_closed`): the event to answer with that deny.
    fail_closed: Option<(Kind, String)>,
}

/// The deny given when a fail-closed lock check could not be made.
fn fail_closed_deny(problem: &str) -> Decision {
    Decision::Deny(format!(
        "agent-harness could not check the file lock for this write ({problem}), and \
         locks.fail_closed is set, so the write is denied. Ask the user to run `harness doctor`."
    ))
}

/// Runs one hook call. Always returns success; see the module docs for the fail mode.
pub fn run(binary: &str) -> ExitCode {
    crate::store::tune_for_short_process();
    // A panic is reported as one line below, not as the default multi-line message.
    panic::set_hook(Box::new(|_| {}));
    let mut outcome = Outcome::default();
    let result = panic::catch_unwind(AssertUnwindSafe(|| drive(binary, &mut outcome)));
    let failure = match result {
        Ok(Ok(())) => None,
        Ok(Err(e)) => Some(e.to_string()),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            Some(Error::Panic(msg).to_string())
        }
    };
    if let Some(problem) = failure {
        if let Some((kind, event)) = &outcome.fail_closed {
            outcome.stdout = decision::render(&fail_closed_deny(&problem), *kind, event);
        }
        outcome.problems.push(problem);
    }
    if let Some(out) = &outcome.stdout {
        // A closed stdout (the client gave up waiting) is not a failure.
        let mut stdout = std::io::stdout().lock();
        let _ = stdout
            .write_all(out.as_bytes())
            .and_then(|_| stdout.write_all(b"\n"))
            .and_then(|_| stdout.flush());
    }
    if !outcome.problems.is_empty() {
        report(binary, &outcome);
    }
    // For `cargo bench --bench concurrency`: how long this call held the store's write lock.
    if std::env::var_os("AGENT_HARNESS_TRACE_HOLD").is_some() {
        let hold = crate::store::longest_hold().as_micros();
        let _ = writeln!(
            std::io::stderr().lock(),
            "agent-harness-trace: hold_us={hold} work_hold_us={} reset_us={} resets={} waits={} \
             preempted={} blocked={}",
            crate::store::longest_work_hold().as_micros(),
            crate::store::longest_wal_reset().as_micros(),
            crate::store::wal_resets(),
            crate::store::busy_waits(),
            crate::store::preempted_holds(),
            crate::store::blocked_holds()
        );
    }
    ExitCode::SUCCESS
}

/// One stderr line, and the same problems in the log.
fn report(binary: &str, outcome: &Outcome) {
    let text = outcome.problems.join("; ");
    let log = outcome
        .log
        .clone()
        .unwrap_or_else(crate::log::fallback_path);
    let suffix = match crate::log::append_or_fallback(&log, binary, &text) {
        Some(written) => format!(" (logged to {})", written.display()),
        None => format!(" (could not write the log {})", log.display()),
    };
    let line = format!("agent-harness: {binary}: {text}{suffix}").replace('\n', " ");
    let _ = writeln!(std::io::stderr().lock(), "{line}");
}

fn drive(binary: &str, out: &mut Outcome) -> Result<()> {
    let config = Config::load().unwrap_or_else(|e| {
        out.problems.push(format!("{e}; using defaults"));
        Config::default()
    });
    let db = config.db_path()?;
    out.log = Some(crate::log::path_for(&db));

    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Err(payload::PayloadError::Empty.into());
    }
    let input = payload::read_bounded(stdin.lock(), payload::MAX_PAYLOAD_BYTES)
        .map_err(|e| Error::io("read", "stdin", e))?;
    let now = now_ms();
    let busy = Duration::from_millis(config.store.busy_timeout_ms);

    // Past the read-through bound, the small fields come from the prefix: a Write of any size
    // still meets the file locks.
    let salvaged = match (input.skeleton_cut, &input.skeleton) {
        (true, None) => payload::salvage_skeleton(&input.bytes),
        _ => None,
    };
    let skeleton = match (input.truncated, input.skeleton.or(salvaged)) {
        (false, _) => None,
        (true, Some(skeleton)) if HookPayload::view(&skeleton).is_some() => Some(skeleton),
        (true, _) => {
            // Not even the small fields could be read: record what the prefix shows.
            let agent = if payload::salvage_field(&input.bytes, "timestamp").is_some() {
                "gemini"
            } else {
                "claude"
            };
            let rec = Recording::truncated(
                &input.bytes,
                input.total_len,
                binary_event(binary),
                agent,
                now,
            );
            out.problems.push(format!(
                "hook input of {} bytes is over the {} byte bound and not a readable hook \
                 payload; recorded as truncated",
                input.total_len,
                payload::MAX_PAYLOAD_BYTES
            ));
            store_recording(&db, busy, &rec, None, &[], out, |_, _, _| Ok(()));
            return Ok(());
        }
    };

    // Test-only: lets the test suite prove that a panic fails open (`parse`), and that one in a
    // fail-closed lock check denies (`lock-check`). One getenv per call.
    let inject_panic = std::env::var("AGENT_HARNESS_TEST_PANIC").ok();
    if inject_panic.as_deref() == Some("parse") {
        panic!("panic injected by AGENT_HARNESS_TEST_PANIC");
    }
    // A payload over the bound is answered from its small fields (a huge Write still meets the
    // file locks) and stored as its redacted prefix.
    let value = match skeleton {
        Some(skeleton) => skeleton,
        None => payload::parse(&input.bytes)?,
    };
    let Some(payload) = HookPayload::view(&value) else {
        return Err(payload::PayloadError::NoEventName.into());
    };
    let event = Event::reduce(payload);
    let client = if event.kind == Kind::SessionStart {
        process::client_process()
    } else {
        None
    };
    let mut rec = Recording::of(&event, now, client);
    if input.truncated {
        rec.keep_prefix(&input.bytes, input.total_len);
    }
    // Read before the write transaction: it is bounded, but it looks paths up on disk.
    let pre = respond::Prepared::of(&event, &config, rec.project_root.as_deref());
    if respond::is_enforced_write(&event, &config, pre.shell.as_ref()) && config.locks.fail_closed {
        out.fail_closed = Some((event.kind, payload.hook_event_name.to_owned()));
    }
    if input.truncated && config.locks.fail_closed && respond::is_unknown_write(&event, &config) {
        // A write too large to find its path in: the lock cannot be checked, and the user asked
        // for a deny then. Still recorded.
        let problem = format!(
            "a {} of {} bytes whose file path could not be read",
            event.tool.as_ref().map_or("write", |t| t.name),
            input.total_len
        );
        out.stdout = decision::render(
            &fail_closed_deny(&problem),
            event.kind,
            payload.hook_event_name,
        );
        out.problems.push(problem);
        store_recording(&db, busy, &rec, None, &[], out, |_, _, _| Ok(()));
        return Ok(());
    }
    if inject_panic.as_deref() == Some("lock-check") {
        panic!("panic injected by AGENT_HARNESS_TEST_PANIC");
    }
    let decision = record_and_respond(&db, busy, &config, &rec, &event, &pre, now, out);
    out.fail_closed = None;
    out.stdout = decision::render(&decision, event.kind, payload.hook_event_name);
    Ok(())
}

/// Records the event and answers it, in one transaction; waits (outside any transaction) when
/// the lock policy asks to, then answers again. A store that cannot be used leaves the event
/// spooled and the answer `Pass`, or a deny for a fail-closed lock check. `pre`: what was read
/// before any transaction (a shell command's writes, a prompt's scores).
#[allow(clippy::too_many_arguments)]
fn record_and_respond(
    db: &Path,
    busy: Duration,
    config: &Config,
    rec: &Recording,
    event: &Event<'_>,
    pre: &respond::Prepared,
    now: i64,
    out: &mut Outcome,
) -> Decision {
    let project_root = rec.project_root.as_deref();
    let transcript = respond::transcript_to_read(event).map(Path::new);
    let warm = &pre.statements;
    let first = store_recording(
        db,
        busy,
        rec,
        transcript,
        warm,
        out,
        |tx, event_id, read| {
            let response = respond::respond(tx, event, project_root, config, now, read, pre)?;
            note_decision(tx, event_id, &response)?;
            Ok((response, event_id))
        },
    );
    let (response, event_id) = match first {
        Some(r) => r,
        None => {
            return match &out.fail_closed {
                Some(_) => fail_closed_deny(out.problems.last().map_or("store unavailable", |p| p)),
                None => Decision::Pass,
            };
        }
    };
    let until = match response {
        Response::Decide(d) => return d,
        Response::WaitUntil(until) => until,
    };
    // Wait for the holder's claim to lapse (bounded by locks.wait_secs), then ask once more.
    let deadline = now.saturating_add((config.locks.wait_secs as i64).saturating_mul(1000));
    let wake = until.min(deadline) + 20;
    std::thread::sleep(Duration::from_millis((wake - now_ms()).max(0) as u64));
    let later = now_ms();
    let mut no_wait = config.clone();
    no_wait.locks.wait_secs = 0;
    let again = (|| -> Result<Response> {
        let mut store = Store::open(db, busy)?;
        store.write(|tx| {
            let wrap = |e| Error::db("check a file lock in", db, e);
            let response = respond::respond(tx, event, project_root, &no_wait, later, None, pre)
                .map_err(wrap)?;
            // The event's decision is the one given after the wait.
            if let Response::Decide(Decision::Pass) = response {
                tx.execute(
                    "UPDATE events SET decision = 'allowed after the wait' WHERE id = ?1",
                    [event_id],
                )
                .map_err(wrap)?;
            }
            note_decision(tx, event_id, &response).map_err(wrap)?;
            Ok(response)
        })
    })();
    match again {
        Ok(Response::Decide(d)) => d,
        Ok(Response::WaitUntil(_)) => Decision::Pass,
        Err(e) => {
            out.problems.push(e.to_string());
            match &out.fail_closed {
                Some(_) => fail_closed_deny(&e.to_string()),
                None => Decision::Pass,
            }
        }
    }
}

/// Keeps what the harness answered beside the event.
fn note_decision(
    tx: &rusqlite::Transaction<'_>,
    event_id: i64,
    response: &Response,
) -> rusqlite::Result<()> {
    let text = match response {
        Response::Decide(Decision::Pass) => return Ok(()),
        Response::Decide(Decision::Context(t)) => format!("context: {t}"),
        Response::Decide(Decision::Deny(t)) => format!("deny: {t}"),
        Response::Decide(Decision::Block(t)) => format!("block: {t}"),
        Response::WaitUntil(until) => format!("wait until {until}"),
    };
    tx.execute(
        "UPDATE events SET decision = ?2 WHERE id = ?1",
        rusqlite::params![event_id, text],
    )?;
    Ok(())
}

/// The event a binary is named for, to label input that cannot say which event it is.
fn binary_event(binary: &str) -> &'static str {
    match binary.trim_start_matches("harness-") {
        "session-start" => "SessionStart",
        "user-prompt-submit" => "UserPromptSubmit",
        "user-prompt-expansion" => "UserPromptExpansion",
        "pre-tool-use" => "PreToolUse",
        "post-tool-use" => "PostToolUse",
        "post-tool-use-failure" => "PostToolUseFailure",
        "stop" => "Stop",
        "stop-failure" => "StopFailure",
        "subagent-start" => "SubagentStart",
        "subagent-stop" => "SubagentStop",
        "pre-compact" => "PreCompact",
        "post-compact" => "PostCompact",
        "notification" => "Notification",
        "session-end" => "SessionEnd",
        "pre-skill-shell-command" => "PreSkillShellCommand",
        "pre-model-switch" => "PreModelSwitch",
        "post-model-switch" => "PostModelSwitch",
        "directory-added" => "DirectoryAdded",
        "permission-request" => "PermissionRequest",
        "permission-denied" => "PermissionDenied",
        _ => "Unknown",
    }
}

/// Stores a recording (with whatever waits in the spool) and runs `then` in the same
/// transaction with the new event's id. A corrupt store is moved aside and recreated once; a store
/// that still cannot take the recording gets it spooled. Returns what `then` returned, or None
/// when the store could not be used (the problem is in `out`).
fn store_recording<T>(
    db: &Path,
    busy: Duration,
    rec: &Recording,
    transcript: Option<&Path>,
    warm: &[&'static str],
    out: &mut Outcome,
    then: impl Fn(&rusqlite::Transaction<'_>, i64, Option<ingest::Read>) -> rusqlite::Result<T>,
) -> Option<T> {
    let mut result = write_with_spool(db, busy, rec, transcript, warm, &then);
    if let Err(e) = &result
        && e.is_corrupt()
    {
        match Store::move_aside_if_corrupt(db) {
            Ok(aside) => {
                if let Some(aside) = aside {
                    out.problems.push(format!(
                        "the store {} was corrupt ({e}); moved it to {} and started a new one",
                        db.display(),
                        aside.display()
                    ));
                }
                result = write_with_spool(db, busy, rec, transcript, warm, &then);
            }
            Err(move_err) => out.problems.push(move_err.to_string()),
        }
    }
    match result {
        Ok((value, warnings)) => {
            out.problems.extend(warnings);
            Some(value)
        }
        Err(e) => {
            match spool::append(db, std::slice::from_ref(rec)) {
                Ok(()) => out.problems.push(format!(
                    "{e}; the event waits in {} for the next hook",
                    spool::path_for(db).display()
                )),
                Err(spool_err) => {
                    let full = e.is_disk_full() || crate::error::is_disk_full_io(&spool_err);
                    let why = if full {
                        // The spool lives on the same disk as the store: say so plainly.
                        format!(
                            "the disk holding the store is full ({} free there), so the event \
                             is lost: free some space; events recorded before are intact",
                            crate::error::free_space(db)
                        )
                    } else {
                        format!(
                            "the event is lost: cannot write {} either ({spool_err})",
                            spool::path_for(db).display()
                        )
                    };
                    out.problems.push(format!("{e}; {why}"));
                }
            }
            None
        }
    }
}

/// One write transaction holding the spooled recordings, this one, and `then`, which also gets
/// what `transcript` gained (read before the transaction). `warm`: statements `then` runs, to
/// compile before the lock. Returns `then`'s value and warnings.
fn write_with_spool<T>(
    db: &Path,
    busy: Duration,
    rec: &Recording,
    transcript: Option<&Path>,
    warm: &[&'static str],
    then: &impl Fn(&rusqlite::Transaction<'_>, i64, Option<ingest::Read>) -> rusqlite::Result<T>,
) -> Result<(T, Vec<String>)> {
    let mut store = Store::open(db, busy)?;
    let read = match transcript {
        Some(path) => {
            let conn = store.reader()?;
            ingest::read_one(conn, path, ingest::HOOK_MAX_NEW_BYTES)
                .map_err(|e| Error::db("read a transcript cursor in", db, e))?
        }
        None => None,
    };
    // Claimed once the write lock is held, so that a hook that cannot get it leaves the spool
    // alone.
    let mut claimed = None;
    let mut statements = rec.statements();
    statements.extend_from_slice(warm);
    if let Some(read) = &read {
        statements.extend(read.statements());
    }
    let result = store.write_prepared(&statements, |tx| {
        let wrap = |e| Error::db("record an event in", db, e);
        claimed = spool::claim(db);
        if let Some(c) = &claimed {
            let now = now_ms();
            for r in &c.recordings {
                spool::apply_once(tx, r, now).map_err(wrap)?;
            }
            // Once per drained spool, not once per batch: it reads the whole table.
            if c.is_whole() {
                spool::prune_applied(tx, now).map_err(wrap)?;
            }
        }
        let id = rec.apply(tx).map_err(wrap)?;
        then(tx, id, read).map_err(wrap)
    });
    if result.is_ok() {
        store.close_at_exit();
    }
    match (result, claimed) {
        (Ok(value), None) => Ok((value, Vec::new())),
        (Ok(value), Some(c)) => {
            let mut warnings = Vec::new();
            if c.unreadable > 0 {
                warnings.push(format!(
                    "{} unreadable line(s) in the spool were kept aside in {}",
                    c.unreadable,
                    spool::dir_for(db).display()
                ));
            }
            if c.orphans > 0 {
                warnings.push(format!(
                    "recovered {} spool file(s) left by a hook that was killed while storing them",
                    c.orphans
                ));
            }
            c.settle();
            Ok((value, warnings))
        }
        // Dropped unsettled, the claimed recordings go back to the spool.
        (Err(e), _) => Err(e),
    }
}
