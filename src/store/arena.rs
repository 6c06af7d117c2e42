//! SQLite's memory in a process that opens one store, writes once and exits (a hook, the status
//! line): a bump arena instead of the C library's `malloc`.
//!
//! Owns the allocator handed to SQLite by [`install`]. Such a process makes a few thousand small
//! allocations (most of them the parsed schema), frees few of them before it exits, and pays
//! `malloc`'s bookkeeping for each: measured at about a tenth of a hook call's instructions. Here
//! an allocation is a pointer bump in a 512 KiB chunk; a free gives memory back only when it
//! is the latest allocation, and the process's exit returns the rest. What keeps this bounded:
//! allocations over 32 KiB (a large payload's copy) go to the global allocator and are freed as
//! usual, and after 16 MiB of chunks every allocation does. Must not be installed in a long-lived
//! process (the admin CLI, the dashboard, the exporter): they keep SQLite's default.

use std::alloc::{Layout, alloc, dealloc};
use std::ffi::{c_int, c_void};
use std::ptr::null_mut;
use std::sync::Mutex;

use rusqlite::ffi;

const CHUNK: usize = 512 * 1024;
/// Larger allocations are the global allocator's, and freed as usual.
const LARGE: usize = 32 * 1024;
/// Chunks beyond this total are not taken: later allocations are the global allocator's.
const ARENA_CAP: usize = 16 * 1024 * 1024;
/// Each allocation is preceded by its size (a multiple of 8), with [`OWN`] set for one of the
/// global allocator's.
const HEADER: usize = 8;
const OWN: u64 = 1 << 63;

struct Arena {
    chunk: *mut u8,
    used: usize,
    total: usize,
    /// The latest allocation from `chunk`: the only one a free or a growth can act on in place.
    last: *mut u8,
}

// SAFETY: the pointers are only touched with the mutex held, and the memory they point to is
// never handed to another owner.
unsafe impl Send for Arena {}

static ARENA: Mutex<Arena> = Mutex::new(Arena {
    chunk: null_mut(),
    used: CHUNK,
    total: 0,
    last: null_mut(),
});

fn arena() -> std::sync::MutexGuard<'static, Arena> {
    ARENA.lock().unwrap_or_else(|e| e.into_inner())
}

fn round8(n: usize) -> usize {
    (n + 7) & !7
}

/// # Safety
/// `p` must come from [`x_malloc`] or [`x_realloc`] and not have been freed.
unsafe fn header(p: *mut c_void) -> *mut u64 {
    // SAFETY: every allocation starts HEADER bytes after its header (see x_malloc).
    unsafe { (p as *mut u8).sub(HEADER) as *mut u64 }
}

fn own_layout(size: usize) -> Option<Layout> {
    Layout::from_size_align(HEADER + size, 8).ok()
}

/// One of the global allocator's, with its header.
unsafe fn own(size: usize) -> *mut c_void {
    let Some(layout) = own_layout(size) else {
        return null_mut();
    };
    // SAFETY: the layout has a non-zero size.
    let h = unsafe { alloc(layout) };
    if h.is_null() {
        return null_mut();
    }
    // SAFETY: h is valid for HEADER + size bytes and 8-aligned.
    unsafe {
        *(h as *mut u64) = size as u64 | OWN;
        h.add(HEADER) as *mut c_void
    }
}

unsafe extern "C" fn x_malloc(n: c_int) -> *mut c_void {
    if n <= 0 {
        return null_mut();
    }
    let size = round8(n as usize);
    if size <= LARGE {
        let mut a = arena();
        if a.used + HEADER + size > CHUNK && a.total + CHUNK <= ARENA_CAP {
            // SAFETY: a non-zero size and a valid alignment.
            let c = unsafe { alloc(Layout::from_size_align_unchecked(CHUNK, 16)) };
            if !c.is_null() {
                a.chunk = c;
                a.used = 0;
                a.total += CHUNK;
                a.last = null_mut();
            }
        }
        if !a.chunk.is_null() && a.used + HEADER + size <= CHUNK {
            // SAFETY: used + HEADER + size fits in the chunk; chunk is 16-aligned and used and
            // size are multiples of 8, so the header and the allocation are 8-aligned.
            unsafe {
                let h = a.chunk.add(a.used);
                *(h as *mut u64) = size as u64;
                a.used += HEADER + size;
                let p = h.add(HEADER);
                a.last = p;
                return p as *mut c_void;
            }
        }
    }
    // SAFETY: size is non-zero.
    unsafe { own(size) }
}

unsafe extern "C" fn x_free(p: *mut c_void) {
    if p.is_null() {
        return;
    }
    // SAFETY: SQLite frees only what this allocator gave it.
    let h = unsafe { *header(p) };
    let size = (h & !OWN) as usize;
    if h & OWN != 0 {
        if let Some(layout) = own_layout(size) {
            // SAFETY: allocated by `own` with this layout.
            unsafe { dealloc(header(p) as *mut u8, layout) };
        }
        return;
    }
    let mut a = arena();
    if a.last == p as *mut u8 {
        a.used -= HEADER + size;
        a.last = null_mut();
    }
}

