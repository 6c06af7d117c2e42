//! The fail-open contract: whatever goes wrong, a hook exits 0 with one stderr line starting
//! `agent-harness:`, logs the problem beside the store, and loses nothing already recorded.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use support::{Env, assert_failed_open, fixture, stderr};

const EDIT: &str = "claude-code-2.1.197/PreToolUse-Edit.json";

fn record_one(env: &Env) {
    let out = env.hook("harness-pre-tool-use", fixture(EDIT));
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
}

#[test]
fn empty_stdin() {
    let env = Env::new("empty");
    let err = assert_failed_open(&env.hook("harness-stop", ""));
    assert!(err.contains("empty hook input"), "{err}");
    assert!(
        env.log_text().contains("harness-stop"),
        "log: {}",
        env.log_text()
    );
}

#[test]
fn malformed_json() {
    let env = Env::new("malformed");
    for input in [
        "{",
        "{\"hook_event_name\": }",
        "[1,2]",
        "{\"no_event\": 1}",
        "null",
    ] {
        let err = assert_failed_open(&env.hook("harness-pre-tool-use", input));
        assert!(err.contains("harness-pre-tool-use"), "{err}");
    }
    assert_eq!(env.log_text().lines().count(), 5, "{}", env.log_text());
}

#[test]
fn binary_garbage() {
    let env = Env::new("garbage");
    let mut garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
        .collect();
    garbage.extend_from_slice(&[0xff, 0xfe, 0x00, 0xc3]);
    let err = assert_failed_open(&env.hook("harness-post-tool-use", garbage));
    assert!(err.contains("malformed hook input"), "{err}");
}

