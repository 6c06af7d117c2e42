//! Quota: advice before the limit, blocking costly tools at it, and stopping when both providers
//! are out.
//!
//! - At `warn_pct` of a provider's tighter window (or when it is rate-limited), the next prompt
//!   gets a short note: which provider, how much is left, when it resets, what to hand to Gemini.
//!   Once per episode per reset window (`AlertKey`); the driver re-arms a window when fresh data
//!   shows it recovered.
//! - At `block_pct` of an official Claude figure, the tools in `block_tools` (subagent spawns)
//!   are denied with the alternative. Estimates never block.
//! - When both providers are rate-limited (an actual 429 or quota error from each), the prompt is
//!   blocked with both reset times, and nothing else happens.

use crate::config::QuotaConfig;
use crate::decision::Decision;
use crate::quota::{Provider, Quota, Window};
use crate::store::quota::AlertKey;
use crate::time::{local_clock, span};

/// The answer to a prompt, and the warnings it gives (to remember).
#[derive(Debug, Clone, PartialEq)]
pub struct PromptVerdict {
    pub decision: Decision,
    pub fire: Vec<AlertKey>,
}

fn when(ms: i64, now_ms: i64) -> String {
    format!("{} (in {})", local_clock(ms), span(ms - now_ms))
}

fn day_bucket(now_ms: i64) -> i64 {
    now_ms - now_ms.rem_euclid(86_400_000) + 86_400_000
}

/// The episode a window's warning belongs to: its reset, or today for a rolling window.
fn key(w: &Window, level: &str, now_ms: i64) -> AlertKey {
    (
        w.provider.as_str().to_owned(),
        w.name.to_owned(),
        level.to_owned(),
        w.resets_at_ms.unwrap_or_else(|| day_bucket(now_ms)),
    )
}

fn gemini_headroom(q: &Quota, now_ms: i64) -> String {
    match (&q.gemini.exhausted, q.gemini.tightest()) {
        (Some(e), _) => format!(" Gemini is out too until {}.", when(e.until_ms, now_ms)),
        (None, Some(w)) => format!(" Gemini: {}.", w.describe(now_ms)),
        (None, None) => String::new(),
    }
}

/// Before a prompt goes to the model.
pub fn on_prompt(q: &Quota, fired: &[AlertKey], cfg: &QuotaConfig, now_ms: i64) -> PromptVerdict {
    let pass = PromptVerdict {
        decision: Decision::Pass,
        fire: Vec::new(),
    };
    if !cfg.enabled {
        return pass;
    }
    if let (Some(c), Some(g)) = (&q.claude.exhausted, &q.gemini.exhausted) {
        // Blocked once per episode: the same prompt sent again goes through (with this note), so
        // a limit that ended early, or figures that are wrong, never lock anyone out.
        let k: AlertKey = (
            "both".into(),
            "exhausted".into(),
            "block".into(),
            c.until_ms.min(g.until_ms),
        );
        let resets = format!(
            "Claude resets at {}; Gemini at {}",
            when(c.until_ms, now_ms),
            when(g.until_ms, now_ms)
        );
        if fired.contains(&k) {
            return PromptVerdict {
                decision: Decision::Context(format!(
                    "agent-harness quota: both Claude and Gemini reported rate limits ({resets}). \
                     The user sent this prompt again, so it goes through."
                )),
                fire: Vec::new(),
            };
        }
        return PromptVerdict {
            decision: Decision::Block(format!(
                "agent-harness: both Claude and Gemini are out of quota. {resets}. Stopping \
                 here: nothing was sent. Try again after the first reset (or send the prompt \
                 again to try anyway; `harness quota clear` forgets both limits)."
            )),
            fire: vec![k],
        };
    }
    let mut notes = Vec::new();
    let mut fire = Vec::new();
    for p in [Provider::Claude, Provider::Gemini] {
        let pq = q.of(p);
        if let Some(e) = &pq.exhausted {
            let k: AlertKey = (
                p.as_str().into(),
                "exhausted".into(),
                "exhausted".into(),
                e.until_ms,
            );
            if !fired.contains(&k) {
                notes.push(match p {
                    Provider::Claude => format!(
                        "agent-harness quota: Claude is rate-limited until {} ({}). Hand work \
                         that cannot wait to Gemini with /delegate-gemini <task>.",
                        when(e.until_ms, now_ms),
                        e.reason
                    ),
                    Provider::Gemini => format!(
                        "agent-harness quota: Gemini's quota is exhausted until {}; \
                         /delegate-gemini will fail until then.",
                        when(e.until_ms, now_ms)
                    ),
                });
                fire.push(k);
            }
            continue;
        }
        let Some(w) = pq.tightest() else { continue };
        let Some(pct) = w.used_pct else { continue };
        if pct < cfg.warn_pct {
            continue;
        }
        let level = if pct >= cfg.block_pct && w.official {
            "block"
        } else {
            "warn"
        };
        let k = key(w, level, now_ms);
        if fired.contains(&k) {
            continue;
        }
        let projected = w
            .projected_out_ms
            .map(|t| format!(" At this rate it runs out at {}.", when(t, now_ms)))
            .unwrap_or_default();
        notes.push(match p {
            Provider::Claude => format!(
                "agent-harness quota: Claude {}.{projected} To save it, hand broad reading, \
                 research or big-context work to Gemini with /delegate-gemini <task>.{}",
                w.describe(now_ms),
                gemini_headroom(q, now_ms)
            ),
            Provider::Gemini => format!(
                "agent-harness quota: Gemini {}. Keep /delegate-gemini for what needs it.",
                w.describe(now_ms)
            ),
        });
        fire.push(k);
    }
    if notes.is_empty() {
        return pass;
    }
    PromptVerdict {
        decision: Decision::Context(notes.join("\n")),
        fire,
    }
}

