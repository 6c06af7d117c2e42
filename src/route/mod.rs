//! Delegation advice, the part that reads a prompt: task types, the features of a prompt, the
//! shipped classifier, and the dated price table.
//!
//! Owns turning a prompt's text into scores, with no network, no model call, no subprocess and
//! nothing unbounded (the text read is capped, see [`features`]). Must not decide whether to
//! advise (that is `crate::policy::route`, which also weighs quota and history) nor touch the
//! store (`crate::store::routes`).
//!
//! The classifier is a multinomial logistic regression over hashed word, word-pair and
//! character n-gram features plus a few shape features (how much was pasted, and whether it
//! reads like a log, a stack trace or prose). Why this one: it is explainable (each feature has
//! one weight per type), it runs in microseconds, its weights are a constant compiled into the
//! binary (no load step at all), and character n-grams carry it over spelling and wording it was
//! not trained on ("summarize", "summarise", "sumarise"). It is trained offline by
//! `cargo run --example train_route` on `tests/data/route/train.jsonl`, which writes
//! `src/route/weights.bin`.

pub mod features;
pub mod model;
pub mod prices;
pub mod project;

pub use features::Features;
pub use model::Scores;

/// What a prompt asks for. The first five suit Gemini (a large context, web search, images and
/// PDFs); the rest are precise work that stays on Claude.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskType {
    /// Broad reading of the codebase: tours, audits, "find every place that ...".
    Codebase,
    /// Research on the web, "what changed upstream", release notes, advisories.
    Research,
    /// Summarising large inputs: logs, long pasted text, big outputs on disk.
    Summarise,
    /// Images, screenshots, PDFs, diagrams.
    Media,
    /// Looking something up in a library's or tool's documentation.
    Docs,
    /// A precise edit: add, rename, change, write a small piece.
    Edit,
    /// Debugging: a failure, a crash, a stack trace to fix.
    Debug,
    /// Refactoring code.
    Refactor,
    /// Running or writing tests, linters, CI.
    Tests,
    /// A small question about the code at hand.
    Question,
}

impl TaskType {
    /// Every type, in the classifier's class order.
    pub const ALL: [TaskType; 10] = [
        TaskType::Codebase,
        TaskType::Research,
        TaskType::Summarise,
        TaskType::Media,
        TaskType::Docs,
        TaskType::Edit,
        TaskType::Debug,
        TaskType::Refactor,
        TaskType::Tests,
        TaskType::Question,
    ];

    /// The name used in the store, the config and the labelled data.
    pub fn as_str(self) -> &'static str {
        match self {
            TaskType::Codebase => "codebase",
            TaskType::Research => "research",
            TaskType::Summarise => "summarise",
            TaskType::Media => "media",
            TaskType::Docs => "docs",
            TaskType::Edit => "edit",
            TaskType::Debug => "debug",
            TaskType::Refactor => "refactor",
            TaskType::Tests => "tests",
            TaskType::Question => "question",
        }
    }

    /// For people: `broad reading of the codebase`.
    pub fn describe(self) -> &'static str {
        match self {
            TaskType::Codebase => "broad reading of the codebase",
            TaskType::Research => "research on the web",
            TaskType::Summarise => "summarising a large input",
            TaskType::Media => "reading images or PDFs",
            TaskType::Docs => "a documentation lookup",
            TaskType::Edit => "a precise edit",
            TaskType::Debug => "debugging",
            TaskType::Refactor => "refactoring",
            TaskType::Tests => "running or writing tests",
            TaskType::Question => "a small question",
        }
    }

    /// Parses [`TaskType::as_str`].
    pub fn parse(s: &str) -> Option<TaskType> {
        TaskType::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// True for the types Gemini does better: a large context, web search, media.
    pub fn suits_gemini(self) -> bool {
        matches!(
            self,
            TaskType::Codebase
                | TaskType::Research
                | TaskType::Summarise
                | TaskType::Media
                | TaskType::Docs
        )
    }

    /// Why Gemini suits this type, for the note.
    pub fn gemini_strength(self) -> &'static str {
        match self {
            TaskType::Codebase => "its 1M-token context reads the whole tree in one pass",
            TaskType::Research | TaskType::Docs => "it has Google Search built in",
            TaskType::Summarise => "its 1M-token context takes the whole input at once",
            TaskType::Media => "it reads images and PDFs natively",
            _ => "it has quota left",
        }
    }

    /// The class index in the model.
    pub fn index(self) -> usize {
        TaskType::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}
