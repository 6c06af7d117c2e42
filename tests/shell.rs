//! Shell commands and file locks: a command that certainly writes a file another agent holds is
//! denied before it runs; the detector is read before the store's write transaction and bounded;
//! and, as properties over random shell-like text, it never panics, its work is linear in the
//! command, and the known write forms are always found.

mod support;

use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use agent_harness::shell::{self, Bound, Limits};
use proptest::prelude::*;
use serde_json::{Value, json};
use support::{Env, fixture, stderr, stdout};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

struct Project {
    env: Env,
    root: String,
}

fn project(label: &str) -> Project {
    let env = Env::new(label);
    let root = env.dir.path().join("proj");
    std::fs::create_dir_all(root.join(".git")).unwrap();
    std::fs::create_dir_all(root.join("src")).unwrap();
    let root = std::fs::canonicalize(&root)
        .unwrap()
        .to_string_lossy()
        .into_owned();
    Project { env, root }
}

impl Project {
    fn path(&self, rel: &str) -> String {
        format!("{}/{rel}", self.root)
    }

    /// A recorded Claude Code payload, as `session` in the project.
    fn claude(&self, name: &str, session: &str, tool_input: Value) -> Value {
        let mut p: Value =
            serde_json::from_slice(&fixture(&format!("claude-code-2.1.197/{name}.json"))).unwrap();
        p["session_id"] = json!(session);
        p["cwd"] = json!(self.root);
        p["tool_input"] = tool_input;
        p
    }

    fn hook(&self, binary: &str, payload: &Value) -> Output {
        self.env.hook(binary, payload.to_string())
    }

    /// A holds `rel` through an Edit, as Claude Code's PreToolUse and PostToolUse would say.
    fn hold(&self, session: &str, rel: &str) {
        let input = json!({"file_path": self.path(rel), "old_string": "a", "new_string": "b"});
        let pre = self.claude("PreToolUse-Edit", session, input.clone());
        assert!(self.hook("harness-pre-tool-use", &pre).stdout.is_empty());
        let post = self.claude("PostToolUse-Edit", session, input);
        assert!(self.hook("harness-post-tool-use", &post).stdout.is_empty());
    }

    fn pre_bash(&self, session: &str, command: &str) -> Output {
        let p = self.claude(
            "PreToolUse-Bash",
            session,
            json!({"command": command, "description": "test"}),
        );
        self.hook("harness-pre-tool-use", &p)
    }

    fn post_bash(&self, session: &str, command: &str) -> Output {
        let p = self.claude(
            "PostToolUse-Bash",
            session,
            json!({"command": command, "description": "test"}),
        );
        self.hook("harness-post-tool-use", &p)
    }

    /// What the client does with the hook's answer: runs the command unless it was denied.
    fn run_unless_denied(&self, answer: &Output, command: &str) {
        if deny_reason(answer).is_none() {
            let status = std::process::Command::new("bash")
                .args(["-c", command])
                .current_dir(&self.root)
                .status()
                .unwrap();
            assert!(status.success(), "{command}");
        }
    }

    fn claims_of(&self, session: &str) -> i64 {
        self.env.count(&format!(
            "SELECT count(*) FROM claims WHERE session_id = '{session}'"
        ))
    }
}

/// The deny reason, if the answer denies, checked to carry both clients' forms.
fn deny_reason(out: &Output) -> Option<String> {
    assert_eq!(out.status.code(), Some(0));
    assert!(out.stderr.is_empty(), "{}", stderr(out));
    if out.stdout.is_empty() {
        return None;
    }
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    if v["decision"] != "block" {
        return None;
    }
    assert_eq!(v["hookSpecificOutput"]["permissionDecision"], "deny", "{v}");
    v["reason"].as_str().map(str::to_owned)
}

fn context(out: &Output) -> String {
    let v: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("no context: {}", stdout(out)));
    v["hookSpecificOutput"]["additionalContext"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[test]
fn a_redirection_into_a_held_file_is_denied_before_it_runs() {
    let p = project("shell-deny");
    let file = p.path("src/main.rs");
    std::fs::write(&file, "original\n").unwrap();
    p.hold(A, "src/main.rs");

    let command = "cargo fmt && echo clobbered > src/main.rs";
    let out = p.pre_bash(B, command);
    let reason = deny_reason(&out).expect("denied");
    p.run_unless_denied(&out, command);
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "original\n");

    assert!(
        reason.starts_with(
            "agent-harness: deliberate file lock held by another agent, not an error."
        ),
        "{reason}"
    );
    for part in [
        "This command was not run",
        &format!("{file} (held by claude session aaaaaaaa in {}", p.root),
        "last wrote it 0s ago",
        "lapses in 14m",
        &format!("harness locks release {file}"),
    ] {
        assert!(reason.contains(part), "{part:?} missing from {reason}");
    }
    // The deny is in the lock log; the command took no claim.
    assert_eq!(
        p.env.count(&format!(
            "SELECT count(*) FROM lock_log WHERE action = 'deny' AND session_id = '{B}' \
             AND other = '{A}'"
        )),
        1
    );
    assert_eq!(p.claims_of(B), 0);
    // The holder itself may.
    assert!(deny_reason(&p.pre_bash(A, command)).is_none());
}