/// Before a tool call: deny the costly tools when Claude's official figure (or an actual rate
/// limit) says the window is nearly spent.
pub fn on_tool(tool: &str, q: &Quota, cfg: &QuotaConfig, now_ms: i64) -> Decision {
    if !cfg.enabled || !cfg.block_tools.iter().any(|t| t == tool) {
        return Decision::Pass;
    }
    let reason = if let Some(e) = &q.claude.exhausted {
        format!("Claude is rate-limited until {}", when(e.until_ms, now_ms))
    } else {
        let hot = q
            .claude
            .windows
            .iter()
            .filter(|w| w.official && w.used_pct.is_some_and(|p| p >= cfg.block_pct))
            .max_by(|a, b| {
                a.used_pct
                    .partial_cmp(&b.used_pct)
                    .unwrap_or(std::cmp::Ordering::Equal)
            });
        match hot {
            Some(w) => format!("Claude {}", w.describe(now_ms)),
            None => return Decision::Pass,
        }
    };
    Decision::Deny(format!(
        "agent-harness quota: {reason}. A {tool} call now would spend what is left. Do the work \
         directly in small steps, or hand it to Gemini with /delegate-gemini <task>."
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::quota::{Exhausted, ProviderQuota};

    const NOW: i64 = 1_800_000_000_000;

    fn window(p: Provider, name: &'static str, pct: f64, official: bool) -> Window {
        Window {
            provider: p,
            name,
            used_pct: Some(pct),
            resets_at_ms: Some(NOW + 7_800_000),
            official,
            detail: (!official).then(|| "x of y".into()),
            projected_out_ms: None,
        }
    }

    fn quota(claude: Vec<Window>, gemini: Vec<Window>) -> Quota {
        Quota {
            claude: ProviderQuota {
                windows: claude,
                exhausted: None,
            },
            gemini: ProviderQuota {
                windows: gemini,
                exhausted: None,
            },
        }
    }

    fn out(until: i64) -> Option<Exhausted> {
        Some(Exhausted {
            since_ms: NOW - 1000,
            until_ms: until,
            until_from: "message".into(),
            reason: "a 429".into(),
        })
    }

    fn cfg() -> QuotaConfig {
        QuotaConfig::default()
    }

    #[test]
    fn below_the_warning_nothing_is_said() {
        let q = quota(
            vec![window(Provider::Claude, "five_hour", 79.0, true)],
            vec![],
        );
        assert_eq!(on_prompt(&q, &[], &cfg(), NOW).decision, Decision::Pass);
    }

    #[test]
    fn a_warning_names_the_provider_the_figure_the_reset_and_the_way_out_once() {
        let q = quota(
            vec![
                window(Provider::Claude, "five_hour", 84.0, true),
                window(Provider::Claude, "seven_day", 40.0, true),
            ],
            vec![window(Provider::Gemini, "day", 12.0, false)],
        );
        let v = on_prompt(&q, &[], &cfg(), NOW);
        let Decision::Context(text) = &v.decision else {
            panic!("{v:?}")
        };
        for part in [
            "Claude 5h 84% (official, resets",
            "in 2h10m",
            "/delegate-gemini",
            "Gemini: today 12%",
            "estimated",
        ] {
            assert!(text.contains(part), "{part:?} missing: {text}");
        }
        assert_eq!(v.fire.len(), 1);
        // The same episode does not warn twice.
        assert_eq!(on_prompt(&q, &v.fire, &cfg(), NOW).decision, Decision::Pass);
        // A new reset window is a new episode.
        let mut later = q.clone();
        later.claude.windows[0].resets_at_ms = Some(NOW + 20_000_000);
        assert!(matches!(
            on_prompt(&later, &v.fire, &cfg(), NOW).decision,
            Decision::Context(_)
        ));
    }

    #[test]
    fn estimates_advise_and_say_so() {
        let q = quota(
            vec![window(Provider::Claude, "five_hour", 99.0, false)],
            vec![],
        );
        let v = on_prompt(&q, &[], &cfg(), NOW);
        let Decision::Context(text) = &v.decision else {
            panic!()
        };
        assert!(text.contains("estimated"), "{text}");
        assert_eq!(
            v.fire[0].2, "warn",
            "an estimate never reaches the block level"
        );
        assert_eq!(on_tool("Agent", &q, &cfg(), NOW), Decision::Pass);
    }

    #[test]
    fn an_official_figure_at_the_block_level_denies_subagents_only() {
        let q = quota(
            vec![window(Provider::Claude, "five_hour", 96.0, true)],
            vec![],
        );
        let Decision::Deny(reason) = on_tool("Agent", &q, &cfg(), NOW) else {
            panic!()
        };
        assert!(reason.contains("Claude 5h 96% (official"), "{reason}");
        assert!(reason.contains("/delegate-gemini"), "{reason}");
        assert_eq!(on_tool("Edit", &q, &cfg(), NOW), Decision::Pass);
        let off = QuotaConfig {
            enabled: false,
            ..cfg()
        };
        assert_eq!(on_tool("Agent", &q, &off, NOW), Decision::Pass);
    }

    #[test]
    fn a_rate_limited_provider_is_announced_and_both_out_blocks_the_prompt() {
        let mut q = quota(vec![], vec![]);
        q.claude.exhausted = out(NOW + 3_600_000);
        let v = on_prompt(&q, &[], &cfg(), NOW);
        let Decision::Context(text) = &v.decision else {
            panic!()
        };
        assert!(text.contains("Claude is rate-limited until"), "{text}");
        assert!(matches!(
            on_tool("Agent", &q, &cfg(), NOW),
            Decision::Deny(_)
        ));

        q.gemini.exhausted = out(NOW + 18_000_000);
        let v = on_prompt(&q, &[], &cfg(), NOW);
        let Decision::Block(reason) = &v.decision else {
            panic!("{v:?}")
        };
        assert!(
            reason.contains("both Claude and Gemini are out of quota"),
            "{reason}"
        );
        assert!(
            reason.contains("(in 1h)") && reason.contains("(in 5h)"),
            "{reason}"
        );
        // Sent again: it goes through; being blocked once is enough.
        let again = on_prompt(&q, &v.fire, &cfg(), NOW);
        assert!(matches!(again.decision, Decision::Context(_)), "{again:?}");
    }
}
