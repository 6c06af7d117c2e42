//! The store: one SQLite file shared by every hook, session and agent on the machine.
//!
//! Owns the one opening path (file and directory permissions, pragmas, migrations, checkpoints,
//! recovery of a corrupt file) and the SQL. Every write goes through [`Store::write`], one
//! `BEGIN IMMEDIATE` transaction. Must not decide policy.
//!
//! Durability: WAL with `synchronous=NORMAL`. A committed event survives a crash of any process;
//! the last few commits may be lost on power failure or an OS crash, never the file's integrity.
//!
//! Speed: a hook is a new process. When no other process has the store open, its connection is
//! the first: SQLite resets the shared-memory index and rebuilds it by reading every WAL frame
//! written since the last checkpoint (a fresh index also forgets what was checkpointed, so a
//! PASSIVE checkpoint never lets the next process restart the WAL: only truncating it does). The
//! WAL is kept short, not by checkpointing when the connection closes (that checkpoint, with its
//! fsyncs and the WAL's deletion, is most of what a naive one-insert hook costs), but by a
//! checkpoint from the write that finds it past [`WAL_BOUND_BYTES`]: about every 12 calls.
//! Measured with `cargo bench --bench hooks` (interleaved runs of one PreToolUse hook, p50 against
//! the naive floor): 64 KiB 0.84x, 128 KiB 0.72x, 256 KiB 0.70x, 512 KiB 0.70x, 1 MiB 0.74x,
//! 4 MiB 0.94x. While another process has the store open (many sessions at once), a new
//! connection finds the index built and reads none of the WAL; then the bound is
//! [`WAL_SHARED_BOUND_BYTES`]. The first write made with nobody else attached after a busy spell
//! brings the WAL back under the small bound (its process has just rebuilt the index from up to
//! 4 MiB of WAL, once). That checkpoint never waits: not for another writer, not for a
//! reader (an idle `sqlite3` shell, a DB browser holding a read transaction). It copies what it
//! can without the write lock (PASSIVE), then resets the WAL only when nobody is in the way
//! (alone it truncates it; while others have the store open it makes the next writer start it
//! over in place, without cutting the file under the lock); otherwise a later write tries again. A waiting checkpoint would hold the write lock while it
//! waits, and every other hook on the machine with it.
//!
//! Many writers: SQLite's own busy handler sleeps up to 100 ms at a time, so a waiting hook sleeps
//! through many free windows. `busy_waiter` polls with short, jittered sleeps instead (see there).
//! A write yields the CPU just before it takes the lock, so that it holds the lock on a fresh time
//! slice (`fresh_time_slice`), and a checkpoint does not try to truncate the WAL while another
//! process reads it (`others_read_the_wal`).
//!
//! Identity: the file is marked with [`APPLICATION_ID`]. A new store is built under a temporary
//! name and linked into place whole, so no process ever sees a half-made one; any other
//! non-empty SQLite file at the path (`HARNESS_DB` pointing at another program's database) is
//! refused, never migrated.

/// The file-writing tools of both clients, as an SQL list (a macro, for `concat!` in the
/// modules below).
macro_rules! write_tools_sql {
    () => {
        "('Write', 'Edit', 'MultiEdit', 'NotebookEdit', 'write_file', 'replace')"
    };
}

mod arena;
pub mod claims;
pub mod export;
pub mod memory;
pub mod query;
pub mod quota;
pub mod record;
pub mod reviews;
pub mod routes;
pub mod runs;
pub mod spool;

use std::ffi::c_int;
use std::fs::{DirBuilder, OpenOptions};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rusqlite::config::DbConfig;
use rusqlite::{Connection, OpenFlags, Transaction, TransactionBehavior};

use crate::error::{Error, Result};

/// Numbered, append-only migrations; the schema version is how many have been applied.
const MIGRATIONS: &[&str] = &[
    include_str!("migrations/0001_init.sql"),
    include_str!("migrations/0002_locks.sql"),
    include_str!("migrations/0003_runs.sql"),
    include_str!("migrations/0004_quota.sql"),
    include_str!("migrations/0005_hardening.sql"),
    include_str!("migrations/0006_provisional_claims.sql"),
    include_str!("migrations/0007_reviews.sql"),
    include_str!("migrations/0008_routes.sql"),
    include_str!("migrations/0009_memory.sql"),
    include_str!("migrations/0010_export.sql"),
    include_str!("migrations/0011_usage_by_hour.sql"),
];