#[test]
fn every_certain_form_is_denied_and_the_uncertain_ones_are_left_to_the_notice() {
    let p = project("shell-forms");
    std::fs::write(p.path("src/main.rs"), "original\n").unwrap();
    p.hold(A, "src/main.rs");
    for command in [
        "printf x | tee -a src/main.rs",
        "cp /etc/hostname src/main.rs",
        "mv src/main.rs src/old.rs",
        "install -m 644 /etc/hostname src/main.rs",
        "sed -i 's/original/x/' src/main.rs",
        "truncate -s 0 src/main.rs",
        "dd if=/dev/zero of=src/main.rs count=1",
        "rm -f src/main.rs",
        "cd src && cat > main.rs <<'EOF'\nnew\nEOF",
        "ls 2> ./src/../src/main.rs",
    ] {
        let out = p.pre_bash(B, command);
        assert!(deny_reason(&out).is_some(), "not denied: {command}");
        p.run_unless_denied(&out, command);
    }
    assert_eq!(
        std::fs::read_to_string(p.path("src/main.rs")).unwrap(),
        "original\n"
    );
    // Not certain before it runs: allowed, and noticed afterwards where the text shows it.
    for command in [
        "touch src/main.rs",
        "F=src/main.rs; echo x > \"$F\"",
        "echo x > src/*.rs",
        "cat <<EOF\necho x > src/main.rs\nEOF",
        "echo hi # > src/main.rs",
        "cp -n /etc/hostname src/main.rs",
        "echo 'unterminated > src/main.rs",
    ] {
        assert!(
            deny_reason(&p.pre_bash(B, command)).is_none(),
            "denied: {command}"
        );
    }
    let after = context(&p.post_bash(B, "touch src/main.rs"));
    assert!(after.contains("collision"), "{after}");
    assert_eq!(p.claims_of(B), 0, "no claim before or after");
}

#[test]
fn a_gemini_shell_command_is_denied_in_its_own_directory() {
    let p = project("shell-gemini");
    std::fs::write(p.path("src/main.rs"), "original\n").unwrap();
    p.hold(A, "src/main.rs");
    let run = |dir: Option<&str>, command: &str| {
        let mut v: Value = serde_json::from_slice(&fixture(
            "gemini-cli-0.61.0/BeforeTool-run_shell_command.json",
        ))
        .unwrap();
        v["cwd"] = json!(p.root);
        v["tool_input"]["command"] = json!(command);
        if let Some(d) = dir {
            v["tool_input"]["dir_path"] = json!(d);
        }
        let out = p.hook("harness-pre-tool-use", &v);
        deny_reason(&out).inspect(|_| {
            // Gemini CLI honours the top-level deny.
            let v: Value = serde_json::from_slice(&out.stdout).unwrap();
            assert_eq!(v["decision"], "block");
        })
    };
    assert!(run(Some("src"), "echo x > main.rs").is_some());
    assert!(run(None, "echo x > src/main.rs").is_some());
    // The same words in the workspace root name another file.
    assert!(run(None, "echo x > main.rs").is_none());
}

#[test]
fn the_shell_command_is_read_before_the_write_transaction() {
    // With the store's write lock held elsewhere the hook never gets a transaction; that it still
    // knows which command writes a file (and, fail-closed, denies only that one) shows the
    // command was read before any transaction started.
    let p = project("shell-outside");
    p.hold(A, "src/other.rs");
    p.env
        .config(r#"{"store": {"busy_timeout_ms": 100}, "locks": {"fail_closed": true}}"#);
    let holder = p.env.db();
    holder.execute_batch("BEGIN IMMEDIATE").unwrap();
    let out = p.pre_bash(B, "echo x > src/free.rs");
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["decision"], "block", "{v}");
    assert!(
        v["reason"]
            .as_str()
            .unwrap()
            .contains("locks.fail_closed is set")
    );
    let out = p.pre_bash(B, "ls -la");
    assert!(out.stdout.is_empty(), "{}", stdout(&out));
    assert!(!out.stderr.is_empty(), "the unavailable store is reported");
    holder.execute_batch("ROLLBACK").unwrap();
}

