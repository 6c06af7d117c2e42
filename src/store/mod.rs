//! The store: one SQLite file shared by every hook, session and agent on the machine.
//!
//! Owns the one opening path (file and directory permissions, pragmas, migrations, checkpoints,
//! recovery of a corrupt file) and the SQL. Every write goes through [`Store::write`], one
//! `BEGIN IMMEDIATE` transaction. Must not decide policy.
//!
//! Durability: WAL with `synchronous=NORMAL`. A committed event survives a crash of any process;
//! the last few commits may be lost on power failure or an OS crash, never the file's integrity.
//!
//! Speed: a hook is a new process, so every call is the store's first connection: SQLite resets
//! the shared-memory index and rebuilds it by reading every WAL frame written since the last
//! checkpoint (a fresh index also forgets what was checkpointed, so a PASSIVE checkpoint never
//! lets the next process restart the WAL: only truncating it does). The WAL is kept short, not by
//! checkpointing when the connection closes (that checkpoint, with its fsyncs and the WAL's
//! deletion, is most of what a naive one-insert hook costs), but by a TRUNCATE checkpoint from the
//! write that finds it past [`WAL_BOUND_BYTES`]: about every 12 calls. Measured with
//! `cargo bench --bench hooks` (interleaved runs of one PreToolUse hook, p50 against the naive
//! floor): 64 KiB 0.84x, 128 KiB 0.72x, 256 KiB 0.70x, 512 KiB 0.70x, 1 MiB 0.74x, 4 MiB 0.94x.

pub mod claims;
pub mod query;
pub mod quota;
pub mod record;
pub mod runs;
pub mod spool;

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// Numbered, append-only migrations; the schema version is how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_locks.sql"),
    include_str!("migrations/0003_runs.sql"),
    include_str!("migrations/0004_quota.sql"),
];

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A write that finds the WAL larger than this runs a TRUNCATE checkpoint. A hook call adds 3 to 5
/// frames of 4 KiB; each later call re-reads them all, and a checkpoint costs two fsyncs.
pub const WAL_BOUND_BYTES: u64 = 256 * 1024;

/// How long the occasional checkpoint may wait for readers before it is left to a later write.
const CHECKPOINT_BUSY_TIMEOUT: Duration = Duration::from_millis(100);

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
}

impl Store {
    /// Opens (creating if needed) the store at `path`: directory 0700 and file 0600 when this call
    /// creates them, busy timeout first, then `synchronous=NORMAL`, no checkpoint on close.
    /// Migrations run on the first write or read that finds the schema behind.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Store> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match Connection::open_with_flags(path, flags) {
            Ok(conn) => conn,
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) => {
                create_file(path)?;
                Connection::open_with_flags(path, flags).map_err(|e| Error::db("open", path, e))?
            }
            Err(e) => return Err(Error::db("open", path, e)),
        };
        let err = |e| Error::db("configure", path, e);
        conn.busy_timeout(busy_timeout).map_err(err)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(err)?;
        conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0;")
            .map_err(err)?;
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            busy_timeout,
        })
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it. Brings the schema up to date
    /// first when needed. Keeps the WAL bounded afterwards.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        let path = self.path.clone();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::db("lock", &path, e))?;
        let version = user_version(&tx, &path)?;
        let tx = if version == SCHEMA_VERSION {
            tx
        } else {
            drop(tx);
            self.migrate()?;
            self.conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| Error::db("lock", &path, e))?
        };
        let out = f(&tx)?;
        tx.commit().map_err(|e| Error::db("commit to", &path, e))?;
        self.bound_wal();
        Ok(out)
    }

    /// A connection for reading, with the schema brought up to date.
    pub fn reader(&mut self) -> Result<&Connection> {
        let version = user_version(&self.conn, &self.path)?;
        if version != SCHEMA_VERSION {
            self.migrate()?;
        }
        Ok(&self.conn)
    }

    /// The schema version of the file, without migrating it.
    pub fn schema_version(&self) -> Result<i64> {
        user_version(&self.conn, &self.path)
    }

    /// Applies the migrations the file lacks, all in one transaction. Refuses a newer schema.
    fn migrate(&mut self) -> Result<()> {
        let path = self.path.clone();
        let version = user_version(&self.conn, &path)?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        // WAL cannot be switched on inside a transaction; it persists in the file once set.
        self.conn
            .pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| Error::db("switch to WAL", &path, e))?;
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::db("lock", &path, e))?;
        // Another process may have migrated while this one waited for the lock.
        let version = user_version(&tx, &path)?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version as usize) {
            tx.execute_batch(sql)
                .map_err(|e| Error::db("migrate", &path, e))?;
            tx.pragma_update(None, "user_version", i as i64 + 1)
                .map_err(|e| Error::db("migrate", &path, e))?;
        }
        tx.commit().map_err(|e| Error::db("migrate", &path, e))
    }

    /// Runs a TRUNCATE checkpoint when the WAL has grown past its bound. Failure (a reader in the
    /// way) is harmless: the next write tries again.
    fn bound_wal(&self) {
        let wal = wal_path(&self.path);
        let Ok(meta) = std::fs::metadata(&wal) else {
            return;
        };
        if meta.len() <= WAL_BOUND_BYTES {
            return;
        }
        let _ = self.conn.busy_timeout(CHECKPOINT_BUSY_TIMEOUT);
        let _ = self
            .conn
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()));
        let _ = self.conn.busy_timeout(self.busy_timeout);
    }

    /// Moves a corrupt store file (and its WAL and shared-memory files) aside as
    /// `<file>.corrupt-<time>` so a fresh one can be created; returns where it went. Serialised
    /// across processes with a lock file, and re-checked under the lock, so that a store another
    /// process has just recreated is never moved.
    pub fn move_aside_if_corrupt(path: &Path) -> Result<Option<PathBuf>> {
        let lock_path = path.with_extension("recover.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(&lock_path)
            .map_err(|e| Error::io("open", &lock_path, e))?;
        lock.lock().map_err(|e| Error::io("lock", &lock_path, e))?;
        let still_corrupt =
            match Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_WRITE) {
                Ok(conn) => conn
                    .query_row("PRAGMA quick_check", [], |r| r.get::<_, String>(0))
                    .map(|answer| answer != "ok")
                    .unwrap_or_else(|e| Error::db("check", path, e).is_corrupt()),
                Err(_) => false,
            };
        if !still_corrupt {
            return Ok(None);
        }
        let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%S%.3fZ");
        let aside = PathBuf::from(format!("{}.corrupt-{stamp}", path.display()));
        std::fs::rename(path, &aside).map_err(|e| Error::io("move aside", path, e))?;
        for suffix in ["-wal", "-shm"] {
            let side = PathBuf::from(format!("{}{suffix}", path.display()));
            let _ = std::fs::rename(&side, format!("{}{suffix}", aside.display()));
        }
        Ok(Some(aside))
    }
}

