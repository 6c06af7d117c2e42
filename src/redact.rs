//! Redaction: secrets are removed from every string before anything is stored.
//!
//! Owns what counts as a secret and how it is found. The formats follow the published detector
//! rules of gitleaks and trufflehog (taken as facts, not code): prefixed tokens of about sixty
//! services (Anthropic, OpenAI, Google, GitHub, GitLab, Slack, Stripe, npm, Hugging Face,
//! SendGrid, AWS, ...), JWTs, PEM and PGP private key blocks, webhook URLs, AWS secret keys near
//! an AWS key id or name, passwords in `scheme://user:pass@host` URLs, `Authorization` headers,
//! secret command-line flags, and the values of env-style assignments, XML elements and JSON
//! members whose names announce a secret ([`is_secret_name`]).
//!
//! It errs towards redacting: a false positive costs a word in a stored payload, a miss leaks a
//! credential into a file that outlives the session. Every rule is hand-written and anchored on a
//! cheap first byte; runs of a character class are measured once and remembered (`Runs`), so a
//! string is scanned in one linear pass whatever it holds. [`redact_json_text`] does the same for
//! JSON text that may be cut short (the stored prefix of an oversized payload): it decodes each
//! string literal, redacts the decoded text, and encodes it again. Must not do IO.

use std::borrow::Cow;

use serde_json::Value;

/// What replaces the value of a secret-named assignment or member.
pub const REDACTED: &str = "[redacted]";

/// Names longer than this are identifiers of some other kind, never checked.
const MAX_NAME: usize = 96;

/// Name endings (case and separators ignored: `api_key`, `apiKey` and `APIKEY` are all
/// `apikey`) that announce a secret even when glued to another word (`PGPASSWORD`).
const SQUASHED_SUFFIXES: [&[u8]; 20] = [
    b"password",
    b"passwd",
    b"passphrase",
    b"secret",
    b"token",
    b"apikey",
    b"secretkey",
    b"privatekey",
    b"accesskey",
    b"authkey",
    b"sshkey",
    b"signingkey",
    b"encryptionkey",
    b"masterkey",
    b"licensekey",
    b"sessionkey",
    b"credential",
    b"credentials",
    b"authorization",
    b"signature",
];

/// Last parts of a name (`DB_PASS`, `dbPass`, `sort_key`) that announce a secret only as a part
/// of their own: `compass` and `monkey` are words.
const LAST_PARTS: [&[u8]; 7] = [b"key", b"pass", b"pwd", b"pw", b"auth", b"creds", b"sig"];

/// Parts that make a whole name secret wherever they stand (`SECRET_KEY_BASE`), unless the
/// name's last part says it is about the secret rather than the secret itself.
const SECRET_PARTS: [&[u8]; 4] = [b"secret", b"secrets", b"password", b"passwd"];

/// Last parts that name something about a secret (`password_file`, `secret_name`).
const ABOUT_PARTS: [&[u8]; 26] = [
    b"name",
    b"names",
    b"id",
    b"ids",
    b"type",
    b"file",
    b"path",
    b"dir",
    b"length",
    b"len",
    b"count",
    b"size",
    b"min",
    b"max",
    b"policy",
    b"hint",
    b"prompt",
    b"required",
    b"enabled",
    b"ref",
    b"arn",
    b"version",
    b"label",
    b"field",
    b"mode",
    b"stdin",
];

/// Values of secret-named assignments that are code or config words, not secrets.
const NOT_VALUES: [&str; 11] = [
    "true",
    "false",
    "null",
    "none",
    "nil",
    "undefined",
    "str",
    "string",
    "bool",
    "int",
    "[redacted]",
];

fn is_sep(b: u8) -> bool {
    matches!(b, b'_' | b'-' | b'.')
}

/// Calls `f` for each part of a name: split at `_`, `-`, `.` and where a lower-case letter or
/// digit meets an upper-case one (`dbPass` is `db`, `Pass`).
fn for_each_part<'n>(name: &'n [u8], mut f: impl FnMut(&'n [u8])) {
    let mut start = 0;
    for k in 0..=name.len() {
        let cut = k == name.len()
            || is_sep(name[k])
            || (k > start
                && name[k].is_ascii_uppercase()
                && (name[k - 1].is_ascii_lowercase() || name[k - 1].is_ascii_digit()));
        if cut {
            if k > start {
                f(&name[start..k]);
            }
            start = if k < name.len() && is_sep(name[k]) {
                k + 1
            } else {
                k
            };
        }
    }
}

/// True when a variable, flag, header or member name announces a secret value: it ends in KEY,
/// TOKEN, SECRET, PASSWORD, PASSWD, PASS, PWD, AUTH, CREDENTIALS, SIGNATURE or AUTHORIZATION
/// (any case, glued or separated, trailing digits ignored: `API_KEY_1`), or has a SECRET or
/// PASSWORD part not followed by a word such as NAME, FILE or ID (`SECRET_KEY_BASE`, not
/// `SECRET_NAME`). `PWD` alone is the working directory, not a password.
pub fn is_secret_name(name: &str) -> bool {
    let b = name.as_bytes();
    if b.len() < 2 || b.len() > MAX_NAME {
        return false;
    }
    let mut end = b.len();
    while end > 0 && (b[end - 1].is_ascii_digit() || is_sep(b[end - 1])) {
        end -= 1;
    }
    let b = &b[..end];
    if b.len() < 3 || !b.iter().all(|&c| c.is_ascii_alphanumeric() || is_sep(c)) {
        return false;
    }
    let mut squashed = [0u8; MAX_NAME];
    let mut len = 0;
    for &c in b.iter().filter(|&&c| !is_sep(c)) {
        squashed[len] = c.to_ascii_lowercase();
        len += 1;
    }
    let squashed = &squashed[..len];
    if SQUASHED_SUFFIXES.iter().any(|s| squashed.ends_with(s)) {
        return true;
    }
    let (mut parts, mut secret_part) = (0, false);
    let mut last: &[u8] = &[];
    for_each_part(b, |p| {
        parts += 1;
        last = p;
        secret_part |= SECRET_PARTS.iter().any(|s| p.eq_ignore_ascii_case(s));
    });
    let is = |set: &[&[u8]]| set.iter().any(|s| last.eq_ignore_ascii_case(s));
    if is(&LAST_PARTS) {
        // `PWD` and `OLDPWD` are directories; `MYSQL_PWD` is a password.
        return parts > 1 || !last.eq_ignore_ascii_case(b"pwd");
    }
    secret_part && !is(&ABOUT_PARTS)
}

/// Redacts every string in a JSON value, in place; also replaces string values of members with
/// secret names, and every string inside a secret-named member that holds an object or array.
/// Returns how many secrets were removed.
pub fn redact_value(value: &mut Value) -> usize {
    let mut aws_near = false;
    walk(value, &mut aws_near)
}

fn walk(value: &mut Value, aws_near: &mut bool) -> usize {
    match value {
        Value::String(s) => match redact_with(s, aws_near) {
            Cow::Borrowed(_) => 0,
            Cow::Owned(new) => {
                *s = new;
                1
            }
        },
        Value::Array(items) => items.iter_mut().map(|v| walk(v, aws_near)).sum(),
        Value::Object(map) => map
            .iter_mut()
            .map(|(k, v)| {
                if is_secret_name(k) {
                    redact_all(v)
                } else {
                    walk(v, aws_near)
                }
            })
            .sum(),
        _ => 0,
    }
}

/// Replaces every non-empty string in `value` (the value of a secret-named member).
fn redact_all(value: &mut Value) -> usize {
    match value {
        Value::String(s) if !s.is_empty() && s != REDACTED => {
            *s = REDACTED.to_owned();
            1
        }
        Value::Array(items) => items.iter_mut().map(redact_all).sum(),
        Value::Object(map) => map.values_mut().map(redact_all).sum(),
        _ => 0,
    }
}