/// The longest time `db`'s write lock stayed taken while `run` ran, as seen by a prober that takes
/// and drops it every few hundred microseconds.
fn longest_write_lock_hold<T>(db: &std::path::Path, run: impl FnOnce() -> T) -> (T, Duration) {
    let done = Arc::new(AtomicBool::new(false));
    let prober = {
        let done = Arc::clone(&done);
        let db = db.to_owned();
        std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.busy_timeout(Duration::ZERO).unwrap();
            let mut longest = Duration::ZERO;
            let mut busy_since: Option<Instant> = None;
            while !done.load(Ordering::Relaxed) {
                match conn.execute_batch("BEGIN IMMEDIATE; COMMIT") {
                    Ok(()) => {
                        if let Some(since) = busy_since.take() {
                            longest = longest.max(since.elapsed());
                        }
                    }
                    Err(_) => {
                        busy_since.get_or_insert_with(Instant::now);
                    }
                }
                std::thread::sleep(Duration::from_micros(300));
            }
            if let Some(since) = busy_since {
                longest = longest.max(since.elapsed());
            }
            longest
        })
    };
    let value = run();
    done.store(true, Ordering::Relaxed);
    (value, prober.join().unwrap())
}

/// `touch src/held.rs n0 n1 ...`: one held file, then `names` fresh ones.
fn touch_of(names: usize) -> String {
    let mut cmd = String::from("touch src/held.rs");
    for i in 0..names {
        cmd.push_str(&format!(" n{i:06}"));
    }
    cmd
}

/// Measures the detector and the hook calls around it: AH_SHELL_NAMES picks the size (20,000 by
/// default); run with `--nocapture` to see the figures.
#[test]
fn a_touch_of_20000_names_holds_the_write_lock_briefly() {
    let names: usize = std::env::var("AH_SHELL_NAMES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(20_000);
    let p = project("shell-touch");
    p.hold(A, "src/held.rs");
    let cmd = touch_of(names);

    // The detector alone: bounded, linear, and it says the bound was hit.
    let started = Instant::now();
    let found = shell::writes(&cmd, &p.root);
    let detector = started.elapsed();
    assert_eq!(found.bound, Some(Bound::Paths));
    assert!(found.work.paths <= Limits::HOOK.paths);
    assert!(found.work.lookups <= Limits::HOOK.lookups);
    assert!(found.work.steps <= 4 * cmd.len() + 64, "{:?}", found.work);
    assert_eq!(
        found.targets[0].path.to_str(),
        Some(p.path("src/held.rs").as_str())
    );

    // The hook calls: they get the write lock (nothing spooled), and the notice says the command
    // was checked only in part. The hold time is measured, not asserted.
    let (pre, pre_hold) = longest_write_lock_hold(&p.env.db, || {
        let t = Instant::now();
        (p.pre_bash(B, &cmd), t.elapsed())
    });
    let (post, post_hold) = longest_write_lock_hold(&p.env.db, || {
        let t = Instant::now();
        (p.post_bash(B, &cmd), t.elapsed())
    });
    assert!(
        deny_reason(&pre.0).is_none(),
        "touch is not a certain write"
    );
    assert!(post.0.stderr.is_empty(), "{}", stderr(&post.0));
    let notice = context(&post.0);
    assert!(notice.contains(&p.path("src/held.rs")), "{notice}");
    assert!(notice.contains("too long to check every file"), "{notice}");
    eprintln!(
        "{names} names, {} bytes: detector {detector:?} (bound {:?}, {} paths, {} lookups); \
         PreToolUse {:?} with the write lock held at most {pre_hold:?}; PostToolUse {:?} with \
         it held at most {post_hold:?}",
        cmd.len(),
        found.bound,
        found.work.paths,
        found.work.lookups,
        pre.1,
        post.1
    );
}

// ---- properties ----

/// Pieces of shell-like text, hostile ones included.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        "[a-z]{1,6}".prop_map(String::from),
        Just(" ".into()),
        Just("\n".into()),
        prop::sample::select(vec![
            ";", "&&", "||", "|", "&", "(", ")", "$(", "`", "'", "\"", "\\", ">", ">>", "<", "<<",
            "<<-", "<<<", "2>", "&>", ">&", "<>", "#", "$", "${", "}", "{", "*", "~", "=", "-",
            "--", "-i", "cd", "cp", "mv", "rm", "sed", "tee", "touch", "dd", "of=", "EOF", "sudo",
            "env", "((", "[[", "]]", "é", "\t", "\u{0}",
        ])
        .prop_map(String::from),
    ]
}

