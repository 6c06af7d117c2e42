//! `harness quota`: both providers' headroom, each figure marked official or estimated.
//! `harness statusline`: the status line command (the same as `harness-statusline`).

use agent_harness::config::Config;
use agent_harness::quota::{self, Provider, Quota, Window};
use agent_harness::time::{local_clock, now_ms, span};

use crate::{CliResult, Exit, fmt, open_store, say};

#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    command: Option<QuotaCommand>,
    /// One JSON object instead of the panel.
    #[arg(long)]
    json: bool,
    /// Do not read the transcripts first (show what the store has).
    #[arg(long)]
    no_refresh: bool,
}

#[derive(clap::Subcommand)]
enum QuotaCommand {
    /// Forget recorded rate limits (both providers, or one), for example after a limit ended
    /// early.
    Clear {
        /// `claude` or `gemini`; both when left out.
        #[arg(value_parser = ["claude", "gemini"])]
        provider: Option<String>,
    },
}

#[derive(clap::Args)]
pub struct StatuslineArgs {}

pub fn statusline(_args: StatuslineArgs) -> CliResult {
    agent_harness::quota::statusline::run();
    Ok(Exit::Ok)
}

fn window_json(w: &Window) -> serde_json::Value {
    serde_json::json!({
        "window": w.name, "used_pct": w.used_pct, "official": w.official,
        "resets_at": w.resets_at_ms.map(fmt::rfc3339), "detail": w.detail,
        "projected_out": w.projected_out_ms.map(fmt::rfc3339),
    })
}

pub fn json(q: &Quota) -> serde_json::Value {
    let provider = |p: Provider| {
        let pq = q.of(p);
        serde_json::json!({
            "windows": pq.windows.iter().map(window_json).collect::<Vec<_>>(),
            "exhausted": pq.exhausted.as_ref().map(|e| serde_json::json!({
                "until": fmt::rfc3339(e.until_ms), "until_from": e.until_from, "reason": e.reason,
            })),
        })
    };
    serde_json::json!({"claude": provider(Provider::Claude), "gemini": provider(Provider::Gemini)})
}

/// The panel's lines (also part of `harness status`).
pub fn lines(q: &Quota, config: &Config, now: i64) -> Vec<String> {
    let mut out = Vec::new();
    for p in [Provider::Claude, Provider::Gemini] {
        let pq = q.of(p);
        out.push(p.name().to_owned());
        if let Some(e) = &pq.exhausted {
            out.push(format!(
                "  rate-limited until {} (in {}; {}): {}",
                local_clock(e.until_ms),
                span(e.until_ms - now),
                match e.until_from.as_str() {
                    "message" => "as the error said",
                    "statusline" => "the official reset",
                    "block" => "end of the estimated 5-hour block",
                    "pacific-midnight" => "midnight Pacific",
                    _ => "a guess: nothing said when",
                },
                e.reason
            ));
        }
        for w in &pq.windows {
            let mut line = format!("  {}", w.describe(now));
            if let Some(t) = w.projected_out_ms {
                line.push_str(&format!("; at this rate out at {}", local_clock(t)));
            }
            out.push(line);
        }
        if pq.windows.is_empty() && pq.exhausted.is_none() {
            out.push(match p {
                Provider::Claude => {
                    "  no figures yet: official ones come from the status line of a \
                     subscriber's session (harness install sets it); estimates from transcripts \
                     need quota.plan for percentages"
                        .into()
                }
                Provider::Gemini => "  no runs today".into(),
            });
        }
    }
    let cfg = &config.quota;
    out.push(format!(
        "Advice at {:.0}%, blocking {} at {:.0}% (official figures only){}",
        cfg.warn_pct,
        cfg.block_tools.join(", "),
        cfg.block_pct,
        if cfg.enabled {
            ""
        } else {
            " (quota.enabled is false)"
        }
    ));
    out
}

pub fn run(args: Args) -> CliResult {
    let config = crate::config()?;
    let mut store = open_store()?;
    let db = store.path().to_path_buf();
    let now = now_ms();
    if let Some(QuotaCommand::Clear { provider }) = &args.command {
        let providers: Vec<&str> = match provider.as_deref() {
            Some(p) => vec![p],
            None => vec!["claude", "gemini"],
        };
        let cleared = store.write(|tx| {
            let mut n = 0;
            for p in &providers {
                let wrap = |e| agent_harness::error::Error::db("clear a rate limit in", &db, e);
                if agent_harness::store::quota::clear_exhaustion(tx, p, i64::MAX).map_err(wrap)? {
                    n += 1;
                }
                agent_harness::store::quota::rearm(tx, p, "exhausted").map_err(wrap)?;
            }
            Ok(n)
        })?;
        say!(fmt::out(), "Cleared {cleared} recorded rate limit(s).")?;
        return Ok(Exit::Ok);
    }
    let mut note = String::new();
    if !args.no_refresh
        && let Some(dir) = quota::ingest::claude_dir()
    {
        // Read outside the transaction (it may take a while the first time), store in one.
        let refresh = {
            let _progress = crate::progress::Progress::start("reading Claude Code transcripts");
            quota::ingest::read_everything(store.reader()?, &dir)?
        };
        note = format!(
            "read {} transcript(s) under {}, {} changed",
            refresh.files,
            fmt::path(&dir.to_string_lossy()),
            refresh.changed
        );
        let cfg = config.quota.clone();
        store.write(|tx| {
            quota::ingest::store_everything(tx, refresh, &cfg, now)
                .map_err(|e| agent_harness::error::Error::db("store usage in", &db, e))
        })?;
    }
    let q = quota::load(store.reader()?, &config.quota, now)?;
    let mut out = fmt::out();
    if args.json {
        out.json(&json(&q))?;
        return Ok(Exit::Ok);
    }
    say!(
        out,
        "Quota (~ and \"estimated\" mark the harness's estimates)"
    )?;
    if !note.is_empty() {
        say!(out, "({note})")?;
    }
    for line in lines(&q, &config, now) {
        out.line(line)?;
    }
    Ok(Exit::Ok)
}
