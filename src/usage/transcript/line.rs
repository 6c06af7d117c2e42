//! One transcript line in, one [`UsageEntry`] out, without building a JSON tree.
//!
//! Owns the byte-level reading of a line: a skimmer that walks the top-level object and
//! `message`, steps over every other value by structure (strings by their closing quote, objects
//! and arrays by depth), and reads exactly the handful of fields that usage needs. Text inside
//! strings is never looked at, so a prompt or tool result that quotes `"usage":{...}` or
//! `"type":"assistant"` cannot be mistaken for the real fields. Values it skips are not validated
//! as JSON: Claude Code writes valid JSON, and a broken line fails on the structure it breaks.

/// The API's `message.usage.speed`: fast mode is priced differently.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Speed {
    Standard,
    Fast,
}

/// One API response's token usage, as one transcript line reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UsageEntry {
    /// The line's `timestamp`, milliseconds since the Unix epoch.
    pub ts_ms: i64,
    /// The line's `sessionId`; empty when the line has none.
    pub session_id: String,
    /// `message.model`, the API model id (no `[1m]` suffix); empty when the line has none.
    pub model: String,
    /// `message.id`, the API's `msg_…` id.
    pub message_id: String,
    /// `requestId`, from the API's `request-id` header.
    pub request_id: String,
    /// `message.usage.input_tokens`.
    pub input_tokens: u64,
    /// `message.usage.output_tokens`. Partial on the non-final lines of a streamed response.
    pub output_tokens: u64,
    /// Cache writes: `ephemeral_5m_input_tokens + ephemeral_1h_input_tokens` of
    /// `message.usage.cache_creation` when that object is present, else
    /// `cache_creation_input_tokens` (ccusage counts it the same way).
    pub cache_creation_tokens: u64,
    /// `message.usage.cache_read_input_tokens`.
    pub cache_read_tokens: u64,
    /// `isSidechain`: a subagent's (or `/btw`'s) message rather than the main conversation's.
    pub sidechain: bool,
    /// `message.usage.speed`; `None` when absent or a value this version does not know.
    pub speed: Option<Speed>,
}

impl UsageEntry {
    /// Input, output, cache-write and cache-read tokens together.
    pub fn total(&self) -> u64 {
        self.tokens().total()
    }

    /// The four token counts.
    pub fn tokens(&self) -> Tokens {
        Tokens {
            input: self.input_tokens,
            output: self.output_tokens,
            cache_creation: self.cache_creation_tokens,
            cache_read: self.cache_read_tokens,
        }
    }
}

/// Token counts summed over entries.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tokens {
    pub input: u64,
    pub output: u64,
    pub cache_creation: u64,
    pub cache_read: u64,
}

impl Tokens {
    /// All four together.
    pub fn total(&self) -> u64 {
        self.input
            .saturating_add(self.output)
            .saturating_add(self.cache_creation)
            .saturating_add(self.cache_read)
    }

    /// The sum over `entries`.
    pub fn sum<'a>(entries: impl IntoIterator<Item = &'a UsageEntry>) -> Tokens {
        entries.into_iter().fold(Tokens::default(), |t, e| Tokens {
            input: t.input.saturating_add(e.input_tokens),
            output: t.output.saturating_add(e.output_tokens),
            cache_creation: t.cache_creation.saturating_add(e.cache_creation_tokens),
            cache_read: t.cache_read.saturating_add(e.cache_read_tokens),
        })
    }
}