/// Redacts the secrets in one string. Borrows when there is nothing to redact.
pub fn redact_str(text: &str) -> Cow<'_, str> {
    let mut aws_near = false;
    redact_with(text, &mut aws_near)
}

/// [`redact_str`] with the AWS context carried from the previous string of the same payload
/// (`["AKIA...", "<secret>"]` is a key pair too).
fn redact_with<'a>(text: &'a str, aws_near: &mut bool) -> Cow<'a, str> {
    let mut scan = Scanner {
        b: text.as_bytes(),
        runs: Runs::new(),
        rescan_gaps: true,
        container: false,
        last_digit: (usize::MAX, None),
        aws_until: if *aws_near { AWS_WINDOW } else { 0 },
        pflag: PFlag::No,
        hit_end: 0,
    };
    let out = scan.redact(text);
    *aws_near = scan.aws_until > text.len();
    out
}

/// Redacts the text between a rule's start and its secret, without rescanning its own gaps.
fn redact_gap(text: &str) -> Cow<'_, str> {
    Scanner {
        b: text.as_bytes(),
        runs: Runs::new(),
        rescan_gaps: false,
        container: false,
        last_digit: (usize::MAX, None),
        aws_until: 0,
        pflag: PFlag::No,
        hit_end: 0,
    }
    .redact(text)
}

// ---------------------------------------------------------------------------------------------
// Character classes and the run cache.

/// A character class, as a bit in [`CLASS`].
#[derive(Clone, Copy)]
#[repr(u8)]
enum Class {
    /// `[A-Za-z0-9]`
    Alnum,
    /// `[A-Za-z0-9_-]` (base64url)
    Token,
    /// `[A-Za-z0-9_.-]` (names; dotted tokens)
    Name,
    /// `[A-Za-z0-9+/=]`
    B64,
    /// `[A-Za-z0-9+/=_-]`: either base64 alphabet
    B64Any,
    /// What a bare (unquoted) assigned value is made of.
    Value,
    /// `[A-Z0-9]`
    UpperDigit,
    /// `[0-9a-fA-F]`
    Hex,
    /// An HTTP credential: `[A-Za-z0-9._~+/=-]`.
    Cred,
    /// `[A-Za-z0-9_~.-]` (Azure client secrets)
    Azure,
    /// A shell word: anything but whitespace, quotes and shell operators.
    Arg,
}

const CLASSES: usize = 11;

const fn class_bits(b: u8) -> u16 {
    let alnum = b.is_ascii_alphanumeric();
    const fn bit(c: Class, yes: bool) -> u16 {
        (yes as u16) << c as u8
    }
    let mut bits = 0u16;
    bits |= bit(Class::Alnum, alnum);
    bits |= bit(Class::Token, alnum || b == b'_' || b == b'-');
    bits |= bit(Class::Name, alnum || b == b'_' || b == b'-' || b == b'.');
    bits |= bit(Class::B64, alnum || b == b'+' || b == b'/' || b == b'=');
    bits |= bit(
        Class::B64Any,
        alnum || matches!(b, b'+' | b'/' | b'=' | b'_' | b'-'),
    );
    bits |= bit(
        Class::Value,
        alnum
            || matches!(
                b,
                b'-' | b'.'
                    | b'_'
                    | b'~'
                    | b'+'
                    | b'/'
                    | b'='
                    | b'@'
                    | b'%'
                    | b':'
                    | b'!'
                    | b'#'
                    | b'*'
                    | b'^'
            ),
    );
    bits |= bit(
        Class::UpperDigit,
        b.is_ascii_uppercase() || b.is_ascii_digit(),
    );
    bits |= bit(Class::Hex, b.is_ascii_hexdigit());
    bits |= bit(
        Class::Cred,
        alnum || matches!(b, b'-' | b'.' | b'_' | b'~' | b'+' | b'/' | b'='),
    );
    bits |= bit(
        Class::Azure,
        alnum || matches!(b, b'_' | b'~' | b'.' | b'-'),
    );
    bits |= bit(
        Class::Arg,
        !b.is_ascii_whitespace()
            && !b.is_ascii_control()
            && !matches!(
                b,
                b'"' | b'\'' | b'`' | b';' | b'|' | b'&' | b'<' | b'>' | b'(' | b')'
            ),
    );
    bits
}

const CLASS: [u16; 256] = {
    let mut t = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        t[i] = class_bits(i as u8);
        i += 1;
    }
    t
};

fn is(c: Class, b: u8) -> bool {
    CLASS[b as usize] & (1 << c as u8) != 0
}

/// Remembered maximal runs of each class: every position inside a run has the same end, so a
/// run is measured once however many rules ask about it. Four slots per class cover the rules
/// that look at several runs in turn (a JWT's three parts).
struct Runs {
    slots: [[(usize, usize); 4]; CLASSES],
    next: [u8; CLASSES],
}

impl Runs {
    fn new() -> Runs {
        Runs {
            slots: [[(usize::MAX, 0); 4]; CLASSES],
            next: [0; CLASSES],
        }
    }

    /// Where the run of `class` that contains `p` ends (`p` itself when `b[p]` is not in it).
    fn end(&mut self, b: &[u8], class: Class, p: usize) -> usize {
        let c = class as usize;
        if let Some(&(_, e)) = self.slots[c].iter().find(|&&(s, e)| s <= p && p <= e) {
            return e;
        }
        let e = p + b[p.min(b.len())..]
            .iter()
            .take_while(|&&x| is(class, x))
            .count();
        let slot = self.next[c] as usize;
        self.slots[c][slot] = (p, e);
        self.next[c] = ((slot + 1) % 4) as u8;
        e
    }
}

// ---------------------------------------------------------------------------------------------
// Prefixed token formats.

/// A token recognised by its prefix: `prefix` then a run of `class` of `min..=max` bytes.
struct Rule {
    prefix: &'static [u8],
    class: Class,
    min: usize,
    /// 0: no upper bound.
    max: usize,
    label: &'static str,
    /// Keep the prefix (a webhook URL keeps its host), redact only the run.
    keep_prefix: bool,
    /// The run must hold a digit (`sk-` is also how kebab-case words after "task" begin).
    digit: bool,
}

const fn rule(prefix: &'static [u8], class: Class, min: usize, label: &'static str) -> Rule {
    Rule {
        prefix,
        class,
        min,
        max: 0,
        label,
        keep_prefix: false,
        digit: false,
    }
}

const fn exact(prefix: &'static [u8], class: Class, len: usize, label: &'static str) -> Rule {
    Rule {
        max: len,
        ..rule(prefix, class, len, label)
    }
}

const fn url_path(prefix: &'static [u8], class: Class, min: usize, label: &'static str) -> Rule {
    Rule {
        keep_prefix: true,
        ..rule(prefix, class, min, label)
    }
}

use Class::{Alnum, Arg, B64, B64Any, Hex, Name, Token, Value as Val};

const ANTHROPIC: &str = "[redacted:anthropic-key]";
const OPENAI: &str = "[redacted:openai-key]";
const GITHUB: &str = "[redacted:github-token]";
const GITLAB: &str = "[redacted:gitlab-token]";
const SLACK: &str = "[redacted:slack-token]";
const STRIPE: &str = "[redacted:stripe-key]";
const TOKEN: &str = "[redacted:token]";

