//! `harness install` / `uninstall`: merging the harness's hooks into a Claude Code or Gemini CLI
//! settings file and taking exactly them out again. Both clients use the same shape
//! (`hooks.<Event>[{matcher?, hooks: [{type: "command", command, ...}]}]`).
//!
//! Owns the merge, not the file IO policy around it (backup, dry run, writing): that is the CLI's.
//! A hook is the harness's when it is a command hook whose executable's file name is one of the
//! harness's hook binaries; everything else in the file (other hooks, other keys, their order) is
//! kept as it was. Installing twice gives the same file as installing once.

use serde_json::{Map, Value};

/// Claude Code's hooks as shipped (`settings.snippet.json`), with bare binary names: exec form
/// (`args`, no shell), timeouts in seconds, record-only hooks `async`.
pub const SNIPPET: &str = include_str!("../settings.snippet.json");

/// Gemini CLI's hooks as shipped (`gemini.snippet.json`): Gemini runs a hook command through
/// `bash -c` and reads its timeout in milliseconds. PreCompress is left out: Gemini CLI 0.61 fires
/// it before every model turn.
pub const GEMINI_SNIPPET: &str = include_str!("../gemini.snippet.json");

/// Which client's settings file is being changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Client {
    Claude,
    Gemini,
}

/// Slash commands shipped in `commands/`, copied into `.claude/commands/` by install.
pub const COMMANDS: &[(&str, &str)] = &[
    (
        "delegate-gemini.md",
        include_str!("../commands/delegate-gemini.md"),
    ),
    ("review.md", include_str!("../commands/review.md")),
];

/// The shipped slash command `body` with its `harness` program named `harness`: a bare name when
/// the binaries are on PATH, else the absolute path (shell-quoted if need be) that the hooks use
/// too. Rewrites the `!` line, the `allowed-tools` pattern and the commands Claude is told to run.
pub fn command_file(body: &str, harness: &str) -> String {
    if harness == "harness" {
        return body.to_owned();
    }
    body.replace("Bash(harness ", &format!("Bash({harness} "))
        .replace("`harness ", &format!("`{harness} "))
}

/// The `harness` program a command file written from `body` by [`command_file`] names, or None
/// when `existing` is not such a file (the user changed it, or it is someone else's).
pub fn shipped_command_program(body: &str, existing: &str) -> Option<String> {
    let bang = body.lines().find_map(|l| l.strip_prefix("!`harness"))?;
    let program = existing
        .lines()
        .find_map(|l| l.strip_prefix("!`")?.strip_suffix(bang))?;
    (!program.is_empty() && command_file(body, program) == existing).then(|| program.to_owned())
}

/// The hook binaries, one per event the harness registers.
pub const HOOK_BINARIES: &[&str] = &[
    "harness-session-start",
    "harness-user-prompt-submit",
    "harness-user-prompt-expansion",
    "harness-pre-tool-use",
    "harness-post-tool-use",
    "harness-post-tool-use-failure",
    "harness-stop",
    "harness-stop-failure",
    "harness-subagent-start",
    "harness-subagent-stop",
    "harness-pre-compact",
    "harness-post-compact",
    "harness-notification",
    "harness-session-end",
    "harness-pre-skill-shell-command",
    "harness-pre-model-switch",
    "harness-post-model-switch",
    "harness-directory-added",
    "harness-permission-request",
    "harness-permission-denied",
];

/// The status line command's binary.
pub const STATUSLINE_BINARY: &str = "harness-statusline";

/// What install did to `statusLine`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StatusLine {
    /// There was none; ours is set.
    Added,
    /// Ours was there (perhaps from another directory); it is set to this one.
    Ours,
    /// The user has their own; it is kept. Holds its command.
    KeptUsers(String),
}

/// The file name of the program a command entry runs. Exec form names the executable; in shell
/// form it is the first word, perhaps quoted.
pub fn command_program(v: &Value) -> Option<&str> {
    let command = v.get("command").and_then(Value::as_str)?;
    let exe = match command.chars().next() {
        Some(q @ ('"' | '\'')) => command[1..].split(q).next().unwrap_or(""),
        _ => command.split_whitespace().next().unwrap_or(""),
    };
    exe.rsplit('/').next()
}

fn is_our_statusline(v: &Value) -> bool {
    command_program(v) == Some(STATUSLINE_BINARY)
}

