//! Quota sources: what tells the harness how much of a provider's allowance is used.
//!
//! Owns reading usage figures out of files other programs write (today: Claude Code's transcript
//! JSONL, through [`transcript`]). Must not write those files, decide anything about quota (that is
//! a policy's job) or touch the store (the caller persists what it needs).

pub mod transcript;
