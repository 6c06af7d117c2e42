//! The price table behind "this cost $0.45 on Claude; about $0.12 on Gemini": list prices in US
//! dollars per million tokens, as the providers published them on [`PRICES_DATE`].
//!
//! Owns only the numbers and the arithmetic. Update the table and the date together; a
//! subscription's real cost differs (this is what the same tokens would cost through the API).

/// When the table was last checked against the providers' pricing pages
/// (anthropic.com/pricing, ai.google.dev/gemini-api/docs/pricing).
pub const PRICES_DATE: &str = "2026-12-01";

/// One model family's prices, USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Price {
    /// A model id containing this is priced here (first match wins).
    pub matches: &'static str,
    pub input: f64,
    pub output: f64,
    /// Writing the prompt cache (Claude: 5-minute cache, 1.25× input).
    pub cache_write: f64,
    /// Reading the prompt cache.
    pub cache_read: f64,
}

/// Claude's models, the most specific names first. An unknown model is priced as Sonnet.
pub const CLAUDE: &[Price] = &[
    Price {
        matches: "opus-4-1",
        input: 15.0,
        output: 75.0,
        cache_write: 18.75,
        cache_read: 1.50,
    },
    Price {
        matches: "opus-4-0",
        input: 15.0,
        output: 75.0,
        cache_write: 18.75,
        cache_read: 1.50,
    },
    Price {
        matches: "opus",
        input: 5.0,
        output: 25.0,
        cache_write: 6.25,
        cache_read: 0.50,
    },
    Price {
        matches: "haiku",
        input: 1.0,
        output: 5.0,
        cache_write: 1.25,
        cache_read: 0.10,
    },
    Price {
        matches: "sonnet",
        input: 3.0,
        output: 15.0,
        cache_write: 3.75,
        cache_read: 0.30,
    },
];

/// Gemini's models: the estimate for a delegated run uses [`GEMINI_DEFAULT`] (Gemini CLI's
/// default Pro model, prompts up to 200k tokens).
pub const GEMINI: &[Price] = &[
    Price {
        matches: "flash-lite",
        input: 0.10,
        output: 0.40,
        cache_write: 0.10,
        cache_read: 0.025,
    },
    Price {
        matches: "flash",
        input: 0.30,
        output: 2.50,
        cache_write: 0.30,
        cache_read: 0.075,
    },
    Price {
        matches: "pro",
        input: 1.25,
        output: 10.0,
        cache_write: 1.25,
        cache_read: 0.31,
    },
];

/// The Gemini model a delegated run is priced as.
pub const GEMINI_DEFAULT: &str = "gemini-2.5-pro";

/// Token counts of one turn or run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_write: u64,
    pub cache_read: u64,
}

fn find(table: &'static [Price], model: &str, fallback: usize) -> &'static Price {
    let model = model.to_ascii_lowercase();
    table
        .iter()
        .find(|p| model.contains(p.matches))
        .unwrap_or(&table[fallback])
}

fn cost(p: &Price, t: Tokens) -> f64 {
    (t.input as f64 * p.input
        + t.output as f64 * p.output
        + t.cache_write as f64 * p.cache_write
        + t.cache_read as f64 * p.cache_read)
        / 1_000_000.0
}

/// What `tokens` cost on the Claude `model` (an unknown or missing model: Sonnet).
pub fn claude_cost(model: Option<&str>, tokens: Tokens) -> f64 {
    cost(
        find(CLAUDE, model.unwrap_or("sonnet"), CLAUDE.len() - 1),
        tokens,
    )
}

/// About what the same work would cost on Gemini's default model. Gemini CLI's context caching
/// differs from Claude's, so cached tokens count as cache reads there too.
pub fn gemini_cost(tokens: Tokens) -> f64 {
    cost(find(GEMINI, GEMINI_DEFAULT, GEMINI.len() - 1), tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_million_input_tokens_cost_the_list_price() {
        let t = Tokens {
            input: 1_000_000,
            ..Tokens::default()
        };
        assert_eq!(claude_cost(Some("claude-sonnet-4-5"), t), 3.0);
        assert_eq!(claude_cost(Some("claude-opus-4-8"), t), 5.0);
        assert_eq!(claude_cost(None, t), 3.0);
        assert_eq!(gemini_cost(t), 1.25);
    }
}