/// `PRAGMA application_id` of every agent-harness store ("AHRS"). Set by migration 5; a store
/// made before it has 0 and is recognised by its schema instead.
pub const APPLICATION_ID: i32 = 0x4148_5253;

/// Statements a connection keeps compiled. A Stop that reads its transcript compiles about 20
/// before taking the write lock (`write_prepared`); rusqlite's default of 16 dropped the first of
/// them again, to be compiled a second time under the lock.
pub const STATEMENT_CACHE: usize = 64;

/// The schema version this build writes.
pub const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// A write that finds the WAL file larger than this, and no other process with the store open,
/// runs a TRUNCATE checkpoint. A hook call adds 3 to 5 frames of 4 KiB; the next process to open the store
/// alone re-reads them all, and a checkpoint costs two fsyncs.
pub const WAL_BOUND_BYTES: u64 = 256 * 1024;

/// The bound while another process has the store open, on the WAL's frames since it last
/// restarted (the file keeps its length; see `Store::bound_wal`): SQLite's own automatic
/// checkpoint size (1,000 pages), and the length a longer WAL file is cut back to when it
/// restarts. Each process that opens the store while another has it open finds the WAL index in
/// shared memory already built and reads none of the WAL, so a longer WAL costs it nothing, while
/// a checkpoint every 256 KiB cost CPU and held the write lock for its truncation
/// (`cargo bench --bench concurrency`, 16 clients, four rounds interleaved with the single bound:
/// 1.62 ms of CPU a call against 1.73 ms, 1,095 events/s against 1,035).
pub const WAL_SHARED_BOUND_BYTES: u64 = 4 * 1024 * 1024;

/// The byte of the `-shm` file on which every connection holds a shared lock while it has the
/// store open: the "dead man switch" of SQLite's unix VFS (`UNIX_SHM_DMS`: the 8 WAL lock bytes
/// from 120, then this one). SQLite tests it with `F_GETLK` to learn whether it is the first to
/// open the store, and so must rebuild the WAL index from the whole WAL.
const SHM_DMS_BYTE: i64 = 128;

/// The `-shm` bytes of the read marks that pin WAL frames: `WAL_READ_LOCK(1)` to
/// `WAL_READ_LOCK(4)`, lock slots 4 to 7 from byte 120 (`UNIX_SHM_BASE`). A read transaction
/// holds one of them shared for its whole length when its snapshot includes frames not yet copied
/// into the database, and every write transaction holds one. One that began with everything
/// copied holds `WAL_READ_LOCK(0)` (byte 123) instead; it can still make a reset give up when
/// frames were committed after it began, so a free range here makes a truncation likely, not
/// certain.
const SHM_WAL_READERS: (i64, i64) = (124, 4);

/// The busy handler of every store connection, for a busy timeout of `limit`. SQLite calls it
/// with `count`, how many times it was called during the current wait. It sleeps 50 µs, doubling
/// to at most 800 µs, each with random jitter (from the clock's nanoseconds, so that waiters
/// started together spread out), until `limit` has passed since the wait began. A hook's write
/// transaction lasts well under a millisecond, so a waiter that sleeps 100 ms (SQLite's default
/// handler does, after a few tries) misses dozens of free windows; sleeping, not spinning, leaves
/// the CPU to the holder.
fn busy_waiter(limit: Duration) -> impl FnMut(i32) -> bool + Send + 'static {
    let mut began = Instant::now();
    move |count| {
        BUSY_WAITS.fetch_add(1, Ordering::Relaxed);
        let now = Instant::now();
        if count == 0 {
            began = now;
        }
        let waited = now.duration_since(began);
        if waited >= limit {
            return false;
        }
        let step_us = 50u64 << count.clamp(0, 4);
        let jitter = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::from(d.subsec_nanos()))
            % step_us;
        std::thread::sleep(Duration::from_micros(step_us / 2 + jitter).min(limit - waited));
        true
    }
}

/// How many times this process's busy handler was called (see [`busy_waits`]).
static BUSY_WAITS: AtomicU64 = AtomicU64::new(0);

/// How many times this process waited for another connection's lock: one short sleep each.
/// Reported by hooks for the concurrency benchmark.
pub fn busy_waits() -> u64 {
    BUSY_WAITS.load(Ordering::Relaxed)
}

/// The longest this process held the store's write lock, in microseconds (see [`longest_hold`]).
static LONGEST_HOLD_US: AtomicU64 = AtomicU64::new(0);

