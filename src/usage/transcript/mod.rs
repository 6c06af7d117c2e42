//! Claude Code transcripts (`projects/**/*.jsonl`, reference §4) as API token usage: a fast,
//! incremental reader.
//!
//! Owns finding transcripts, reading the `message.usage` of assistant lines out of them
//! ([`scan_line`]), remembering how far each file was read ([`FileCursor`], [`read_new`]) so that
//! history is never read twice, and merging the several lines one API response is written as
//! ([`Dedup`]). The counting rules follow ccusage's Rust reader, so totals agree with
//! `ccusage blocks`. Must not write transcripts, and knows nothing of plans, blocks or quota.
//!
//! Speed: a line is never parsed into a JSON tree. Lines are found with a block-wise byte search,
//! a line whose `type` comes first and is not `assistant` is dropped after a few bytes, and an
//! assistant line is skimmed by structure, reading only the few fields usage needs. A full scan
//! runs at close to the speed the files can be read (see `benches/transcripts.rs`).

mod cursor;
mod dedup;
mod line;
mod scan;

pub use cursor::{FileCursor, HEAD_BYTES, read_new};
pub use dedup::{Dedup, Merge, dedup};
pub use line::{Speed, Tokens, UsageEntry, scan_line};
pub use scan::{Scan, Tracker, find_transcripts, scan_all};

/// 64-bit FNV-1a. Stable across releases, so a fingerprint kept in a [`FileCursor`] stays valid.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod fixtures;
