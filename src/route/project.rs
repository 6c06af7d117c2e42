//! The project's tracked size, read cheaply: the entry count in the git index header (12 bytes),
//! never a walk and never a `git` subprocess. The caller caches it by the index's mtime and
//! length (`store::routes::project_size`), so an unchanged index costs one `stat`.

use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

/// The git index of the repository at `root`: `.git/index`, or for a worktree or submodule
/// (`.git` is a file saying `gitdir: <dir>`) that dir's index.
pub fn index_path(root: &Path) -> Option<PathBuf> {
    let dot_git = root.join(".git");
    let meta = std::fs::symlink_metadata(&dot_git).ok()?;
    if meta.is_dir() {
        return Some(dot_git.join("index"));
    }
    // A `.git` file is one short line; read at most 4 KB of it.
    let text = crate::config::read_regular_file(&dot_git, 4096).ok()?;
    let dir = text.lines().find_map(|l| l.strip_prefix("gitdir:"))?.trim();
    let dir = Path::new(dir);
    Some(if dir.is_absolute() {
        dir.join("index")
    } else {
        root.join(dir).join("index")
    })
}

/// (mtime in ns, length) of the index: what its cached size is keyed on.
pub fn index_stamp(index: &Path) -> Option<(i64, i64)> {
    let m = std::fs::metadata(index).ok()?;
    m.is_file().then(|| {
        (
            m.mtime().saturating_mul(1_000_000_000) + m.mtime_nsec(),
            m.len() as i64,
        )
    })
}

/// Tracked files, from the index header (`DIRC`, version, entry count, big-endian).
pub fn tracked_files(index: &Path) -> Option<u64> {
    let mut head = [0u8; 12];
    std::fs::File::open(index)
        .ok()?
        .read_exact(&mut head)
        .ok()?;
    if &head[..4] != b"DIRC" {
        return None;
    }
    Some(u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as u64)
}