/// The longest this process has held the store's write lock for a transaction: from `BEGIN
/// IMMEDIATE` to the end of its commit. Reported by hooks for the concurrency benchmark.
pub fn longest_hold() -> Duration {
    Duration::from_micros(LONGEST_HOLD_US.load(Ordering::Relaxed))
}

/// The longest this process held the store's write lock for a transaction during which it was
/// neither preempted nor blocked (see [`preempted_holds`], [`blocked_holds`]): the work inside
/// the lock alone. Reported by hooks for the concurrency benchmark.
pub fn longest_work_hold() -> Duration {
    Duration::from_micros(LONGEST_WORK_HOLD_US.load(Ordering::Relaxed))
}

/// See [`longest_work_hold`].
static LONGEST_WORK_HOLD_US: AtomicU64 = AtomicU64::new(0);

/// The longest attempt of this process to reset the WAL (zero when it made none; see
/// `Store::bound_wal`): at most that long it held the write lock for it. Reported by hooks for the
/// concurrency benchmark.
pub fn longest_wal_reset() -> Duration {
    Duration::from_micros(LONGEST_WAL_RESET_US.load(Ordering::Relaxed))
}

/// See [`longest_wal_reset`].
static LONGEST_WAL_RESET_US: AtomicU64 = AtomicU64::new(0);

/// How many times this process reset the WAL: truncated it, or made the next writer restart it
/// (attempts that found a reader or writer in the way do not count). Reported by hooks for the
/// concurrency benchmark.
pub fn wal_resets() -> u64 {
    WAL_RESETS.load(Ordering::Relaxed)
}

static WAL_RESETS: AtomicU64 = AtomicU64::new(0);

/// How many of this process's write transactions the scheduler preempted before their commit
/// ended (the process was switched out involuntarily while it held the write lock). Reported by
/// hooks for the concurrency benchmark: a long hold with none is work, one with some is waiting
/// for a CPU.
pub fn preempted_holds() -> u64 {
    PREEMPTED_HOLDS.load(Ordering::Relaxed)
}

static PREEMPTED_HOLDS: AtomicU64 = AtomicU64::new(0);

/// How many of this process's write transactions waited for I/O or a page of memory (switched
/// out voluntarily) while they held the write lock. Reported by hooks for the concurrency
/// benchmark.
pub fn blocked_holds() -> u64 {
    BLOCKED_HOLDS.load(Ordering::Relaxed)
}

static BLOCKED_HOLDS: AtomicU64 = AtomicU64::new(0);

/// Whether this process was switched out involuntarily (preempted), and voluntarily (blocked),
/// since `before` was taken by [`context_switches`]. Public for the concurrency benchmark's timed
/// floor, which classifies its hold as the store does.
pub fn switches_since(before: (i64, i64)) -> (bool, bool) {
    let now = context_switches();
    (now.0 > before.0, now.1 > before.1)
}

/// Involuntary and voluntary context switches of this process so far (`getrusage`), or zeros
/// when unknown.
pub fn context_switches() -> (i64, i64) {
    // SAFETY: an all-zero `rusage` is a valid value of the plain C struct, which getrusage fills.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, writable `rusage`.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return (0, 0);
    }
    // `c_long`s: i64 here, i32 on 32-bit targets.
    #[allow(clippy::useless_conversion)]
    (i64::from(usage.ru_nivcsw), i64::from(usage.ru_nvcsw))
}

/// Lets every other runnable process run first, so that the transaction about to start is likely
/// to do so on a fresh time slice. A hook has spent about a millisecond of CPU on starting and
/// compiling its statements when it takes the write lock; with more processes than cores (many
/// sessions at once), the end of its slice often fell inside its 0.2 ms transaction, and the lock
/// stayed held while the holder waited for a CPU, 2 to 20 ms, and every other writer with it.
/// Under Linux's EEVDF scheduler (6.6 and later) `sched_yield` moves the caller's deadline a slice
/// later, so it comes back with a slice to run; a task that wakes can still preempt it, and older
/// kernels and macOS promise nothing, so this shortens the tail without bounding it. With no other
/// process runnable it returns at once. `cargo bench --bench concurrency`, 16 clients, interleaved
/// with the build without it: hold p99 1.1 to 2.5 ms against 5.1 to 6.9 ms, busy sleeps a call
/// 0.8 to 1.1 against 1.7 to 2.0.
fn fresh_time_slice() {
    // SAFETY: sched_yield takes no arguments and only asks the scheduler to run others first.
    unsafe {
        libc::sched_yield();
    }
}

