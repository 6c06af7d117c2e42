//! Paths: canonical file paths for tool calls, the project root of a directory, and the
//! harness's own default locations (XDG state and config directories).
//!
//! Owns path arithmetic and the few `lstat`/`readlink`/`readdir` calls it needs, including how
//! each client turns a tool's path argument into the file it opens ([`tool_file`]): both resolve
//! `..` by text before the kernel sees the path, and Gemini CLI also cleans, decodes and searches
//! for it. Must not create, write or remove anything.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// How many symlinks one path may pass through before the rest is taken as written (as the kernel
/// gives up with ELOOP).
const MAX_SYMLINKS: usize = 40;

/// The canonical absolute form of `path`: relative paths are resolved against `cwd` (the payload's
/// working directory; Gemini sends paths as the model wrote them), `.` and `..` are resolved as the
/// kernel would, and every symlink that exists is followed, even a dangling one, so that two
/// spellings of one file give one path. Components that do not exist yet (a file about to be
/// created) are kept as written; a `..` that climbs back out of them lands on the directory that
/// exists again, and symlinks are followed from there on.
pub fn canonical(cwd: Option<&str>, path: &str) -> PathBuf {
    let path = Path::new(path);
    let mut pending: Vec<OsString> = Vec::new();
    if path.is_relative() {
        push_components(&mut pending, path);
        push_components(&mut pending, &base_dir(cwd));
    } else {
        push_components(&mut pending, path);
    }
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    // How many trailing components of `resolved` do not exist. While it is not zero nothing is
    // looked up; `..` out of them makes the path real again.
    let mut missing = 0usize;
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some("/") => {
                resolved = PathBuf::from("/");
                missing = 0;
            }
            Some(".") => {}
            Some("..") => {
                resolved.pop();
                missing = missing.saturating_sub(1);
            }
            _ => {
                resolved.push(&part);
                if missing > 0 {
                    missing += 1;
                    continue;
                }
                if links >= MAX_SYMLINKS {
                    continue;
                }
                match std::fs::symlink_metadata(&resolved) {
                    Ok(meta) if meta.file_type().is_symlink() => {
                        if let Ok(target) = std::fs::read_link(&resolved) {
                            links += 1;
                            resolved.pop();
                            push_components(&mut pending, &target);
                        }
                    }
                    Ok(_) => {}
                    Err(_) => missing = 1,
                }
            }
        }
    }
    resolved
}

/// The directory a relative path is taken against: `cwd`, else the process's, else `/`.
fn base_dir(cwd: Option<&str>) -> PathBuf {
    let base = cwd
        .map(PathBuf::from)
        .or_else(|| std::env::current_dir().ok())
        .unwrap_or_else(|| PathBuf::from("/"));
    if base.is_absolute() {
        base
    } else {
        std::env::current_dir()
            .unwrap_or_else(|_| PathBuf::from("/"))
            .join(base)
    }
}

/// Whose rules turn a tool's path argument into the file the tool opens.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rules {
    /// As the kernel opens it (a shell redirection, the CLI): [`canonical`].
    Kernel,
    /// Claude Code's Write, Edit, MultiEdit, NotebookEdit and Read: the argument is trimmed, `~`
    /// and `~/` mean `$HOME`, a relative path is taken against `cwd`, and `..` is resolved by text
    /// before the kernel follows symlinks (its `expandPath`). Hooks see paths already expanded
    /// since 2.1.89; older clients and hand-made payloads are covered by the same rules.
    Claude,
    /// Gemini CLI's `write_file` (and `read_file`): NUL bytes removed, a leading `@` dropped when
    /// no file of that name exists, the result taken against `cwd` with `..` resolved by text,
    /// then `%xx` decoded (all or nothing, as JavaScript's `decodeURIComponent`) and symlinks
    /// followed. A `file://` URL is not decoded: it is a relative path beginning `file:`.
    GeminiWriteFile,
    /// Gemini CLI's `replace`: as `write_file`, except that a relative argument naming nothing
    /// that exists is searched for in the workspace ([`gemini_search`]), and one match is the
    /// file edited (`main.rs` edits `src/main.rs`).
    GeminiReplace,
}