#[test]
fn a_fifty_megabyte_payload_is_bounded_and_recorded_as_truncated() {
    let env = Env::new("huge");
    let mut payload = String::from(
        r#"{"session_id":"big-1","transcript_path":"/t.jsonl","cwd":"/tmp","hook_event_name":"PostToolUse","tool_name":"Write","tool_use_id":"toolu_big","tool_input":{"file_path":"/tmp/big.txt","content":""#,
    );
    payload.push_str(&"x".repeat(50 * 1024 * 1024));
    payload.push_str(r#""}}"#);
    // Its small fields are read through, so it is handled as any other call: no complaint.
    let out = env.hook("harness-post-tool-use", payload);
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert!(
        out.stdout.is_empty(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let (session, event, tool, truncated, stored_len): (String, String, String, bool, i64) = env
        .db()
        .query_row(
            "SELECT session_id, event, tool_name, truncated, length(payload) FROM events",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!(
        (session.as_str(), event.as_str(), tool.as_str(), truncated),
        ("big-1", "PostToolUse", "Write", true)
    );
    assert!(stored_len < 100 * 1024, "stored {stored_len} bytes");
}

#[test]
fn a_huge_payload_that_is_not_json_is_recorded_from_its_prefix() {
    let env = Env::new("huge-junk");
    let mut payload =
        String::from(r#"{"session_id":"big-2","hook_event_name":"PostToolUse","tool_input":"#);
    payload.push_str(&"[1,".repeat(2 << 20));
    let err = assert_failed_open(&env.hook("harness-post-tool-use", payload));
    assert!(err.contains("recorded as truncated"), "{err}");
    let (session, truncated): (String, bool) = env
        .db()
        .query_row("SELECT session_id, truncated FROM events", [], |r| {
            Ok((r.get(0)?, r.get(1)?))
        })
        .unwrap();
    assert_eq!((session.as_str(), truncated), ("big-2", true));
}

#[test]
fn an_unwritable_store_directory() {
    let env = Env::new("unwritable");
    // A regular file where the store's directory should be: creation fails for every user,
    // root included.
    let blocker = env.dir.path().join("blocker");
    std::fs::write(&blocker, "not a directory").unwrap();
    let db = blocker.join("state/harness.db");
    let out = env
        .cmd("harness-pre-tool-use")
        .env("HARNESS_DB", &db)
        .env("TMPDIR", env.dir.path())
        .write_stdin(fixture(EDIT))
        .output()
        .unwrap();
    let err = assert_failed_open(&out);
    assert!(err.contains("cannot create directory"), "{err}");
    // The log beside the store cannot exist either; it falls back to the temp dir.
    let fallback = std::fs::read_dir(env.dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("agent-harness-")
        })
        .expect("a fallback log in TMPDIR");
    assert!(
        std::fs::read_to_string(fallback)
            .unwrap()
            .contains("cannot create directory")
    );
}

#[test]
fn a_corrupt_store_is_moved_aside_and_recreated() {
    let env = Env::new("corrupt");
    std::fs::create_dir_all(env.db.parent().unwrap()).unwrap();
    let garbage = "this is not an SQLite file\n".repeat(500);
    std::fs::write(&env.db, &garbage).unwrap();
    let err = assert_failed_open(&env.hook("harness-pre-tool-use", fixture(EDIT)));
    assert!(err.contains("corrupt"), "{err}");
    assert!(err.contains("moved it to"), "{err}");
    // The event is in the new store; the old file is kept, byte for byte.
    assert_eq!(env.count("SELECT count(*) FROM events"), 1);
    let aside = std::fs::read_dir(env.db.parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .find(|p| p.to_string_lossy().contains(".corrupt-"))
        .expect("the corrupt file moved aside");
    assert_eq!(std::fs::read_to_string(aside).unwrap(), garbage);
    // The next call finds a healthy store and says nothing.
    record_one(&env);
    assert_eq!(env.count("SELECT count(*) FROM events"), 2);
}

#[test]
fn a_store_locked_past_the_budget_spools_the_event_and_the_next_hook_stores_it() {
    let env = Env::new("locked");
    env.config(r#"{"store": {"busy_timeout_ms": 200}}"#);
    record_one(&env);
    let holder = env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let started = std::time::Instant::now();
    let err = assert_failed_open(&env.hook("harness-pre-tool-use", fixture(EDIT)));
    assert!(started.elapsed().as_millis() >= 200);
    assert!(err.contains("locked") || err.contains("busy"), "{err}");
    assert!(err.contains("spool"), "{err}");
    assert!(env.log_text().contains("spool"), "{}", env.log_text());
    // A second waiting event; and the first as a hook that claimed it and was killed before it
    // committed leaves it (its process is gone).
    let spool = agent_harness::store::spool::path_for(&env.db);
    let orphan = std::path::PathBuf::from(format!("{}.claimed-999999999-1", spool.display()));
    std::fs::rename(&spool, &orphan).unwrap();
    assert_failed_open(&env.hook("harness-pre-tool-use", fixture(EDIT)));
    // A hook that cannot get the write lock leaves the spool alone (it only appends).
    let spooled = std::fs::read(&spool).unwrap();
    assert_failed_open(&env.hook("harness-pre-tool-use", fixture(EDIT)));
    let now = std::fs::read(&spool).unwrap();
    assert!(now.starts_with(&spooled) && now.len() > spooled.len());
    holder.execute_batch("ROLLBACK").unwrap();
    drop(holder);
    assert_eq!(env.count("SELECT count(*) FROM events"), 1);
    // Lock released: the next hook stores its event and every waiting one, quietly.
    record_one(&env);
    assert_eq!(env.count("SELECT count(*) FROM events"), 5);
    assert!(!spool.exists());
    assert!(!orphan.exists());
}

#[test]
fn a_full_spool_refuses_more_and_says_so() {
    let env = Env::new("spool-full");
    env.config(r#"{"store": {"busy_timeout_ms": 100}}"#);
    record_one(&env);
    let spool = agent_harness::store::spool::path_for(&env.db);
    let f = std::fs::File::create(&spool).unwrap();
    f.set_len(agent_harness::store::spool::MAX_SPOOL_BYTES)
        .unwrap();
    let holder = env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let err = assert_failed_open(&env.hook("harness-pre-tool-use", fixture(EDIT)));
    assert!(err.contains("the spool is full"), "{err}");
    assert_eq!(
        std::fs::metadata(&spool).unwrap().len(),
        agent_harness::store::spool::MAX_SPOOL_BYTES
    );
}

#[test]
fn a_full_disk_loses_nothing_recorded_before() {
    let env = Env::new("full");
    record_one(&env);
    record_one(&env);
    // A file size limit of one block makes every write that extends a file fail (EFBIG), as a
    // full disk would; SIGXFSZ is ignored so the write fails instead of killing the process.
    let mut child = Command::new("sh")
        .arg("-c")
        .arg("ulimit -f 1 && trap '' XFSZ && exec \"$0\"")
        .arg(support::bin("harness-post-tool-use"))
        .env_clear()
        .env("HOME", &env.home)
        .env("HARNESS_DB", &env.db)
        .env("HARNESS_CONFIG", "/dev/null")
        .env("TMPDIR", env.dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&fixture("claude-code-2.1.197/PostToolUse-Edit.json"))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let err = assert_failed_open(&out);
    assert!(err.contains("harness-post-tool-use"), "{err}");
    // Everything recorded before is intact and readable.
    assert_eq!(env.count("SELECT count(*) FROM events"), 2);
    assert_eq!(env.count("SELECT count(*) FROM sessions"), 1);
    record_one(&env);
    assert!(env.count("SELECT count(*) FROM events") >= 3);
}

#[test]
fn a_panic_fails_open() {
    let env = Env::new("panic");
    let out = env
        .cmd("harness-pre-tool-use")
        .env("AGENT_HARNESS_TEST_PANIC", "parse")
        .write_stdin(fixture(EDIT))
        .output()
        .unwrap();
    let err = assert_failed_open(&out);
    assert!(err.contains("internal error"), "{err}");
    assert!(
        env.log_text().contains("panic injected"),
        "{}",
        env.log_text()
    );
}

#[test]
fn a_broken_config_file_falls_back_to_defaults_and_still_records() {
    let env = Env::new("badconfig");
    env.config("{ \"store\": { \"busy_timeout_ms\": \"soon\" } }");
    let out = env.hook("harness-pre-tool-use", fixture(EDIT));
    let err = assert_failed_open(&out);
    assert!(err.contains("config file"), "{err}");
    assert!(err.contains("using defaults"), "{err}");
    assert_eq!(env.count("SELECT count(*) FROM events"), 1);
}

#[test]
fn a_newer_schema_is_left_alone_and_the_event_waits() {
    let env = Env::new("newer");
    record_one(&env);
    env.db().pragma_update(None, "user_version", 999).unwrap();
    let err = assert_failed_open(&env.hook("harness-pre-tool-use", fixture(EDIT)));
    assert!(err.contains("upgrade agent-harness"), "{err}");
    assert_eq!(env.count("SELECT count(*) FROM events"), 1);
}

/// Records the fixture's Edit (its session takes the file) and returns the same write from
/// another session, which the hook answers with a deny.
fn held_by_another(env: &Env) -> String {
    record_one(env);
    let payload = String::from_utf8(fixture(EDIT)).unwrap();
    let other = payload.replacen("\"session_id\": \"", "\"session_id\": \"other-", 1);
    assert_ne!(other, payload);
    other
}

#[test]
fn a_hook_started_with_its_standard_descriptors_closed_records_and_writes_into_no_file() {
    let env = Env::new("closed-stdio");
    // The hook answers with a deny on stdout, and stdout, stdin and stderr are all closed.
    let other = held_by_another(&env);
    let input = env.dir.path().join("other.json");
    std::fs::write(&input, &other).unwrap();
    for closed in ["<&- >&- 2>&-", ">&- 2>&-", ">&-"] {
        let mut cmd = std::process::Command::new("sh");
        cmd.arg("-c")
            .arg(format!("exec 3< \"$1\"; exec \"$0\" <&3 3<&- {closed}"))
            .arg(support::bin("harness-pre-tool-use"))
            .arg(&input);
        let out = env.apply_std(cmd.env_clear()).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{closed}: {out:?}");
    }
    let db = env.db();
    let check: String = db
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap();
    assert_eq!(check, "ok");
    // The call with stdin closed read nothing: two events from the file.
    assert_eq!(env.count("SELECT count(*) FROM events"), 3);
    assert_eq!(
        env.count("SELECT count(*) FROM lock_log WHERE action = 'deny'"),
        2
    );
    for entry in std::fs::read_dir(env.db.parent().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        let bytes = std::fs::read(&path).unwrap_or_default();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains("\"decision\""),
            "the answer went into {}",
            path.display()
        );
    }
}

#[test]
fn a_hook_whose_reader_is_gone_exits_0_and_is_not_killed_by_sigpipe() {
    let env = Env::new("sigpipe");
    let other = held_by_another(&env);
    // The deny goes to a pipe nobody reads any more. (The child starts with SIGPIPE's default
    // action: std resets it for the programs it spawns.)
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = env
        .apply_std(std::process::Command::new(support::bin("harness-pre-tool-use")).env_clear())
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(other.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    assert!(out.stderr.is_empty(), "{}", stderr(&out));
    assert_eq!(
        env.count("SELECT count(*) FROM lock_log WHERE action = 'deny'"),
        1
    );
}