fn shellish() -> impl Strategy<Value = String> {
    prop::collection::vec(piece(), 0..80).prop_map(|v| v.concat())
}

/// A write form that is always certain, with a literal target name.
fn form(target: &str) -> Vec<String> {
    vec![
        format!("echo x > {target}"),
        format!("echo x >> '{target}'"),
        format!("make 2> \"{target}\""),
        format!("cmd &> {target}"),
        format!("printf y | tee -a {target}"),
        format!("cp /nonexistent/src {target}"),
        format!("mv /nonexistent/src {target}"),
        format!("install -m 644 /nonexistent/src {target}"),
        format!("sed -i -e s/a/b/ {target}"),
        format!("truncate -s 0 {target}"),
        format!("dd if=/dev/zero of={target}"),
        format!("rm -f {target}"),
    ]
}

/// A well-formed command that cannot change where later words point.
fn harmless() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        "[a-z]{1,6}".prop_map(String::from),
        "'[a-z ]{0,6}'".prop_map(String::from),
        "\"[a-z ]{0,6}\"".prop_map(String::from),
        Just("$HOME".into()),
        Just("*.rs".into()),
        Just("$(date)".into()),
        Just("2>/dev/null".into()),
    ];
    let simple = prop::collection::vec(word, 1..5)
        .prop_map(|w| w.join(" "))
        // Quoted, `'cd'` is still `cd`: the quotes are taken off before the check.
        .prop_filter("no cd", |s| {
            !s.split(' ').any(|w| {
                ["cd", "pushd", "popd", "function"]
                    .contains(&w.replace(['\'', '"', '\\'], "").as_str())
            })
        });
    let sep = prop::sample::select(vec!["; ", " && ", " || ", " | ", "\n"]);
    prop::collection::vec((simple, sep), 0..6).prop_map(|v| {
        v.into_iter()
            .map(|(s, sep)| format!("{s}{sep}"))
            .collect::<String>()
    })
}

/// Found by `any_bytes_never_panic_within_tiny_bounds` in a fresh-clone CI run: the word bound
/// was hit by a word whose `;` was pushed in the same step, one word past the bound.
#[test]
fn the_word_bound_is_never_passed_by_the_token_after_it() {
    let limits = Limits {
        bytes: 17,
        words: 8,
        paths: 3,
        lookups: 12,
    };
    for cmd in [
        ";𐧒;Σ;®;𐇐|",
        "a;b;c;d;e;f;g;h;i;j",
        "a b c d e f g h|i",
        "a\nb\nc\nd\ne\nf\ng\nh\ni",
    ] {
        let r = shell::writes_within(cmd, "/nonexistent/ws", &limits);
        assert!(r.work.words <= 8, "{cmd:?}: {:?}", r.work);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_shell_text_never_panics_and_its_work_is_linear(cmd in shellish()) {
        let r = shell::writes(&cmd, "/nonexistent/ws");
        prop_assert!(r.work.bytes <= cmd.len());
        prop_assert!(r.work.words <= cmd.len() + 1);
        prop_assert!(r.work.steps <= 4 * cmd.len() + 64, "{:?} for {} bytes", r.work, cmd.len());
        prop_assert!(r.work.paths <= r.work.words);
    }

    #[test]
    fn any_bytes_never_panic_within_tiny_bounds(cmd in any::<String>(), bytes in 0usize..64) {
        let limits = Limits { bytes, words: 8, paths: 3, lookups: 12 };
        let r = shell::writes_within(&cmd, "/nonexistent/ws", &limits);
        prop_assert!(r.work.bytes <= bytes);
        prop_assert!(r.work.words <= 8 && r.work.paths <= 3 && r.work.lookups <= 12);
        prop_assert!(r.targets.len() <= 3);
        let r = shell::writes(&cmd, "/nonexistent/ws");
        prop_assert!(r.work.steps <= 4 * cmd.len() + 64);
    }

    #[test]
    fn a_known_write_form_is_always_found_for_certain(
        before in harmless(),
        which in 0usize..12,
        target in "[a-z][a-z0-9_.]{0,8}",
        after in harmless(),
    ) {
        let cmd = format!("{before}{}\n{after}", form(&target)[which]);
        let r = shell::writes(&cmd, "/nonexistent/ws");
        let want = std::path::PathBuf::from(format!("/nonexistent/ws/{target}"));
        prop_assert!(
            r.certain().any(|p| p == want),
            "{cmd:?} gave {:?}", r.targets
        );
    }
}
