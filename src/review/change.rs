//! Collecting the change a review judges: in a git work tree, the diff of the working tree
//! against HEAD (or `--base`) with untracked files added as new files and binary files named
//! only; outside git, the current text of the files the session edited. Bounded: at most
//! `max_files` files and `max_change_bytes` of text; what the bounds leave out is named.
//!
//! Runs `git` (through `gemini::supervise`, with a timeout and a group kill), so it is for the
//! `harness review` command only, never for a hook.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::gemini::supervise::{self, Limits};

/// How much of a change goes into a prompt.
#[derive(Debug, Clone, Copy)]
pub struct Bounds {
    pub max_bytes: usize,
    pub max_files: usize,
    pub max_untracked_file_bytes: usize,
}

impl Bounds {
    pub fn of(config: &crate::config::ReviewConfig) -> Bounds {
        Bounds {
            max_bytes: config.max_change_bytes,
            max_files: config.max_files,
            max_untracked_file_bytes: config.max_untracked_file_bytes,
        }
    }
}

/// A collected change.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Change {
    /// The git work tree's root, when the change came from git.
    pub git_root: Option<PathBuf>,
    /// The ref the diff was taken against (`HEAD`, the given base, or the empty tree of a
    /// repository without commits).
    pub base: Option<String>,
    /// Every changed file (text and binary), relative to the root in git.
    pub files: Vec<String>,
    /// Binary files: named, their content not shown.
    pub binary: Vec<String>,
    /// The diff (and untracked files' text) as the prompt shows it.
    pub text: String,
    /// What the bounds left out, one entry per file or group of files.
    pub left_out: Vec<String>,
}

impl Change {
    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// git's empty tree: the base of a repository that has no commit yet.
const EMPTY_TREE: &str = "4b825dc642cb6eb9a060e54bf8d69288fbee4904";
/// One git command may take this long.
const GIT_TIMEOUT: Duration = Duration::from_secs(20);

/// Runs git in `cwd` and hands each stdout line to `on_line`; true when it exited 0.
fn git(cwd: &Path, args: &[&str], on_line: &mut dyn FnMut(&[u8])) -> bool {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new("git");
    cmd.args(["-c", "core.quotepath=off", "--no-pager"])
        .args(args)
        .current_dir(cwd)
        .env("GIT_OPTIONAL_LOCKS", "0")
        .env("LC_ALL", "C")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let Ok(child) = cmd.spawn() else {
        return false;
    };
    let limits = Limits {
        timeout: GIT_TIMEOUT,
        kill_grace: Duration::from_secs(1),
        drain: Duration::from_secs(1),
        max_line: 1 << 20,
        stderr_tail: 2048,
    };
    let ended = supervise::supervise(child, limits, on_line);
    !ended.timed_out && ended.status.is_some_and(|s| s.success())
}

fn git_lines(cwd: &Path, args: &[&str], max: usize) -> Option<Vec<String>> {
    let mut out = Vec::new();
    let ok = git(cwd, args, &mut |l| {
        if out.len() < max {
            out.push(String::from_utf8_lossy(l).into_owned());
        }
    });
    ok.then_some(out)
}

/// The root of the git work tree holding `cwd`, if any.
pub fn git_root(cwd: &Path) -> Option<PathBuf> {
    git_lines(cwd, &["rev-parse", "--show-toplevel"], 1)?
        .into_iter()
        .next()
        .filter(|l| !l.is_empty())
        .map(PathBuf::from)
}

/// Collects the change in `cwd`: from git when `cwd` is in a work tree, else from `edited`
/// (the files the session wrote, absolute paths). `paths` narrows it (git pathspecs).
pub fn collect(
    cwd: &Path,
    base: Option<&str>,
    paths: &[String],
    edited: &[String],
    bounds: &Bounds,
) -> Change {
    match git_root(cwd) {
        Some(root) => from_git(&root, base, paths, bounds),
        None => from_files(cwd, edited, paths, bounds),
    }
}

fn from_git(root: &Path, base: Option<&str>, paths: &[String], bounds: &Bounds) -> Change {
    let base = match base {
        Some(b) => b.to_owned(),
        None if git_lines(root, &["rev-parse", "--verify", "-q", "HEAD"], 1).is_some() => {
            "HEAD".into()
        }
        None => EMPTY_TREE.into(),
    };
    let mut change = Change {
        git_root: Some(root.to_path_buf()),
        base: Some(base.clone()),
        ..Change::default()
    };
    let spec: Vec<&str> = paths.iter().map(String::as_str).collect();
    let with_spec = |args: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = args.iter().map(|s| (*s).to_owned()).collect();
        a.push("--".into());
        a.extend(spec.iter().map(|s| (*s).to_owned()));
        a
    };
    // Which files changed, and which are binary ("-\t-\tpath" in --numstat).
    let numstat = with_spec(&["diff", "--no-ext-diff", "--no-renames", "--numstat", &base]);
    let numstat: Vec<&str> = numstat.iter().map(String::as_str).collect();
    let mut tracked = Vec::new();
    for line in git_lines(root, &numstat, usize::MAX).unwrap_or_default() {
        let mut parts = line.splitn(3, '\t');
        let (Some(added), Some(_), Some(path)) = (parts.next(), parts.next(), parts.next()) else {
            continue;
        };
        if added == "-" {
            change.binary.push(path.to_owned());
        }
        tracked.push(path.to_owned());
    }
    let others = with_spec(&["ls-files", "--others", "--exclude-standard"]);
    let others: Vec<&str> = others.iter().map(String::as_str).collect();
    let untracked = git_lines(root, &others, usize::MAX).unwrap_or_default();

