//! What the classifier sees of a prompt: the instruction (the words the person wrote, bounded),
//! the shape of whatever was pasted under it, and hashed sparse features built from both.
//!
//! Bounded: only the first [`MAX_SCAN_BYTES`] of a prompt are looked at line by line (the rest
//! only counts as pasted length), and only the first [`MAX_INSTRUCTION_CHARS`] of the instruction
//! become words. A 4 MB pasted log costs the same as a 64 KB one.

/// How much of a prompt is read line by line.
pub const MAX_SCAN_BYTES: usize = 64 * 1024;
/// How much of the instruction becomes word features.
pub const MAX_INSTRUCTION_CHARS: usize = 2000;
/// The hashed feature space: a power of two.
pub const BUCKETS: usize = 1 << 13;

/// What was pasted under the instruction reads like this.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Paste {
    None,
    /// Stack frames, `Traceback`, `panicked at`: something to debug.
    Trace,
    /// Timestamped or levelled lines, JSON lines, access logs.
    Log,
    /// Long text that is neither.
    Prose,
}

impl Paste {
    pub fn as_str(self) -> &'static str {
        match self {
            Paste::None => "none",
            Paste::Trace => "stack trace",
            Paste::Log => "log",
            Paste::Prose => "text",
        }
    }
}

/// The features of one prompt.
#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    /// The person's words (bounded), without the pasted block.
    pub instruction: String,
    /// Bytes in the whole prompt.
    pub total_chars: usize,
    /// Characters that look pasted (logs, traces, long text) rather than typed.
    pub pasted_chars: usize,
    /// Lines in the pasted block (of the scanned part).
    pub pasted_lines: usize,
    /// What the pasted block reads like.
    pub paste: Paste,
    /// File names with an image or PDF extension.
    pub media_refs: usize,
    /// File names or paths of source files, and `line 42` / `:42` references.
    pub code_refs: usize,
    /// `http(s)://` links.
    pub urls: usize,
}

fn is_trace_line(l: &str) -> bool {
    let t = l.trim_start();
    t.starts_with("at ")
        || t.starts_with("File \"")
        || t.starts_with("Traceback")
        || t.starts_with("stack backtrace")
        || t.starts_with("thread '")
        || t.starts_with("Caused by")
        || (t.len() > 3 && t.as_bytes()[0].is_ascii_digit() && t.contains(": ") && t.contains("::"))
}

fn is_log_line(l: &str) -> bool {
    let t = l.trim_start();
    let b = t.as_bytes();
    let stamped = b.len() > 10 && b[..4].iter().all(u8::is_ascii_digit) && b[4] == b'-';
    let ip = b.len() > 7
        && b[0].is_ascii_digit()
        && t.split('.').take(4).count() == 4
        && t.contains(" - ");
    stamped
        || ip
        || (t.starts_with('{') && t.contains("\":"))
        || [
            " INFO ", " WARN ", " ERROR ", " DEBUG ", "[INFO]", "[ERROR]", "level=",
        ]
        .iter()
        .any(|k| t.contains(k))
}

fn looks_pasted(l: &str) -> bool {
    is_trace_line(l) || is_log_line(l) || l.starts_with('\t') || l.starts_with("  ")
}

const MEDIA_EXT: &[&str] = &[
    "png", "jpg", "jpeg", "gif", "webp", "svg", "pdf", "heic", "bmp",
];
const CODE_EXT: &[&str] = &[
    "rs", "py", "ts", "tsx", "js", "jsx", "go", "java", "kt", "rb", "c", "h", "cpp", "cs", "vue",
    "sql", "sh", "toml", "yaml", "yml", "json", "html", "css", "md", "txt", "xml",
];

impl Features {
    /// Reads a prompt. Never fails; bounded (see the module docs).
    pub fn of(prompt: &str) -> Features {
        let total_chars = prompt.len();
        let scan = crate::text::head(prompt, MAX_SCAN_BYTES);
        let mut instruction = String::new();
        let mut pasted_chars = 0usize;
        let mut pasted_lines = 0usize;
        let (mut traces, mut logs) = (0usize, 0usize);
        let mut in_paste = false;
        for (i, line) in scan.lines().enumerate() {
            // The instruction is what comes before the first pasted-looking line; a long single
            // line after the first is pasted prose.
            if !in_paste && i > 0 && (looks_pasted(line) || line.len() > 400) {
                in_paste = true;
            }
            if in_paste {
                pasted_lines += 1;
                pasted_chars += line.len() + 1;
                traces += is_trace_line(line) as usize;
                logs += is_log_line(line) as usize;
            } else if instruction.len() < MAX_INSTRUCTION_CHARS {
                // A very long line is an instruction followed by pasted prose: its first 400
                // bytes are the instruction.
                let mut room = MAX_INSTRUCTION_CHARS - instruction.len();
                if line.len() > 600 {
                    pasted_chars += line.len() - 400;
                    room = room.min(400);
                }
                let cut = crate::text::head(line, room);
                instruction.push_str(cut);
                instruction.push('\n');
            }
        }
        // Past the scanned part, everything counts as pasted.
        pasted_chars += prompt.len().saturating_sub(MAX_SCAN_BYTES);
        let paste = if pasted_chars < 200 {
            Paste::None
        } else if traces * 4 >= pasted_lines.max(1) && traces >= 2 {
            Paste::Trace
        } else if logs * 2 >= pasted_lines.max(1) && logs >= 2 {
            Paste::Log
        } else {
            Paste::Prose
        };
        let lower = instruction.to_lowercase();
        let (mut media_refs, mut code_refs, mut urls) = (0, 0, 0);
        for w in lower.split(|c: char| c.is_whitespace() || c == '(' || c == ')' || c == ',') {
            let w = w.trim_matches(|c: char| matches!(c, '`' | '"' | '\'' | '?' | '!' | ';'));
            let w = w.trim_end_matches([':', '.']);
            if w.starts_with("http://") || w.starts_with("https://") {
                urls += 1;
                continue;
            }
            if let Some((stem, ext)) = w.rsplit_once('.')
                && !stem.is_empty()
            {
                let ext = ext.trim_end_matches(|c: char| c.is_ascii_digit() || c == ':');
                if MEDIA_EXT.contains(&ext) || ext == "*png" {
                    media_refs += 1;
                } else if CODE_EXT.contains(&ext) {
                    code_refs += 1;
                }
            }
        }
        code_refs += lower.matches("line ").count().min(4);
        Features {
            instruction,
            total_chars,
            pasted_chars,
            pasted_lines,
            paste,
            media_refs,
            code_refs,
            urls,
        }
    }

