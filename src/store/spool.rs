//! The spool: where a recording waits when the store cannot take it (held locked past the busy
//! timeout, being recovered), so that no event is lost. One JSON line per recording in
//! `<db>.spool` (0600, appended with O_APPEND). The next hook that writes the store claims the
//! file by renaming it, applies its lines in the same transaction as its own event, and deletes it
//! after the commit; if that commit fails the lines go back to the spool.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use super::record::Recording;

/// `<db>.spool`.
pub fn path_for(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}.spool", db.display()))
}

/// Appends recordings to the spool, one line each, in one write. A write that fails part way
/// (a full disk) is cut back off, so the spool never holds a torn line.
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
    file.write_all(text.as_bytes()).inspect_err(|_| {
        let _ = file.set_len(len);
    })
}

/// Recordings claimed from the spool, to be applied and then settled.
pub struct Claimed {
    file: PathBuf,
    pub recordings: Vec<Recording>,
    /// Lines that could not be read back (a torn write after a full disk): kept in the claimed
    /// file's name `.bad` for inspection.
    pub unreadable: usize,
}

/// Claims the spool if there is one. One `stat` when there is none.
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
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    let mut recordings = Vec::new();
    let mut unreadable = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        match serde_json::from_str(line) {
            Ok(r) => recordings.push(r),
            Err(_) => unreadable += 1,
        }
    }
    Some(Claimed {
        file,
        recordings,
        unreadable,
    })
}

impl Claimed {
    /// The claimed recordings are in the store: remove the file (or keep it aside when some lines
    /// were unreadable).
    pub fn settle(self) {
        if self.unreadable > 0 {
            let _ = std::fs::rename(&self.file, self.file.with_extension("bad"));
        } else {
            let _ = std::fs::remove_file(&self.file);
        }
    }

    /// The store refused them: put them back for the next writer.
    pub fn give_back(self, db: &Path) {
        if append(db, &self.recordings).is_ok() {
            let _ = std::fs::remove_file(&self.file);
        }
    }
}