/// The prefixed formats, by first byte. Prefixes are case-sensitive, as the services issue them.
fn rules_for(first: u8) -> &'static [Rule] {
    static A: [Rule; 6] = [
        rule(b"AIza", Token, 30, "[redacted:google-key]"),
        rule(b"AGE-SECRET-KEY-1", Alnum, 50, "[redacted:age-key]"),
        rule(b"AKCp", Alnum, 60, TOKEN),
        rule(b"ATATT3", B64Any, 100, "[redacted:atlassian-token]"),
        rule(b"ABSK", B64, 100, "[redacted:aws-bedrock-key]"),
        rule(b"AccountKey=", B64, 40, "AccountKey=[redacted]"),
    ];
    static C: [Rule; 1] = [rule(b"CLOJARS_", Alnum, 50, TOKEN)];
    static G: [Rule; 2] = [
        rule(b"GOCSPX-", Token, 20, "[redacted:google-oauth-secret]"),
        rule(b"GR1348941", Token, 20, GITLAB),
    ];
    static L: [Rule; 1] = [rule(b"LTAI", Alnum, 20, TOKEN)];
    static P: [Rule; 1] = [rule(b"PMAK-", Token, 50, TOKEN)];
    static S: [Rule; 2] = [
        rule(b"SG.", Name, 40, "[redacted:sendgrid-key]"),
        exact(b"SK", Hex, 32, "[redacted:twilio-key]"),
    ];
    static A_: [Rule; 1] = [url_path(
        b"api.telegram.org/bot",
        Val,
        20,
        "[redacted:telegram-token]",
    )];
    static D: [Rule; 8] = [
        rule(b"dapi", Hex, 32, TOKEN),
        rule(b"dop_v1_", Hex, 64, TOKEN),
        rule(b"doo_v1_", Hex, 64, TOKEN),
        rule(b"dor_v1_", Hex, 64, TOKEN),
        rule(b"dp.pt.", Alnum, 40, TOKEN),
        rule(b"dckr_pat_", Token, 20, TOKEN),
        url_path(
            b"discord.com/api/webhooks/",
            B64Any,
            8,
            "[redacted:discord-webhook]",
        ),
        url_path(
            b"discordapp.com/api/webhooks/",
            B64Any,
            8,
            "[redacted:discord-webhook]",
        ),
    ];
    static F: [Rule; 2] = [
        rule(b"figd_", Token, 30, TOKEN),
        rule(b"fo1_", Token, 40, TOKEN),
    ];
    static G_: [Rule; 20] = [
        rule(b"ghp_", Alnum, 30, GITHUB),
        rule(b"gho_", Alnum, 30, GITHUB),
        rule(b"ghu_", Alnum, 30, GITHUB),
        rule(b"ghs_", Alnum, 30, GITHUB),
        rule(b"ghr_", Alnum, 30, GITHUB),
        rule(b"github_pat_", Token, 20, GITHUB),
        rule(b"glpat-", Name, 20, GITLAB),
        rule(b"gldt-", Name, 20, GITLAB),
        rule(b"glrt-", Name, 20, GITLAB),
        rule(b"glcbt-", Name, 20, GITLAB),
        rule(b"glptt-", Name, 20, GITLAB),
        rule(b"glft-", Name, 20, GITLAB),
        rule(b"glimt-", Name, 20, GITLAB),
        rule(b"glagent-", Name, 20, GITLAB),
        rule(b"gloas-", Name, 20, GITLAB),
        rule(b"glsoat-", Name, 20, GITLAB),
        rule(b"glffct-", Name, 20, GITLAB),
        rule(b"glsa_", Token, 32, "[redacted:grafana-token]"),
        rule(b"glc_", B64, 32, "[redacted:grafana-token]"),
        rule(b"gsk_", Alnum, 40, "[redacted:groq-key]"),
    ];
    static H: [Rule; 7] = [
        rule(b"hf_", Alnum, 30, "[redacted:huggingface-token]"),
        rule(b"hvs.", Token, 50, "[redacted:vault-token]"),
        rule(b"hvb.", Token, 50, "[redacted:vault-token]"),
        url_path(
            b"hooks.slack.com/services/",
            B64Any,
            8,
            "[redacted:slack-webhook]",
        ),
        url_path(
            b"hooks.slack.com/workflows/",
            B64Any,
            8,
            "[redacted:slack-webhook]",
        ),
        url_path(
            b"hooks.slack.com/triggers/",
            B64Any,
            8,
            "[redacted:slack-webhook]",
        ),
        url_path(
            b"hooks.zapier.com/hooks/catch/",
            B64Any,
            8,
            "[redacted:webhook]",
        ),
    ];
    static K: [Rule; 1] = [exact(b"key-", Hex, 32, "[redacted:mailgun-key]")];
    static L_: [Rule; 1] = [rule(b"lin_api_", Alnum, 32, "[redacted:linear-key]")];
    static N: [Rule; 3] = [
        rule(b"npm_", Alnum, 30, "[redacted:npm-token]"),
        rule(b"ntn_", Alnum, 40, "[redacted:notion-token]"),
        rule(b"nvapi-", Token, 40, TOKEN),
    ];
    static O: [Rule; 1] = [rule(b"ops_eyJ", B64, 200, "[redacted:1password-token]")];
    static P_: [Rule; 8] = [
        rule(b"pypi-AgE", Token, 50, "[redacted:pypi-token]"),
        rule(b"pplx-", Alnum, 40, "[redacted:perplexity-key]"),
        exact(b"pul-", Hex, 40, TOKEN),
        rule(b"pnu_", Alnum, 30, TOKEN),
        rule(b"pscale_tkn_", Name, 32, TOKEN),
        rule(b"pscale_pw_", Name, 32, TOKEN),
        rule(b"pscale_oauth_", Name, 32, TOKEN),
        exact(b"pubkey-", Hex, 32, "[redacted:mailgun-key]"),
    ];
    static R: [Rule; 6] = [
        rule(b"rk_live_", Alnum, 10, STRIPE),
        rule(b"rk_test_", Alnum, 10, STRIPE),
        rule(b"rk_prod_", Alnum, 10, STRIPE),
        rule(b"rubygems_", Hex, 48, TOKEN),
        rule(b"r8_", Alnum, 30, "[redacted:replicate-token]"),
        rule(b"rdme_", Alnum, 60, TOKEN),
    ];
    static S_: [Rule; 17] = [
        rule(b"sk-ant-", Token, 20, ANTHROPIC),
        Rule {
            digit: true,
            ..rule(b"sk-", Token, 20, OPENAI)
        },
        rule(b"sk_live_", Alnum, 10, STRIPE),
        rule(b"sk_test_", Alnum, 10, STRIPE),
        rule(b"sk_prod_", Alnum, 10, STRIPE),
        exact(b"shpat_", Hex, 32, "[redacted:shopify-token]"),
        exact(b"shpca_", Hex, 32, "[redacted:shopify-token]"),
        exact(b"shppa_", Hex, 32, "[redacted:shopify-token]"),
        exact(b"shpss_", Hex, 32, "[redacted:shopify-token]"),
        rule(b"sntrys_", B64Any, 40, "[redacted:sentry-token]"),
        rule(b"sntryu_", Hex, 64, "[redacted:sentry-token]"),
        rule(b"sq0atp-", Token, 22, "[redacted:square-token]"),
        rule(b"sq0csp-", Token, 40, "[redacted:square-token]"),
        rule(b"sha256~", Token, 40, "[redacted:openshift-token]"),
        rule(b"shippo_live_", Hex, 40, TOKEN),
        rule(b"shippo_test_", Hex, 40, TOKEN),
        rule(b"secret_", Alnum, 40, "[redacted:notion-token]"),
    ];
    static T: [Rule; 1] = [rule(b"tk-us-", Token, 40, TOKEN)];
    static W: [Rule; 2] = [
        rule(b"whsec_", Alnum, 24, STRIPE),
        url_path(
            b"webhook.office.com/webhookb2/",
            Arg,
            20,
            "[redacted:webhook]",
        ),
    ];
    static X: [Rule; 11] = [
        rule(b"xoxb-", Token, 10, SLACK),
        rule(b"xoxp-", Token, 10, SLACK),
        rule(b"xoxa-", Token, 10, SLACK),
        rule(b"xoxr-", Token, 10, SLACK),
        rule(b"xoxs-", Token, 10, SLACK),
        rule(b"xoxo-", Token, 10, SLACK),
        rule(b"xoxe.xox", Token, 10, SLACK),
        rule(b"xoxe-", Token, 10, SLACK),
        rule(b"xapp-", Token, 10, SLACK),
        rule(b"xai-", Alnum, 60, "[redacted:xai-key]"),
        rule(b"xkeysib-", Token, 60, "[redacted:brevo-key]"),
    ];
    static Y: [Rule; 1] = [rule(b"ya29.", Name, 20, "[redacted:google-token]")];
    match first {
        b'A' => &A,
        b'C' => &C,
        b'G' => &G,
        b'L' => &L,
        b'P' => &P,
        b'S' => &S,
        b'a' => &A_,
        b'd' => &D,
        b'f' => &F,
        b'g' => &G_,
        b'h' => &H,
        b'k' => &K,
        b'l' => &L_,
        b'n' => &N,
        b'o' => &O,
        b'p' => &P_,
        b'r' => &R,
        b's' => &S_,
        b't' => &T,
        b'w' => &W,
        b'x' => &X,
        b'y' => &Y,
        _ => &[],
    }
}