unsafe extern "C" fn x_realloc(p: *mut c_void, n: c_int) -> *mut c_void {
    if p.is_null() {
        // SAFETY: forwarding the same contract.
        return unsafe { x_malloc(n) };
    }
    if n <= 0 {
        return null_mut();
    }
    let want = round8(n as usize);
    // SAFETY: p is one of this allocator's.
    let h = unsafe { *header(p) };
    let have = (h & !OWN) as usize;
    if want <= have {
        return p;
    }
    if h & OWN == 0 {
        let mut a = arena();
        if a.last == p as *mut u8 && a.used - have + want <= CHUNK {
            a.used = a.used - have + want;
            // SAFETY: the allocation is the chunk's latest, and the chunk has room for it to grow.
            unsafe { *header(p) = want as u64 };
            return p;
        }
    }
    // SAFETY: a fresh allocation of `want` bytes; `have` bytes of p are valid; both distinct.
    unsafe {
        let q = x_malloc(n);
        if q.is_null() {
            return null_mut();
        }
        std::ptr::copy_nonoverlapping(p as *const u8, q as *mut u8, have);
        x_free(p);
        q
    }
}

unsafe extern "C" fn x_size(p: *mut c_void) -> c_int {
    if p.is_null() {
        return 0;
    }
    // SAFETY: p is one of this allocator's.
    (unsafe { *header(p) } & !OWN) as c_int
}

unsafe extern "C" fn x_roundup(n: c_int) -> c_int {
    round8(n.max(0) as usize) as c_int
}

unsafe extern "C" fn x_init(_: *mut c_void) -> c_int {
    ffi::SQLITE_OK
}

unsafe extern "C" fn x_shutdown(_: *mut c_void) {}

/// Hands SQLite the arena, and turns off its memory statistics (a mutex and bookkeeping on every
/// allocation and free, for `sqlite3_memory_used`, which nothing here reads). Must run before the
/// process's first connection; once SQLite is initialised it refuses both, which is harmless.
pub fn install() {
    let methods = ffi::sqlite3_mem_methods {
        xMalloc: Some(x_malloc),
        xFree: Some(x_free),
        xRealloc: Some(x_realloc),
        xSize: Some(x_size),
        xRoundup: Some(x_roundup),
        xInit: Some(x_init),
        xShutdown: Some(x_shutdown),
        pAppData: null_mut(),
    };
    // SAFETY: both options are set before SQLite is initialised (or refused after it, with no
    // effect); SQLite copies the methods struct; the argument types are the documented ones.
    unsafe {
        ffi::sqlite3_config(ffi::SQLITE_CONFIG_MALLOC, &methods as *const _);
        ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as c_int);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fill(p: *mut c_void, n: usize, byte: u8) {
        unsafe { std::ptr::write_bytes(p as *mut u8, byte, n) };
    }

    fn all(p: *mut c_void, n: usize, byte: u8) -> bool {
        unsafe { std::slice::from_raw_parts(p as *const u8, n) }
            .iter()
            .all(|b| *b == byte)
    }

    #[test]
    fn allocations_are_aligned_sized_and_distinct() {
        unsafe {
            let sizes = [
                1,
                7,
                8,
                9,
                100,
                4096,
                LARGE as c_int,
                LARGE as c_int + 1,
                200_000,
            ];
            let ptrs: Vec<_> = sizes.iter().map(|&n| (x_malloc(n), n as usize)).collect();
            for (i, &(p, n)) in ptrs.iter().enumerate() {
                assert!(!p.is_null());
                assert_eq!(p as usize % 8, 0, "8-byte aligned");
                assert!(x_size(p) as usize >= n);
                fill(p, n, i as u8);
            }
            for (i, &(p, n)) in ptrs.iter().enumerate() {
                assert!(all(p, n, i as u8), "allocation {i} was overwritten");
            }
            for &(p, _) in ptrs.iter().rev() {
                x_free(p);
            }
            assert_eq!(x_malloc(0), null_mut());
        }
    }

    #[test]
    fn realloc_keeps_the_contents_whether_it_grows_in_place_or_moves() {
        unsafe {
            let p = x_malloc(24);
            fill(p, 24, 0xAB);
            // Grows (in place when it is the latest, else moved): the first bytes stay.
            let q = x_realloc(p, 3000);
            assert!(all(q, 24, 0xAB));
            fill(q, 3000, 0xCD);
            let _other = x_malloc(16);
            let r = x_realloc(q, 100_000);
            assert!(all(r, 3000, 0xCD));
            assert!(x_size(r) >= 100_000);
            // Shrinking keeps the allocation.
            assert_eq!(x_realloc(r, 10), r);
            x_free(r);
            assert_eq!(x_roundup(13), 16);
        }
    }
}