fn note_hold(longest: &AtomicU64, held: Duration) {
    longest.fetch_max(held.as_micros() as u64, Ordering::Relaxed);
}

/// Configures SQLite for a process that opens one store, writes once and exits (a hook, the
/// status line): SQLite's memory from a bump arena, without statistics (see `arena`). Must run
/// before the process's first connection; later it is a no-op.
pub fn tune_for_short_process() {
    arena::install();
}

/// An open store.
pub struct Store {
    conn: Connection,
    path: PathBuf,
    busy_timeout: Duration,
    /// The WAL's length in frames after this connection's latest commit (SQLite's WAL hook), 0
    /// before its first: the frames since the WAL last restarted, whatever the file's length.
    wal_frames: std::sync::Arc<AtomicU64>,
}

impl Store {
    /// Opens (creating if needed) the store at `path`: directory 0700 and file 0600 when this call
    /// creates them, busy handler first, then `synchronous=NORMAL`, no checkpoint on close.
    /// A new store is created whole (see `create`); migrations of an older one run on the first
    /// write or read that finds the schema behind.
    pub fn open(path: &Path, busy_timeout: Duration) -> Result<Store> {
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let open = || match Connection::open_with_flags(path, flags) {
            Ok(conn) => Ok(conn),
            Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::CannotOpen) => {
                create(path)?;
                Connection::open_with_flags(path, flags).map_err(|e| Error::db("open", path, e))
            }
            Err(e) => Err(Error::db("open", path, e)),
        };
        let mut conn = open()?;
        // SQLite retries a read-write open that failed as read-only; when the file appeared in
        // between (another hook just created the store), that leaves a read-only connection to a
        // writable file. Open again: a file that is really read-only stays so, and its write
        // fails with SQLite's own message.
        for _ in 0..2 {
            if !conn.is_readonly(rusqlite::MAIN_DB).unwrap_or(false) {
                break;
            }
            conn = open()?;
        }
        let err = |e| Error::db("configure", path, e);
        conn.busy_handler(Some(busy_waiter(busy_timeout)))
            .map_err(err)?;
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_NO_CKPT_ON_CLOSE, true)
            .map_err(err)?;
        // Plans that do not depend on the values bound. Without this, a cached statement whose
        // WHERE compares a column to a parameter (`session_id = ?1`) is compiled again once a
        // value is bound (SQLite looks at the value to estimate the rows), and a hook runs each
        // statement once: nearly every statement was compiled twice. Callgrind: PreToolUse 2.00 M
        // to 1.90 M instructions, Stop 2.46 M to 2.31 M. The store's queries are keyed lookups
        // whose plan does not change with the value.
        conn.set_db_config(DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true)
            .map_err(err)?;
        // No automatic checkpoint (a write bounds the WAL itself, see `bound_wal`); a WAL left
        // longer than the shared bound (a reader kept its snapshot through a busy spell) is cut
        // back to it by the first commit after it restarts.
        conn.execute_batch(&format!(
            "PRAGMA synchronous = NORMAL; PRAGMA wal_autocheckpoint = 0; \
             PRAGMA journal_size_limit = {WAL_SHARED_BOUND_BYTES};"
        ))
        .map_err(err)?;
        // After the pragma, which sets the WAL hook itself (to none, with no automatic
        // checkpoint): this one only notes the WAL's length, and never checkpoints.
        let wal_frames = std::sync::Arc::new(AtomicU64::new(0));
        let noted = wal_frames.clone();
        conn.wal_hook(Some(move |_: &mut rusqlite::hooks::Wal, frames: c_int| {
            noted.store(frames.max(0) as u64, Ordering::Relaxed);
            Ok(())
        }))
        .map_err(err)?;
        conn.set_prepared_statement_cache_capacity(STATEMENT_CACHE);
        Ok(Store {
            conn,
            path: path.to_path_buf(),
            busy_timeout,
            wal_frames,
        })
    }

    /// A read-only connection to the store at `path`, for a long-lived reader (`harness
    /// dashboard`): it can never write, migrate or checkpoint, and waits for a busy store with
    /// the same handler as every other connection. The store must exist at this build's schema
    /// (open it once with [`Store::open`] and [`Store::reader`] first).
    pub fn open_read_only(path: &Path, busy_timeout: Duration) -> Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|e| Error::db("open", path, e))?;
        conn.busy_handler(Some(busy_waiter(busy_timeout)))
            .map_err(|e| Error::db("configure", path, e))?;
        // An older schema cannot be brought up to date from here; the caller opened it first.
        let version = identity(&conn, path)?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path: path.to_path_buf(),
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        Ok(conn)
    }

    /// Leaves the connection for the process's exit to close, for a process that is about to
    /// exit (a hook, after its commit): `sqlite3_close` frees the parsed schema and every
    /// statement piece by piece, 5% of a hook call, and does nothing the exit does not. The
    /// connection never checkpoints on close (see [`Store::open`]), so nothing is skipped that
    /// the store needs; its locks go with the process.
    pub fn close_at_exit(self) {
        std::mem::forget(self);
    }

    /// The file this store lives in.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction and commits it. Brings the schema up to date
    /// first when needed. Keeps the WAL bounded afterwards.
    pub fn write<T>(&mut self, f: impl FnOnce(&Transaction<'_>) -> Result<T>) -> Result<T> {
        self.write_prepared(&[], f)
    }

    /// [`Store::write`], with `statements` compiled before the write lock is taken (into the
    /// connection's statement cache, where `prepare_cached` inside `f` finds them). A hook's
    /// connection is new, so its first statement also reads and parses the schema: done here
    /// too, outside the lock, which is then held only for the work itself.
    pub fn write_prepared<T>(
        &mut self,
        statements: &[&str],
        f: impl FnOnce(&Transaction<'_>) -> Result<T>,
    ) -> Result<T> {
        let path = self.path.clone();
        if identity(&self.conn, &path)? != SCHEMA_VERSION {
            self.migrate()?;
        }
        for sql in statements {
            self.conn
                .prepare_cached(sql)
                .map_err(|e| Error::db("prepare a statement for", &path, e))?;
        }
        fresh_time_slice();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::db("lock", &path, e))?;
        let began = Instant::now();
        let switches = context_switches();
        // Another process may have migrated since (a newer agent-harness): checked again under
        // the lock, from the cached statement.
        let version = identity(&tx, &path)?;
        if version != SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path,
                found: version.max(SCHEMA_VERSION + 1),
                supported: SCHEMA_VERSION,
            });
        }
        let out = f(&tx)?;
        tx.commit().map_err(|e| Error::db("commit to", &path, e))?;
        let held = began.elapsed();
        note_hold(&LONGEST_HOLD_US, held);
        let (preempted, blocked) = switches_since(switches);
        if preempted {
            PREEMPTED_HOLDS.fetch_add(1, Ordering::Relaxed);
        }
        if blocked {
            BLOCKED_HOLDS.fetch_add(1, Ordering::Relaxed);
        }
        if !preempted && !blocked {
            note_hold(&LONGEST_WORK_HOLD_US, held);
        }
        self.bound_wal();
        Ok(out)
    }

    /// A connection for reading, with the schema brought up to date.
    pub fn reader(&mut self) -> Result<&Connection> {
        let version = identity(&self.conn, &self.path)?;
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
        let version = identity(&self.conn, &path)?;
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
        let version = identity(&tx, &path)?;
        if version > SCHEMA_VERSION {
            return Err(Error::SchemaTooNew {
                path,
                found: version,
                supported: SCHEMA_VERSION,
            });
        }
        apply_migrations(&tx, version, &path)?;
        tx.commit().map_err(|e| Error::db("migrate", &path, e))
    }

    /// Checkpoints when the WAL has grown past its bound, never waiting for anyone: PASSIVE first
    /// (copies what no reader needs, without the write lock), then a reset with no busy handler
    /// (takes the write lock only if it is free, and gives up at once when a reader still uses
    /// the WAL). Failure is harmless: a later write tries again.
    ///
    /// Alone, the reset is a TRUNCATE: the next process to open the store rebuilds the WAL index
    /// from the WAL and, in a fresh index, forgets what was copied, so only an empty file makes it
    /// start the WAL over. While another process has the store open, the index is shared, and the
    /// reset is a RESTART: it makes the next writer start the WAL over from its beginning, in the
    /// file's blocks as they are, without the `ftruncate` that a TRUNCATE adds under the lock
    /// (1 to 2 ms on the disk measured, where the blocks freed are discarded then). The file then
    /// keeps its length, so the bound is taken from the frames since the restart, as SQLite's WAL
    /// hook reports them after this connection's commit.
    ///
    /// The reset is not tried while another process reads frames of the WAL (holds a read mark,
    /// [`SHM_WAL_READERS`]): SQLite would take the write lock, copy the frames committed since the
    /// PASSIVE with two fsyncs, and only then find the reader and give up. With 16 clients that
    /// was 9 tries in 10, and the longest holds of the benchmark; asked first, the tries fell from
    /// 300 to 530 a run to 20 to 50, with as many truncations (9 to 16).
    fn bound_wal(&mut self) {
        // The file SQLite opened, symlinks resolved: its `-wal` and `-shm` files are beside it,
        // not beside a symlink `HARNESS_DB` names.
        let db = self
            .conn
            .path()
            .filter(|p| !p.is_empty())
            .map_or_else(|| self.path.clone(), PathBuf::from);
        let Ok(meta) = std::fs::metadata(wal_path(&db)) else {
            return;
        };
        if meta.len() <= WAL_BOUND_BYTES {
            return;
        }
        let reset = if others_attached(&db) {
            // Not known (no frames committed here): left to a write that knows.
            if self.wal_bytes().is_none_or(|n| n <= WAL_SHARED_BOUND_BYTES) {
                return;
            }
            "RESTART"
        } else {
            "TRUNCATE"
        };
        let _ = self.conn.busy_handler(None::<fn(i32) -> bool>);
        for mode in ["PASSIVE", reset] {
            if mode == reset && others_read_the_wal(&db) {
                break;
            }
            let began = Instant::now();
            let done = self
                .conn
                .query_row(&format!("PRAGMA wal_checkpoint({mode})"), [], |r| {
                    r.get::<_, i64>(0)
                });
            if mode == reset {
                // An attempt that found a reader in the way may still have taken the lock.
                note_hold(&LONGEST_WAL_RESET_US, began.elapsed());
                if matches!(done, Ok(0)) {
                    WAL_RESETS.fetch_add(1, Ordering::Relaxed);
                }
            }
            if !matches!(done, Ok(0)) {
                break;
            }
        }
        let _ = self.conn.busy_handler(Some(busy_waiter(self.busy_timeout)));
    }

    /// How long the WAL is since it last restarted, in bytes (its header and frames), after this
    /// connection's latest commit; None before the first, or when the page size cannot be read.
    fn wal_bytes(&self) -> Option<u64> {
        let frames = self.wal_frames.load(Ordering::Relaxed);
        if frames == 0 {
            return None;
        }
        let page: i64 = self
            .conn
            .query_row("PRAGMA page_size", [], |r| r.get(0))
            .ok()?;
        let page = u64::try_from(page).ok()?;
        // A 32-byte header, then frames of a 24-byte header and a page each.
        Some(32 + frames * (24 + page))
    }

    /// Moves a corrupt store file (and its WAL and shared-memory files) aside as
    /// `<file>.corrupt-<time>` so a fresh one can be created; returns where it went. Serialised
    /// across processes with a lock file, and re-checked under the lock, so that a store another
    /// process has just recreated is never moved.
    pub fn move_aside_if_corrupt(path: &Path) -> Result<Option<PathBuf>> {
        let lock_path = path.with_extension("recover.lock");
        let lock = crate::private_file::open(&lock_path, crate::private_file::Mode::Write)
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

/// Whether a process other than this one has the store at `db` open now (holds its lock on the
/// `-shm` file's [`SHM_DMS_BYTE`]): then the next process to open it finds the WAL index built.
/// False when that cannot be told, so that the WAL is bounded as if this process were alone.
fn others_attached(db: &Path) -> bool {
    shm_locked(db, (SHM_DMS_BYTE, 1))
}

/// Whether a process other than this one is reading frames of the WAL (holds a read mark other
/// than "everything copied"): then a TRUNCATE or RESTART checkpoint would fail.
fn others_read_the_wal(db: &Path) -> bool {
    shm_locked(db, SHM_WAL_READERS)
}

/// Whether a process other than this one holds a lock on any of the `(start, length)` bytes of
/// the `-shm` file of the store at `db`. False when that cannot be told (no `-shm` file yet).
///
/// `F_GETLK` never reports this process's own locks. Closing any descriptor of a file drops every
/// POSIX lock this process holds on it, SQLite's own among them, so the descriptor opened here is
/// never closed: one per store file, kept for the life of the process. Opened without following a
/// symlink and without blocking (a FIFO put in the file's place cannot hang the hook).
fn shm_locked(db: &Path, (start, len): (i64, i64)) -> bool {
    static PROBES: std::sync::Mutex<Vec<(PathBuf, std::fs::File)>> =
        std::sync::Mutex::new(Vec::new());
    let shm = side_file(db, "-shm");
    let Ok(mut probes) = PROBES.lock() else {
        return false;
    };
    let fd = match probes.iter().find(|(p, _)| *p == shm) {
        Some((_, file)) => file.as_raw_fd(),
        None => {
            let Ok(file) = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK)
                .open(&shm)
            else {
                return false;
            };
            let fd = file.as_raw_fd();
            probes.push((shm, file));
            fd
        }
    };
    // SAFETY: an all-zero `flock` is a valid value of the plain C struct.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = libc::F_WRLCK as _;
    lock.l_whence = libc::SEEK_SET as _;
    lock.l_start = start as _;
    lock.l_len = len as _;
    // SAFETY: `fd` is open for as long as the process lives, and `lock` is a valid `flock` that
    // F_GETLK only writes into.
    let rc = unsafe { libc::fcntl(fd, libc::F_GETLK, &mut lock) };
    rc == 0 && i32::from(lock.l_type) != libc::F_UNLCK
}