/// The usage of one transcript line (without its `\n`), or `None` when the line does not count.
///
/// A line counts when it is a JSON object with `type: "assistant"` and a `message.usage` holding
/// integer `input_tokens` and `output_tokens`, a non-empty `message.id` and `requestId`, and a
/// `timestamp` in Claude Code's ISO-8601 form. It does not count when it is an API error
/// (`isApiErrorMessage`, model `<synthetic>`), or when ccusage would drop it too: `version` not
/// starting with `N.N.N`, an empty `sessionId` or `model`, or `null` in one of the fields ccusage
/// refuses null in (`id`, `model`, `requestId`, `sessionId`, `version`, `cwd`, `costUSD`,
/// `isApiErrorMessage`, `speed`, the two cache counts).
pub fn scan_line(line: &[u8]) -> Option<UsageEntry> {
    let mut s = Skim { b: line, i: 0 };
    let mut top = Top::default();
    s.object(|s, key| {
        match key {
            b"type" => {
                let v = s.string()?;
                if s.raw(v) != b"assistant" {
                    return None;
                }
                top.assistant = true;
            }
            b"message" => top.message = Some(s.message()?),
            b"requestId" => top.request_id = Some(s.string_not_null()?),
            b"timestamp" => top.timestamp = Some(s.string()?),
            b"sessionId" => top.session_id = Some(s.string_not_null()?),
            b"version" => top.version = Some(s.string_not_null()?),
            b"isSidechain" => top.sidechain = s.bool_or_null()?.unwrap_or(false),
            // An API error line (a 429 and the like) carries zero usage and is not a response.
            b"isApiErrorMessage" => {
                if s.bool_or_null()? != Some(false) {
                    return None;
                }
            }
            b"costUSD" => s.number()?,
            b"cwd" => {
                s.not_null()?;
                s.skip_value()?;
            }
            _ => s.skip_value()?,
        }
        Some(())
    })?;
    s.ws();
    if s.i != line.len() || !top.assistant {
        return None;
    }
    let message = top.message?;
    let usage = message.usage?;
    let (input_tokens, output_tokens) = (usage.input?, usage.output?);
    if let Some(model) = message.model
        && matches!(s.raw(model), b"" | b"<synthetic>")
    {
        return None;
    }
    if let Some(version) = top.version
        && !is_semver_prefix(s.raw(version))
    {
        return None;
    }
    let ts_ms = parse_timestamp(s.raw(top.timestamp?))?;
    let message_id = s.text(message.id?).filter(|t| !t.is_empty())?;
    let request_id = s.text(top.request_id?).filter(|t| !t.is_empty())?;
    let session_id = match top.session_id {
        Some(raw) => s.text(raw).filter(|t| !t.is_empty())?,
        None => String::new(),
    };
    let model = match message.model {
        Some(raw) => s.text(raw)?,
        None => String::new(),
    };
    Some(UsageEntry {
        ts_ms,
        session_id,
        model,
        message_id,
        request_id,
        input_tokens,
        output_tokens,
        cache_creation_tokens: usage
            .cache_creation_split
            .unwrap_or(usage.cache_creation_input),
        cache_read_tokens: usage.cache_read,
        sidechain: top.sidechain,
        speed: usage.speed,
    })
}

/// The top-level fields read, as positions in the line.
#[derive(Default)]
struct Top {
    assistant: bool,
    message: Option<Message>,
    request_id: Option<Raw>,
    timestamp: Option<Raw>,
    session_id: Option<Raw>,
    version: Option<Raw>,
    sidechain: bool,
}

#[derive(Default)]
struct Message {
    id: Option<Raw>,
    model: Option<Raw>,
    usage: Option<Usage>,
}

#[derive(Default)]
struct Usage {
    input: Option<u64>,
    output: Option<u64>,
    cache_creation_input: u64,
    cache_read: u64,
    /// `cache_creation.{ephemeral_5m,ephemeral_1h}_input_tokens` summed, when the object is there.
    cache_creation_split: Option<u64>,
    speed: Option<Speed>,
}

/// A JSON string's contents as a range of the line, quotes excluded, escapes not decoded.
#[derive(Clone, Copy)]
struct Raw {
    start: usize,
    end: usize,
}

/// A position in a line. Every method returns `None` when the bytes are not what the method
/// expects; the line then does not count.
struct Skim<'a> {
    b: &'a [u8],
    i: usize,
}