/// Sets Claude Code's `statusLine` to `command` unless the user has one of their own.
pub fn merge_statusline(settings: &mut Value, command: &str) -> Result<StatusLine, ShapeError> {
    let root = settings
        .as_object_mut()
        .ok_or_else(|| ShapeError("the settings file is not a JSON object".into()))?;
    let ours = serde_json::json!({"type": "command", "command": command, "padding": 0});
    match root.get("statusLine") {
        None => {
            root.insert("statusLine".into(), ours);
            Ok(StatusLine::Added)
        }
        Some(v) if is_our_statusline(v) => {
            root.insert("statusLine".into(), ours);
            Ok(StatusLine::Ours)
        }
        Some(v) => Ok(StatusLine::KeptUsers(
            v.get("command")
                .and_then(Value::as_str)
                .unwrap_or("?")
                .to_owned(),
        )),
    }
}

/// Removes `statusLine` if it is the harness's.
pub fn unmerge_statusline(settings: &mut Value) -> bool {
    let Some(root) = settings.as_object_mut() else {
        return false;
    };
    if root.get("statusLine").is_some_and(is_our_statusline) {
        root.shift_remove("statusLine");
        return true;
    }
    false
}

/// Why a settings file cannot be merged.
#[derive(Debug, PartialEq, Eq)]
pub struct ShapeError(pub String);

impl std::fmt::Display for ShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// True when `hook` (one entry of a group's `hooks` array) runs one of the harness's binaries.
pub fn is_harness_hook(hook: &Value) -> bool {
    command_program(hook).is_some_and(|name| HOOK_BINARIES.contains(&name))
}

/// The shipped hooks of `client` with each command rewritten by `command_for(binary name)`.
pub fn client_hooks(client: Client, command_for: &dyn Fn(&str) -> String) -> Map<String, Value> {
    let text = match client {
        Client::Claude => SNIPPET,
        Client::Gemini => GEMINI_SNIPPET,
    };
    hooks_of(text, command_for)
}

/// Claude Code's shipped hooks with each command rewritten by `command_for(binary name)`.
pub fn snippet_hooks(command_for: &dyn Fn(&str) -> String) -> Map<String, Value> {
    hooks_of(SNIPPET, command_for)
}

fn hooks_of(text: &str, command_for: &dyn Fn(&str) -> String) -> Map<String, Value> {
    let snippet: Value = serde_json::from_str(text).expect("the shipped snippets are valid JSON");
    let mut hooks = snippet["hooks"]
        .as_object()
        .cloned()
        .expect("the shipped snippets have a hooks object");
    for groups in hooks.values_mut() {
        for group in groups.as_array_mut().into_iter().flatten() {
            for hook in group["hooks"].as_array_mut().into_iter().flatten() {
                if let Some(Value::String(cmd)) = hook.get_mut("command") {
                    *cmd = command_for(cmd);
                }
            }
        }
    }
    hooks
}

/// The hook whose failure can fail closed: the lock check.
const LOCK_HOOK: (&str, &str) = ("PreToolUse", "harness-pre-tool-use");

/// Sets `onFailure: "block"` on the lock hook (PreToolUse) when the user chose
/// `locks.fail_closed`, and takes it off when not. Claude Code 2.1.332 honours it on a command
/// hook (a crash, timeout or unreadable answer then counts as exit 2: the write is blocked);
/// 2.1.197 ignores the key. Gemini CLI has no such field, so its hooks are left alone.
pub fn set_fail_closed(client: Client, hooks: &mut Map<String, Value>, fail_closed: bool) {
    if client != Client::Claude {
        return;
    }
    let (event, binary) = LOCK_HOOK;
    let Some(groups) = hooks.get_mut(event).and_then(Value::as_array_mut) else {
        return;
    };
    for group in groups {
        for hook in group
            .get_mut("hooks")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            if command_program(hook) != Some(binary) {
                continue;
            }
            if let Some(h) = hook.as_object_mut() {
                if fail_closed {
                    h.insert("onFailure".into(), Value::String("block".into()));
                } else {
                    h.shift_remove("onFailure");
                }
            }
        }
    }
}

fn hooks_object(settings: &mut Value) -> Result<&mut Map<String, Value>, ShapeError> {
    let root = settings
        .as_object_mut()
        .ok_or_else(|| ShapeError("the settings file is not a JSON object".into()))?;
    let hooks = root
        .entry("hooks")
        .or_insert_with(|| Value::Object(Map::new()));
    hooks
        .as_object_mut()
        .ok_or_else(|| ShapeError("\"hooks\" is not an object".into()))
}