/// AWS access key id prefixes (then 16 of `[A-Z0-9]`).
const AWS_IDS: [&[u8]; 13] = [
    b"AKIA", b"ASIA", b"ABIA", b"ACCA", b"AGPA", b"AIDA", b"AROA", b"AIPA", b"ANPA", b"ANVA",
    b"APKA", b"A3T", b"ASCA",
];

/// How far after an AWS key id (or a word starting with `aws`) a 40-character secret key is
/// looked for.
const AWS_WINDOW: usize = 160;

// ---------------------------------------------------------------------------------------------
// The scanner.

/// A found secret: the span to replace and what replaces it.
type Hit = (usize, usize, &'static str);

/// Where a short `-p` flag carries a password.
#[derive(Clone, Copy, PartialEq)]
enum PFlag {
    No,
    /// `mysql -pSECRET`: glued only (`mysql -p db` prompts, and `db` is a database).
    Glued,
    /// `sshpass -p SECRET`, `docker login -p SECRET`.
    Any,
}

struct Scanner<'a> {
    b: &'a [u8],
    runs: Runs,
    /// Whether the text between a rule's start and the secret it found is scanned as well.
    rescan_gaps: bool,
    /// A container command (`docker`, `podman`, ...) was the last word.
    container: bool,
    /// (end of a run, its last digit): see [`Scanner::digit_in`].
    last_digit: (usize, Option<usize>),
    /// A 40-character base64 run before this offset is an AWS secret key.
    aws_until: usize,
    pflag: PFlag,
    /// Where the last secret found ends: its replacement ends in `]`, so that offset starts a word
    /// as it will once redacted (`AKIA…--password x` is `[redacted:aws-key]--password x` to a
    /// second pass, and both passes must agree).
    hit_end: usize,
}

fn starts_ci(b: &[u8], at: usize, p: &[u8]) -> bool {
    b.len() >= at + p.len() && b[at..at + p.len()].eq_ignore_ascii_case(p)
}

fn find(b: &[u8], from: usize, needle: &[u8]) -> Option<usize> {
    if from >= b.len() {
        return None;
    }
    b[from..]
        .windows(needle.len())
        .position(|w| w == needle)
        .map(|k| from + k)
}