/// The canonical path of the file a tool call touches when the client that made it applies its
/// `rules` to `raw`, its path argument, from working directory `cwd`.
///
/// Where the client would refuse the argument (a NUL byte for Claude, an ambiguous search for
/// Gemini), the answer is still the path the argument most plausibly means: a refused call
/// touches nothing, so any answer is safe, and the nearest one keeps the recorded claim useful.
pub fn tool_file(rules: Rules, cwd: Option<&str>, raw: &str) -> PathBuf {
    let base = base_dir(cwd);
    let base = base.to_string_lossy();
    match rules {
        Rules::Kernel => canonical(Some(&base), raw),
        Rules::Claude => canonical(None, &claude_expand(&base, raw)),
        Rules::GeminiWriteFile => gemini_real(&js_resolve(&base, &gemini_defensive(raw, &base))),
        Rules::GeminiReplace => gemini_replace(&base, raw),
    }
}

/// Claude Code's `expandPath`, made absolute and lexically normal.
fn claude_expand(base: &str, raw: &str) -> String {
    // Claude refuses a path with a NUL byte; without them is the nearest file it could mean.
    let cleaned = raw.replace('\0', "");
    let trimmed = cleaned.trim();
    let home = || home().map(|h| h.to_string_lossy().into_owned());
    if trimmed == "~"
        && let Some(h) = home()
    {
        return js_resolve(&h, "");
    }
    if let Some(rest) = trimmed.strip_prefix("~/")
        && let Some(h) = home()
    {
        return js_resolve(&h, rest);
    }
    if trimmed.is_empty() {
        return js_resolve(base, "");
    }
    js_resolve(base, trimmed)
}

/// Node's `path.resolve(base, p)` on POSIX: `p` if absolute, else `base/p`, with `.`, `..` and
/// repeated slashes resolved by text. `base` is absolute.
fn js_resolve(base: &str, p: &str) -> String {
    if p.starts_with('/') {
        normalize_absolute(p)
    } else {
        normalize_absolute(&format!("{base}/{p}"))
    }
}

/// Node's `path.join(a, b)` with `a` absolute: the two joined by a slash even when `b` is
/// absolute, then normalised.
fn js_join(a: &str, b: &str) -> String {
    normalize_absolute(&format!("{a}/{b}"))
}

/// An absolute path with `.`, `..` and empty components resolved by text (`..` at the root stays
/// at the root), and no trailing slash.
fn normalize_absolute(p: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            _ => parts.push(part),
        }
    }
    let mut out = String::with_capacity(p.len() + 1);
    for part in &parts {
        out.push('/');
        out.push_str(part);
    }
    if out.is_empty() {
        out.push('/');
    }
    out
}

/// Node's `fs.existsSync`: the path names something, following symlinks.
fn exists(p: &str) -> bool {
    std::fs::metadata(p).is_ok()
}

/// Gemini CLI's `resolveDefensiveToolPath`: NULs removed; a leading `@` (with any slashes after
/// it) dropped unless the argument, or its first component with the `@`, names something that
/// exists under `target`.
fn gemini_defensive(raw: &str, target: &str) -> String {
    let clean = raw.replace('\0', "");
    if exists(&js_resolve(target, &clean)) {
        return clean;
    }
    if clean.len() > 1
        && let Some(after) = clean.strip_prefix('@')
    {
        let stripped = after.trim_start_matches(['/', '\\']);
        if after.starts_with(['/', '\\']) {
            return if stripped.is_empty() {
                clean
            } else {
                stripped.to_owned()
            };
        }
        let first = stripped.split(['/', '\\']).next().unwrap_or("");
        if !first.is_empty() {
            if exists(&js_resolve(target, &format!("@{first}"))) {
                return clean;
            }
            return stripped.to_owned();
        }
    }
    clean
}

