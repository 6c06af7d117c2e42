//! The spool: where a recording waits when the store cannot take it (held locked past the busy
//! timeout, being recovered), so that no event is lost and none is stored twice.
//!
//! One JSON line per recording in `<db>.spool` (0600, never through a symlink, appended with
//! O_APPEND, at most [`MAX_SPOOL_BYTES`]); each line carries a unique id (`uid`). The next hook
//! that holds the store's write lock claims the file by renaming it into `<db>.spool.d/` as
//! `claimed-<pid>-<start>-<nanos>`, applies its lines in the same transaction as its own event,
//! and deletes it after the commit; if that commit fails the lines go back to the spool.
//!
//! A claimer can be killed at any point (a client's hook timeout):
//! - before its commit: its claimed file stays in `<db>.spool.d/`. Every write looks there (one
//!   directory read, usually of a directory that does not exist) and takes the files of dead
//!   claimers along, so they are recovered by the next hook call, not only by the next spool.
//! - after its commit, before the delete: the next claimer finds the file again, and
//!   `spool_applied` (the uids already stored) makes it skip every line it holds.

use std::fs::DirBuilder;
use std::io::Write;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use rusqlite::{Transaction, params};

use super::record::Recording;
use crate::private_file::{self, Mode};
use crate::process::{self, ClientProcess};

/// `<db>.spool`.
pub fn path_for(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.spool", db.display()))
}

/// `<db>.spool.d`: claimed spool files while they are applied, and unreadable ones kept aside.
pub fn dir_for(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.spool.d", db.display()))
}

/// The largest the spool may grow. A store that stays unusable (a newer schema, a broken disk)
/// must not fill the disk with waiting events: past this, new events are refused (and logged).
pub const MAX_SPOOL_BYTES: u64 = 64 * 1024 * 1024;

/// How long `spool_applied` remembers a uid: far longer than any spool waits to be replayed.
const APPLIED_KEEP_MS: i64 = 7 * 24 * 3600 * 1000;

fn nanos() -> u128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos())
}

/// A new recording id: this process, its start, the time and a counter. Unique on the machine
/// without a random source: a pid and start time name one process, and it never repeats a time
/// and counter pair.
fn new_uid() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let me = process::this_process();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{}-{}-{}-{n}", me.pid, me.start_ticks, nanos())
}