impl Scanner<'_> {
    fn redact<'t>(&mut self, text: &'t str) -> Cow<'t, str> {
        let n = self.b.len();
        let mut out: Option<String> = None;
        // Bytes before `copied` are already in `out` (or unchanged, when `out` is None).
        let mut copied = 0;
        let mut i = 0;
        while i < n {
            // Fast path: the inside of a word starts nothing (but `\nAPI_KEY` does).
            let b = self.b;
            if i >= 2
                && i >= self.aws_until
                && i != self.hit_end
                && b[i].is_ascii_alphanumeric()
                && b[i - 1].is_ascii_alphanumeric()
                && b[i - 2] != b'\\'
            {
                i += 1;
                continue;
            }
            match self.hit_at(i) {
                Some((start, end, replacement)) if end > start => {
                    // What stands before the secret (a name, a scheme, a user) may hold a token
                    // of its own: scanned on its own, once (gaps inside it are not rescanned).
                    // Not a key block's header or a flag's name: those are labels.
                    let gap = if start > i + 1 && self.rescan_gaps && self.b[i] != b'-' {
                        redact_gap(&text[i..start])
                    } else {
                        Cow::Borrowed(&text[i..start])
                    };
                    // Already redacted text is left as it is (redaction is idempotent).
                    if text[start..end] != *replacement || matches!(gap, Cow::Owned(_)) {
                        let buf = out.get_or_insert_with(|| String::with_capacity(n));
                        buf.push_str(&text[copied..i]);
                        buf.push_str(&gap);
                        buf.push_str(replacement);
                        copied = end;
                    }
                    // Words skipped over still set the context, as they would be seen once
                    // the secret after them is gone (redacting again changes nothing).
                    self.note_context(i + 1, start);
                    self.hit_end = end;
                    i = end.max(i + 1);
                }
                _ => i += 1,
            }
        }
        match out {
            None => Cow::Borrowed(text),
            Some(mut buf) => {
                buf.push_str(&text[copied..]);
                Cow::Owned(buf)
            }
        }
    }

    /// True when `i` starts a word: after a non-word byte, or after a `\n`, `\t` or `\r` written
    /// as an escape (JSON or shell text inside a string).
    fn boundary(&self, i: usize, word: impl Fn(u8) -> bool) -> bool {
        let b = self.b;
        let escape = |k: usize| k >= 1 && b[k - 1] == b'\\' && matches!(b[k], b'n' | b't' | b'r');
        // The letter of an escape is not a word start either: `\nAPI_KEY` names `API_KEY`.
        i == 0 || i == self.hit_end || (!word(b[i - 1]) && !escape(i)) || escape(i - 1)
    }

    /// Ends the shell segment at a line end or an operator.
    fn segment_end(&mut self, c: u8) {
        if matches!(c, b'\n' | b';' | b'|' | b'&') {
            self.pflag = PFlag::No;
            self.container = false;
        }
    }

    /// The context words and segment ends in `from..to`, a span a rule stepped over.
    fn note_context(&mut self, from: usize, to: usize) {
        for k in from..to {
            let c = self.b[k];
            self.segment_end(c);
            if c.is_ascii_alphabetic()
                && self.boundary(k, |x| x.is_ascii_alphanumeric() || x == b'_')
            {
                self.context_word(k);
            }
        }
    }

    fn hit_at(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        let c = b[i];
        self.segment_end(c);
        if i < self.aws_until
            && is(B64, c)
            && self.boundary(i, |x| is(B64, x))
            && let Some(hit) = self.aws_secret(i)
        {
            return Some(hit);
        }
        match c {
            b'-' => self.pem(i).or_else(|| self.flag(i)),
            b':' => self.url(i),
            b'<' => self.xml(i),
            _ if c.is_ascii_alphanumeric() || c == b'_' => {
                if !self.boundary(i, |x| x.is_ascii_alphanumeric()) {
                    return None;
                }
                if let Some(hit) = self.token(i) {
                    return Some(hit);
                }
                if !self.boundary(i, |x| x.is_ascii_alphanumeric() || x == b'_') {
                    return None;
                }
                self.context_word(i);
                if starts_ci(b, i, b"authorization") && !b.get(i + 13).is_some_and(|&x| is(Name, x))
                {
                    return self.header(i + 13);
                }
                self.assignment(i)
            }
            _ => None,
        }
    }

    /// A token of a known format starting at `i`.
    fn token(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        let c = b[i];
        for r in rules_for(c) {
            if !b[i..].starts_with(r.prefix) {
                continue;
            }
            let from = i + r.prefix.len();
            let end = self.runs.end(b, r.class, from);
            let n = end - from;
            if n >= r.min && (r.max == 0 || n <= r.max) && (!r.digit || self.digit_in(from, end)) {
                return Some((if r.keep_prefix { from } else { i }, end, r.label));
            }
        }
        match c {
            b'A' => {
                if let Some(hit) = self.aws_id(i) {
                    return Some(hit);
                }
            }
            b'e' if b[i..].starts_with(b"eyJ") => {
                if let Some(hit) = self.jwt(i) {
                    return Some(hit);
                }
            }
            b'M' | b'N' | b'O' => {
                if let Some(hit) = self.discord_bot(i) {
                    return Some(hit);
                }
            }
            b'B' | b'b' => {
                if let Some(hit) = self.bearer(i) {
                    return Some(hit);
                }
            }
            _ => {}
        }
        self.azure_secret(i)
    }

    /// Whether `from..end`, the tail of a run, holds a digit. The last digit of each run is
    /// found once (`sk-sk-sk-...` asks about one run at every `sk`).
    fn digit_in(&mut self, from: usize, end: usize) -> bool {
        if self.last_digit.0 != end {
            let last = self.b[..end].iter().rposition(|&x| !is(Token, x));
            let run_start = last.map_or(0, |k| k + 1).min(from);
            let digit = self.b[run_start..end].iter().rposition(u8::is_ascii_digit);
            self.last_digit = (end, digit.map(|k| run_start + k));
        }
        self.last_digit.1.is_some_and(|k| k >= from)
    }

    fn aws_id(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        let p = AWS_IDS.iter().find(|p| b[i..].starts_with(p))?;
        let from = i + p.len();
        let n = self.runs.end(b, Class::UpperDigit, from) - from;
        // 16 after a four-letter prefix; `A3T` is followed by one more before the 16.
        let want = 20 - p.len();
        if !(want..=want + 4).contains(&n) {
            return None;
        }
        let end = from + n;
        self.aws_until = end + AWS_WINDOW;
        Some((i, end, "[redacted:aws-key]"))
    }

    /// A 40-character base64 run near an AWS key id or name: the secret access key.
    fn aws_secret(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        let end = self.runs.end(b, B64, i);
        let run = &b[i..end];
        let mixed = run.iter().any(u8::is_ascii_uppercase)
            && run.iter().any(u8::is_ascii_lowercase)
            && run
                .iter()
                .any(|&x| x.is_ascii_digit() || x == b'/' || x == b'+');
        (run.len() == 40 && mixed).then_some((i, end, "[redacted:aws-secret]"))
    }

    /// Three base64url parts, the first (a JSON header) starting `eyJ`.
    fn jwt(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        let e1 = self.runs.end(b, Token, i);
        if e1 - i < 10 || b.get(e1) != Some(&b'.') {
            return None;
        }
        let e2 = self.runs.end(b, Token, e1 + 1);
        if e2 - e1 - 1 < 2 || b.get(e2) != Some(&b'.') {
            return None;
        }
        let e3 = self.runs.end(b, Token, e2 + 1);
        Some((i, e3, "[redacted:jwt]"))
    }

    /// A Discord bot token: three base64url parts of 23-28, 6-7 and 27+ characters.
    fn discord_bot(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        let e1 = self.runs.end(b, Token, i);
        if !(23..=28).contains(&(e1 - i)) || b.get(e1) != Some(&b'.') {
            return None;
        }
        let e2 = self.runs.end(b, Token, e1 + 1);
        if !(6..=7).contains(&(e2 - e1 - 1)) || b.get(e2) != Some(&b'.') {
            return None;
        }
        let e3 = self.runs.end(b, Token, e2 + 1);
        (e3 - e2 > 27).then_some((i, e3, "[redacted:discord-token]"))
    }

    /// An Azure AD client secret: three characters, a digit, `Q~`, then 31 or more.
    fn azure_secret(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        if b.len() < i + 6 + 31
            || b[i + 4] != b'Q'
            || b[i + 5] != b'~'
            || !b[i + 3].is_ascii_digit()
            || !b[i..i + 3].iter().all(|&x| is(Class::Azure, x))
        {
            return None;
        }
        let end = self.runs.end(b, Class::Azure, i + 6);
        (end - i - 6 >= 31).then_some((i, end, "[redacted:azure-secret]"))
    }

    /// `Bearer <token>` anywhere, and `Basic <base64>` written as in a header.
    fn bearer(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        let (basic, word) = if starts_ci(b, i, b"bearer") {
            (false, 6)
        } else if b[i..].starts_with(b"Basic") {
            (true, 5)
        } else {
            return None;
        };
        let mut from = i + word;
        let spaces = b[from..].iter().take_while(|&&x| x == b' ').count();
        if spaces == 0 {
            return None;
        }
        from += spaces;
        let class = if basic { B64 } else { Class::Cred };
        let end = self.runs.end(b, class, from);
        let cred = &b[from..end];
        // "bearer authentication" and "Basic Usage" are prose: a credential has something
        // other than letters in it (or, for a bearer token, is long).
        let not_a_word = cred.iter().any(|x| !x.is_ascii_alphabetic())
            || (!basic && cred.len() >= 24)
            || (basic && cred.iter().skip(1).any(u8::is_ascii_uppercase));
        (cred.len() >= 8 && not_a_word).then_some((from, end, REDACTED))
    }

    /// After the name `Authorization` (any case, also `Proxy-Authorization`): the credential,
    /// with or without a scheme word before it.
    fn header(&mut self, mut j: usize) -> Option<Hit> {
        let b = self.b;
        if matches!(b.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        j += b[j..]
            .iter()
            .take_while(|&&x| x == b' ' || x == b'\t')
            .count();
        match b.get(j) {
            Some(b':' | b'=') => j += 1,
            _ => return None,
        }
        j += b[j..]
            .iter()
            .take_while(|&&x| matches!(x, b' ' | b'\t' | b'"' | b'\''))
            .count();
        let word = self.runs.end(b, Alnum, j);
        let spaces = b[word..].iter().take_while(|&&x| x == b' ').count();
        let from = if word > j && spaces > 0 {
            word + spaces
        } else {
            j
        };
        let end = self.runs.end(b, Class::Cred, from);
        (end > from).then_some((from, end, REDACTED))
    }

    /// Words that change what follows: `aws` opens the window for a secret key; `mysql`,
    /// `sshpass` and `docker login` make `-p` a password flag.
    fn context_word(&mut self, i: usize) {
        let b = self.b;
        if starts_ci(b, i, b"aws") {
            self.aws_until = self.aws_until.max(i + AWS_WINDOW);
        }
        let end = self.runs.end(b, Alnum, i);
        let word = &b[i..end];
        if word.len() > 10 {
            return;
        }
        if word.starts_with(b"mysql") || word == b"mariadb" {
            self.pflag = PFlag::Glued;
        } else if word == b"sshpass" || (word == b"login" && self.container) {
            self.pflag = PFlag::Any;
        }
        // `docker login`, `helm registry login`: the command word right before.
        self.container = matches!(
            word,
            b"docker" | b"podman" | b"nerdctl" | b"buildah" | b"skopeo" | b"helm" | b"oras"
        ) || (self.container && word == b"registry");
    }

    /// A PEM or PGP private key block: its body is replaced, up to the END line (or the end of
    /// the text, when it is cut short). Line ends may be LF, CRLF, escaped, or absent.
    fn pem(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        if !starts_ci(b, i, b"-----BEGIN ") {
            return None;
        }
        // The label (`RSA PRIVATE KEY`) runs to the next `-----`. Labels never overlap (the next
        // BEGIN ends this one), so this stays linear.
        let label_start = i + 11;
        let mut dashes = label_start;
        while !b[dashes..].starts_with(b"-----") {
            let x = *b.get(dashes)?;
            if !(x.is_ascii_alphanumeric() || matches!(x, b' ' | b'_' | b'-')) {
                return None;
            }
            dashes += 1;
        }
        let label = &b[label_start..dashes];
        let private = |suffix: &[u8]| {
            label.len() >= suffix.len()
                && label[label.len() - suffix.len()..].eq_ignore_ascii_case(suffix)
        };
        if !private(b"PRIVATE KEY") && !private(b"PRIVATE KEY BLOCK") {
            return None;
        }
        let body = dashes + 5;
        let (end, closed) = match find(b, body, b"-----END") {
            Some(e) => (e, true),
            None => (b.len(), false),
        };
        let rest = &b[body..end];
        let repl = match (
            rest.starts_with(b"\r\n"),
            rest.starts_with(b"\n"),
            rest.starts_with(b"\\n"),
            closed,
        ) {
            (true, _, _, true) => "\r\n[redacted:private-key]\r\n",
            (true, _, _, false) => "\r\n[redacted:private-key]",
            (_, true, _, true) => "\n[redacted:private-key]\n",
            (_, true, _, false) => "\n[redacted:private-key]",
            (_, _, true, true) => "\\n[redacted:private-key]\\n",
            (_, _, true, false) => "\\n[redacted:private-key]",
            (_, _, _, true) => " [redacted:private-key] ",
            (_, _, _, false) => " [redacted:private-key]",
        };
        Some((body, end, repl))
    }

    /// The value of a quoted or bare shell word at `j`: `'x y'`, `"x"`, `x`.
    fn word_value(&mut self, j: usize) -> Option<(usize, usize)> {
        let b = self.b;
        match *b.get(j)? {
            q @ (b'"' | b'\'') => {
                let start = j + 1;
                let end = b[start..]
                    .iter()
                    .position(|&x| x == q || x == b'\n')
                    .map_or(b.len(), |k| start + k);
                (end > start).then_some((start, end))
            }
            b'-' | b'$' => None,
            _ => {
                let end = self.runs.end(b, Arg, j);
                (end > j).then_some((j, end))
            }
        }
    }

    /// Command-line flags: `--password x`, `--api-key=x`, `-p'x'` (and `-px` after `mysql`,
    /// `-p x` after `sshpass` or `login`), `-u user:pass` / `--user user:pass`.
    fn flag(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        if i > 0 && i != self.hit_end && (is(Name, b[i - 1]) || !self.boundary(i, |x| is(Name, x)))
        {
            return None;
        }
        match b.get(i + 1)? {
            b'-' => {
                let start = i + 2;
                if !b.get(start)?.is_ascii_alphabetic() {
                    return None;
                }
                let end = self.runs.end(b, Name, start);
                let name = std::str::from_utf8(&b[start..end]).ok()?;
                let user = name == "user";
                if !user && !is_secret_name(name) {
                    return None;
                }
                let sep = match b.get(end) {
                    Some(b'=') => 1,
                    Some(b' ' | b'\t') => b[end..].iter().take_while(|&&x| x == b' ').count(),
                    _ => return None,
                };
                let (vs, ve) = self.word_value(end + sep.max(1))?;
                if user {
                    return user_pass(b, vs, ve);
                }
                Some((vs, ve, REDACTED))
            }
            b'p' => {
                let j = i + 2;
                match *b.get(j)? {
                    b'"' | b'\'' => self.word_value(j).map(|(s, e)| (s, e, REDACTED)),
                    b' ' if self.pflag == PFlag::Any => {
                        let k = j + b[j..].iter().take_while(|&&x| x == b' ').count();
                        self.word_value(k).map(|(s, e)| (s, e, REDACTED))
                    }
                    x if self.pflag != PFlag::No && is(Arg, x) => {
                        self.word_value(j).map(|(s, e)| (s, e, REDACTED))
                    }
                    _ => None,
                }
            }
            b'u' => {
                let j = i + 2;
                let k = j + b[j..].iter().take_while(|&&x| x == b' ').count();
                let (vs, ve) = self.word_value(k)?;
                user_pass(b, vs, ve)
            }
            _ => None,
        }
    }

    /// `scheme://user:password@host`: the password.
    fn url(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        if !b[i..].starts_with(b"://") || i == 0 || !b[i - 1].is_ascii_alphanumeric() {
            return None;
        }
        let from = i + 3;
        // The authority ends at the path, query, fragment or the end of the word. Authorities
        // never overlap (each ends before the next `//`), so this stays linear.
        let end = b[from..]
            .iter()
            .take(1024)
            .position(|&x| {
                x.is_ascii_whitespace()
                    || matches!(
                        x,
                        b'/' | b'?' | b'#' | b'"' | b'\'' | b'<' | b'>' | b'`' | b'\\'
                    )
            })
            .map_or(b.len().min(from + 1024), |k| from + k);
        let at = from + b[from..end].iter().rposition(|&x| x == b'@')?;
        let colon = from + b[from..at].iter().position(|&x| x == b':')?;
        // A `[redacted:...]` label is not a user name.
        (at > colon + 1 && !b[from..colon].contains(&b'[')).then_some((colon + 1, at, REDACTED))
    }

    /// `<password>value</password>` and other secret-named XML elements.
    fn xml(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        let start = i + 1;
        if !b.get(start)?.is_ascii_alphabetic() {
            return None;
        }
        let end = self.runs.end(b, Name, start);
        if b.get(end) != Some(&b'>') || !is_secret_name(std::str::from_utf8(&b[start..end]).ok()?) {
            return None;
        }
        let vs = end + 1;
        let ve = b[vs..]
            .iter()
            .position(|&x| x == b'<' || x == b'\n')
            .map_or(b.len(), |k| vs + k);
        (ve > vs).then_some((vs, ve, REDACTED))
    }

    /// An env-style assignment of a secret-named variable starting at `i`, such as
    /// `API_KEY=abc`, `export GITHUB_TOKEN="abc"`, `password: hunter2`, `"api_key": "abc"` or
    /// `api_key => 'abc'`. Returns the span of the value.
    fn assignment(&mut self, i: usize) -> Option<Hit> {
        let b = self.b;
        if !(b[i].is_ascii_alphabetic() || b[i] == b'_') {
            return None;
        }
        let name_end = self.runs.end(b, Name, i);
        let mut j = name_end;
        // A quoted name: `"api_key": ...`.
        if matches!(b.get(j), Some(b'"' | b'\'')) {
            j += 1;
        }
        j += b[j..]
            .iter()
            .take_while(|&&x| x == b' ' || x == b'\t')
            .count();
        match (b.get(j), b.get(j + 1)) {
            (Some(b'='), Some(b'=' | b'~')) | (Some(b':'), Some(b':')) => return None,
            (Some(b':' | b'?'), Some(b'=')) | (Some(b'='), Some(b'>')) => j += 2,
            (Some(b'=' | b':'), _) => j += 1,
            _ => return None,
        }
        if name_end - i > MAX_NAME || !is_secret_name(std::str::from_utf8(&b[i..name_end]).ok()?) {
            return None;
        }
        j += b[j..]
            .iter()
            .take_while(|&&x| x == b' ' || x == b'\t')
            .count();
        match *b.get(j)? {
            q @ (b'"' | b'\'') => {
                let start = j + 1;
                let mut k = start;
                while k < b.len() && b[k] != q && b[k] != b'\n' {
                    k += if b[k] == b'\\' && q == b'"' { 2 } else { 1 };
                }
                let end = k.min(b.len());
                // `"${{ secrets.X }}"` and `"$VAR"` are references, not secrets.
                (end > start && b[start] != b'$').then_some((start, end, REDACTED))
            }
            // A reference to another variable is not a secret.
            b'$' => None,
            _ => {
                let end = self.runs.end(b, Val, j);
                let value = std::str::from_utf8(&b[j..end]).ok()?;
                // `key = compute(x)` is code, not a secret: only whole token-like values count.
                let next = b.get(end).copied();
                let ends_cleanly =
                    next.is_none_or(|x| x.is_ascii_whitespace() || b";,&|)}]\"'`\\".contains(&x));
                let word = NOT_VALUES.iter().any(|w| value.eq_ignore_ascii_case(w));
                (end > j && ends_cleanly && !word).then_some((j, end, REDACTED))
            }
        }
    }
}