/// Gemini CLI's `resolveToRealPath` of an absolute, normalised path: `%xx` decoded, `..` that
/// the decoding produced resolved by text, then symlinks followed.
fn gemini_real(abs: &str) -> PathBuf {
    // The `file://` branch of the client's function never applies here: its callers pass paths
    // already made absolute.
    let decoded = decode_uri_component(abs).unwrap_or_else(|| abs.to_owned());
    // A decoded NUL makes the client refuse the call; the rest is the nearest file.
    let decoded = decoded.replace('\0', "");
    canonical(None, &js_resolve("/", &decoded))
}

/// JavaScript's `decodeURIComponent`: every `%xx` decoded, or `None` (the client keeps the text
/// as it was) when one is malformed or the bytes are not UTF-8.
fn decode_uri_component(s: &str) -> Option<String> {
    if !s.contains('%') {
        return Some(s.to_owned());
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hi = (hex[0] as char).to_digit(16)?;
            let lo = (hex[1] as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Gemini CLI's `replace` (its EditTool): an absolute argument is cleaned and made real; a
/// relative one goes through the path corrector (`correctPath`): the argument under `target` if
/// it exists, else the one file the workspace search finds, else the argument under `target`.
fn gemini_replace(target: &str, raw: &str) -> PathBuf {
    // The client tests the argument as sent, before removing NULs or `@`.
    if raw.starts_with('/') {
        return gemini_real(&normalize_absolute(&raw.replace('\0', "")));
    }
    let sanitized = gemini_defensive(raw, target);
    let direct = js_join(target, &sanitized);
    if exists(&direct) {
        return gemini_real(&direct);
    }
    if let Some(found) = gemini_search(Path::new(target), &sanitized) {
        return gemini_real(&normalize_absolute(&found.to_string_lossy()));
    }
    gemini_real(&js_resolve(target, &sanitized))
}

/// Pushes `path`'s components onto a stack so that they pop in order.
fn push_components(stack: &mut Vec<OsString>, path: &Path) {
    let parts: Vec<OsString> = path
        .components()
        .map(|c| match c {
            Component::RootDir | Component::Prefix(_) => OsString::from("/"),
            Component::CurDir => OsString::from("."),
            Component::ParentDir => OsString::from(".."),
            Component::Normal(s) => s.to_os_string(),
        })
        .collect();
    stack.extend(parts.into_iter().rev());
}

/// How many directories Gemini CLI's path corrector reads, breadth first, before giving up
/// (`maxDirs: 50` in its `correctPath`).
pub const GEMINI_SEARCH_DIRS: usize = 50;

/// The most directory entries one workspace search looks at. The client has no such bound (its
/// 50 directories may be huge); past it the search stops with what it found, which can only
/// name an existing file where the client might have found the name ambiguous.
pub const MAX_SEARCH_ENTRIES: usize = 20_000;

/// The most bytes read of one ignore file (`.gitignore`, `.geminiignore`, `.git/info/exclude`).
const MAX_IGNORE_FILE_BYTES: u64 = 64 * 1024;

/// Gemini CLI's workspace search for a relative path that names nothing (`bfsFileSearchSync`
/// then the suffix filter of `correctPath`): directories breadth first in `readdir` order, at
/// most [`GEMINI_SEARCH_DIRS`] of them, symlinks neither followed nor matched, entries its
/// ignore rules exclude skipped; files named like the argument's last component whose path ends
/// with the argument as written. `Some` only when exactly one file matches: the client refuses
/// an ambiguous name and falls back to the argument under the workspace.
///
/// Only the directory the client was started in is searched: `--include-directories` roots are
/// not in the payload.
pub fn gemini_search(root: &Path, sanitized: &str) -> Option<PathBuf> {
    let name = sanitized
        .trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or("");
    if name.is_empty() {
        return None;
    }
    let suffix = sanitized.replace('\\', "/");
    let mut ignore = Ignore::new(root);
    let mut queue = std::collections::VecDeque::from([root.to_path_buf()]);
    let mut visited = std::collections::HashSet::new();
    let mut scanned = 0;
    let mut entries_seen = 0;
    let mut found: Vec<PathBuf> = Vec::new();
    'dirs: while scanned < GEMINI_SEARCH_DIRS {
        let Some(dir) = queue.pop_front() else { break };
        if !visited.insert(dir.clone()) {
            continue;
        }
        scanned += 1;
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            entries_seen += 1;
            if entries_seen > MAX_SEARCH_ENTRIES {
                break 'dirs;
            }
            // The dirent's own type, as Node's `withFileTypes`: a symlink is neither.
            let Ok(kind) = entry.file_type() else {
                continue;
            };
            let is_dir = kind.is_dir();
            let is_match = kind.is_file() && entry.file_name().to_str() == Some(name);
            if !is_dir && !is_match {
                continue;
            }
            let full = entry.path();
            if ignore.ignores(&full) {
                continue;
            }
            if is_dir {
                queue.push_back(full);
            } else if full.to_string_lossy().replace('\\', "/").ends_with(&suffix) {
                found.push(full);
            }
        }
    }
    if found.len() == 1 { found.pop() } else { None }
}

/// The ignore rules Gemini CLI's file service applies to its workspace search: in a git
/// repository `.git`, `.git/info/exclude`, every `.gitignore` from the workspace root down to the
/// entry, then `.geminiignore`; elsewhere `.geminiignore` only. Every entry is tested as a file,
/// as the client does, so a directory-only pattern (`build/`) still lets the search enter the
/// directory and only hides the files in it.
struct Ignore {
    root: PathBuf,
    git: bool,
    /// `.git` and `.git/info/exclude`.
    base: Vec<Rule>,
    /// `.geminiignore`, which comes after (and so overrides) the git rules.
    extra: Vec<Rule>,
    /// Each directory's `.gitignore`, read once.
    per_dir: std::collections::HashMap<PathBuf, Vec<Rule>>,
}

impl Ignore {
    fn new(root: &Path) -> Ignore {
        let git = root.ancestors().any(|d| d.join(".git").exists());
        let gemini = read_ignore_file(&root.join(".geminiignore"));
        let mut base = Vec::new();
        let mut extra = Vec::new();
        if git {
            base.extend(Rule::parse(".git"));
            let exclude = read_ignore_file(&root.join(".git/info/exclude"));
            base.extend(gitignore_rules(&exclude, ""));
            extra.extend(gitignore_rules(&gemini, ""));
        } else {
            extra.extend(
                gemini
                    .iter()
                    .map(|l| l.trim())
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .filter_map(Rule::parse),
            );
        }
        Ignore {
            root: root.to_path_buf(),
            git,
            base,
            extra,
            per_dir: Default::default(),
        }
    }

    fn ignores(&mut self, full: &Path) -> bool {
        let Ok(rel) = full.strip_prefix(&self.root) else {
            return false;
        };
        let parts: Vec<String> = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy().into_owned())
            .collect();
        if parts.is_empty() {
            return false;
        }
        let path = parts.join("/");
        if !self.git {
            return ignored_by(&[&self.extra], &path, false);
        }
        let mut rules: Vec<Rule> = self.base.clone();
        let mut dir = self.root.clone();
        for k in 0..parts.len() {
            if k > 0 {
                dir.push(&parts[k - 1]);
                let parent = parts[..k].join("/");
                if ignored_by(&[&rules, &self.extra], &parent, true) {
                    break;
                }
            }
            // The `.gitignore` of the workspace root, then of each directory below it that the
            // rules so far do not exclude.
            let rel_dir = parts[..k].join("/");
            let own = self.per_dir.entry(dir.clone()).or_insert_with(|| {
                gitignore_rules(&read_ignore_file(&dir.join(".gitignore")), &rel_dir)
            });
            rules.extend(own.iter().cloned());
        }
        ignored_by(&[&rules, &self.extra], &path, false)
    }
}