fn user_version(conn: &Connection, path: &Path) -> Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(|e| Error::db("read", path, e))
}

/// The schema version of a file that is an agent-harness store (or an empty database, version
/// 0); refuses any other SQLite file.
fn identity(conn: &Connection, path: &Path) -> Result<i64> {
    // Two plain pragmas: cheaper to compile than the table-valued `pragma_*` functions, and
    // this runs on every hook call.
    let read = |pragma: &str| -> Result<i64> {
        conn.prepare_cached(pragma)
            .and_then(|mut st| st.query_row([], |r| r.get(0)))
            .map_err(|e| Error::db("read", path, e))
    };
    let version = read("PRAGMA user_version")?;
    let app = read("PRAGMA application_id")? as i32;
    if app == APPLICATION_ID {
        return Ok(version);
    }
    let foreign = || Error::ForeignStore {
        path: path.to_path_buf(),
        application_id: app,
    };
    if app != 0 {
        return Err(foreign());
    }
    // Unmarked: an empty database, or a store made before migration 5 (its tables say so).
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_schema WHERE type = 'table'")
        .and_then(|mut st| st.query_map([], |r| r.get(0))?.collect())
        .map_err(|e| Error::db("read", path, e))?;
    let ours = ["meta", "sessions", "events", "tool_calls"]
        .iter()
        .all(|t| tables.iter().any(|n| n == t));
    match (tables.is_empty(), ours) {
        (true, _) if version == 0 => Ok(0),
        (false, true) if (1..=4).contains(&version) => Ok(version),
        _ => Err(foreign()),
    }
}