    let mut all: Vec<String> = tracked.iter().chain(&untracked).cloned().collect();
    if all.len() > bounds.max_files {
        let rest = all.split_off(bounds.max_files);
        change.left_out.push(format!(
            "{} more changed files beyond review.max_files ({}): {}",
            rest.len(),
            bounds.max_files,
            clip_list(&rest, 20)
        ));
    }
    change.files = all.clone();
    let shown: Vec<&String> = tracked.iter().filter(|f| all.contains(f)).collect();

    // The diff of tracked files, file by file, each whole or left out.
    let mut budget = bounds.max_bytes;
    if !shown.is_empty() {
        let mut args: Vec<&str> = vec!["diff", "--no-ext-diff", "--no-renames", "--no-color"];
        args.push(&base);
        args.push("--");
        args.extend(shown.iter().map(|s| s.as_str()));
        let mut section = Section::default();
        let mut text = String::new();
        let mut left = Vec::new();
        git(root, &args, &mut |l| {
            let line = String::from_utf8_lossy(l);
            if let Some(name) = line.strip_prefix("diff --git a/") {
                section.flush(&mut text, &mut budget, &mut left);
                section = Section::new(name.split(" b/").next().unwrap_or(name));
            }
            section.push(&line, budget);
        });
        section.flush(&mut text, &mut budget, &mut left);
        change.text = text;
        change.left_out.extend(left);
    }
    // Untracked files, as new files.
    for path in untracked.iter().filter(|f| all.contains(f)) {
        add_whole_file(
            &mut change,
            &root.join(path),
            path,
            bounds,
            &mut budget,
            true,
        );
    }
    change
}

/// One file's part of a diff, kept while it fits the budget.
#[derive(Default)]
struct Section {
    name: String,
    text: String,
    bytes: usize,
}

impl Section {
    fn new(name: &str) -> Section {
        Section {
            name: name.to_owned(),
            ..Section::default()
        }
    }

    fn push(&mut self, line: &str, budget: usize) {
        self.bytes += line.len() + 1;
        // Past the budget the text is not kept (the section will be left out whole).
        if self.bytes <= budget {
            self.text.push_str(line);
            self.text.push('\n');
        }
    }

    fn flush(&mut self, text: &mut String, budget: &mut usize, left: &mut Vec<String>) {
        if self.bytes == 0 {
            return;
        }
        if self.bytes <= *budget {
            text.push_str(&self.text);
            *budget -= self.bytes;
        } else {
            left.push(format!(
                "the diff of {} ({} bytes, over what was left of review.max_change_bytes)",
                self.name, self.bytes
            ));
        }
        self.bytes = 0;
        self.text.clear();
    }
}

/// Adds a whole file as new text (`new`: an untracked file) or as its current content.
fn add_whole_file(
    change: &mut Change,
    path: &Path,
    name: &str,
    bounds: &Bounds,
    budget: &mut usize,
    new: bool,
) {
    let cap = bounds.max_untracked_file_bytes;
    let mut bytes = Vec::new();
    let read = std::fs::File::open(path)
        .and_then(|f| f.take(cap as u64 + 1).read_to_end(&mut bytes))
        .is_ok();
    if !read {
        change
            .left_out
            .push(format!("{name} (could not be read; deleted or unreadable)"));
        return;
    }
    if bytes.iter().take(8000).any(|&b| b == 0) {
        if !change.binary.iter().any(|b| b == name) {
            change.binary.push(name.to_owned());
        }
        return;
    }
    let cut = bytes.len() > cap;
    bytes.truncate(cap);
    let body = String::from_utf8_lossy(&bytes);
    let mut block = if new {
        format!("--- /dev/null\n+++ b/{name} (untracked, new)\n")
    } else {
        format!("=== {name} (current content)\n")
    };
    for line in body.lines() {
        if new {
            block.push('+');
        }
        block.push_str(line);
        block.push('\n');
    }
    if block.len() > *budget {
        change.left_out.push(format!(
            "{name} ({} bytes, over what was left of review.max_change_bytes)",
            block.len()
        ));
        return;
    }
    *budget -= block.len();
    change.text.push_str(&block);
    if cut {
        change.left_out.push(format!(
            "the rest of {name} after its first {cap} bytes (review.max_untracked_file_bytes)"
        ));
    }
}

