//! Deduplication: one API response is written as one line per content block, each carrying the
//! response's usage (reference §4.3), so entries are merged before they are counted.
//!
//! Owns the merge rule, which is ccusage's (`should_replace_deduped_entry` and the lookup around
//! it in its Rust reader; the replay condition as ccusage 20.0.24 behaves, measured against its
//! binary):
//! - entries with the same `(message_id, request_id)` are one response, wherever and whenever
//!   they were written;
//! - a `/btw` replay (ccusage#913) is a sidechain copy of a message under a new request id: an
//!   entry with the `message_id`, `ts_ms` and `session_id` of one already held, one of the two a
//!   sidechain entry, merges with it whatever its request id. The same message id at another
//!   time or in another session is another response;
//! - of two merged entries the main-chain one wins, then the one with more tokens in total (a
//!   streamed response's last line has the full `output_tokens`), then one with `speed` set;
//!   otherwise the first one stays.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use super::fnv1a;
use super::line::{Tokens, UsageEntry};

/// What [`Dedup::push`] did with an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Merge {
    /// A response not seen before.
    Added,
    /// A better line of a response already held; this is the entry it displaced.
    Replaced(UsageEntry),
    /// Another line of a response already held, not better than the one kept.
    Dropped,
}

/// Deduplicated entries, fed one at a time in reading order.
#[derive(Debug, Clone, Default)]
pub struct Dedup {
    entries: Vec<UsageEntry>,
    /// Indexes into `entries` by a hash of `message_id` (compared in full on lookup).
    by_message: HashMap<u64, Slots, BuildHasherDefault<KeyHasher>>,
}

impl Dedup {
    pub fn new() -> Dedup {
        Dedup::default()
    }

    /// Merges one entry into the set.
    pub fn push(&mut self, entry: UsageEntry) -> Merge {
        let key = fnv1a(entry.message_id.as_bytes());
        let held = self.by_message.get(&key).and_then(|slots| {
            let same_message = || {
                slots
                    .as_slice()
                    .iter()
                    .copied()
                    .filter(|&i| self.entries[i].message_id == entry.message_id)
            };
            same_message()
                .find(|&i| self.entries[i].request_id == entry.request_id)
                .or_else(|| same_message().find(|&i| is_replay(&entry, &self.entries[i])))
        });
        match held {
            Some(i) if replaces(&entry, &self.entries[i]) => {
                Merge::Replaced(std::mem::replace(&mut self.entries[i], entry))
            }
            Some(_) => Merge::Dropped,
            None => {
                let index = self.entries.len();
                self.entries.push(entry);
                match self.by_message.get_mut(&key) {
                    Some(slots) => slots.push(index),
                    None => {
                        self.by_message.insert(key, Slots::One(index));
                    }
                }
                Merge::Added
            }
        }
    }

    /// The entries kept, in the order their responses were first seen.
    pub fn entries(&self) -> &[UsageEntry] {
        &self.entries
    }

    pub fn into_entries(self) -> Vec<UsageEntry> {
        self.entries
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The token counts of the entries kept.
    pub fn totals(&self) -> Tokens {
        Tokens::sum(&self.entries)
    }
}

impl Extend<UsageEntry> for Dedup {
    fn extend<I: IntoIterator<Item = UsageEntry>>(&mut self, entries: I) {
        for entry in entries {
            self.push(entry);
        }
    }
}

/// Deduplicates a batch read in order (see the module docs for the rule).
pub fn dedup(entries: impl IntoIterator<Item = UsageEntry>) -> Vec<UsageEntry> {
    let mut set = Dedup::new();
    set.extend(entries);
    set.into_entries()
}

/// Whether `entry` and `held` (same message id, different request ids) are a message and its
/// `/btw` replay.
fn is_replay(entry: &UsageEntry, held: &UsageEntry) -> bool {
    (entry.sidechain || held.sidechain)
        && entry.ts_ms == held.ts_ms
        && entry.session_id == held.session_id
}

/// Whether `candidate` should take the place of `held`, another line of the same response.
fn replaces(candidate: &UsageEntry, held: &UsageEntry) -> bool {
    if candidate.sidechain != held.sidechain {
        return held.sidechain;
    }
    let (new, old) = (candidate.total(), held.total());
    if new != old {
        return new > old;
    }
    candidate.speed.is_some() && held.speed.is_none()
}

/// The entries whose message ids share a hash: nearly always one.
#[derive(Debug, Clone)]
enum Slots {
    One(usize),
    Many(Vec<usize>),
}

impl Slots {
    fn as_slice(&self) -> &[usize] {
        match self {
            Slots::One(i) => std::slice::from_ref(i),
            Slots::Many(v) => v,
        }
    }

    fn push(&mut self, index: usize) {
        match self {
            Slots::One(i) => *self = Slots::Many(vec![*i, index]),
            Slots::Many(v) => v.push(index),
        }
    }
}

/// The map's keys are already hashes; hashing them again would only cost time.
#[derive(Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        self.0 = fnv1a(bytes);
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::transcript::line::Speed;

    /// `(message id, request id, sidechain, output tokens)`; input is always 10.
    type Row = (&'static str, &'static str, bool, u64);

    fn entry(&(message_id, request_id, sidechain, output): &Row) -> UsageEntry {
        UsageEntry {
            ts_ms: 0,
            session_id: "s".into(),
            model: "m".into(),
            message_id: message_id.into(),
            request_id: request_id.into(),
            input_tokens: 10,
            output_tokens: output,
            cache_creation_tokens: 0,
            cache_read_tokens: 0,
            sidechain,
            speed: None,
        }
    }

