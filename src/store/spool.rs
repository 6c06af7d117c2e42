//! The spool: where a recording waits when the store cannot take it (held locked past the busy
//! timeout, being recovered), so that no event is lost. One JSON line per recording in
//! `<db>.spool` (0600, appended with O_APPEND, at most [`MAX_SPOOL_BYTES`]). The next hook that
//! holds the store's write lock claims the file by renaming it, applies its lines in the same
//! transaction as its own event, and deletes it after the commit; if that commit fails the lines
//! go back to the spool.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::record::Recording;

/// `<db>.spool`.
pub fn path_for(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.spool", db.display()))
}

/// The largest the spool may grow. A store that stays unusable (a newer schema, a broken disk)
/// must not fill the disk with waiting events: past this, new events are refused (and logged).
pub const MAX_SPOOL_BYTES: u64 = 64 * 1024 * 1024;

/// Appends recordings to the spool, one line each, in one write. A write that fails part way
/// (a full disk) is cut back off, so the spool never holds a torn line. Refused when the spool
/// already holds [`MAX_SPOOL_BYTES`].
pub fn append(db: &Path, recordings: &[Recording]) -> std::io::Result<()> {
    let mut text = String::new();
    for r in recordings {
        text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    let mut file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(0o600)
        .open(path_for(db))?;
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

/// Recordings claimed from the spool, to be applied and then settled. Dropped unsettled (the
/// transaction failed, or a panic unwound through it), they go back to the spool.
pub struct Claimed {
    db: PathBuf,
    /// The claimed files: the spool as renamed, and orphans of claimers that died.
    files: Vec<PathBuf>,
    pub recordings: Vec<Recording>,
    /// Lines that could not be read back (a torn write after a full disk): kept in the claimed
    /// file's name `.bad` for inspection.
    pub unreadable: usize,
    settled: bool,
}

/// Claims the spool if there is one; call it holding the store's write lock, so that one writer
/// claims at a time. One `stat` when there is none. Files claimed by a process that died before
/// it committed (killed by its client's timeout) are taken along.
pub fn claim(db: &Path) -> Option<Claimed> {
    let spool = path_for(db);
    if !spool.exists() {
        return None;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    let file = PathBuf::from(format!(
        "{}.claimed-{}-{nanos}",
        spool.display(),
        std::process::id()
    ));
    // Only one process wins the rename; the others see no spool.
    std::fs::rename(&spool, &file).ok()?;
    let mut files = orphans(&spool);
    files.push(file);
    let mut recordings = Vec::new();
    let mut unreadable = 0;
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap_or_default();
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
        settled: false,
    })
}

/// `<spool>.claimed-<pid>-<nanos>` files whose process is gone.
fn orphans(spool: &Path) -> Vec<PathBuf> {
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
            let rest = name.strip_prefix(&prefix)?;
            let (pid, nanos) = rest.split_once('-')?;
            nanos.parse::<u128>().ok()?;
            let pid: u32 = pid.parse().ok()?;
            let alive = Path::new(&format!("/proc/{pid}")).exists();
            (!alive).then(|| e.path())
        })
        .collect()
}

impl Claimed {
    /// The claimed recordings are in the store: remove the files (or keep them aside when some
    /// lines were unreadable).
    pub fn settle(mut self) {
        self.settled = true;
        for f in &self.files {
            if self.unreadable > 0 {
                let _ = std::fs::rename(f, f.with_extension("bad"));
            } else {
                let _ = std::fs::remove_file(f);
            }
        }
    }
}

impl Drop for Claimed {
    /// Not settled: the store refused them; put them back for the next writer.
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