fn from_files(cwd: &Path, edited: &[String], paths: &[String], bounds: &Bounds) -> Change {
    let mut change = Change::default();
    let mut files: Vec<String> = edited
        .iter()
        .filter(|f| paths.is_empty() || paths.iter().any(|p| f.contains(p.as_str())))
        .cloned()
        .collect();
    files.dedup();
    if files.len() > bounds.max_files {
        let rest = files.split_off(bounds.max_files);
        change.left_out.push(format!(
            "{} more edited files beyond review.max_files: {}",
            rest.len(),
            clip_list(&rest, 20)
        ));
    }
    let mut budget = bounds.max_bytes;
    for f in &files {
        let path = cwd.join(f);
        add_whole_file(&mut change, &path, f, bounds, &mut budget, false);
    }
    change.files = files;
    change
}

fn clip_list(items: &[String], n: usize) -> String {
    let mut s = items.iter().take(n).cloned().collect::<Vec<_>>().join(", ");
    if items.len() > n {
        s.push_str(", ...");
    }
    s
}

/// `git diff --stat` of `files` against HEAD plus the untracked among them, for a `--write`
/// delegation's report. None outside git or when git says nothing.
pub fn diff_stat(cwd: &Path, files: &[String]) -> Option<String> {
    let root = git_root(cwd)?;
    let mut args: Vec<&str> = vec!["diff", "--no-ext-diff", "--stat=100", "HEAD", "--"];
    args.extend(files.iter().map(String::as_str));
    let mut lines = git_lines(&root, &args, 60).unwrap_or_default();
    let mut others: Vec<&str> = vec!["ls-files", "--others", "--exclude-standard", "--"];
    others.extend(files.iter().map(String::as_str));
    for f in git_lines(&root, &others, 60).unwrap_or_default() {
        lines.push(format!(" {f} (new, untracked)"));
    }
    (!lines.is_empty()).then(|| lines.join("\n"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ah-review-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            assert!(
                Command::new("git")
                    .args(args)
                    .current_dir(&dir)
                    .env("GIT_AUTHOR_NAME", "t")
                    .env("GIT_AUTHOR_EMAIL", "t@t")
                    .env("GIT_COMMITTER_NAME", "t")
                    .env("GIT_COMMITTER_EMAIL", "t@t")
                    .status()
                    .unwrap()
                    .success()
            )
        };
        run(&["init", "-q"]);
        std::fs::write(dir.join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(dir.join("big.txt"), "x\n").unwrap();
        run(&["add", "."]);
        run(&["commit", "-qm", "init"]);
        dir
    }

    fn bounds() -> Bounds {
        Bounds {
            max_bytes: 10_000,
            max_files: 10,
            max_untracked_file_bytes: 1000,
        }
    }

    #[test]
    fn a_git_change_has_the_diff_untracked_files_and_binary_names() {
        let dir = repo("git");
        std::fs::write(dir.join("a.txt"), "one\nTWO\n").unwrap();
        std::fs::write(dir.join("new.rs"), "fn main() {}\n").unwrap();
        std::fs::write(dir.join("blob.bin"), [0u8, 1, 2, 3]).unwrap();
        let c = collect(&dir, None, &[], &[], &bounds());
        assert_eq!(c.base.as_deref(), Some("HEAD"));
        assert!(c.text.contains("-two\n+TWO"), "{}", c.text);
        assert!(c.text.contains("+fn main() {}"), "{}", c.text);
        assert!(c.files.contains(&"new.rs".to_string()));
        assert_eq!(c.binary, vec!["blob.bin".to_string()]);
        assert!(!c.text.contains('\0'));
        assert!(c.left_out.is_empty(), "{:?}", c.left_out);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn what_the_bounds_leave_out_is_named() {
        let dir = repo("bounds");
        std::fs::write(dir.join("a.txt"), "one\nchanged\n").unwrap();
        std::fs::write(dir.join("big.txt"), "y\n".repeat(20_000)).unwrap();
        let mut b = bounds();
        b.max_bytes = 2000;
        let c = collect(&dir, None, &[], &[], &b);
        assert!(c.text.contains("+changed"), "{}", c.text);
        assert!(
            c.left_out.iter().any(|l| l.contains("big.txt")),
            "{:?}",
            c.left_out
        );
        assert!(c.text.len() <= 2000);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn outside_git_the_edited_files_are_shown_whole() {
        let dir = std::env::temp_dir().join(format!("ah-review-nogit-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let f = dir.join("notes.md");
        std::fs::write(&f, "hello\n").unwrap();
        let edited = vec![f.to_string_lossy().into_owned()];
        let c = collect(&dir, None, &[], &edited, &bounds());
        assert!(c.git_root.is_none());
        assert!(c.text.contains("hello"), "{}", c.text);
        assert_eq!(c.files, edited);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