/// The lines of an ignore file, read up to [`MAX_IGNORE_FILE_BYTES`]; none when it is missing.
fn read_ignore_file(path: &Path) -> Vec<String> {
    use std::io::Read;
    let mut text = Vec::new();
    // Only a regular file: a FIFO named `.gitignore` must not stall a hook.
    let regular = std::fs::metadata(path)
        .map(|m| m.is_file())
        .unwrap_or(false);
    if !regular {
        return Vec::new();
    }
    if let Ok(f) = std::fs::File::open(path) {
        let _ = f.take(MAX_IGNORE_FILE_BYTES).read_to_end(&mut text);
    }
    String::from_utf8_lossy(&text)
        .split(['\n', '\r'])
        .map(str::to_owned)
        .collect()
}

/// The rules of one `.gitignore` in the directory `rel_dir` (empty for the workspace root),
/// rewritten relative to the root as Gemini CLI's `GitIgnoreParser` does: a nested pattern with
/// no slash matches at any depth below its directory, one with a slash (a trailing one counts)
/// only at that path.
fn gitignore_rules(lines: &[String], rel_dir: &str) -> Vec<Rule> {
    let mut rules = Vec::new();
    for line in lines {
        let mut p = line.trim_start();
        if p.is_empty() || p.starts_with('#') {
            continue;
        }
        let negate = p.starts_with('!');
        if negate {
            p = &p[1..];
        }
        let anchored = p.starts_with('/');
        if anchored {
            p = &p[1..];
        }
        if p.is_empty() {
            continue;
        }
        let mut pattern = p.to_owned();
        if !rel_dir.is_empty() {
            if !anchored && !p.contains('/') {
                pattern = format!("**/{p}");
            }
            pattern = format!("/{rel_dir}/{pattern}");
        } else if anchored {
            pattern = format!("/{pattern}");
        }
        if negate {
            pattern = format!("!{pattern}");
        }
        rules.extend(Rule::parse(&pattern));
    }
    rules
}