/// The password of a `user:password` value, unless it is `uid:gid` (`docker run -u 1000:1000`).
fn user_pass(b: &[u8], vs: usize, ve: usize) -> Option<Hit> {
    let colon = vs + b[vs..ve].iter().position(|&x| x == b':')?;
    let digits = |s: &[u8]| !s.is_empty() && s.iter().all(u8::is_ascii_digit);
    // A `[redacted:...]` label is not a user name.
    if colon + 1 >= ve
        || b[vs..colon].contains(&b'[')
        || (digits(&b[vs..colon]) && digits(&b[colon + 1..ve]))
    {
        return None;
    }
    Some((colon + 1, ve, REDACTED))
}

// ---------------------------------------------------------------------------------------------
// JSON text, possibly cut short.

/// Redacts JSON text that may be cut anywhere (the kept prefix of an oversized payload): every
/// string literal is decoded (all escapes, surrogate pairs included), redacted as text, and
/// encoded again; the values of secret-named members are replaced whole (every string inside,
/// when the value is an object or array). A literal cut by the end of the text is decoded and
/// redacted too, and loses its last partial word (it may be the start of a secret). Text outside
/// literals is redacted as plain text, so input that is not JSON at all is covered as well.
pub fn redact_json_text(text: &str) -> String {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len() + 64);
    // Per open container: (is an object, its strings are all secret).
    let mut stack: Vec<(bool, bool)> = Vec::new();
    let mut expect_key = false;
    // The next value belongs to a secret-named member.
    let mut pending = false;
    let mut aws_near = false;
    let mut seg = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' => {
                pending |= outside(&text[seg..i], &mut out, &mut aws_near);
                let (decoded, end, closed) = decode_literal(text, i + 1);
                let after = end
                    + b[end..]
                        .iter()
                        .take_while(|x| x.is_ascii_whitespace())
                        .count();
                let is_key = if closed {
                    b.get(after) == Some(&b':')
                } else {
                    expect_key
                };
                let in_secret = stack.last().is_some_and(|&(_, s)| s);
                if is_key {
                    encode(&redact_with(&decoded, &mut aws_near), closed, &mut out);
                    pending = is_secret_name(&decoded);
                } else {
                    if (pending || in_secret) && !decoded.is_empty() {
                        encode(REDACTED, closed, &mut out);
                    } else {
                        let mut r = redact_with(&decoded, &mut aws_near).into_owned();
                        if !closed {
                            drop_partial_word(&mut r);
                        }
                        encode(&r, closed, &mut out);
                    }
                    pending = false;
                }
                i = end;
                seg = end;
            }
            c @ (b'{' | b'[') => {
                let secret = pending || stack.last().is_some_and(|&(_, s)| s);
                stack.push((c == b'{', secret));
                pending = false;
                expect_key = c == b'{';
                i += 1;
            }
            b'}' | b']' => {
                stack.pop();
                expect_key = false;
                pending = false;
                i += 1;
            }
            b',' => {
                expect_key = stack.last().is_some_and(|&(obj, _)| obj);
                pending = false;
                i += 1;
            }
            b':' => {
                expect_key = false;
                i += 1;
            }
            _ => i += 1,
        }
    }
    outside(&text[seg..], &mut out, &mut aws_near);
    out
}

