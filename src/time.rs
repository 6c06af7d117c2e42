//! Time: the clock in one place, and durations and clock times written for people.

use chrono::{Local, TimeZone};

/// Milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A span as `45s`, `3m`, `2h10m`, `3d4h`.
pub fn span(ms: i64) -> String {
    let s = ms.max(0) / 1000;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m", s / 60),
        3600..86400 => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h{m}m", s / 3600),
        },
        _ => match (s % 86400) / 3600 {
            0 => format!("{}d", s / 86400),
            h => format!("{}d{h}h", s / 86400),
        },
    }
}

/// Local clock time `14:32`, with the date when it is not today.
pub fn local_clock(ts_ms: i64) -> String {
    let Some(t) = Local.timestamp_millis_opt(ts_ms).single() else {
        return "?".into();
    };
    if t.date_naive() == Local::now().date_naive() {
        t.format("%H:%M").to_string()
    } else {
        t.format("%Y-%m-%d %H:%M").to_string()
    }
}

/// The midnight in US Pacific time that began `now_ms`'s Pacific day (at or before it). Days are
/// 23 to 25 hours long, so 26 hours before the next midnight is always in the day before.
pub fn last_pacific_midnight(now_ms: i64) -> i64 {
    next_pacific_midnight(next_pacific_midnight(now_ms) - 26 * 3_600_000)
}

/// The next midnight in US Pacific time after `now_ms` (when Gemini's daily quotas reset), as
/// Unix milliseconds. Pacific time is UTC-8, or UTC-7 from the second Sunday of March, 02:00
/// local, to the first Sunday of November, 02:00 local.
pub fn next_pacific_midnight(now_ms: i64) -> i64 {
    use chrono::{Datelike, Duration, NaiveDate, TimeZone, Utc};
    let nth_sunday = |year: i32, month: u32, n: u32| -> NaiveDate {
        let first = NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default();
        let to_sunday = (7 - first.weekday().num_days_from_sunday()) % 7;
        first + Duration::days(i64::from(to_sunday + 7 * (n - 1)))
    };
    let offset_hours = |utc: chrono::DateTime<Utc>| -> i64 {
        let year = utc.year();
        // 02:00 PST = 10:00 UTC; 02:00 PDT = 09:00 UTC.
        let start = nth_sunday(year, 3, 2)
            .and_hms_opt(10, 0, 0)
            .unwrap_or_default();
        let end = nth_sunday(year, 11, 1)
            .and_hms_opt(9, 0, 0)
            .unwrap_or_default();
        let naive = utc.naive_utc();
        if naive >= start && naive < end {
            -7
        } else {
            -8
        }
    };
    let Some(now) = Utc.timestamp_millis_opt(now_ms).single() else {
        return now_ms;
    };
    let local = now.naive_utc() + Duration::hours(offset_hours(now));
    let next_day = local.date() + Duration::days(1);
    let midnight_local = next_day.and_hms_opt(0, 0, 0).unwrap_or_default();
    // The offset in force at that midnight (it may differ from now's across a DST change).
    let guess = midnight_local - Duration::hours(-8);
    let guess_utc = Utc.from_utc_datetime(&guess);
    let midnight_utc = midnight_local - Duration::hours(offset_hours(guess_utc));
    Utc.from_utc_datetime(&midnight_utc).timestamp_millis()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_naturally() {
        assert_eq!(span(0), "0s");
        assert_eq!(span(59_999), "59s");
        assert_eq!(span(60_000), "1m");
        assert_eq!(span(3_600_000), "1h");
        assert_eq!(span(7_800_000), "2h10m");
        assert_eq!(span(90_000_000), "1d1h");
        assert_eq!(span(-5), "0s");
    }

    #[test]
    fn pacific_midnight_follows_daylight_saving() {
        use chrono::{TimeZone, Utc};
        let ms = |y, mo, d, h, mi| {
            Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
                .unwrap()
                .timestamp_millis()
        };
        let cases = [
            // Winter (PST, UTC-8): 20:00 UTC is 12:00 PST; the next midnight is 08:00 UTC.
            (ms(2026, 1, 15, 20, 0), ms(2026, 1, 16, 8, 0)),
            // Summer (PDT, UTC-7).
            (ms(2026, 7, 1, 12, 0), ms(2026, 7, 2, 7, 0)),
            // 06:30 UTC on the 21st is 22:30 PST on the 20th.
            (ms(2026, 11, 21, 6, 30), ms(2026, 11, 21, 8, 0)),
            // 12:00 PST on the 7th of March; midnight of the 8th is still PST (switch at 02:00).
            (ms(2026, 3, 7, 20, 0), ms(2026, 3, 8, 8, 0)),
            // 12:00 PDT on the 8th; midnight of the 9th is PDT.
            (ms(2026, 3, 8, 19, 0), ms(2026, 3, 9, 7, 0)),
        ];
        for (now, want) in cases {
            assert_eq!(next_pacific_midnight(now), want, "from {now}");
        }
        // The day's start, on days of 25 hours (1 November 2026) and 23 (8 March 2026).
        let starts = [
            (ms(2026, 11, 2, 4, 0), ms(2026, 11, 1, 7, 0)),
            (ms(2026, 3, 9, 5, 0), ms(2026, 3, 8, 8, 0)),
            (ms(2026, 1, 16, 8, 0), ms(2026, 1, 16, 8, 0)),
            (ms(2026, 1, 15, 20, 0), ms(2026, 1, 15, 8, 0)),
        ];
        for (now, want) in starts {
            assert_eq!(last_pacific_midnight(now), want, "from {now}");
        }
    }
}