/// One ignore pattern, as the `ignore` package the client uses reads it.
#[derive(Debug, Clone)]
struct Rule {
    negate: bool,
    dir_only: bool,
    /// Matches the whole relative path (a leading or inner slash), not any trailing part of it.
    anchored: bool,
    glob: Vec<u8>,
}

impl Rule {
    fn parse(line: &str) -> Option<Rule> {
        let mut p = line.trim_end_matches([' ', '\t']);
        let negate = p.starts_with('!');
        if negate {
            p = &p[1..];
        }
        if let Some(rest) = p.strip_prefix('\\')
            && rest.starts_with(['!', '#'])
        {
            p = rest;
        }
        let dir_only = p.ends_with('/');
        let p = p.trim_end_matches('/');
        let anchored = p.starts_with('/') || p.contains('/');
        let p = p.trim_start_matches('/');
        if p.is_empty() {
            return None;
        }
        Some(Rule {
            negate,
            dir_only,
            anchored,
            glob: p.as_bytes().to_vec(),
        })
    }

    fn matches(&self, path: &str, is_dir: bool) -> bool {
        if self.dir_only && !is_dir {
            return false;
        }
        let mut budget = GLOB_STEPS;
        if self.anchored {
            return glob(&self.glob, path.as_bytes(), &mut budget);
        }
        let bytes = path.as_bytes();
        std::iter::once(0)
            .chain(
                bytes
                    .iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'/')
                    .map(|(i, _)| i + 1),
            )
            .any(|start| glob(&self.glob, &bytes[start..], &mut budget))
    }
}