impl<'a> Skim<'a> {
    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\r' | b'\n') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn eat(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.i += 1)
    }

    fn raw(&self, raw: Raw) -> &'a [u8] {
        &self.b[raw.start..raw.end]
    }

    /// A string's decoded text. Escapes are rare in the fields read here; serde_json decodes them.
    fn text(&self, raw: Raw) -> Option<String> {
        let bytes = self.raw(raw);
        if !bytes.contains(&b'\\') {
            return std::str::from_utf8(bytes).ok().map(str::to_owned);
        }
        serde_json::from_slice(&self.b[raw.start - 1..raw.end + 1]).ok()
    }

    /// A string. Its closing quote is the first `"` preceded by an even run of backslashes.
    fn string(&mut self) -> Option<Raw> {
        if self.peek()? != b'"' {
            return None;
        }
        let start = self.i + 1;
        let mut from = start;
        loop {
            let quote = from + find_byte(&self.b[from..], b'"')?;
            let mut k = quote;
            while k > start && self.b[k - 1] == b'\\' {
                k -= 1;
            }
            if (quote - k).is_multiple_of(2) {
                self.i = quote + 1;
                return Some(Raw { start, end: quote });
            }
            from = quote + 1;
        }
    }

    /// Fails on `null`, as ccusage refuses the line when some fields are null.
    fn not_null(&self) -> Option<()> {
        (self.peek()? != b'n').then_some(())
    }

    fn string_not_null(&mut self) -> Option<Raw> {
        self.not_null()?;
        self.string()
    }

    fn literal(&mut self, word: &[u8]) -> bool {
        let found = self.b[self.i..].starts_with(word);
        if found {
            self.i += word.len();
        }
        found
    }

    fn bool_or_null(&mut self) -> Option<Option<bool>> {
        if self.literal(b"true") {
            Some(Some(true))
        } else if self.literal(b"false") {
            Some(Some(false))
        } else if self.literal(b"null") {
            Some(None)
        } else {
            None
        }
    }

    /// A number of any form (`costUSD`), not read.
    fn number(&mut self) -> Option<()> {
        matches!(self.peek()?, b'-' | b'0'..=b'9').then_some(())?;
        self.skip_value()
    }

    /// A non-negative JSON integer that fits in u64, as serde reads a `u64` field.
    fn u64(&mut self) -> Option<u64> {
        let start = self.i;
        let mut value: u64 = 0;
        while let Some(digit @ b'0'..=b'9') = self.peek() {
            value = value
                .checked_mul(10)?
                .checked_add(u64::from(digit - b'0'))?;
            self.i += 1;
        }
        let digits = self.i - start;
        let leading_zero = digits > 1 && self.b[start] == b'0';
        if digits == 0 || leading_zero || matches!(self.peek(), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        Some(value)
    }

    /// The members of an object: `member` is called with each key and must consume its value.
    fn object(&mut self, mut member: impl FnMut(&mut Self, &'a [u8]) -> Option<()>) -> Option<()> {
        self.ws();
        self.eat(b'{')?;
        self.ws();
        if self.eat(b'}').is_some() {
            return Some(());
        }
        loop {
            let key = self.string()?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            member(self, self.raw(key))?;
            self.ws();
            match self.peek()? {
                b',' => {
                    self.i += 1;
                    self.ws();
                }
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// Steps over any value. Bytes outside strings are walked one by one (they are few: the bulk
    /// of a line is string contents, which [`Skim::string`] crosses in blocks).
    fn skip_value(&mut self) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.string()?;
            }
            b'{' | b'[' => {
                let mut depth = 0usize;
                loop {
                    match self.peek()? {
                        b'"' => {
                            self.string()?;
                            continue;
                        }
                        b'{' | b'[' => depth += 1,
                        b'}' | b']' => {
                            depth -= 1;
                            if depth == 0 {
                                self.i += 1;
                                return Some(());
                            }
                        }
                        _ => {}
                    }
                    self.i += 1;
                }
            }
            _ => {
                let start = self.i;
                while let Some(byte) = self.peek() {
                    if matches!(byte, b',' | b'}' | b']' | b' ' | b'\t' | b'\r' | b'\n') {
                        break;
                    }
                    self.i += 1;
                }
                if self.i == start {
                    return None;
                }
            }
        }
        Some(())
    }

    fn message(&mut self) -> Option<Message> {
        let mut m = Message::default();
        self.object(|s, key| {
            match key {
                b"id" => m.id = Some(s.string_not_null()?),
                b"model" => m.model = Some(s.string_not_null()?),
                b"usage" => m.usage = Some(s.usage()?),
                _ => s.skip_value()?,
            }
            Some(())
        })?;
        Some(m)
    }

    fn usage(&mut self) -> Option<Usage> {
        let mut u = Usage::default();
        self.object(|s, key| {
            match key {
                b"input_tokens" => u.input = Some(s.u64()?),
                b"output_tokens" => u.output = Some(s.u64()?),
                b"cache_creation_input_tokens" => u.cache_creation_input = s.u64()?,
                b"cache_read_input_tokens" => u.cache_read = s.u64()?,
                b"cache_creation" => {
                    if !s.literal(b"null") {
                        u.cache_creation_split = Some(s.cache_creation()?);
                    }
                }
                b"speed" => {
                    s.not_null()?;
                    let v = s.string()?;
                    u.speed = match s.raw(v) {
                        b"standard" => Some(Speed::Standard),
                        b"fast" => Some(Speed::Fast),
                        _ => None,
                    };
                }
                _ => s.skip_value()?,
            }
            Some(())
        })?;
        Some(u)
    }

    fn cache_creation(&mut self) -> Option<u64> {
        let (mut five_min, mut one_hour) = (0u64, 0u64);
        self.object(|s, key| {
            match key {
                b"ephemeral_5m_input_tokens" => five_min = s.u64()?,
                b"ephemeral_1h_input_tokens" => one_hour = s.u64()?,
                _ => s.skip_value()?,
            }
            Some(())
        })?;
        Some(five_min.saturating_add(one_hour))
    }
}

/// `N.N.N…`: what ccusage accepts as a `version`.
fn is_semver_prefix(v: &[u8]) -> bool {
    let mut i = 0;
    for _ in 0..2 {
        let start = i;
        while v.get(i).is_some_and(u8::is_ascii_digit) {
            i += 1;
        }
        if i == start || v.get(i) != Some(&b'.') {
            return false;
        }
        i += 1;
    }
    v.get(i).is_some_and(u8::is_ascii_digit)
}

/// `YYYY-MM-DDTHH:MM:SS[.mmm](Z|±HH:MM)` to milliseconds since the epoch: the forms ccusage reads.
fn parse_timestamp(b: &[u8]) -> Option<i64> {
    let (millis, zone) = match b.len() {
        20 | 25 => (0, &b[19..]),
        24 | 29 if b[19] == b'.' => (digits(&b[20..23])?, &b[23..]),
        _ => return None,
    };
    if b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let year = digits(&b[0..4])?;
    let month = digits(&b[5..7])?;
    let day = digits(&b[8..10])?;
    let (hour, minute, second) = (
        digits(&b[11..13])?,
        digits(&b[14..16])?,
        digits(&b[17..19])?,
    );
    if !(1..=12).contains(&month)
        || day == 0
        || day > days_in_month(year, month)
        || hour > 23
        || minute > 59
        || second > 59
    {
        return None;
    }
    let offset_minutes = match zone {
        b"Z" => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let minutes = digits(&[*h1, *h2])? * 60 + digits(&[*m1, *m2])?;
            if *sign == b'+' { minutes } else { -minutes }
        }
        _ => return None,
    };
    let seconds = days_since_epoch(year, month, day) * 86_400 + hour * 3600 + minute * 60 + second;
    Some((seconds - offset_minutes * 60) * 1000 + millis)
}