    /// The sparse feature vector: (bucket, value) pairs, L2-normalised, duplicates summed.
    pub fn hashed(&self) -> Vec<(usize, f32)> {
        let mut keys: Vec<(u32, f32)> = Vec::with_capacity(256);
        let mut push = |key: &str, weight: f32| keys.push((fnv1a(key.as_bytes()), weight));
        let lower = self.instruction.to_lowercase();
        let words: Vec<&str> = lower
            .split(|c: char| !(c.is_alphanumeric() || c == '_'))
            .filter(|w| !w.is_empty())
            .collect();
        let mut buf = String::with_capacity(64);
        for (i, w) in words.iter().enumerate() {
            buf.clear();
            buf.push_str("w:");
            buf.push_str(w);
            push(&buf, 1.0);
            if let Some(next) = words.get(i + 1) {
                buf.clear();
                buf.push_str("b:");
                buf.push_str(w);
                buf.push(' ');
                buf.push_str(next);
                push(&buf, 0.7);
            }
            // Character n-grams of the bounded word carry the model over spellings and
            // inflections it has not seen. 3 to 5 characters: the 5-grams cut 5-fold CV
            // false positives 17 -> 12 and misses 14 -> 12 on 846 labelled prompts.
            let padded: Vec<char> = std::iter::once('<')
                .chain(w.chars().take(24))
                .chain(std::iter::once('>'))
                .collect();
            for n in [3usize, 4, 5] {
                for g in padded.windows(n) {
                    buf.clear();
                    buf.push_str("c:");
                    buf.extend(g.iter());
                    push(&buf, 0.35);
                }
            }
        }
        let paste = match self.paste {
            Paste::None => "s:paste-none",
            Paste::Trace => "s:paste-trace",
            Paste::Log => "s:paste-log",
            Paste::Prose => "s:paste-prose",
        };
        push(paste, 2.0);
        let size = match self.pasted_chars {
            0..200 => "s:size-0",
            200..2_000 => "s:size-1",
            2_000..20_000 => "s:size-2",
            _ => "s:size-3",
        };
        push(size, 1.5);
        if self.media_refs > 0 {
            push("s:media-ref", 2.0);
        }
        if self.code_refs > 0 {
            push("s:code-ref", 1.5);
        }
        if self.urls > 0 {
            push("s:url", 1.5);
        }
        let short = match words.len() {
            0..4 => "s:words-few",
            4..12 => "s:words-some",
            _ => "s:words-many",
        };
        push(short, 1.0);
        push("s:bias", 1.0);

        let mut out: Vec<(usize, f32)> = keys
            .into_iter()
            .map(|(h, v)| (h as usize & (BUCKETS - 1), v))
            .collect();
        out.sort_unstable_by_key(|(b, _)| *b);
        out.dedup_by(|later, kept| {
            if later.0 == kept.0 {
                kept.1 += later.1;
                true
            } else {
                false
            }
        });
        let norm = out.iter().map(|(_, v)| v * v).sum::<f32>().sqrt().max(1e-6);
        for (_, v) in &mut out {
            *v /= norm;
        }
        out
    }
}

/// FNV-1a, 32 bits: stable across builds and platforms (the weights depend on it).
fn fnv1a(bytes: &[u8]) -> u32 {
    let mut h: u32 = 0x811c_9dc5;
    for b in bytes {
        h ^= *b as u32;
        h = h.wrapping_mul(0x0100_0193);
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pasted_log_is_apart_from_the_instruction() {
        let p = "read these logs please\n2026-11-01 10:00:00 INFO [api] ok\n2026-11-01 10:00:01 ERROR [api] boom\n2026-11-01 10:00:02 INFO [api] ok";
        let f = Features::of(p);
        assert_eq!(f.instruction.trim(), "read these logs please");
        assert_eq!(f.pasted_lines, 3);
    }

    #[test]
    fn a_stack_trace_is_a_trace_and_media_files_are_counted() {
        let trace = "fix this\nTraceback (most recent call last):\n".to_string()
            + &"  File \"a.py\", line 1, in f\n    x()\n".repeat(20);
        assert_eq!(Features::of(&trace).paste, Paste::Trace);
        assert_eq!(Features::of("look at shot.png and doc.pdf").media_refs, 2);
        assert_eq!(Features::of("edit src/main.rs").code_refs, 1);
    }

    #[test]
    fn a_huge_prompt_is_read_within_the_bound() {
        let p = "summarise\n".to_string() + &"2026-11-01 10:00:00 INFO x\n".repeat(200_000);
        let f = Features::of(&p);
        assert!(f.pasted_chars > 4_000_000);
        assert!(f.hashed().len() < 200);
    }
}
