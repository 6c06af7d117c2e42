//! Paths: canonical file paths for tool calls, the project root of a directory, and the
//! harness's own default locations (XDG state and config directories).
//!
//! Owns path arithmetic and the few `lstat`/`readlink` calls it needs. Must not create, write or
//! remove anything.

use std::ffi::OsString;
use std::path::{Component, Path, PathBuf};

/// How many symlinks one path may pass through before the rest is taken as written (as the kernel
/// gives up with ELOOP).
const MAX_SYMLINKS: usize = 40;

/// The canonical absolute form of `path`: relative paths are resolved against `cwd` (the payload's
/// working directory; Gemini sends paths as the model wrote them), `.` and `..` are resolved as the
/// kernel would, and every symlink that exists is followed, even a dangling one, so that two
/// spellings of one file give one path. Components that do not exist yet (a file about to be
/// created) are kept as written.
pub fn canonical(cwd: Option<&str>, path: &str) -> PathBuf {
    let path = Path::new(path);
    let mut pending: Vec<OsString> = Vec::new();
    if path.is_relative() {
        let base = cwd
            .map(PathBuf::from)
            .or_else(|| std::env::current_dir().ok())
            .unwrap_or_else(|| PathBuf::from("/"));
        push_components(&mut pending, path);
        push_components(&mut pending, &base);
    } else {
        push_components(&mut pending, path);
    }
    let mut resolved = PathBuf::from("/");
    let mut links = 0;
    let mut exists = true;
    while let Some(part) = pending.pop() {
        match part.to_str() {
            Some("/") => resolved = PathBuf::from("/"),
            Some(".") => {}
            Some("..") => {
                resolved.pop();
            }
            _ => {
                resolved.push(&part);
                if !exists || links >= MAX_SYMLINKS {
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
                    Err(_) => exists = false,
                }
            }
        }
    }
    resolved
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