/// Applies migrations `from..` in one transaction of `conn`.
fn apply_migrations(tx: &Transaction<'_>, from: i64, path: &Path) -> Result<()> {
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(from as usize) {
        tx.execute_batch(sql)
            .map_err(|e| Error::db("migrate", path, e))?;
        tx.pragma_update(None, "user_version", i as i64 + 1)
            .map_err(|e| Error::db("migrate", path, e))?;
    }
    Ok(())
}

/// `<db>-wal`.
pub fn wal_path(db: &Path) -> PathBuf {
    side_file(db, "-wal")
}

/// `<db><suffix>`, for any file name (not only UTF-8 ones).
fn side_file(db: &Path, suffix: &str) -> PathBuf {
    let mut name = db.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Creates a store at `path` whole: the directory (0700) if missing, then a complete, migrated,
/// marked database in WAL mode under a temporary name (0600), linked into place only if nothing
/// is there yet. Processes racing to create the store all succeed, and every one of them opens
/// the same finished file: none ever sees an empty or half-migrated one. SQLite gives the `-wal`
/// and `-shm` files the permissions of the main file.
fn create(path: &Path) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty())
        && !dir.exists()
    {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| Error::io("create directory", dir, e))?;
    }
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let name = path
        .file_name()
        .map_or_else(|| "harness.db".into(), |n| n.to_string_lossy().into_owned());
    let temp = path.with_file_name(format!(".{name}.new-{}-{nanos}", std::process::id()));
    let cleanup = |temp: &Path| {
        for suffix in ["", "-wal", "-shm", "-journal"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", temp.display()));
        }
    };
    let built = (|| {
        OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&temp)
            .map_err(|e| Error::io("create", &temp, e))?;
        let mut conn = Connection::open_with_flags(&temp, OpenFlags::SQLITE_OPEN_READ_WRITE)
            .map_err(|e| Error::db("create", path, e))?;
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| Error::db("switch to WAL", path, e))?;
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(|e| Error::db("create", path, e))?;
        apply_migrations(&tx, 0, path)?;
        tx.commit().map_err(|e| Error::db("create", path, e))?;
        // The last connection's close checkpoints the WAL into the file and removes it.
        conn.close().map_err(|(_, e)| Error::db("create", path, e))
    })();
    let linked = built.and_then(|()| match std::fs::hard_link(&temp, path) {
        Ok(()) => Ok(()),
        // Another process created it first: use theirs.
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => Ok(()),
        Err(e) => Err(Error::io("create", path, e)),
    });
    cleanup(&temp);
    linked
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
    fn a_statement_compiled_before_its_values_are_bound_is_not_compiled_again() {
        use rusqlite::StatementStatus;
        let dir = scratch("qpsg");
        let db = dir.join("h.db");
        let mut store = Store::open(&db, Duration::from_secs(1)).unwrap();
        let sql = "SELECT coalesce(max(id), 0) FROM events WHERE session_id = ?1";
        // Compiled first, as a hook compiles its statements before the write lock; then run.
        let run = |conn: &Connection| {
            conn.prepare_cached(sql).unwrap();
            let mut st = conn.prepare_cached(sql).unwrap();
            let _: i64 = st.query_row(["s"], |r| r.get(0)).unwrap();
            st.get_status(StatementStatus::RePrepare)
        };
        assert_eq!(run(store.reader().unwrap()), 0);
        // Without the option, the first value bound has it compiled again.
        assert_eq!(run(&Connection::open(&db).unwrap()), 1);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn every_statement_compiled_before_the_lock_is_still_compiled_under_it() {
        let dir = scratch("cache");
        let mut store = Store::open(&dir.join("h.db"), Duration::from_secs(1)).unwrap();
        // As many as a Stop that reads its transcript compiles before the lock, and more.
        let sqls: Vec<&'static str> = (0..40)
            .map(|i| &*format!("SELECT {i} FROM events WHERE id = ?1").leak())
            .collect();
        let live = store
            .write_prepared(&sqls, |tx| {
                let mut n = 0;
                // SAFETY: walks the connection's own list of compiled statements, read only,
                // while no statement is being prepared or finalized.
                unsafe {
                    let db = tx.handle();
                    let mut st = rusqlite::ffi::sqlite3_next_stmt(db, std::ptr::null_mut());
                    while !st.is_null() {
                        n += 1;
                        st = rusqlite::ffi::sqlite3_next_stmt(db, st);
                    }
                }
                Ok(n)
            })
            .unwrap();
        assert!(live >= sqls.len(), "{live} statements still compiled");
        let _ = std::fs::remove_dir_all(dir);
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

    /// `n` writes of 64 KiB each.
    fn write_blobs(store: &mut Store, n: usize) {
        let blob = "x".repeat(64 * 1024);
        for _ in 0..n {
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
    }

    #[test]
    fn a_store_opened_through_a_symlink_bounds_the_wal_beside_the_file() {
        let dir = scratch("symlinked");
        let db = dir.join("harness.db");
        Store::open(&db, Duration::from_secs(1)).unwrap();
        let link = dir.join("link.db");
        std::os::unix::fs::symlink(&db, &link).unwrap();
        let mut store = Store::open(&link, Duration::from_secs(1)).unwrap();
        write_blobs(&mut store, 40);
        // SQLite keeps the WAL beside the file the link names.
        assert!(!wal_path(&link).exists());
        let wal = std::fs::metadata(wal_path(&db)).map_or(0, |m| m.len());
        assert!(wal <= WAL_BOUND_BYTES + 256 * 1024, "wal is {wal} bytes");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn this_process_s_own_connections_are_not_others() {
        let dir = scratch("others");
        let db = dir.join("harness.db");
        let mut one = Store::open(&db, Duration::from_secs(1)).unwrap();
        let mut two = Store::open(&db, Duration::from_secs(1)).unwrap();
        one.write(|_| Ok(())).unwrap();
        two.write(|_| Ok(())).unwrap();
        assert!(!others_attached(&db));
        // Asked again, from the descriptor kept open.
        assert!(!others_attached(&db));
        assert!(!others_attached(&dir.join("no-such.db")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_wal_stays_bounded() {
        let dir = scratch("wal");
        let db = dir.join("harness.db");
        let mut store = Store::open(&db, Duration::from_secs(1)).unwrap();
        write_blobs(&mut store, 200);
        let wal = std::fs::metadata(wal_path(&db))
            .map(|m| m.len())
            .unwrap_or(0);
        assert!(wal <= WAL_BOUND_BYTES + 256 * 1024, "wal is {wal} bytes");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