/// Whether the last rule (in order, across `layers`) that matches `path`, or any directory above
/// it, ignores it.
fn ignored_by(layers: &[&Vec<Rule>], path: &str, is_dir: bool) -> bool {
    let test = |p: &str, dir: bool| {
        let mut ignored = false;
        for rule in layers.iter().flat_map(|l| l.iter()) {
            if rule.matches(p, dir) {
                ignored = !rule.negate;
            }
        }
        ignored
    };
    // A path under an ignored directory is ignored, whatever a later rule says of the path.
    for (i, b) in path.bytes().enumerate() {
        if b == b'/' && test(&path[..i], true) {
            return true;
        }
    }
    test(path, is_dir)
}

/// The most steps one glob match may take; past it the pattern is taken not to match.
const GLOB_STEPS: usize = 10_000;

/// Gitignore globbing: `*` and `?` within one component, `**/` any number of whole components,
/// any other `**` anything, `[...]` a class, `\` an escape.
fn glob(p: &[u8], t: &[u8], budget: &mut usize) -> bool {
    if *budget == 0 {
        return false;
    }
    *budget -= 1;
    let Some(&c) = p.first() else {
        return t.is_empty();
    };
    match c {
        b'*' if p.get(1) == Some(&b'*') => {
            let after_slash = p.get(2) == Some(&b'/');
            let rest = if after_slash { &p[3..] } else { &p[2..] };
            if after_slash {
                // Zero or more components, each ending in `/`.
                if glob(rest, t, budget) {
                    return true;
                }
                t.iter()
                    .enumerate()
                    .filter(|(_, b)| **b == b'/')
                    .any(|(i, _)| glob(rest, &t[i + 1..], budget))
            } else {
                (0..=t.len()).any(|i| glob(rest, &t[i..], budget))
            }
        }
        b'*' => {
            let stop = t.iter().position(|b| *b == b'/').unwrap_or(t.len());
            (0..=stop).any(|i| glob(&p[1..], &t[i..], budget))
        }
        b'?' => matches!(t.first(), Some(b) if *b != b'/') && glob(&p[1..], &t[1..], budget),
        b'[' => match (class_end(p), t.first()) {
            (Some(end), Some(&b)) => {
                b != b'/' && class_has(&p[1..end], b) && glob(&p[end + 1..], &t[1..], budget)
            }
            (Some(_), None) => false,
            // An unclosed `[` is literal.
            (None, _) => t.first() == Some(&b'[') && glob(&p[1..], &t[1..], budget),
        },
        b'\\' if p.len() > 1 => t.first() == Some(&p[1]) && glob(&p[2..], &t[1..], budget),
        _ => t.first() == Some(&c) && glob(&p[1..], &t[1..], budget),
    }
}

/// Where the class opening `p` (at `[`) closes.
fn class_end(p: &[u8]) -> Option<usize> {
    let mut i = 1;
    if matches!(p.get(i), Some(b'!' | b'^')) {
        i += 1;
    }
    if p.get(i) == Some(&b']') {
        i += 1;
    }
    p[i..].iter().position(|b| *b == b']').map(|j| i + j)
}

/// Whether byte `b` is in the class body `body` (between the brackets).
fn class_has(body: &[u8], b: u8) -> bool {
    let (negated, body) = match body.first() {
        Some(b'!' | b'^') => (true, &body[1..]),
        _ => (false, body),
    };
    let mut i = 0;
    let mut hit = false;
    while i < body.len() {
        if i + 2 < body.len() && body[i + 1] == b'-' {
            hit |= body[i] <= b && b <= body[i + 2];
            i += 3;
        } else {
            hit |= body[i] == b;
            i += 1;
        }
    }
    hit != negated
}

/// The nearest directory at or above `dir` that holds a `.git` entry (a directory, or the file a
/// git worktree has), found without running git.
pub fn project_root(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .find(|d| d.join(".git").symlink_metadata().is_ok())
        .map(Path::to_path_buf)
}

fn env_dir(var: &str) -> Option<PathBuf> {
    std::env::var_os(var)
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
}

/// The user's home directory, from `$HOME`.
pub fn home() -> Option<PathBuf> {
    env_dir("HOME")
}

