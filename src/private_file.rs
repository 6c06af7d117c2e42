//! Opening files without being fooled: the harness's own files beside its store (the spool, the
//! log, lock files), never written through a planted symlink or into another user's file; and
//! files it only reads (a config, a transcript), never blocking on a FIFO or reading a device.
//!
//! Owns how such files are opened. Must not decide what goes into them.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::Path;

/// How a private file is opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Created if missing (0600), every write appended.
    Append,
    /// Created if missing (0600), opened for writing without truncation (lock files).
    Write,
    /// Opened for reading only; never created.
    Read,
}

/// Opens `path` for reading without blocking (a FIFO's open waits for a writer otherwise) and
/// returns it with its metadata, if it is a regular file. The metadata is the opened file's own:
/// the path may have been replaced since any `stat` before.
pub fn open_regular(path: &Path) -> io::Result<(File, std::fs::Metadata)> {
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(path)?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("{} is not a regular file", path.display()),
        ));
    }
    Ok((file, meta))
}

/// Opens `path` without following a symlink at its last component, and refuses a file that is
/// not a regular file owned by this user (a FIFO would block, a device could be anything).
pub fn open(path: &Path, mode: Mode) -> io::Result<File> {
    let mut options = OpenOptions::new();
    match mode {
        Mode::Append => options.create(true).append(true).mode(0o600),
        Mode::Write => options.create(true).truncate(false).write(true).mode(0o600),
        Mode::Read => options.read(true),
    };
    // O_NONBLOCK: opening a FIFO planted at the path must not wait for a writer.
    let flags = rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK;
    let file = options.custom_flags(flags.bits() as i32).open(path)?;
    let meta = file.metadata()?;
    if !meta.file_type().is_file() {
        return Err(io::Error::other(format!(
            "{} is not a regular file",
            path.display()
        )));
    }
    if meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(io::Error::other(format!(
            "{} belongs to another user",
            path.display()
        )));
    }
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_or_a_fifo_is_refused() {
        let dir = std::env::temp_dir().join(format!("ah-private-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let victim = dir.join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let link = dir.join("link");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        assert!(open(&link, Mode::Append).is_err());
        assert!(open(&link, Mode::Read).is_err());
        let fifo = dir.join("fifo");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &fifo,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        assert!(open(&fifo, Mode::Read).is_err());
        assert!(open(&fifo, Mode::Append).is_err());
        let plain = dir.join("plain");
        assert!(open(&plain, Mode::Append).is_ok());
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        let _ = std::fs::remove_dir_all(&dir);
    }
}