/// Copies text between literals, redacted; true when it ends like `password=` (the next literal
/// is then a secret, in text that is not JSON).
fn outside(seg: &str, out: &mut String, aws_near: &mut bool) -> bool {
    out.push_str(&redact_with(seg, aws_near));
    let t = seg.trim_end().as_bytes();
    let Some((&op, before)) = t.split_last() else {
        return false;
    };
    if op != b'=' && op != b':' {
        return false;
    }
    let before = before.trim_ascii_end();
    let start = before
        .iter()
        .rposition(|&x| !is(Name, x))
        .map_or(0, |k| k + 1);
    std::str::from_utf8(&before[start..]).is_ok_and(is_secret_name)
}

/// Drops the last partial word of a cut string (it may be the first half of a secret).
fn drop_partial_word(s: &mut String) {
    let keep = s
        .char_indices()
        .rev()
        .take(512)
        .find(|&(_, c)| !c.is_ascii() || !is(Val, c as u8))
        .map(|(k, c)| k + c.len_utf8());
    let keep = match keep {
        Some(k) => k,
        None if s.len() <= 512 => 0,
        None => return,
    };
    if keep < s.len() && !s.ends_with(']') {
        s.truncate(keep);
        s.push_str("[cut]");
    }
}

/// Decodes the JSON string literal whose content starts at `start`. Returns the text, the offset
/// after the closing quote (or the end), and whether the literal was closed. An escape cut by
/// the end is dropped; a lone surrogate becomes U+FFFD.
fn decode_literal(text: &str, start: usize) -> (String, usize, bool) {
    let b = text.as_bytes();
    let mut s = String::new();
    let mut run = start;
    let mut k = start;
    let hex4 = |at: usize| -> Option<u32> {
        let h = b.get(at..at + 4)?;
        u32::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
    };
    while k < b.len() {
        match b[k] {
            b'"' => {
                s.push_str(&text[run..k]);
                return (s, k + 1, true);
            }
            b'\\' => {
                s.push_str(&text[run..k]);
                let Some(&e) = b.get(k + 1) else {
                    return (s, b.len(), false);
                };
                k += 2;
                match e {
                    b'n' => s.push('\n'),
                    b't' => s.push('\t'),
                    b'r' => s.push('\r'),
                    b'b' => s.push('\u{8}'),
                    b'f' => s.push('\u{c}'),
                    b'u' => {
                        if b.len() < k + 4 {
                            return (s, b.len(), false);
                        }
                        let Some(u) = hex4(k) else {
                            s.push('\u{fffd}');
                            run = k;
                            continue;
                        };
                        k += 4;
                        let c = if (0xD800..0xDC00).contains(&u) {
                            if b.len() < k + 6 && b[k..].iter().zip(b"\\u").all(|(x, y)| x == y) {
                                // The low half was cut off.
                                return (s, b.len(), false);
                            }
                            match (b.get(k..k + 2), hex4(k + 2)) {
                                (Some(b"\\u"), Some(lo)) if (0xDC00..0xE000).contains(&lo) => {
                                    k += 6;
                                    char::from_u32(0x10000 + ((u - 0xD800) << 10) + (lo - 0xDC00))
                                }
                                _ => None,
                            }
                        } else {
                            char::from_u32(u)
                        };
                        s.push(c.unwrap_or('\u{fffd}'));
                    }
                    // `\"`, `\\`, `\/`, and anything else taken as itself.
                    _ => {
                        run = k - 1;
                        continue;
                    }
                }
                run = k;
            }
            _ => k += 1,
        }
    }
    s.push_str(&text[run..]);
    (s, b.len(), false)
}