/// Appends recordings to the spool, one line each, in one write; a recording without a uid is
/// given one. A write that fails part way (a full disk) is cut back off, so the spool never holds
/// a torn line. Refused when the spool already holds [`MAX_SPOOL_BYTES`].
pub fn append(db: &Path, recordings: &[Recording]) -> std::io::Result<()> {
    let mut text = String::new();
    for r in recordings {
        let line = match r.uid {
            Some(_) => serde_json::to_string(r),
            None => serde_json::to_string(&Recording {
                uid: Some(new_uid()),
                ..r.clone()
            }),
        };
        text.push_str(&line.map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let mut file = private_file::open(&path_for(db), Mode::Append)?;
    let len = file.metadata()?.len();
    if len >= MAX_SPOOL_BYTES {
        return Err(std::io::Error::other(format!(
            "the spool is full ({} MiB); run `harness doctor`",
            MAX_SPOOL_BYTES >> 20
        )));
    }
    file.write_all(text.as_bytes()).inspect_err(|_| {
        let _ = file.set_len(len);
    })
}

/// Applies a spooled recording unless its uid was applied before (then returns false). One that
/// has no uid (spooled by an older agent-harness) is applied.
pub fn apply_once(tx: &Transaction<'_>, r: &Recording, now_ms: i64) -> rusqlite::Result<bool> {
    if let Some(uid) = &r.uid {
        let fresh = tx
            .prepare_cached(
                "INSERT INTO spool_applied (uid, ts_ms) VALUES (?1, ?2) ON CONFLICT DO NOTHING",
            )?
            .execute(params![uid, now_ms])?;
        if fresh == 0 {
            return Ok(false);
        }
    }
    r.apply(tx)?;
    Ok(true)
}

/// Forgets applied uids older than `APPLIED_KEEP_MS` (a week); run beside a replay.
pub fn prune_applied(tx: &Transaction<'_>, now_ms: i64) -> rusqlite::Result<()> {
    tx.prepare_cached("DELETE FROM spool_applied WHERE ts_ms < ?1")?
        .execute([now_ms - APPLIED_KEEP_MS])?;
    Ok(())
}

/// Recordings claimed from the spool, to be applied and then settled. Dropped unsettled (the
/// transaction failed, or a panic unwound through it), they go back to the spool.
pub struct Claimed {
    db: PathBuf,
    /// The claimed files: the spool as renamed, and orphans of claimers that died.
    files: Vec<PathBuf>,
    pub recordings: Vec<Recording>,
    /// Lines that could not be read back (a torn write after a full disk): the claimed file is
    /// kept as `bad-...` in the spool directory for inspection.
    pub unreadable: usize,
    /// How many of `files` were left by claimers that died.
    pub orphans: usize,
    settled: bool,
}

/// Claims the spool and any orphaned claimed files; call it holding the store's write lock, so
/// that one writer claims at a time. Costs a `stat` and a directory read when there is nothing.
pub fn claim(db: &Path) -> Option<Claimed> {
    let spool = path_for(db);
    let dir = dir_for(db);
    let mut files = orphans(&dir, "claimed-");
    let orphan_count = files.len();
    if spool.exists() {
        // Claimers of older versions left theirs beside the store.
        files.extend(legacy_orphans(&spool));
        let _ = DirBuilder::new().mode(0o700).create(&dir);
        let me = process::this_process();
        let file = dir.join(format!("claimed-{}-{}-{}", me.pid, me.start_ticks, nanos()));
        // Only one process wins the rename; the others see no spool.
        if std::fs::rename(&spool, &file).is_ok() {
            files.push(file);
        }
    }
    if files.is_empty() {
        return None;
    }
    let mut recordings = Vec::new();
    let mut unreadable = 0;
    for f in &files {
        let text = private_file::open(f, Mode::Read)
            .and_then(|mut file| {
                let mut text = String::new();
                std::io::Read::read_to_string(&mut file, &mut text).map(|_| text)
            })
            .unwrap_or_default();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            match serde_json::from_str(line) {
                Ok(r) => recordings.push(r),
                Err(_) => unreadable += 1,
            }
        }
    }
    Some(Claimed {
        db: db.to_path_buf(),
        files,
        recordings,
        unreadable,
        orphans: orphan_count,
        settled: false,
    })
}

/// Files `<prefix><pid>-<start>-<nanos>` in the spool directory whose process is gone.
pub fn orphans(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let mut parts = name.strip_prefix(prefix)?.split('-');
            let pid: u32 = parts.next()?.parse().ok()?;
            let start_ticks: u64 = parts.next()?.parse().ok()?;
            parts.next()?.parse::<u128>().ok()?;
            let alive = process::is_alive(ClientProcess { pid, start_ticks });
            (!alive).then(|| e.path())
        })
        .collect()
}

/// `<spool>.claimed-<pid>-<nanos>` files (the naming before `<db>.spool.d`) whose process is gone.
fn legacy_orphans(spool: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (spool.parent(), spool.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.claimed-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().into_string().ok()?;
            let (pid, nanos) = name.strip_prefix(&prefix)?.split_once('-')?;
            nanos.parse::<u128>().ok()?;
            let pid: u32 = pid.parse().ok()?;
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            (!alive).then(|| e.path())
        })
        .collect()
}

/// What waits to be stored, for `harness doctor`.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Waiting {
    /// Bytes in the spool itself.
    pub spool_bytes: u64,
    /// Claimed files of claimers that died (recovered by the next hook call).
    pub orphans: usize,
    /// Files with unreadable lines kept aside.
    pub bad: usize,
}

/// What the spool holds now.
pub fn waiting(db: &Path) -> Waiting {
    let dir = dir_for(db);
    let bad = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok())
                .filter(|e| e.file_name().to_string_lossy().starts_with("bad-"))
                .count()
        })
        .unwrap_or(0);
    Waiting {
        spool_bytes: std::fs::symlink_metadata(path_for(db)).map_or(0, |m| m.len()),
        orphans: orphans(&dir, "claimed-").len() + legacy_orphans(&path_for(db)).len(),
        bad,
    }
}

impl Claimed {
    /// The claimed recordings are in the store: remove the files (or keep them aside, each under
    /// a name of its own, when some lines were unreadable).
    pub fn settle(mut self) {
        self.settled = true;
        for f in &self.files {
            if self.unreadable > 0 {
                let name = f.file_name().map_or_else(String::new, |n| {
                    n.to_string_lossy()
                        .replace("claimed-", "")
                        .replace('.', "-")
                });
                let aside = dir_for(&self.db).join(format!("bad-{name}-{}", nanos()));
                let _ = DirBuilder::new().mode(0o700).create(dir_for(&self.db));
                let _ = std::fs::rename(f, aside);
            } else {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

impl Drop for Claimed {
    /// Not settled: the store refused them; put them back for the next writer. When even that
    /// fails, the claimed files stay and are recovered as orphans once this process is gone.
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        if append(&self.db, &self.recordings).is_ok() {
            for f in &self.files {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}
