//! Claude Code transcripts (reference §4) as API token usage: a fast, incremental reader.
//!
//! Owns finding transcripts ([`find_transcripts`]), reading the `message.usage` of assistant lines
//! out of them ([`scan_line`]), remembering how far each file was read ([`FileCursor`],
//! [`read_new`]) so that history is never read twice, and merging the several lines one API
//! response is written as ([`Dedup`]); [`scan_all`] and [`Tracker`] put these together over many
//! files. Must not write transcripts, and knows nothing of plans, blocks or quota.
//!
//! Speed: a line is never parsed into a JSON tree. Lines are found with a block-wise byte search,
//! a line whose `type` comes first and is not `assistant` is dropped after a few bytes, and an
//! assistant line is skimmed by structure, reading only the few fields usage needs. A full scan
//! runs faster than `cat` of the same files (two threads), an update after an append costs a
//! `stat` per file plus the new bytes (see `benches/transcripts.rs` for the figures).
//!
//! The counting rules follow ccusage's Rust reader, and the token totals equal those of
//! `ccusage blocks` (20.0.24) on the benchmark's history. Where the rules differ, on purpose, on
//! lines that Claude Code does not write:
//! - a line counts only with `type: "assistant"`, a `message.id` and a `requestId`; ccusage also
//!   counts `message.usage` on other lines and on lines without these ids (undeduplicated);
//! - `<synthetic>` and `isApiErrorMessage` lines are skipped; ccusage keeps them (zero usage);
//! - an unknown `speed` is read as none; ccusage drops the line;
//! - `null` is refused in the fields themselves only; ccusage drops a line in which a key of the
//!   same name is `null` anywhere, a tool's input included;
//! - whitespace between JSON tokens is allowed; ccusage finds only a compact `"usage":{`;
//! - only `projects/*/*.jsonl` and `projects/*/<session>/subagents/*.jsonl` are read; ccusage
//!   reads every `.jsonl` under `projects/`;
//! - a last line without its newline waits for the next read (it may be half written); ccusage
//!   counts it if it parses;
//! - values the skimmer steps over are not validated as JSON; ccusage's serde refuses such a line.
//!
//! Older Claude Code versions also wrote a subagent's responses into the main transcript as
//! `type: "progress"` lines (usage under `data.message.message`). They are not counted, as
//! `ccusage blocks` does not count them (`ccusage daily` 20.0.24 does).

mod cursor;
mod dedup;
mod line;
mod scan;

pub use cursor::{FileCursor, HEAD_BYTES, read_new};
pub use dedup::{Dedup, Merge, dedup};
pub use line::{Speed, Tokens, UsageEntry, scan_line};
pub use scan::{FileResult, Scan, Tracker, find_transcripts, read_all, scan_all};

/// 64-bit FNV-1a. Stable across releases, so a fingerprint kept in a [`FileCursor`] stays valid.
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, &b| {
        (hash ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod fixtures;