/// Appends `s` as a JSON string literal (without the closing quote when the original had none).
fn encode(s: &str, close: bool, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    if close {
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(s: &str) -> String {
        redact_str(s).into_owned()
    }

    #[test]
    fn known_token_formats_are_removed() {
        let cases = [
            (
                "key sk-ant-api03-abcdefghijklmnopqrstuvwxyz0123456789-_AA here",
                "key [redacted:anthropic-key] here",
            ),
            (
                "AIzaSyA1234567890abcdefghijklmnopqrstuv",
                "[redacted:google-key]",
            ),
            (
                "tok ya29.a0AfH6SMBx-abcdefghijklmnopqrstu.vw end",
                "tok [redacted:google-token] end",
            ),
            (
                "ghp_abcdefghijklmnopqrstuvwxyz0123456789",
                "[redacted:github-token]",
            ),
            (
                "github_pat_11ABCDEFG0123456789_abcdefghijklmnopqrstuvwxyz",
                "[redacted:github-token]",
            ),
            ("id AKIAIOSFODNN7EXAMPLE.", "id [redacted:aws-key]."),
            ("AKIAIOSFODNN7EXAMPLE_prod", "[redacted:aws-key]_prod"),
            (
                "curl -H 'Authorization: Bearer abc.def-ghi_jkl'",
                "curl -H 'Authorization: Bearer [redacted]'",
            ),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "{input}");
        }
    }

    #[test]
    fn assignments_of_secret_names_lose_their_values() {
        let cases = [
            (
                "export GEMINI_API_KEY=abc123 && run",
                "export GEMINI_API_KEY=[redacted] && run",
            ),
            ("DB_PASSWORD='p a s s' x", "DB_PASSWORD='[redacted]' x"),
            ("GITHUB_TOKEN=\"x\\\"y\"", "GITHUB_TOKEN=\"[redacted]\""),
            (
                "client_secret: s3cr3t\nnext: 1",
                "client_secret: [redacted]\nnext: 1",
            ),
            ("{\"api_key\": \"abc\"}", "{\"api_key\": \"[redacted]\"}"),
            (
                "AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG",
                "AWS_SECRET_ACCESS_KEY=[redacted]",
            ),
            ("DB_PASS=hunter2", "DB_PASS=[redacted]"),
            ("MYSQL_PWD=hunter2", "MYSQL_PWD=[redacted]"),
            ("API_KEY_1=abc", "API_KEY_1=[redacted]"),
            ("SECRET_KEY_BASE=abc", "SECRET_KEY_BASE=[redacted]"),
            ("PGPASSWORD=abc psql", "PGPASSWORD=[redacted] psql"),
        ];
        for (input, want) in cases {
            assert_eq!(r(input), want, "{input}");
        }
    }

    #[test]
    fn secret_names_are_told_from_ordinary_ones() {
        for name in [
            "api_key",
            "apiKey",
            "APIKEY",
            "DB_PASS",
            "dbPass",
            "MYSQL_PWD",
            "API_KEY_1",
            "SECRET_KEY_BASE",
            "PGPASSWORD",
            "x-api-key",
            "client-secret",
            "basic_auth",
            "Authorization",
            "password",
        ] {
            assert!(is_secret_name(name), "{name}");
        }
        for name in [
            "monkey",
            "compass",
            "PWD",
            "OLDPWD",
            "max_tokens",
            "token_type",
            "secret_name",
            "password_file",
            "access_key_id",
            "session_id",
            "tool_use_id",
            "path",
        ] {
            assert!(!is_secret_name(name), "{name}");
        }
    }

    #[test]
    fn ordinary_text_is_left_alone() {
        let cases = [
            "task-ant-abcdefghijklmnopqrstuvwxyz0123456789",
            "let key = compute(x);",
            "TOKEN=$VAULT_TOKEN",
            "if a == b { key }",
            "std::key::Key",
            "sk-ant-short",
            "tool_use_id toolu_msg_1",
            "the bearer of good news",
            "bearer authentication is described in RFC 6750",
            "Basic Usage",
            "AKIA is a prefix",
            "héllo wörld ✓ KEY",
            "cd $PWD && ls",
            "PWD=/home/user/project",
            "docker run -u 1000:1000 image",
            "git push -u origin main",
            "mkdir -p src/bin",
        ];
        for input in cases {
            assert!(matches!(redact_str(input), Cow::Borrowed(_)), "{input}");
        }
    }

    #[test]
    fn private_keys_lose_their_body() {
        let pem = "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk\nAAAA\n-----END OPENSSH PRIVATE KEY-----\n";
        assert_eq!(
            r(pem),
            "-----BEGIN OPENSSH PRIVATE KEY-----\n[redacted:private-key]\n-----END OPENSSH PRIVATE KEY-----\n"
        );
        let crlf =
            "-----BEGIN RSA PRIVATE KEY-----\r\nMIIEow\r\nAAAA\r\n-----END RSA PRIVATE KEY-----";
        assert_eq!(
            r(crlf),
            "-----BEGIN RSA PRIVATE KEY-----\r\n[redacted:private-key]\r\n-----END RSA PRIVATE KEY-----"
        );
        let one_line = "k -----BEGIN PRIVATE KEY----- MIIEvQIBADANBg -----END PRIVATE KEY-----";
        assert_eq!(
            r(one_line),
            "k -----BEGIN PRIVATE KEY----- [redacted:private-key] -----END PRIVATE KEY-----"
        );
        let cut = "-----BEGIN EC PRIVATE KEY-----\nMHcCAQEEI";
        assert_eq!(
            r(cut),
            "-----BEGIN EC PRIVATE KEY-----\n[redacted:private-key]"
        );
        let cert = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----";
        assert_eq!(r(cert), cert);
    }

    #[test]
    fn json_values_are_walked_and_secret_members_replaced() {
        let mut v = json!({
            "tool_input": {"command": "ANTHROPIC_API_KEY=sk-ant-zzzzzzzzzzzzzzzzzzzzzzzz claude",
                           "env": {"OPENAI_API_KEY": "plain", "count_token": 3}},
            "list": ["ghp_abcdefghijklmnopqrstuvwxyz0123456789"],
            "password": {"value": "hunter2", "old": ["a", "b"]},
            "tool_use_id": "toolu_1"
        });
        assert_eq!(redact_value(&mut v), 6);
        assert_eq!(
            v["tool_input"]["command"],
            "ANTHROPIC_API_KEY=[redacted] claude"
        );
        assert_eq!(v["tool_input"]["env"]["OPENAI_API_KEY"], REDACTED);
        assert_eq!(v["tool_input"]["env"]["count_token"], 3);
        assert_eq!(v["list"][0], "[redacted:github-token]");
        assert_eq!(
            v["password"],
            json!({"value": REDACTED, "old": [REDACTED, REDACTED]})
        );
        assert_eq!(v["tool_use_id"], "toolu_1");
        // Redacting twice changes nothing more.
        assert_eq!(redact_value(&mut v), 0);
    }

    #[test]
    fn json_text_is_decoded_before_it_is_redacted() {
        let text = r#"{"a":"line\nAPI_KEY=abc\u0041","password":{"x":["y"]},"k":"\ud83d\ude00 ok","cut":"ghp_abcdefghij"#;
        let out = redact_json_text(text);
        assert_eq!(
            out,
            r#"{"a":"line\nAPI_KEY=[redacted]","password":{"x":["[redacted]"]},"k":"😀 ok","cut":"[cut]"#
        );
    }
}