/// Removes the harness's hooks from one event's groups; drops groups left with no hooks.
fn strip_event(event: &str, groups: &mut Value) -> Result<usize, ShapeError> {
    let list = groups
        .as_array_mut()
        .ok_or_else(|| ShapeError(format!("\"hooks.{event}\" is not an array")))?;
    let mut removed = 0;
    list.retain_mut(|group| {
        let Some(hooks) = group.get_mut("hooks").and_then(Value::as_array_mut) else {
            return true;
        };
        let before = hooks.len();
        hooks.retain(|h| !is_harness_hook(h));
        removed += before - hooks.len();
        !(before > 0 && hooks.is_empty())
    });
    Ok(removed)
}

/// Merges the harness's hooks into `settings`. Earlier harness hooks are replaced, so the result
/// does not depend on how often install ran. Returns the events whose hooks changed.
pub fn merge(settings: &mut Value, ours: &Map<String, Value>) -> Result<Vec<String>, ShapeError> {
    let before = settings.clone();
    let hooks = hooks_object(settings)?;
    let mut changed = Vec::new();
    for (event, groups) in ours {
        let slot = hooks
            .entry(event.clone())
            .or_insert_with(|| Value::Array(Vec::new()));
        strip_event(event, slot)?;
        let list = slot.as_array_mut().expect("strip_event checked the array");
        list.extend(groups.as_array().into_iter().flatten().cloned());
        if before.get("hooks").and_then(|h| h.get(event)) != Some(&*slot) {
            changed.push(event.clone());
        }
    }
    Ok(changed)
}

/// Removes every harness hook from `settings`, then the groups, event lists and `hooks` object
/// that this leaves empty. Returns how many hooks were removed.
pub fn unmerge(settings: &mut Value) -> Result<usize, ShapeError> {
    let Some(root) = settings.as_object_mut() else {
        return Err(ShapeError("the settings file is not a JSON object".into()));
    };
    let Some(hooks) = root.get_mut("hooks") else {
        return Ok(0);
    };
    let hooks = hooks
        .as_object_mut()
        .ok_or_else(|| ShapeError("\"hooks\" is not an object".into()))?;
    let mut removed = 0;
    let mut emptied = Vec::new();
    for (event, groups) in hooks.iter_mut() {
        let n = strip_event(event, groups)?;
        removed += n;
        if n > 0 && groups.as_array().is_some_and(Vec::is_empty) {
            emptied.push(event.clone());
        }
    }
    for event in emptied {
        hooks.shift_remove(&event);
    }
    if removed > 0 && hooks.is_empty() {
        root.shift_remove("hooks");
    }
    Ok(removed)
}

