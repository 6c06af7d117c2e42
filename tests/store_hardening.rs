//! The store under an attacker's and an unlucky user's hands: spool replay after a claimer is
//! killed, orphaned claims, foreign database files, planted symlinks, first-run races, hard
//! links, writes too large to read. Each test is named after what broke.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::json;
use support::{Env, assert_failed_open, fixture, stderr};

const EDIT: &str = "claude-code-2.1.197/PreToolUse-Edit.json";
const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn record_one(env: &Env) {
    let out = env.hook("harness-pre-tool-use", fixture(EDIT));
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        stderr(&out)
    );
}

/// One Bash call of `event` through `hook`, stored cleanly.
fn record_bash(env: &Env, hook: &str, event: &str, id: &str, command: &str) {
    let p = json!({"session_id": A, "cwd": "/tmp", "hook_event_name": event,
        "tool_name": "Bash", "tool_use_id": id, "tool_input": {"command": command}});
    let out = env.hook(hook, p.to_string());
    assert!(
        out.status.success() && out.stderr.is_empty(),
        "{}",
        stderr(&out)
    );
}

/// A PreToolUse payload with its own tool_use_id, to count each event once.
fn tagged(n: usize) -> String {
    json!({"session_id": A, "cwd": "/tmp", "hook_event_name": "PreToolUse",
           "tool_name": "Read", "tool_use_id": format!("toolu_tag_{n}"),
           "tool_input": {"file_path": "/tmp/x"}})
    .to_string()
}

/// Spools `n` tagged events by holding the write lock while they run.
fn spool_tagged(env: &Env, from: usize, n: usize) {
    let holder = env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    for i in from..from + n {
        assert_failed_open(&env.hook("harness-pre-tool-use", tagged(i)));
    }
    holder.execute_batch("ROLLBACK").unwrap();
}

fn tag_counts(env: &Env) -> Vec<i64> {
    let db = env.db();
    let mut st = db
        .prepare(
            "SELECT count(*) FROM events WHERE tool_use_id LIKE 'toolu_tag_%' \
             GROUP BY tool_use_id ORDER BY tool_use_id",
        )
        .unwrap();
    st.query_map([], |r| r.get(0))
        .unwrap()
        .map(|r| r.unwrap())
        .collect()
}