fn digits(b: &[u8]) -> Option<i64> {
    b.iter().try_fold(0i64, |n, &d| {
        d.is_ascii_digit().then(|| n * 10 + i64::from(d - b'0'))
    })
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 1970-01-01 to a proleptic Gregorian date, counting years from March so that the
/// leap day falls at the end of the year.
fn days_since_epoch(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The position of the first `needle` in `hay`. Word-at-a-time over the first 64 bytes (a string
/// field usually ends there), then 64-byte blocks that the compiler turns into vector compares:
/// this is the loop every byte of a transcript goes through, at memory speed.
pub(super) fn find_byte(hay: &[u8], needle: u8) -> Option<usize> {
    const LOW: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let pattern = LOW * u64::from(needle);
    // Bytes equal to `needle` get their high bit set in the result (the lowest one exactly).
    let matches = |word: &[u8; 8]| {
        let x = u64::from_le_bytes(*word) ^ pattern;
        x.wrapping_sub(LOW) & !x & HIGH
    };
    let head = hay.len().min(64) & !7;
    let (words, _) = hay[..head].as_chunks::<8>();
    for (n, word) in words.iter().enumerate() {
        let m = matches(word);
        if m != 0 {
            return Some(n * 8 + (m.trailing_zeros() / 8) as usize);
        }
    }
    let (blocks, rest) = hay[head..].as_chunks::<64>();
    for (n, block) in blocks.iter().enumerate() {
        if block.iter().fold(false, |any, &b| any | (b == needle)) {
            let (words, _) = block.as_chunks::<8>();
            for (k, word) in words.iter().enumerate() {
                let m = matches(word);
                if m != 0 {
                    return Some(head + n * 64 + k * 8 + (m.trailing_zeros() / 8) as usize);
                }
            }
        }
    }
    let done = head + blocks.len() * 64;
    rest.iter().position(|&b| b == needle).map(|i| done + i)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::transcript::fixtures::Line;
    use serde_json::json;

    fn ms(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339)
            .unwrap()
            .timestamp_millis()
    }

    fn scan(line: &Line) -> Option<UsageEntry> {
        scan_line(line.text().as_bytes())
    }

    fn base() -> Line {
        Line::assistant("msg_01", "req_01")
    }

    #[test]
    fn an_assistant_line_gives_its_usage() {
        let e = scan(&base()).unwrap();
        assert_eq!(
            e,
            UsageEntry {
                ts_ms: ms("2026-11-21T10:47:24.098Z"),
                session_id: "f6060000-0000-4000-8000-000000000003".into(),
                model: "claude-opus-4-8".into(),
                message_id: "msg_01".into(),
                request_id: "req_01".into(),
                input_tokens: 11,
                output_tokens: 7,
                cache_creation_tokens: 5,
                cache_read_tokens: 3,
                sidechain: false,
                speed: Some(Speed::Standard),
            }
        );
        assert_eq!(e.total(), 26);
    }

    #[test]
    fn lines_that_do_not_count() {
        let cases: Vec<(&str, Line)> = vec![
            ("user line", Line::user("hi")),
            ("type user", base().set("/type", json!("user"))),
            ("no type", base().remove("/type")),
            (
                "synthetic",
                base().set("/message/model", json!("<synthetic>")),
            ),
            ("api error", base().set("/isApiErrorMessage", json!(true))),
            (
                "api error null",
                base().set("/isApiErrorMessage", json!(null)),
            ),
            ("no message id", base().remove("/message/id")),
            ("empty message id", base().set("/message/id", json!(""))),
            ("null message id", base().set("/message/id", json!(null))),
            ("no request id", base().remove("/requestId")),
            ("empty request id", base().set("/requestId", json!(""))),
            ("null request id", base().set("/requestId", json!(null))),
            ("bad version", base().set("/version", json!("abc"))),
            ("short version", base().set("/version", json!("2.1"))),
            ("null version", base().set("/version", json!(null))),
            ("empty session", base().set("/sessionId", json!(""))),
            ("empty model", base().set("/message/model", json!(""))),
            ("null model", base().set("/message/model", json!(null))),
            ("null cwd", base().set("/cwd", json!(null))),
            ("null cost", base().set("/costUSD", json!(null))),
            (
                "null speed",
                base().set("/message/usage/speed", json!(null)),
            ),
            (
                "null cache read",
                base().set("/message/usage/cache_read_input_tokens", json!(null)),
            ),
            ("no usage", base().remove("/message/usage")),
            ("usage not object", base().set("/message/usage", json!([1]))),
            ("no output", base().remove("/message/usage/output_tokens")),
            (
                "float tokens",
                base().set("/message/usage/output_tokens", json!(1.5)),
            ),
            (
                "negative tokens",
                base().set("/message/usage/input_tokens", json!(-1)),
            ),
            (
                "huge tokens",
                base().set("/message/usage/input_tokens", json!(1e20)),
            ),
            (
                "string tokens",
                base().set("/message/usage/input_tokens", json!("11")),
            ),
            ("no timestamp", base().remove("/timestamp")),
            (
                "bad timestamp",
                base().set("/timestamp", json!("2026-02-30T10:00:00.000Z")),
            ),
            (
                "timestamp no zone",
                base().set("/timestamp", json!("2026-11-21T10:47:24.098")),
            ),
            (
                "sidechain not bool",
                base().set("/isSidechain", json!("yes")),
            ),
            ("message null", base().set("/message", json!(null))),
        ];
        for (name, line) in cases {
            assert_eq!(scan(&line), None, "{name}: {}", line.text());
        }
        for raw in [
            "",
            "[]",
            "not json",
            "{}",
            "{\"type\":\"assistant\"}",
            // Trailing bytes after the object.
            &format!("{} x", base().text()),
            // Two objects on one line.
            &format!("{}{}", base().text(), base().text()),
        ] {
            assert_eq!(scan_line(raw.as_bytes()), None, "{raw}");
        }
    }

    #[test]
    fn lines_that_count_and_what_they_give() {
        type Check = fn(&UsageEntry) -> bool;
        let cases: Vec<(&str, Line, Check)> = vec![
            ("no version", base().remove("/version"), |e| e.total() == 26),
            (
                "prerelease version",
                base().set("/version", json!("2.1.197-beta.1")),
                |e| e.total() == 26,
            ),
            ("no session id", base().remove("/sessionId"), |e| {
                e.session_id.is_empty()
            }),
            ("no model", base().remove("/message/model"), |e| {
                e.model.is_empty()
            }),
            ("sidechain", base().sidechain(), |e| e.sidechain),
            (
                "api error false",
                base().set("/isApiErrorMessage", json!(false)),
                |e| e.total() == 26,
            ),
            (
                "fast",
                base().set("/message/usage/speed", json!("fast")),
                |e| e.speed == Some(Speed::Fast),
            ),
            (
                "unknown speed",
                base().set("/message/usage/speed", json!("warp")),
                |e| e.speed.is_none() && e.total() == 26,
            ),
            ("no speed", base().remove("/message/usage/speed"), |e| {
                e.speed.is_none()
            }),
            // ccusage counts cache writes from the 5m/1h split when it is there.
            (
                "split wins",
                base().set(
                    "/message/usage/cache_creation",
                    json!({"ephemeral_5m_input_tokens": 2, "ephemeral_1h_input_tokens": 40}),
                ),
                |e| e.cache_creation_tokens == 42,
            ),
            (
                "no split",
                base().remove("/message/usage/cache_creation"),
                |e| e.cache_creation_tokens == 5,
            ),
            (
                "null split",
                base().set("/message/usage/cache_creation", json!(null)),
                |e| e.cache_creation_tokens == 5,
            ),
            (
                "empty split",
                base().set("/message/usage/cache_creation", json!({})),
                |e| e.cache_creation_tokens == 0,
            ),
            (
                "no cache counts",
                base()
                    .remove("/message/usage/cache_read_input_tokens")
                    .remove("/message/usage/cache_creation_input_tokens")
                    .remove("/message/usage/cache_creation"),
                |e| e.cache_read_tokens == 0 && e.cache_creation_tokens == 0,
            ),
            (
                "offset timestamp",
                base().set("/timestamp", json!("2026-11-21T12:47:24.098+02:00")),
                |e| e.ts_ms == ms("2026-11-21T10:47:24.098Z"),
            ),
            (
                "negative offset",
                base().set("/timestamp", json!("2026-11-21T05:17:24-05:30")),
                |e| e.ts_ms == ms("2026-11-21T10:47:24Z"),
            ),
            (
                "leap day",
                base().set("/timestamp", json!("2024-02-29T00:00:00.001Z")),
                |e| e.ts_ms == ms("2024-02-29T00:00:00.001Z"),
            ),
            (
                "escaped id",
                Line(
                    serde_json::from_str(
                        &base()
                            .text()
                            .replace("\"msg_01\"", "\"msg_\\u0030\\u0031\""),
                    )
                    .unwrap(),
                ),
                |e| e.message_id == "msg_01",
            ),
            ("cost number", base().set("/costUSD", json!(0.25)), |e| {
                e.total() == 26
            }),
            (
                "type first",
                {
                    let mut l = base();
                    let t = l.0.as_object_mut().unwrap().shift_remove("type").unwrap();
                    l.0.as_object_mut()
                        .unwrap()
                        .shift_insert(0, "type".into(), t);
                    l
                },
                |e| e.total() == 26,
            ),
        ];
        for (name, line, check) in cases {
            let e = scan(&line).unwrap_or_else(|| panic!("{name}: no entry for {}", line.text()));
            assert!(check(&e), "{name}: {e:?}");
        }
    }

    #[test]
    fn whitespace_and_escaped_raw_ids_are_read_as_json() {
        let pretty = serde_json::to_string_pretty(&base().0).unwrap();
        assert_eq!(scan_line(pretty.as_bytes()).unwrap().total(), 26);
        let crlf = format!("{}\r", base().text());
        assert_eq!(scan_line(crlf.as_bytes()).unwrap().total(), 26);
        let line = base().text().replace("\"msg_01\"", "\"msg_\\\"q\\\\\"");
        assert_eq!(scan_line(line.as_bytes()).unwrap().message_id, "msg_\"q\\");
    }

    /// Text and tool input that spell the very fields the reader looks for, in every escaping.
    #[test]
    fn decoys_inside_values_are_not_read() {
        let decoy = r#"{"type":"assistant","message":{"id":"msg_decoy","usage":{"input_tokens":999,"output_tokens":999}},"requestId":"req_decoy"}"#;
        let tricky = [
            decoy.to_string(),
            format!("\\{decoy}\\"),
            "ends with a backslash \\".to_string(),
            format!("\\\\\" {decoy} \\\\\\\""),
            "\"usage\":{".to_string(),
            // Unbalanced brackets: a reader that misplaces a string's end loses its depth here.
            r#"x"}],"usage":{"input_tokens":999,"output_tokens":999},"id":"msg_decoy","a":[{"b":"#
                .to_string(),
            r#"\"}]}, "requestId":"req_decoy", "type":"user", "x":{"#.to_string(),
        ];
        // A user line quoting an assistant line, and a tool result whose usage is a real key.
        for text in &tricky {
            assert_eq!(scan(&Line::user(text)), None, "{text}");
        }
        let subagent_result = Line::user("sub agent reply").set(
            "/toolUseResult",
            json!({"status": "completed", "usage": {"input_tokens": 1200, "output_tokens": 80}}),
        );
        assert_eq!(scan(&subagent_result), None);
        // An assistant line that quotes them in text, in a tool_use input and in a nested object.
        for text in &tricky {
            let line = base().set(
                "/message/content",
                json!([
                    {"type": "text", "text": text},
                    {"type": "tool_use", "id": "toolu_1", "name": "Write", "input": {
                        "content": text,
                        "usage": {"input_tokens": 999, "output_tokens": 999},
                        "message": {"id": "msg_decoy", "model": "decoy"},
                        "requestId": "req_decoy",
                        "nested": [[{"type": "user"}], {"usage": {}}, "]}", "{[", 1, true, null]
                    }}
                ]),
            );
            let e = scan(&line).unwrap_or_else(|| panic!("{text}"));
            assert_eq!(
                (
                    e.message_id.as_str(),
                    e.request_id.as_str(),
                    e.model.as_str(),
                    e.total()
                ),
                ("msg_01", "req_01", "claude-opus-4-8", 26),
                "{text}"
            );
        }
    }

    #[test]
    fn every_cut_short_line_is_refused() {
        let line = base()
            .set(
                "/message/content",
                json!([{"type": "text", "text": "a \"quoted\" \\ word"}]),
            )
            .text();
        for end in 0..line.len() {
            assert_eq!(scan_line(&line.as_bytes()[..end]), None, "cut at {end}");
        }
    }

    /// The rules of `scan_line` written plainly over a parsed JSON tree: the oracle below.
    fn reference(text: &str) -> Option<UsageEntry> {
        use serde_json::Value;
        let v: Value = serde_json::from_str(text).ok()?;
        let top = v.as_object()?;
        let not_null =
            |o: &serde_json::Map<String, Value>, k: &str| !o.get(k).is_some_and(Value::is_null);
        for k in [
            "requestId",
            "sessionId",
            "version",
            "cwd",
            "costUSD",
            "isApiErrorMessage",
        ] {
            if !not_null(top, k) {
                return None;
            }
        }
        if top.get("type")?.as_str()? != "assistant" {
            return None;
        }
        if top
            .get("isApiErrorMessage")
            .is_some_and(|e| e.as_bool() != Some(false))
        {
            return None;
        }
        if top.get("costUSD").is_some_and(|c| !c.is_number()) {
            return None;
        }
        let sidechain = match top.get("isSidechain") {
            None | Some(Value::Null) => false,
            Some(b) => b.as_bool()?,
        };
        let message = top.get("message")?.as_object()?;
        for k in ["id", "model"] {
            if !not_null(message, k) {
                return None;
            }
        }
        let usage = message.get("usage")?.as_object()?;
        for k in [
            "speed",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        ] {
            if !not_null(usage, k) {
                return None;
            }
        }
        let count = |o: &serde_json::Map<String, Value>, k: &str| match o.get(k) {
            None => Some(0),
            Some(n) => n
                .as_u64()
                .filter(|_| !n.to_string().contains(['.', 'e', 'E'])),
        };
        usage.get("input_tokens")?;
        usage.get("output_tokens")?;
        let split = match usage.get("cache_creation") {
            None | Some(Value::Null) => None,
            Some(c) => {
                let c = c.as_object()?;
                Some(
                    count(c, "ephemeral_5m_input_tokens")? + count(c, "ephemeral_1h_input_tokens")?,
                )
            }
        };
        let speed = match usage.get("speed") {
            None => None,
            Some(s) => match s.as_str()? {
                "standard" => Some(Speed::Standard),
                "fast" => Some(Speed::Fast),
                _ => None,
            },
        };
        let text = |o: &serde_json::Map<String, Value>, k: &str| -> Option<Option<String>> {
            match o.get(k) {
                None => Some(None),
                Some(s) => Some(Some(s.as_str()?.to_owned())),
            }
        };
        let model = text(message, "model")?;
        if matches!(model.as_deref(), Some("" | "<synthetic>")) {
            return None;
        }
        let version = text(top, "version")?;
        if version.is_some_and(|v| !is_semver_prefix(v.as_bytes())) {
            return None;
        }
        let ts_ms = parse_timestamp(top.get("timestamp")?.as_str()?.as_bytes())?;
        let message_id = text(message, "id")??;
        let request_id = text(top, "requestId")??;
        let session_id = text(top, "sessionId")?;
        if message_id.is_empty() || request_id.is_empty() || session_id.as_deref() == Some("") {
            return None;
        }
        Some(UsageEntry {
            ts_ms,
            session_id: session_id.unwrap_or_default(),
            model: model.unwrap_or_default(),
            message_id,
            request_id,
            input_tokens: count(usage, "input_tokens")?,
            output_tokens: count(usage, "output_tokens")?,
            cache_creation_tokens: split.unwrap_or(count(usage, "cache_creation_input_tokens")?),
            cache_read_tokens: count(usage, "cache_read_input_tokens")?,
            sidechain,
            speed,
        })
    }

    /// Random lines (shuffled keys, hostile text, odd values, whitespace) read both ways.
    #[test]
    fn agrees_with_a_full_json_parse_on_random_lines() {
        use serde_json::{Map, Value};
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        const PIECES: &[&str] = &[
            "\"",
            "\\",
            "\\\"",
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            "\n",
            "\t",
            "é",
            "→",
            "\u{1}",
            "\"usage\":{\"input_tokens\":9}",
            "\"type\":\"assistant\"",
            "null",
            "a",
            " ",
        ];
        let mut agreed = 0;
        for round in 0..3000 {
            let mut line = base();
            let hostile: String = (0..next(12))
                .map(|_| PIECES[next(PIECES.len() as u64) as usize])
                .collect();
            let odd = [
                json!(null),
                json!(true),
                json!(0),
                json!(-1),
                json!(1.5),
                json!(""),
                json!("x"),
                json!([]),
                json!({}),
                json!(hostile.clone()),
                json!({"usage": {"input_tokens": 5}}),
            ];
            for _ in 0..next(4) {
                let field = [
                    "/type",
                    "/requestId",
                    "/sessionId",
                    "/version",
                    "/timestamp",
                    "/cwd",
                    "/costUSD",
                    "/isSidechain",
                    "/isApiErrorMessage",
                    "/message/id",
                    "/message/model",
                    "/message/usage",
                    "/message/usage/input_tokens",
                    "/message/usage/output_tokens",
                    "/message/usage/cache_creation",
                    "/message/usage/cache_read_input_tokens",
                    "/message/usage/speed",
                    "/message/content",
                    "/toolUseResult",
                ][next(19) as usize];
                // A field whose parent was replaced by a non-object is left alone.
                let (parent, key) = field.rsplit_once('/').unwrap();
                if let Some(Value::Object(map)) = line.0.pointer_mut(parent) {
                    if next(5) == 0 {
                        map.shift_remove(key);
                    } else {
                        map.insert(key.into(), odd[next(odd.len() as u64) as usize].clone());
                    }
                }
            }
            if !line.0["message"].is_object() {
                line = line.set("/message", json!({}));
            }
            line = line.set(
                "/message/content",
                json!([{"type": "text", "text": hostile}, {"type": "tool_use", "input": {"x": [hostile, {"id": null}]}}]),
            );
            // Shuffle the keys of the line and of its message.
            let shuffle = |map: &mut Map<String, Value>, r: u64| {
                let mut items: Vec<(String, Value)> = std::mem::take(map).into_iter().collect();
                let len = items.len();
                for i in 0..len {
                    items.swap(i, (r as usize + i * 7) % len);
                }
                map.extend(items);
            };
            if let Value::Object(map) = &mut line.0 {
                shuffle(map, next(100));
                if let Some(Value::Object(m)) = map.get_mut("message") {
                    shuffle(m, next(100));
                }
            }
            let text = if round % 7 == 0 {
                serde_json::to_string_pretty(&line.0).unwrap()
            } else {
                line.text()
            };
            let want = reference(&text);
            agreed += usize::from(want.is_some());
            assert_eq!(scan_line(text.as_bytes()), want, "{text}");
        }
        // The cases are not all refusals.
        assert!(agreed > 300, "only {agreed} lines counted");
    }

    #[test]
    fn find_byte_agrees_with_a_plain_search() {
        let mut hay = vec![b'a'; 300];
        for len in [0usize, 1, 7, 8, 9, 63, 64, 65, 127, 128, 129, 200, 300] {
            for at in (0..len).step_by(3).chain([len.saturating_sub(1)]) {
                hay.iter_mut().for_each(|b| *b = b'a');
                if at < len {
                    hay[at] = b'\n';
                    // A byte that differs from the needle by one bit, to catch a sloppy mask.
                    if at + 1 < len {
                        hay[at + 1] = b'\n' ^ 0x80;
                    }
                }
                let want = hay[..len].iter().position(|&b| b == b'\n');
                assert_eq!(find_byte(&hay[..len], b'\n'), want, "len {len} at {at}");
            }
        }
        assert_eq!(find_byte(&[0x8a, 0x0b, 0x09], b'\n'), None);
    }

    #[test]
    fn versions_and_timestamps_follow_ccusage() {
        for (v, ok) in [
            ("2.1.197", true),
            ("1.0.0", true),
            ("10.20.3x", true),
            ("2.1", false),
            ("2..1", false),
            ("v2.1.0", false),
            ("", false),
        ] {
            assert_eq!(is_semver_prefix(v.as_bytes()), ok, "{v}");
        }
        for (t, want) in [
            ("1970-01-01T00:00:00Z", Some(0)),
            ("2000-03-01T00:00:00.000Z", Some(ms("2000-03-01T00:00:00Z"))),
            ("1900-02-29T00:00:00Z", None),
            ("2026-13-01T00:00:00Z", None),
            ("2026-01-01T24:00:00Z", None),
            ("2026-01-01 00:00:00Z", None),
            ("2026-01-01T00:00:00.5Z", None),
        ] {
            assert_eq!(parse_timestamp(t.as_bytes()), want, "{t}");
        }
    }
}
