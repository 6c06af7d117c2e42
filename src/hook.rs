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

use crate::config::Config;
use crate::decision::{self, Decision};
use crate::error::{Error, Result};
use crate::event::{Event, Kind};
use crate::payload::{self, HookPayload};
use crate::process;
use crate::store::record::Recording;
use crate::store::{Store, spool};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// What one hook call leaves behind besides the store: its stdout, and problems to report.
#[derive(Default)]
struct Outcome {
    stdout: Option<String>,
    problems: Vec<String>,
    /// Where to log problems, once the store's path is known.
    log: Option<PathBuf>,
}

/// Runs one hook call. Always returns success; see the module docs for the fail mode.
pub fn run(binary: &str) -> ExitCode {
    // A panic is reported as one line below, not as the default multi-line message.
    panic::set_hook(Box::new(|_| {}));
    let mut outcome = Outcome::default();
    let result = panic::catch_unwind(AssertUnwindSafe(|| drive(binary, &mut outcome)));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(e)) => outcome.problems.push(e.to_string()),
        Err(panic) => {
            let msg = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "panic".into());
            outcome.problems.push(Error::Panic(msg).to_string());
        }
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

    if input.truncated {
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
            "hook input of {} bytes is over the {} byte bound; recorded as truncated",
            input.total_len,
            payload::MAX_PAYLOAD_BYTES
        ));
        store_recording(&db, busy, &rec, out);
        return Ok(());
    }

    // Test-only: lets the test suite prove that a panic fails open. One getenv per call.
    if std::env::var_os("AGENT_HARNESS_TEST_PANIC").is_some() {
        panic!("panic injected by AGENT_HARNESS_TEST_PANIC");
    }
    let value = payload::parse(&input.bytes)?;
    let Some(payload) = HookPayload::view(&value) else {
        return Err(payload::PayloadError::NoEventName.into());
    };
    let event = Event::reduce(payload);
    let client = if event.kind == Kind::SessionStart {
        process::client_process()
    } else {
        None
    };
    let rec = Recording::of(&event, now, client);
    store_recording(&db, busy, &rec, out);

    let decision = Decision::Pass;
    out.stdout = decision::render(&decision, event.kind, payload.hook_event_name);
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
        _ => "Unknown",
    }
}

/// Stores a recording (with whatever waits in the spool). A corrupt store is moved aside and
/// recreated once; a store that still cannot take the recording gets it spooled.
fn store_recording(db: &Path, busy: Duration, rec: &Recording, out: &mut Outcome) {
    let mut result = write_with_spool(db, busy, rec);
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
                result = write_with_spool(db, busy, rec);
            }
            Err(move_err) => out.problems.push(move_err.to_string()),
        }
    }
    match result {
        Ok(warnings) => out.problems.extend(warnings),
        Err(e) => match spool::append(db, std::slice::from_ref(rec)) {
            Ok(()) => out.problems.push(format!(
                "{e}; the event waits in {} for the next hook",
                spool::path_for(db).display()
            )),
            Err(spool_err) => out.problems.push(format!(
                "{e}; the event is lost: cannot write {} either ({spool_err})",
                spool::path_for(db).display()
            )),
        },
    }
}

/// One write transaction holding the spooled recordings and this one. Returns warnings.
fn write_with_spool(db: &Path, busy: Duration, rec: &Recording) -> Result<Vec<String>> {
    let mut store = Store::open(db, busy)?;
    let claimed = spool::claim(db);
    let pending: &[Recording] = claimed.as_ref().map_or(&[], |c| &c.recordings);
    let result = store.write(|tx| {
        for r in pending.iter().chain(std::iter::once(rec)) {
            r.apply(tx)
                .map_err(|e| Error::db("record an event in", db, e))?;
        }
        Ok(())
    });
    match (result, claimed) {
        (Ok(()), None) => Ok(Vec::new()),
        (Ok(()), Some(c)) => {
            let mut warnings = Vec::new();
            if c.unreadable > 0 {
                warnings.push(format!(
                    "{} unreadable line(s) in the spool were kept aside",
                    c.unreadable
                ));
            }
            c.settle();
            Ok(warnings)
        }
        (Err(e), claimed) => {
            if let Some(c) = claimed {
                c.give_back(db);
            }
            Err(e)
        }
    }
}