/// A hook binary as a plain process in the test's environment, to spawn and kill.
fn spawn_hook(env: &Env, name: &str) -> std::process::Child {
    Command::new(support::bin(name))
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &env.home)
        .env("HARNESS_DB", &env.db)
        .env(
            "HARNESS_CONFIG",
            env.home.join(".config/agent-harness/config.json"),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn spool_dir(env: &Env) -> std::path::PathBuf {
    agent_harness::store::spool::dir_for(&env.db)
}

/// Runs hooks until nothing waits in the spool; returns how many it took.
fn drain(env: &Env) -> usize {
    use agent_harness::store::spool;
    for calls in 1..=1000 {
        // A claimer killed between its claim and its commit left an orphan: the call that
        // brings it in says so, and says nothing else.
        let out = env.hook("harness-pre-tool-use", fixture(EDIT));
        let err = stderr(&out);
        assert!(
            out.status.success()
                && err.lines().all(|l| l
                    .starts_with("agent-harness: harness-pre-tool-use: recovered ")
                    && l.contains("spool file(s) left by a hook that was killed")),
            "{err}"
        );
        let w = spool::waiting(&env.db);
        if w.spool_bytes == 0 && w.orphans == 0 {
            return calls;
        }
    }
    panic!("the spool never drained: {:?}", spool::waiting(&env.db));
}

#[test]
fn a_claimer_killed_after_its_commit_makes_the_next_store_nothing_twice() {
    let env = Env::new("replay-twice");
    env.config(r#"{"store": {"busy_timeout_ms": 100}}"#);
    record_one(&env);
    spool_tagged(&env, 0, 5);
    let spool = agent_harness::store::spool::path_for(&env.db);
    let copy = std::fs::read(&spool).unwrap();
    record_one(&env);
    assert_eq!(tag_counts(&env), vec![1; 5]);
    // The claimer committed, then died before it deleted its claimed file.
    std::fs::create_dir_all(spool_dir(&env)).unwrap();
    std::fs::write(spool_dir(&env).join("claimed-999999999-1-1"), &copy).unwrap();
    let out = env.hook("harness-pre-tool-use", fixture(EDIT));
    assert!(
        stderr(&out).contains("recovered 1 spool file"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        tag_counts(&env),
        vec![1; 5],
        "every spooled event exactly once"
    );
    assert!(!spool_dir(&env).join("claimed-999999999-1-1").exists());
}

#[test]
fn an_orphaned_claim_is_recovered_by_the_next_hook_even_when_nothing_new_spools() {
    let env = Env::new("orphan");
    env.config(r#"{"store": {"busy_timeout_ms": 100}}"#);
    record_one(&env);
    spool_tagged(&env, 0, 3);
    // The claimer renamed the spool and was killed before its commit.
    let spool = agent_harness::store::spool::path_for(&env.db);
    std::fs::create_dir_all(spool_dir(&env)).unwrap();
    let orphan = spool_dir(&env).join("claimed-999999999-1-1");
    std::fs::rename(&spool, &orphan).unwrap();
    // doctor shows it.
    let doctor = env.cmd("harness").arg("doctor").output().unwrap();
    let text = support::stdout(&doctor);
    assert!(text.contains("left by a killed hook"), "{text}");
    // An ordinary hook call, with no spool of its own to claim, brings them in.
    let out = env.hook("harness-pre-tool-use", fixture(EDIT));
    assert!(out.status.success());
    assert_eq!(tag_counts(&env), vec![1; 3]);
    assert!(!orphan.exists());
}

#[test]
fn events_are_stored_exactly_once_across_100_random_kills_of_a_spool_claimer() {
    let env = Env::new("kills");
    env.config(r#"{"store": {"busy_timeout_ms": 100}}"#);
    record_one(&env);
    let mut spooled = 0;
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for round in 0..100 {
        spool_tagged(&env, spooled, 2);
        spooled += 2;
        // A claimer started with a big payload (slower to parse) and killed at a random moment.
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let delay = Duration::from_micros(seed % 6000);
        let mut child = spawn_hook(&env, "harness-post-tool-use");
        let payload = json!({"session_id": B, "cwd": "/tmp", "hook_event_name": "PostToolUse",
            "tool_name": "Read", "tool_use_id": format!("toolu_killed_{round}"),
            "tool_input": {"file_path": "/tmp/x"}, "tool_response": "y".repeat(200_000)});
        let _ = child
            .stdin
            .take()
            .unwrap()
            .write_all(payload.to_string().as_bytes());
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
    }
    // Whatever the kills left (a spool, claimed files of dead claimers) comes in now, a batch a
    // call.
    let calls = drain(&env);
    assert!(calls > 1, "{spooled} events wait: more than one batch");
    let counts = tag_counts(&env);
    assert_eq!(counts.len(), spooled, "no spooled event lost");
    assert!(
        counts.iter().all(|&c| c == 1),
        "none stored twice: {counts:?}"
    );
    let killed_twice = env.count(
        "SELECT count(*) FROM (SELECT tool_use_id FROM events WHERE tool_use_id LIKE \
         'toolu_killed_%' GROUP BY tool_use_id HAVING count(*) > 1)",
    );
    assert_eq!(killed_twice, 0);
}

#[test]
fn unreadable_spools_are_each_kept_aside_under_their_own_name() {
    let env = Env::new("bad-spools");
    record_one(&env);
    let spool = agent_harness::store::spool::path_for(&env.db);
    for n in 0..2 {
        std::fs::write(&spool, format!("not json {n}\n")).unwrap();
        let out = env.hook("harness-pre-tool-use", fixture(EDIT));
        assert!(stderr(&out).contains("unreadable"), "{}", stderr(&out));
    }
    let bad: Vec<String> = std::fs::read_dir(spool_dir(&env))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("bad-"))
        .collect();
    assert_eq!(bad.len(), 2, "{bad:?}");
    let texts: Vec<String> = bad
        .iter()
        .map(|n| std::fs::read_to_string(spool_dir(&env).join(n)).unwrap())
        .collect();
    assert!(texts.contains(&"not json 0\n".to_string()), "{texts:?}");
    assert!(texts.contains(&"not json 1\n".to_string()), "{texts:?}");
}

#[test]
fn a_spool_planted_as_a_symlink_is_not_written_through() {
    let env = Env::new("spool-link");
    env.config(r#"{"store": {"busy_timeout_ms": 100}}"#);
    record_one(&env);
    let victim = env.dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    let spool = agent_harness::store::spool::path_for(&env.db);
    std::os::unix::fs::symlink(&victim, &spool).unwrap();
    let holder = env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = assert_failed_open(&env.hook("harness-pre-tool-use", fixture(EDIT)));
    assert!(err.contains("lost"), "{err}");
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn a_recover_lock_planted_as_a_symlink_is_not_written_through() {
    let env = Env::new("recover-link");
    std::fs::create_dir_all(env.db.parent().unwrap()).unwrap();
    std::fs::write(
        &env.db,
        b"this is not a database, it is long enough to be read as one....",
    )
    .unwrap();
    let victim = env.dir.path().join("victim");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, env.db.with_extension("recover.lock")).unwrap();
    let out = env.hook("harness-pre-tool-use", fixture(EDIT));
    assert_failed_open(&out);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
}

#[test]
fn another_programs_database_named_by_harness_db_is_refused_untouched() {
    let env = Env::new("foreign");
    std::fs::create_dir_all(env.db.parent().unwrap()).unwrap();
    {
        let other = rusqlite::Connection::open(&env.db).unwrap();
        other
            .execute_batch("CREATE TABLE photos (id INTEGER PRIMARY KEY, name TEXT);")
            .unwrap();
    }
    let before = std::fs::read(&env.db).unwrap();
    let err = assert_failed_open(&env.hook("harness-pre-tool-use", fixture(EDIT)));
    assert!(err.contains("did not create"), "{err}");
    assert!(err.contains("HARNESS_DB"), "{err}");
    assert_eq!(
        std::fs::read(&env.db).unwrap(),
        before,
        "not migrated, not switched to WAL"
    );
    // The CLI says the same, and touches nothing either.
    let out = env.cmd("harness").arg("status").output().unwrap();
    assert!(!out.status.success());
    assert!(stderr(&out).contains("did not create"), "{}", stderr(&out));
    assert_eq!(std::fs::read(&env.db).unwrap(), before);
}

#[test]
fn a_store_made_by_an_older_version_is_recognised_and_migrated() {
    let env = Env::new("legacy");
    record_one(&env);
    // What a store of schema 4 looked like: no mark, no migration 5, nor the tables of the later
    // ones (reviews, routes, memory, export, usage hours).
    env.db()
        .execute_batch(
            "DROP TABLE IF EXISTS reviews; DROP TABLE IF EXISTS routes; \
             DROP TABLE IF EXISTS project_sizes; DROP TABLE IF EXISTS export_cursors; \
             DROP TABLE IF EXISTS memory_fts; DROP TABLE IF EXISTS memory; \
             DROP TABLE usage_hours; \
             PRAGMA application_id = 0; DROP INDEX claims_by_inode; DROP TABLE spool_applied; \
             ALTER TABLE claims DROP COLUMN dev; ALTER TABLE claims DROP COLUMN ino; \
             ALTER TABLE claims DROP COLUMN provisional; \
             ALTER TABLE claims DROP COLUMN provisional_agent; \
             PRAGMA user_version = 4;",
        )
        .unwrap();
    record_one(&env);
    let app: i64 = env.count("PRAGMA application_id");
    assert_eq!(app, i64::from(agent_harness::store::APPLICATION_ID));
    assert_eq!(env.count("SELECT count(*) FROM events"), 2);
}

#[test]
fn usage_stored_before_it_was_keyed_by_hour_is_kept_row_for_row() {
    let env = Env::new("usage-10");
    record_one(&env);
    // Schema 10's usage table, keyed by the ids alone, with two responses in it.
    env.db()
        .execute_batch(
            "DROP TABLE usage; DROP TABLE usage_hours; \
             CREATE TABLE usage (message_id TEXT NOT NULL, request_id TEXT NOT NULL, \
               ts_ms INTEGER NOT NULL, session_id TEXT, model TEXT, \
               input_tokens INTEGER NOT NULL, output_tokens INTEGER NOT NULL, \
               cache_creation_tokens INTEGER NOT NULL, cache_read_tokens INTEGER NOT NULL, \
               sidechain INTEGER NOT NULL, PRIMARY KEY (message_id, request_id)) WITHOUT ROWID; \
             CREATE INDEX usage_by_time ON usage (ts_ms, input_tokens, output_tokens, \
               cache_creation_tokens, cache_read_tokens); \
             INSERT INTO usage VALUES ('m1', 'r1', 1795000000000, 's', 'opus', 1, 2, 3, 4, 0), \
               ('m2', 'r2', 1795003600001, 's', NULL, 5, 6, 7, 8, 1); \
             PRAGMA user_version = 10;",
        )
        .unwrap();
    record_one(&env);
    let version: i64 = env.count("PRAGMA user_version");
    assert_eq!(version, agent_harness::store::SCHEMA_VERSION);
    let rows: Vec<(i64, String, i64, i64)> = env
        .db()
        .prepare(
            "SELECT hour, message_id, ts_ms, input_tokens + output_tokens + \
             cache_creation_tokens + cache_read_tokens FROM usage ORDER BY ts_ms",
        )
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(
        rows,
        vec![
            (498_611, "m1".into(), 1_795_000_000_000, 10),
            (498_612, "m2".into(), 1_795_003_600_001, 26),
        ]
    );
    // And the hours the estimates read, input + output of each.
    let hours: Vec<(i64, i64)> = env
        .db()
        .prepare("SELECT hour, tokens FROM usage_hours ORDER BY hour")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    assert_eq!(hours, vec![(498_611, 3), (498_612, 11)]);
    assert_eq!(env.count("SELECT count(*) FROM events"), 2);
}

#[test]
fn sixteen_hooks_racing_on_a_fresh_store_all_succeed() {
    for round in 0..6 {
        let env = Env::new(&format!("fresh-race-{round}"));
        let children: Vec<_> = (0..16)
            .map(|i| {
                let mut child = spawn_hook(&env, "harness-pre-tool-use");
                child
                    .stdin
                    .take()
                    .unwrap()
                    .write_all(tagged(i).as_bytes())
                    .unwrap();
                child
            })
            .collect();
        for child in children {
            let out = child.wait_with_output().unwrap();
            assert!(out.status.success());
            assert!(out.stderr.is_empty(), "round {round}: {}", stderr(&out));
        }
        assert_eq!(tag_counts(&env), vec![1; 16], "round {round}");
        let leftovers: Vec<_> = std::fs::read_dir(env.db.parent().unwrap())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| n.contains(".new-"))
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }
}

#[test]
fn a_reader_holding_a_snapshot_never_makes_a_hook_wait_for_the_checkpoint() {
    let env = Env::new("idle-reader");
    record_one(&env);
    let reader = env.db();
    reader
        .execute_batch("BEGIN; SELECT count(*) FROM events;")
        .unwrap();
    // Enough writes to pass the WAL bound many times over; each would have waited 100 ms. (The
    // bulk is a command: a tool's response and a write's body are stored clipped.)
    let blob = format!("echo {}", "z".repeat(30_000));
    for i in 0..40 {
        let id = format!("toolu_r{i}");
        record_bash(&env, "harness-post-tool-use", "PostToolUse", &id, &blob);
    }
    let wal = agent_harness::store::wal_path(&env.db);
    assert!(std::fs::metadata(&wal).unwrap().len() > agent_harness::store::WAL_BOUND_BYTES);
    reader.execute_batch("COMMIT").unwrap();
    drop(reader);
    // With the reader gone, the next write bounds the WAL again.
    record_one(&env);
    assert!(std::fs::metadata(&wal).unwrap().len() <= agent_harness::store::WAL_BOUND_BYTES);
}

#[test]
fn while_another_process_has_the_store_open_the_wal_grows_to_the_shared_bound_only() {
    use agent_harness::store::{WAL_BOUND_BYTES, WAL_SHARED_BOUND_BYTES, wal_path};
    let env = Env::new("shared-wal");
    record_one(&env);
    // Another process with the store open, not in a transaction: nothing stops a checkpoint, but
    // every hook that opens the store meanwhile finds the WAL index built.
    let other = env.db();
    // Closed, it must leave the WAL as it is: a closing connection that finds itself the last
    // checkpoints and deletes it, which would hide whether the next hook bounds it.
    other
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
    other
        .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap();
    let wal = wal_path(&env.db);
    let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let first_cycle = wal_cycle(&wal);
    let blob = format!("echo {}", "w".repeat(60_000));
    let mut longest = 0;
    for i in 0..90 {
        let id = format!("toolu_w{i}");
        record_bash(&env, "harness-pre-tool-use", "PreToolUse", &id, &blob);
        if i == 10 {
            assert!(
                wal_len() > WAL_BOUND_BYTES,
                "the WAL was checkpointed at {} bytes with another process attached",
                wal_len()
            );
        }
        if longest > WAL_SHARED_BOUND_BYTES {
            // Reset by a RESTART, not cut: the next writer starts over in the file as it is.
            assert!(
                wal_len() >= WAL_SHARED_BOUND_BYTES,
                "call {i} cut the WAL to {} bytes with another process attached",
                wal_len()
            );
        }
        longest = longest.max(wal_len());
    }
    // 90 calls of about 64 KiB each passed the shared bound once: it was checkpointed then, and
    // the WAL started over from its beginning.
    assert!(
        longest <= WAL_SHARED_BOUND_BYTES + 256 * 1024,
        "the WAL grew to {longest} bytes"
    );
    assert_ne!(wal_cycle(&wal), first_cycle, "the WAL never started over");
    // Left over the small bound by the last calls.
    let blob = format!("echo {}", "v".repeat(60_000));
    for i in 0..6 {
        let id = format!("toolu_v{i}");
        record_bash(&env, "harness-pre-tool-use", "PreToolUse", &id, &blob);
    }
    drop(other);
    assert!(
        wal_len() > WAL_BOUND_BYTES,
        "the WAL is {} bytes",
        wal_len()
    );
    // Alone again, the next write brings it under the small bound.
    record_one(&env);
    assert!(
        wal_len() <= WAL_BOUND_BYTES,
        "the WAL is {} bytes",
        wal_len()
    );
    let stored: i64 = env
        .db()
        .query_row(
            "SELECT count(*) FROM events WHERE tool_use_id LIKE 'toolu_w%'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(stored, 90);
}

/// The salts in the WAL file's header (bytes 16 to 24): new each time the WAL starts over from its
/// beginning, with the first frame written after. (The checkpoint sequence number before them is
/// each connection's own count, and a fresh process joining a shared index writes the same one.)
fn wal_cycle(wal: &std::path::Path) -> u64 {
    let bytes = std::fs::read(wal).unwrap();
    u64::from_be_bytes(bytes[16..24].try_into().unwrap())
}

/// The trace line a hook prints with `AGENT_HARNESS_TRACE_HOLD` (for the concurrency bench), for
/// a PreToolUse call running `command`.
fn trace_line(env: &Env, id: &str, command: &str) -> String {
    let p = json!({"session_id": A, "cwd": "/tmp", "hook_event_name": "PreToolUse",
        "tool_name": "Bash", "tool_use_id": id, "tool_input": {"command": command}});
    let out = env
        .cmd("harness-pre-tool-use")
        .env("AGENT_HARNESS_TRACE_HOLD", "1")
        .write_stdin(p.to_string())
        .output()
        .unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    err.lines()
        .find_map(|l| l.strip_prefix("agent-harness-trace: "))
        .unwrap_or_else(|| panic!("no trace in: {err}"))
        .to_string()
}

/// The value of `field` in a trace line.
fn trace_field(line: &str, field: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(field))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {field} in: {line}"))
}

/// The value of `field` in the trace line of a PreToolUse call running `command`.
fn traced(env: &Env, id: &str, command: &str, field: &str) -> u64 {
    trace_field(&trace_line(env, id, command), field)
}

#[test]
fn a_wal_reset_is_not_tried_while_another_process_reads_the_wal() {
    use agent_harness::store::{WAL_SHARED_BOUND_BYTES, wal_path};
    let env = Env::new("reader-in-wal");
    record_one(&env);
    // A reader whose snapshot holds frames not yet copied into the database: it holds one of
    // the WAL's read marks until it ends, so no reset can succeed meanwhile.
    let reader = env.db();
    reader
        .set_db_config(
            rusqlite::config::DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE,
            true,
        )
        .unwrap();
    reader.execute_batch("BEGIN").unwrap();
    reader
        .query_row("SELECT count(*) FROM events", [], |r| r.get::<_, i64>(0))
        .unwrap();
    let wal = wal_path(&env.db);
    let wal_len = || std::fs::metadata(&wal).map_or(0, |m| m.len());
    let blob = format!("echo {}", "r".repeat(60_000));
    let mut i = 0;
    while wal_len() <= WAL_SHARED_BOUND_BYTES + 128 * 1024 {
        assert!(i < 200, "the WAL stayed at {} bytes", wal_len());
        let tried = traced(&env, &format!("toolu_r{i}"), &blob, "reset_us=");
        assert_eq!(tried, 0, "call {i} tried to reset the WAL under a reader");
        i += 1;
    }
    // Past the bound with the reader still in: the next calls leave the WAL as it is.
    for j in 0..3 {
        let tried = traced(&env, &format!("toolu_past{j}"), &blob, "reset_us=");
        assert_eq!(
            tried, 0,
            "a call past the bound tried to reset the WAL under a reader"
        );
    }
    reader.execute_batch("COMMIT").unwrap();
    // The reader gone (its connection still open), the next call resets the WAL: a RESTART, as
    // another process has the store open, so the call after it starts the WAL over in place.
    let cycle = wal_cycle(&wal);
    assert_eq!(traced(&env, "toolu_after", "echo done", "resets="), 1);
    record_one(&env);
    assert_ne!(wal_cycle(&wal), cycle, "the WAL did not start over");
    assert!(wal_len() >= WAL_SHARED_BOUND_BYTES, "the WAL was cut");
    // Alone, the next call past the small bound truncates it.
    drop(reader);
    assert_eq!(traced(&env, "toolu_alone", "echo alone", "resets="), 1);
    assert_eq!(wal_len(), 0, "the WAL was not truncated");
    assert_eq!(
        env.count("SELECT count(*) FROM events WHERE tool_use_id LIKE 'toolu_r%'"),
        i as i64
    );
}

#[test]
fn a_hard_link_to_a_held_file_meets_the_same_claim() {
    let env = Env::new("hardlink");
    let dir = env.dir.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("held.rs");
    std::fs::write(&file, "x").unwrap();
    let link = dir.join("alias.rs");
    std::fs::hard_link(&file, &link).unwrap();
    let write = |session: &str, path: &std::path::Path| {
        let p = json!({"session_id": session, "cwd": dir, "hook_event_name": "PreToolUse",
            "tool_name": "Write", "tool_use_id": format!("toolu_{session}"),
            "tool_input": {"file_path": path, "content": "y"}});
        env.hook("harness-pre-tool-use", p.to_string())
    };
    assert!(support::stdout(&write(A, &file)).is_empty());
    let denied = support::stdout(&write(B, &link));
    assert!(denied.contains("\"deny\""), "{denied}");
    assert!(denied.contains("held.rs"), "names the held file: {denied}");
}

#[test]
fn a_write_too_large_to_read_through_still_meets_the_file_lock() {
    let env = Env::new("huge-write");
    let dir = env.dir.path().join("proj");
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("held.rs");
    let write = |session: &str, content_len: usize| {
        let p = json!({"session_id": session, "cwd": dir, "hook_event_name": "PreToolUse",
            "tool_name": "Write", "tool_use_id": format!("toolu_{session}"),
            "tool_input": {"file_path": file, "content": "y".repeat(content_len)}});
        env.hook("harness-pre-tool-use", p.to_string())
    };
    assert!(support::stdout(&write(A, 10)).is_empty());
    // Over 4 MiB read bound + 64 MiB read-through bound.
    let out = write(B, 70 * 1024 * 1024);
    assert!(out.status.success());
    let text = support::stdout(&out);
    assert!(text.contains("\"deny\""), "{text} / {}", stderr(&out));
}

#[test]
fn a_huge_write_without_a_readable_path_is_denied_when_locks_fail_closed() {
    let env = Env::new("huge-fail-closed");
    env.config(r#"{"locks": {"fail_closed": true}}"#);
    // The path comes after 70 MiB of content: it cannot be found.
    let body = format!(
        r#"{{"session_id":"{A}","cwd":"/tmp","hook_event_name":"PreToolUse","tool_name":"Write","tool_use_id":"t","tool_input":{{"content":"{}","file_path":"/tmp/f"}}}}"#,
        "y".repeat(70 * 1024 * 1024)
    );
    let out = env.hook("harness-pre-tool-use", body);
    assert!(out.status.success());
    let text = support::stdout(&out);
    assert!(text.contains("\"deny\""), "{text}");
    assert!(text.contains("fail_closed"), "{text}");
    assert_eq!(
        env.count("SELECT count(*) FROM events"),
        1,
        "still recorded"
    );
}

#[test]
fn a_full_disk_says_so_with_the_free_space() {
    let env = Env::new("disk-full");
    record_one(&env);
    let out = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 1 && trap '' XFSZ && exec \"$0\" < \"$1\"")
        .arg(support::bin("harness-post-tool-use"))
        .arg(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("tests/fixtures/claude-code-2.1.197/PostToolUse-Write.json"),
        )
        .env_clear()
        .env("HOME", &env.home)
        .env("HARNESS_DB", &env.db)
        .env("HARNESS_CONFIG", "/dev/null")
        .env("TMPDIR", env.dir.path())
        .output()
        .unwrap();
    let err = assert_failed_open(&out);
    assert!(err.contains("disk holding the store is full"), "{err}");
    assert!(err.contains(" free there"), "{err}");
}

#[test]
fn a_spool_of_a_thousand_events_is_stored_a_bounded_batch_per_call_each_event_once() {
    use agent_harness::store::spool;
    let env = Env::new("big-spool");
    env.config(r#"{"store": {"busy_timeout_ms": 100}}"#);
    record_one(&env);
    spool_tagged(&env, 0, 1);
    // A thousand recordings as a long outage leaves them: the one spooled line, each with its own
    // uid and tool_use_id.
    let path = spool::path_for(&env.db);
    let line = std::fs::read_to_string(&path).unwrap();
    let uid = serde_json::from_str::<serde_json::Value>(line.trim()).unwrap()["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let total = 1000;
    let text: String = (0..total)
        .map(|i| {
            line.replace("toolu_tag_0", &format!("toolu_tag_{i:05}"))
                .replace(&uid, &format!("{uid}-{i}"))
        })
        .collect();
    std::fs::write(&path, text).unwrap();

    record_one(&env);
    let first = tag_counts(&env);
    assert_eq!(
        first.len(),
        spool::REPLAY_BATCH,
        "one batch, not the whole spool"
    );
    let left = spool::waiting(&env.db);
    assert!(left.spool_bytes > 0 && left.orphans == 0, "{left:?}");
    let calls = 1 + drain(&env);
    let counts = tag_counts(&env);
    assert_eq!(counts.len(), total, "no spooled event lost");
    assert!(counts.iter().all(|&c| c == 1), "none stored twice");
    assert_eq!(calls, total.div_ceil(spool::REPLAY_BATCH));
    let leftovers: Vec<_> = std::fs::read_dir(spool_dir(&env))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

#[test]
fn a_hold_neither_preempted_nor_blocked_is_reported_as_work_and_is_the_hold_itself() {
    let env = Env::new("run-hold");
    record_one(&env);
    for i in 0..5 {
        let line = trace_line(&env, &format!("toolu_run{i}"), "echo run");
        let get = |name: &str| trace_field(&line, name);
        let (hold, work) = (get("hold_us="), get("work_hold_us="));
        let (preempted, blocked) = (get("preempted="), get("blocked="));
        assert!(hold > 0 && preempted <= 1 && blocked <= 1, "{line}");
        if preempted == 0 && blocked == 0 {
            assert_eq!(work, hold, "a hold with no switch is all work: {line}");
        } else {
            assert_eq!(
                work, 0,
                "a hold with a switch is not counted as work: {line}"
            );
        }
    }
}