fn user_version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| Error::db("read", path, e))
}

/// `<db>-wal`.
pub fn wal_path(db: &Path) -> PathBuf {
    PathBuf::from(format!("{}-wal", db.display()))
}

/// Creates the store's directory (0700) and an empty file (0600) for SQLite to fill. SQLite gives
/// its `-wal` and `-shm` files the permissions of the main file.
fn create_file(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
    }
    match OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
    {
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create", path, e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ah-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn a_new_store_is_private_and_current() {
        let dir = scratch("new");
        let db = dir.join("state/harness.db");
        let mut store = Store::open(&db, Duration::from_secs(1)).unwrap();
        store.write(|_| Ok(())).unwrap();
        assert_eq!(store.schema_version().unwrap(), SCHEMA_VERSION);
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir.join("state")), 0o700);
        assert_eq!(mode(&db), 0o600);
        assert_eq!(mode(&wal_path(&db)), 0o600);
        let journal: String = store
            .reader()
            .unwrap()
            .query_row("PRAGMA journal_mode", [], |r| r.get(0))
            .unwrap();
        assert_eq!(journal, "wal");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_newer_schema_is_refused() {
        let dir = scratch("newer");
        let db = dir.join("harness.db");
        let mut store = Store::open(&db, Duration::from_secs(1)).unwrap();
        store.write(|_| Ok(())).unwrap();
        store
            .reader()
            .unwrap()
            .pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        let err = store.write(|_| Ok(())).unwrap_err();
        assert!(matches!(err, Error::SchemaTooNew { .. }), "{err}");
        assert!(err.to_string().contains("upgrade agent-harness"));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_wal_stays_bounded() {
        let dir = scratch("wal");
        let db = dir.join("harness.db");
        let mut store = Store::open(&db, Duration::from_secs(1)).unwrap();
        let blob = "x".repeat(64 * 1024);
        for _ in 0..200 {
            store
                .write(|tx| {
                    tx.execute(
                        "INSERT INTO meta(key, value) VALUES (hex(randomblob(8)), ?1)",
                        [&blob],
                    )
                    .map_err(|e| Error::db("insert", "x", e))?;
                    Ok(())
                })
                .unwrap();
        }
        let wal = std::fs::metadata(wal_path(&db))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(wal <= WAL_BOUND_BYTES + 256 * 1024, "wal is {wal} bytes");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