/// A variable's value as a path, when set and not empty.
pub fn env_path(name: &str) -> Option<PathBuf> {
    std::env::var_os(name)
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
}

/// Claude Code's config directory: `$CLAUDE_CONFIG_DIR`, else `~/.claude`.
pub fn claude_config_dir() -> Option<PathBuf> {
    env_path("CLAUDE_CONFIG_DIR").or_else(|| home().map(|h| h.join(".claude")))
}

/// The home Gemini CLI keeps its `.gemini` directory in: `$GEMINI_CLI_HOME`, else `~`.
pub fn gemini_home() -> Option<PathBuf> {
    env_path("GEMINI_CLI_HOME").or_else(home)
}

/// `$XDG_STATE_HOME`, else `~/.local/state`.
pub fn state_home() -> Option<PathBuf> {
    env_dir("XDG_STATE_HOME").or_else(|| home().map(|h| h.join(".local/state")))
}

/// `$XDG_CONFIG_HOME`, else `~/.config`.
pub fn config_home() -> Option<PathBuf> {
    env_dir("XDG_CONFIG_HOME").or_else(|| home().map(|h| h.join(".config")))
}

/// The directory agent-harness keeps its state in by default.
pub fn default_state_dir() -> Option<PathBuf> {
    state_home().map(|d| d.join("agent-harness"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ah-paths-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        // Canonical, in case the temp dir itself is behind a symlink.
        canonical(None, dir.to_str().unwrap())
    }

    #[test]
    fn relative_and_dotdot_resolve_against_cwd() {
        assert_eq!(
            canonical(Some("/no/such/ws"), "a/./b/../c.txt"),
            PathBuf::from("/no/such/ws/a/c.txt")
        );
        assert_eq!(canonical(Some("/x"), "/abs/../y"), PathBuf::from("/y"));
        assert_eq!(canonical(Some("/"), "../../z"), PathBuf::from("/z"));
    }

    #[test]
    fn symlinks_and_spellings_meet() {
        let dir = scratch("links");
        std::fs::create_dir(dir.join("real")).unwrap();
        std::fs::write(dir.join("real/f.txt"), "x").unwrap();
        symlink(dir.join("real"), dir.join("alias")).unwrap();
        symlink("real/f.txt", dir.join("file-link")).unwrap();
        symlink(dir.join("real/new.txt"), dir.join("dangling")).unwrap();
        let d = dir.to_str().unwrap();
        let want = dir.join("real/f.txt");
        assert_eq!(canonical(Some(d), "alias/f.txt"), want);
        assert_eq!(canonical(Some(d), "file-link"), want);
        assert_eq!(canonical(Some(d), "real/../alias/./f.txt"), want);
        // `alias/..` is the parent of the link's target, as the kernel resolves it.
        assert_eq!(canonical(Some(d), "alias/../real/f.txt"), want);
        // A dangling link still leads to the file it would create.
        assert_eq!(canonical(Some(d), "dangling"), dir.join("real/new.txt"));
        // A file that does not exist yet under a linked directory.
        assert_eq!(
            canonical(Some(d), "alias/later.txt"),
            dir.join("real/later.txt")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn symlink_loops_end() {
        let dir = scratch("loop");
        symlink(dir.join("b"), dir.join("a")).unwrap();
        symlink(dir.join("a"), dir.join("b")).unwrap();
        let p = canonical(Some(dir.to_str().unwrap()), "a/x");
        assert!(p.starts_with(&dir));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn project_root_walks_up_to_git() {
        let dir = scratch("root");
        std::fs::create_dir_all(dir.join("repo/.git")).unwrap();
        std::fs::create_dir_all(dir.join("repo/src/deep")).unwrap();
        assert_eq!(
            project_root(&dir.join("repo/src/deep")),
            Some(dir.join("repo"))
        );
        std::fs::write(dir.join("repo/src/.git"), "gitdir: elsewhere").unwrap();
        assert_eq!(
            project_root(&dir.join("repo/src/deep")),
            Some(dir.join("repo/src"))
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
