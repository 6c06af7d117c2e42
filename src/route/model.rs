//! The shipped classifier: weights compiled into the binary, scored in microseconds.
//!
//! `weights.bin` is written by `cargo run --example train_route` (see there for the training)
//! and read in place with `include_bytes!`: there is no load step, so the model's "load time" is
//! nothing beyond the binary's own start. Layout, little-endian: `AHR1`, buckets (u32), classes
//! (u32), scale (f32), then buckets × classes weights as i8 (weight = byte × scale, bucket-major),
//! then one f32 bias per class.

use super::TaskType;
use super::features::{BUCKETS, Features};

static WEIGHTS: &[u8] = include_bytes!("weights.bin");

/// Bytes before the weights.
const HEADER: usize = 16;

/// The model's view of a prompt: one probability per type, in [`TaskType::ALL`] order.
#[derive(Debug, Clone, PartialEq)]
pub struct Scores {
    pub probs: [f32; 10],
}

impl Scores {
    /// The most likely type.
    pub fn top(&self) -> TaskType {
        let mut best = 0;
        for (i, p) in self.probs.iter().enumerate() {
            if *p > self.probs[best] {
                best = i;
            }
        }
        TaskType::ALL[best]
    }

    /// The probability that the task suits Gemini: the sum over Gemini's types.
    pub fn gemini(&self) -> f32 {
        TaskType::ALL
            .iter()
            .zip(self.probs)
            .filter(|(t, _)| t.suits_gemini())
            .map(|(_, p)| p)
            .sum()
    }

    /// The most likely type among those that suit Gemini (what to hand over).
    pub fn top_gemini(&self) -> TaskType {
        TaskType::ALL
            .into_iter()
            .zip(self.probs)
            .filter(|(t, _)| t.suits_gemini())
            .max_by(|a, b| a.1.total_cmp(&b.1))
            .map_or(TaskType::Codebase, |(t, _)| t)
    }
}

/// A set of weights in the layout above (the shipped one, or one being trained).
pub struct Model<'a> {
    bytes: &'a [u8],
    scale: f32,
}

impl Model<'static> {
    /// The weights compiled into this binary; None if they do not match this build's feature
    /// space (a stale file: then nothing is advised, and the tests say so).
    pub fn shipped() -> Option<Model<'static>> {
        Model::from_bytes(WEIGHTS)
    }
}

impl<'a> Model<'a> {
    /// Checks the header and the length.
    pub fn from_bytes(bytes: &'a [u8]) -> Option<Model<'a>> {
        let word = |i: usize| -> Option<[u8; 4]> { bytes.get(i..i + 4)?.try_into().ok() };
        if bytes.get(..4)? != b"AHR1" {
            return None;
        }
        let buckets = u32::from_le_bytes(word(4)?) as usize;
        let classes = u32::from_le_bytes(word(8)?) as usize;
        let scale = f32::from_le_bytes(word(12)?);
        let n = TaskType::ALL.len();
        if buckets != BUCKETS || classes != n || bytes.len() != HEADER + BUCKETS * n + 4 * n {
            return None;
        }
        Some(Model { bytes, scale })
    }

    fn bias(&self, class: usize) -> f32 {
        let at = HEADER + BUCKETS * TaskType::ALL.len() + 4 * class;
        self.bytes
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0.0, f32::from_le_bytes)
    }

    /// Scores a prompt's features.
    pub fn score(&self, features: &Features) -> Scores {
        let n = TaskType::ALL.len();
        let mut logits = [0f32; 10];
        for (c, l) in logits.iter_mut().enumerate() {
            *l = self.bias(c);
        }
        for (bucket, value) in features.hashed() {
            let row = HEADER + bucket * n;
            if let Some(ws) = self.bytes.get(row..row + n) {
                for (l, w) in logits.iter_mut().zip(ws) {
                    *l += (*w as i8) as f32 * self.scale * value;
                }
            }
        }
        Scores {
            probs: softmax(logits),
        }
    }
}

/// Turns logits into probabilities.
pub fn softmax(logits: [f32; 10]) -> [f32; 10] {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let mut out = logits.map(|l| (l - max).exp());
    let sum: f32 = out.iter().sum();
    for p in &mut out {
        *p /= sum;
    }
    out
}