/// A line diff of two texts for `--dry-run`: `-` and `+` lines with a little context.
pub fn line_diff(old: &str, new: &str) -> String {
    let a: Vec<&str> = old.lines().collect();
    let b: Vec<&str> = new.lines().collect();
    // Longest common subsequence table, from the end.
    let mut lcs = vec![vec![0u32; b.len() + 1]; a.len() + 1];
    for i in (0..a.len()).rev() {
        for j in (0..b.len()).rev() {
            lcs[i][j] = if a[i] == b[j] {
                lcs[i + 1][j + 1] + 1
            } else {
                lcs[i + 1][j].max(lcs[i][j + 1])
            };
        }
    }
    let mut ops: Vec<(char, &str)> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < a.len() || j < b.len() {
        if i < a.len() && j < b.len() && a[i] == b[j] {
            ops.push((' ', a[i]));
            i += 1;
            j += 1;
        } else if i < a.len() && (j == b.len() || lcs[i + 1][j] >= lcs[i][j + 1]) {
            ops.push(('-', a[i]));
            i += 1;
        } else {
            ops.push(('+', b[j]));
            j += 1;
        }
    }
    const CONTEXT: usize = 2;
    let near_change = |k: usize| {
        let lo = k.saturating_sub(CONTEXT);
        let hi = (k + CONTEXT + 1).min(ops.len());
        ops[lo..hi].iter().any(|(c, _)| *c != ' ')
    };
    let mut out = String::new();
    let mut skipped = false;
    for (k, (c, line)) in ops.iter().enumerate() {
        if *c != ' ' || near_change(k) {
            if skipped && !out.is_empty() {
                out.push_str("  ...\n");
            }
            skipped = false;
            out.push(*c);
            out.push(' ');
            out.push_str(line);
            out.push('\n');
        } else {
            skipped = true;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ours() -> Map<String, Value> {
        snippet_hooks(&|name| format!("/opt/bin/{name}"))
    }

    #[test]
    fn no_hook_whose_answer_reaches_the_model_is_async() {
        // An async hook's output is dropped: context (and notices marked delivered) would be lost.
        for (event, groups) in ours() {
            for h in groups
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|g| g["hooks"].as_array().unwrap())
            {
                let is_async = h.get("async") == Some(&Value::Bool(true));
                assert!(
                    !(is_async && crate::decision::carries_context(&event)),
                    "{event} is async but carries context"
                );
            }
        }
        // The plugin manifest ships the same hooks.
        let plugin: Value = serde_json::from_str(include_str!("../hooks.json")).unwrap();
        let snippet: Value = serde_json::from_str(SNIPPET).unwrap();
        assert_eq!(plugin["hooks"], snippet["hooks"]);
    }

    #[test]
    fn the_snippet_covers_every_binary_once() {
        let hooks = ours();
        let mut commands: Vec<String> = hooks
            .values()
            .flat_map(|g| g.as_array().unwrap().clone())
            .flat_map(|g| g["hooks"].as_array().unwrap().clone())
            .map(|h| {
                h["command"]
                    .as_str()
                    .unwrap()
                    .rsplit('/')
                    .next()
                    .unwrap()
                    .to_owned()
            })
            .collect();
        commands.sort();
        let mut want: Vec<String> = HOOK_BINARIES.iter().map(|s| s.to_string()).collect();
        want.sort();
        assert_eq!(commands, want);
    }

    #[test]
    fn merge_keeps_user_hooks_and_keys_and_is_idempotent() {
        let mut settings = json!({
            "model": "opus",
            "hooks": {
                "PreToolUse": [{"matcher": "Bash", "hooks": [{"type": "command", "command": "my-guard"}]}],
                "Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]
            },
            "permissions": {"allow": ["Bash(ls)"]}
        });
        let original = settings.clone();
        let changed = merge(&mut settings, &ours()).unwrap();
        assert_eq!(changed.len(), HOOK_BINARIES.len());
        let once = settings.clone();
        assert_eq!(merge(&mut settings, &ours()).unwrap(), Vec::<String>::new());
        assert_eq!(settings, once);
        assert_eq!(
            settings["hooks"]["PreToolUse"][0],
            original["hooks"]["PreToolUse"][0]
        );
        assert_eq!(settings["hooks"]["PreToolUse"].as_array().unwrap().len(), 2);
        let keys: Vec<&String> = settings.as_object().unwrap().keys().collect();
        assert_eq!(keys, ["model", "hooks", "permissions"]);

        assert_eq!(unmerge(&mut settings).unwrap(), HOOK_BINARIES.len());
        assert_eq!(settings, original);
    }

    #[test]
    fn reinstalling_from_elsewhere_replaces_instead_of_adding() {
        let mut settings = json!({});
        merge(&mut settings, &ours()).unwrap();
        let elsewhere = snippet_hooks(&|name| name.to_owned());
        merge(&mut settings, &elsewhere).unwrap();
        assert_eq!(settings["hooks"]["Stop"].as_array().unwrap().len(), 1);
        assert_eq!(
            settings["hooks"]["Stop"][0]["hooks"][0]["command"],
            "harness-stop"
        );
        unmerge(&mut settings).unwrap();
        assert_eq!(settings, json!({}));
    }

    #[test]
    fn unmerge_leaves_a_mixed_group_with_the_users_hooks() {
        let mut settings = json!({"hooks": {"Stop": [{"hooks": [
            {"type": "command", "command": "/x/harness-stop", "args": []},
            {"type": "command", "command": "say done"}
        ]}]}});
        assert_eq!(unmerge(&mut settings).unwrap(), 1);
        assert_eq!(
            settings,
            json!({"hooks": {"Stop": [{"hooks": [{"type": "command", "command": "say done"}]}]}})
        );
    }

    #[test]
    fn odd_shapes_are_reported_not_overwritten() {
        let mut settings = json!({"hooks": []});
        assert!(
            merge(&mut settings, &ours())
                .unwrap_err()
                .0
                .contains("\"hooks\"")
        );
        let mut settings = json!({"hooks": {"Stop": {}}});
        assert!(
            merge(&mut settings, &ours())
                .unwrap_err()
                .0
                .contains("hooks.Stop")
        );
        assert!(merge(&mut json!([1]), &ours()).is_err());
    }

    #[test]
    fn recognises_harness_hooks_in_every_spelling() {
        for cmd in [
            "harness-stop",
            "/a/b/harness-stop",
            "\"/a b/harness-stop\" --x",
        ] {
            assert!(is_harness_hook(&json!({"command": cmd})), "{cmd}");
        }
        for cmd in ["harness", "my-harness-stop", "echo harness-stop"] {
            assert!(!is_harness_hook(&json!({"command": cmd})), "{cmd}");
        }
    }

    #[test]
    fn gemini_hooks_are_quoted_for_bash_and_recognised() {
        let hooks = client_hooks(Client::Gemini, &|n| {
            crate::shell::quote(&format!("/opt/my bin/{n}"))
        });
        let cmd = hooks["BeforeTool"][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert_eq!(cmd, "'/opt/my bin/harness-pre-tool-use'");
        assert!(is_harness_hook(&hooks["BeforeTool"][0]["hooks"][0]));
        assert_eq!(crate::shell::quote("/usr/bin/x"), "/usr/bin/x");
        assert_eq!(crate::shell::quote("it's"), "'it'\\''s'");
        let mut settings = json!({"security": {"auth": {"selectedType": "gemini-api-key"}}});
        merge(&mut settings, &hooks).unwrap();
        assert_eq!(hooks.len(), 7);
        assert_eq!(unmerge(&mut settings).unwrap(), 7);
        assert_eq!(
            settings,
            json!({"security": {"auth": {"selectedType": "gemini-api-key"}}})
        );
    }

    #[test]
    fn on_failure_block_is_set_on_the_lock_hook_only_when_locks_fail_closed() {
        let mut hooks = ours();
        set_fail_closed(Client::Claude, &mut hooks, true);
        for (event, groups) in &hooks {
            for h in groups[0]["hooks"].as_array().unwrap() {
                let want = (event == "PreToolUse").then_some("block");
                assert_eq!(h["onFailure"].as_str(), want, "{event}");
            }
        }
        set_fail_closed(Client::Claude, &mut hooks, false);
        assert_eq!(hooks, ours(), "off again: the shipped hooks, unchanged");
        let mut gemini = client_hooks(Client::Gemini, &|n| n.to_owned());
        let before = gemini.clone();
        set_fail_closed(Client::Gemini, &mut gemini, true);
        assert_eq!(gemini, before, "Gemini CLI has no onFailure");
    }

    #[test]
    fn the_status_line_is_set_only_where_the_user_has_none() {
        let mut s = json!({"model": "opus"});
        assert_eq!(
            merge_statusline(&mut s, "/b/harness-statusline").unwrap(),
            StatusLine::Added
        );
        assert_eq!(s["statusLine"]["command"], "/b/harness-statusline");
        assert_eq!(
            merge_statusline(&mut s, "harness-statusline").unwrap(),
            StatusLine::Ours
        );
        assert_eq!(s["statusLine"]["command"], "harness-statusline");
        assert!(unmerge_statusline(&mut s));
        assert_eq!(s, json!({"model": "opus"}));
        let mut users = json!({"statusLine": {"type": "command", "command": "~/my-line.sh"}});
        let before = users.clone();
        assert_eq!(
            merge_statusline(&mut users, "harness-statusline").unwrap(),
            StatusLine::KeptUsers("~/my-line.sh".into())
        );
        assert!(!unmerge_statusline(&mut users));
        assert_eq!(users, before);
    }

    #[test]
    fn command_files_name_the_harness_the_hooks_use_and_are_recognised_again() {
        for (_, body) in COMMANDS {
            assert_eq!(command_file(body, "harness"), *body);
            assert_eq!(
                shipped_command_program(body, body).as_deref(),
                Some("harness")
            );
            for program in ["/x/bin/harness", "'/a b/harness'"] {
                let text = command_file(body, program);
                assert!(text.contains(&format!("!`{program} ")), "{text}");
                assert!(text.contains(&format!("Bash({program} ")), "{text}");
                assert!(!text.contains("`harness "), "{text}");
                assert!(!text.contains("Bash(harness "), "{text}");
                assert_eq!(
                    shipped_command_program(body, &text).as_deref(),
                    Some(program)
                );
            }
            let changed = body.replace("agent-harness", "my harness");
            assert_eq!(shipped_command_program(body, &changed), None);
        }
    }

    #[test]
    fn diff_shows_changed_lines_with_context() {
        let d = line_diff("a\nb\nc\nd\ne\nf\ng\n", "a\nb\nc\nX\ne\nf\ng\n");
        assert_eq!(d, "  b\n  c\n- d\n+ X\n  e\n  f\n");
    }
}