    #[test]
    fn merges_like_ccusage() {
        let cases: &[(&str, &[Row], &[Row])] = &[
            (
                "one response, one line per content block",
                &[
                    ("m1", "r1", false, 7),
                    ("m1", "r1", false, 7),
                    ("m1", "r1", false, 7),
                ],
                &[("m1", "r1", false, 7)],
            ),
            (
                "a streamed response's last line has the full output",
                &[
                    ("m1", "r1", false, 1),
                    ("m1", "r1", false, 3),
                    ("m1", "r1", false, 90),
                ],
                &[("m1", "r1", false, 90)],
            ),
            (
                "the larger copy stays whatever the order",
                &[("m1", "r1", false, 90), ("m1", "r1", false, 1)],
                &[("m1", "r1", false, 90)],
            ),
            (
                "different responses stay apart",
                &[
                    ("m1", "r1", false, 7),
                    ("m2", "r2", false, 7),
                    ("m1", "r9", false, 7),
                ],
                &[
                    ("m1", "r1", false, 7),
                    ("m2", "r2", false, 7),
                    ("m1", "r9", false, 7),
                ],
            ),
            (
                "the main-chain copy beats a larger sidechain copy",
                &[("m1", "r1", true, 500), ("m1", "r1", false, 7)],
                &[("m1", "r1", false, 7)],
            ),
            (
                "a sidechain copy never displaces the main chain",
                &[("m1", "r1", false, 7), ("m1", "r1", true, 500)],
                &[("m1", "r1", false, 7)],
            ),
            (
                "a /btw replay: same message, new request id, in a sidechain",
                &[("m1", "r1", false, 7), ("m1", "r2", true, 900)],
                &[("m1", "r1", false, 7)],
            ),
            (
                "a main-chain line with a sidechain's message id takes its place",
                &[("m1", "r2", true, 900), ("m1", "r1", false, 7)],
                &[("m1", "r1", false, 7)],
            ),
            (
                "two sidechain copies: the larger",
                &[("m1", "r1", true, 5), ("m1", "r2", true, 50)],
                &[("m1", "r2", true, 50)],
            ),
            (
                "two main-chain lines with one message id but two requests are two responses",
                &[("m1", "r1", false, 5), ("m1", "r2", false, 50)],
                &[("m1", "r1", false, 5), ("m1", "r2", false, 50)],
            ),
        ];
        for (name, input, want) in cases {
            let got = dedup(input.iter().map(entry));
            let want: Vec<UsageEntry> = want.iter().map(entry).collect();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn a_replay_is_a_copy_at_the_same_time_in_the_same_session() {
        let parent = entry(&("m1", "r1", false, 7));
        let replay = entry(&("m1", "r2", true, 900));
        let later = UsageEntry {
            ts_ms: 1,
            ..replay.clone()
        };
        let elsewhere = UsageEntry {
            session_id: "other".into(),
            ..replay.clone()
        };
        assert_eq!(
            dedup([parent.clone(), replay.clone()]),
            vec![parent.clone()]
        );
        assert_eq!(
            dedup([replay.clone(), parent.clone()]),
            vec![parent.clone()]
        );
        assert_eq!(
            dedup([parent.clone(), later.clone()]),
            [parent.clone(), later]
        );
        assert_eq!(
            dedup([parent.clone(), elsewhere.clone()]),
            [parent.clone(), elsewhere]
        );
        // The exact key needs neither: a copy at another time or in another session merges.
        let copy = UsageEntry {
            ts_ms: 5,
            session_id: "other".into(),
            output_tokens: 8,
            ..parent.clone()
        };
        assert_eq!(dedup([parent, copy.clone()]), [copy]);
    }

    #[test]
    fn push_says_what_it_did() {
        let mut set = Dedup::new();
        assert_eq!(set.push(entry(&("m1", "r1", false, 1))), Merge::Added);
        assert_eq!(set.push(entry(&("m1", "r1", false, 1))), Merge::Dropped);
        assert_eq!(
            set.push(entry(&("m1", "r1", false, 5))),
            Merge::Replaced(entry(&("m1", "r1", false, 1)))
        );
        assert_eq!(set.len(), 1);
        assert_eq!(set.totals().output, 5);
    }

    #[test]
    fn on_a_tie_the_copy_with_speed_wins_else_the_first() {
        let plain = entry(&("m1", "r1", false, 7));
        let mut fast = plain.clone();
        fast.speed = Some(Speed::Fast);
        fast.ts_ms = 1;
        assert_eq!(dedup([plain.clone(), fast.clone()]), [fast.clone()]);
        assert_eq!(dedup([fast.clone(), plain.clone()]), [fast.clone()]);
        let mut later = plain.clone();
        later.ts_ms = 99;
        assert_eq!(dedup([plain.clone(), later]), [plain]);
    }

    #[test]
    fn ids_that_share_a_hash_stay_apart() {
        let mut set = Dedup::new();
        set.push(entry(&("msg_a", "r", false, 1)));
        // Make msg_b's hash lead to msg_a's slot, as a collision would.
        set.by_message.insert(fnv1a(b"msg_b"), Slots::One(0));
        assert_eq!(set.push(entry(&("msg_b", "r", false, 2))), Merge::Added);
        assert_eq!(
            set.push(entry(&("msg_b", "r", false, 3))),
            Merge::Replaced(entry(&("msg_b", "r", false, 2)))
        );
        assert_eq!(set.push(entry(&("msg_a", "r", false, 1))), Merge::Dropped);
        assert_eq!(set.by_message[&fnv1a(b"msg_b")].as_slice(), &[0, 1]);
        assert_eq!(set.totals().output, 4);
    }
}
