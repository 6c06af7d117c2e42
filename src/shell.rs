//! Shell text: quoting a word for a shell, and finding the files a shell command writes.
//!
//! [`writes`] reads a Bash (Claude Code) or run_shell_command (Gemini CLI) command for the files
//! it writes, without running anything, in time and memory linear in the command and with a hard
//! bound on the work ([`Limits`]; [`Writes::bound`] says when one was hit). The hook driver calls
//! it before the store's write transaction starts, so that the transaction gets a ready list.
//!
//! Each file found is either **certain** (the command writes it whenever the simple command that
//! names it runs) or **maybe** (it may write it, or the parse is not sure). A certain write to a
//! file another agent holds is denied before the command runs; the rest are reported afterwards.
//!
//! Certain, to a literal path:
//! - redirections `>`, `>>`, `>|`, `&>`, `&>>`, `N>`, `N>>`, and `>&FILE` (not `N>&M`, not
//!   `/dev/...`);
//! - `tee [-a] FILE...`; `truncate FILE...`; `shred FILE...`; `dd of=FILE`;
//! - `sed -i` / `--in-place` on its file arguments;
//! - the destinations of `cp`, `mv` and `install` (`-t DIR` included; into a directory as
//!   `DIR/<name>`), and the sources of `mv`, which disappear; unless `-n`, `-u`, `-i` (or their
//!   long forms) make the write depend on what exists;
//! - `rm` and `unlink` on their arguments (deleting a file destroys its holder's work as surely as
//!   overwriting it), unless `-i` / `-I` asks first.
//!
//! Maybe: `touch` (it changes times, not content), `ln` destinations, `<>` (opened, not
//! truncated), the forms above with the flags named, every write of a command that has a word
//! with a variable, glob or substitution among its arguments (it could expand to an option or to
//! several words), of a command cut by a bound, of a function body, and every write at all when
//! the command does not parse (an unterminated quote, an unbalanced `)`: Bash would run none of
//! that line).
//!
//! A write behind `&&`, `||`, `if` or `case` counts as certain: the command asks for it, and a
//! deny only costs the agent a retry, while a write into another agent's file costs its work.
//!
//! Followed: `;`, `&&`, `||`, `|`, `&`, newlines; `cd DIR` (a subshell's `cd` ends with it);
//! `sudo`, `env`, `command`, `nohup`, `time`, `exec`, `nice`, `timeout`, reserved words and
//! leading `VAR=value` assignments before the program; comments; here-documents (their bodies are
//! text, not commands); `$(...)`, `${...}` and backquotes are skipped as one unknown word.
//!
//! Not found: paths with variables, substitutions, `~` or globs (`$HOME/x`, `*.rs`), writes inside
//! a command substitution, writes by the programs a command runs (`python script.py`, `make`,
//! `git checkout`, `find -delete`, `xargs`), and files under a directory that `rm -r` removes.
//! Touches the filesystem only through `paths::canonical`'s lookups and one `is_dir` per
//! `cp`/`mv`/`install`/`ln` destination, both counted against [`Limits::lookups`].

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::paths;

/// Quotes a word for a POSIX shell: as is when it is plainly safe, else in single quotes.
pub fn quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"/._-+=:,@%".contains(&b))
    {
        return s.to_owned();
    }
    format!("'{}'", s.replace('\'', "'\\''"))
}

/// Bounds on the work of one [`writes`] call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Bytes of the command read; the rest is not looked at.
    pub bytes: usize,
    /// Words (and operators) kept from the text read.
    pub words: usize,
    /// Paths resolved (each a `paths::canonical` call).
    pub paths: usize,
    /// Path components looked up across all resolutions: each costs about one `lstat`.
    pub lookups: usize,
}

impl Limits {
    /// The bounds on the hook path: a command of a few thousand names is read whole; beyond,
    /// the hook stays within a few milliseconds of lookups and says the bound was hit.
    pub const HOOK: Limits = Limits {
        bytes: 1 << 20,
        words: 1 << 16,
        paths: 1024,
        lookups: 16 * 1024,
    };
}

/// Which bound of [`Limits`] was hit first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// The command is longer than [`Limits::bytes`].
    Bytes,
    /// The text read holds more than [`Limits::words`] words.
    Words,
    /// More files than [`Limits::paths`] or [`Limits::lookups`] allow: the rest are not listed.
    Paths,
}

/// What one [`writes`] call did, for the bounds' tests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Work {
    /// Bytes of the command read.
    pub bytes: usize,
    /// Words and operators tokenised.
    pub words: usize,
    /// Paths resolved.
    pub paths: usize,
    /// Path components looked up (an estimate of the `lstat` calls).
    pub lookups: usize,
    /// Every step of every loop, scanning and classifying: linear in the command's length.
    pub steps: usize,
}

/// One file a command writes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Canonical absolute path (see `paths::canonical`).
    pub path: PathBuf,
    /// True when the command writes it whenever the simple command naming it runs (see the
    /// module docs); false when it only may.
    pub certain: bool,
}

/// The files a command writes, as far as its text shows.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Writes {
    /// In the order the command names them, without duplicates (a file named both ways is
    /// certain).
    pub targets: Vec<Target>,
    /// Set when a bound was hit: the list may be incomplete.
    pub bound: Option<Bound>,
    pub work: Work,
}

impl Writes {
    /// The files written for certain.
    pub fn certain(&self) -> impl Iterator<Item = &Path> {
        self.targets
            .iter()
            .filter(|t| t.certain)
            .map(|t| t.path.as_path())
    }
}

/// The files `command`, run in `cwd`, writes, within [`Limits::HOOK`].
pub fn writes(command: &str, cwd: &str) -> Writes {
    writes_within(command, cwd, &Limits::HOOK)
}

/// [`writes`] with other bounds.
pub fn writes_within(command: &str, cwd: &str, limits: &Limits) -> Writes {
    let mut lexer = Lexer::new(command, limits);
    lexer.run();
    let Lexer {
        tokens,
        shaky,
        cut,
        steps,
        i,
        words,
        ..
    } = lexer;
    let mut c = Classifier {
        limits,
        cwd: Some(PathBuf::from(cwd)),
        cwd_parts: Path::new(cwd).components().count(),
        stack: Vec::new(),
        shaky,
        in_function: false,
        out: Vec::new(),
        index: HashMap::new(),
        bound: cut,
        paths_full: false,
        work: Work {
            bytes: i,
            words,
            steps,
            ..Work::default()
        },
    };
    c.run(tokens, cut.is_some());
    Writes {
        targets: c.out,
        bound: c.bound,
        work: c.work,
    }
}

/// A redirection operator; the next word is its operand.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Redir {
    /// `>`, `>>`, `>|`, `&>`, `&>>`, `N>`, `N>>`: truncates or appends.
    Write,
    /// `>&WORD` without a descriptor number: a duplication when WORD is digits or `-`, else a
    /// write of stdout and stderr to the file WORD.
    DupOrWrite,
    /// `<>`: opened for reading and writing, not truncated.
    ReadWrite,
    /// `<<` / `<<-`: the operand is a here-document's delimiter.
    HereDoc,
    /// `<`, `<&`, `<<<`, `N>&M`: the operand is not written.
    Other,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A word after quote removal; `literal` is false when its value cannot be known (a `$`, a
    /// backquote, a glob or `~` outside single quotes).
    Word {
        text: String,
        literal: bool,
    },
    /// `;`, `&&`, `||`, `|`, `&`, newline.
    Sep,
    /// `(` of a subshell.
    Open,
    /// `)`.
    Close,
    Redirect(Redir),
}

/// Splits a command into tokens in one pass over its bytes. Every loop advances `i`, so the work
/// is linear in the bytes read.
struct Lexer<'a> {
    b: &'a [u8],
    /// The byte after the text read, when the command was cut at `limits.bytes`.
    after_cut: Option<u8>,
    max_words: usize,
    i: usize,
    tokens: Vec<Token>,
    word: Vec<u8>,
    literal: bool,
    in_word: bool,
    /// The next word is a here-document delimiter (`true`: `<<-`, leading tabs stripped).
    expect_delimiter: Option<bool>,
    /// Here-documents whose bodies start after the next newline: (delimiter, strip tabs).
    heredocs: Vec<(Vec<u8>, bool)>,
    /// The command does not parse as a whole.
    shaky: bool,
    /// The cut went through quoted text.
    quote_cut: bool,
    cut: Option<Bound>,
    words: usize,
    steps: usize,
}

/// Whether a byte ends an unquoted word.
fn ends_word(c: u8) -> bool {
    b" \t\n;&|<>()".contains(&c)
}

impl<'a> Lexer<'a> {
    fn new(command: &'a str, limits: &Limits) -> Lexer<'a> {
        let all = command.as_bytes();
        let (b, after_cut) = if all.len() > limits.bytes {
            (&all[..limits.bytes], Some(all[limits.bytes]))
        } else {
            (all, None)
        };
        Lexer {
            b,
            after_cut,
            max_words: limits.words,
            i: 0,
            tokens: Vec::new(),
            word: Vec::new(),
            literal: true,
            in_word: false,
            expect_delimiter: None,
            heredocs: Vec::new(),
            shaky: false,
            quote_cut: false,
            cut: None,
            words: 0,
            steps: 0,
        }
    }

    fn at(&self, i: usize) -> Option<u8> {
        self.b.get(i).copied()
    }

    fn push(&mut self, t: Token) {
        // The word bound is hit within a step that pushes more than one token (a word and the
        // `;` after it): what comes after the bound is not read.
        if self.cut == Some(Bound::Words) {
            return;
        }
        self.words += 1;
        self.tokens.push(t);
        if self.words >= self.max_words && self.cut.is_none() {
            self.cut = Some(Bound::Words);
        }
    }

    fn flush(&mut self) {
        if self.in_word {
            let text = String::from_utf8_lossy(&self.word).into_owned();
            if let Some(strip) = self.expect_delimiter.take() {
                self.heredocs.push((self.word.clone(), strip));
            }
            self.push(Token::Word {
                text,
                literal: self.literal,
            });
        }
        self.word.clear();
        self.literal = true;
        self.in_word = false;
    }

    fn run(&mut self) {
        while self.i < self.b.len() && self.cut.is_none() {
            self.steps += 1;
            let c = self.b[self.i];
            match c {
                b' ' | b'\t' => {
                    self.flush();
                    self.i += 1;
                }
                b'\n' => {
                    self.flush();
                    self.push(Token::Sep);
                    self.i += 1;
                    if !self.heredocs.is_empty() {
                        self.skip_heredoc_bodies();
                    }
                }
                b';' => {
                    self.flush();
                    self.push(Token::Sep);
                    self.i += 1;
                }
                b'(' => {
                    self.flush();
                    if self.at(self.i + 1) == Some(b'(') {
                        // `(( ... ))` is arithmetic: its `>` compares.
                        self.skip_balanced(b'(', b')');
                        self.push(Token::Word {
                            text: "((".into(),
                            literal: false,
                        });
                    } else {
                        self.push(Token::Open);
                        self.i += 1;
                    }
                }
                b')' => {
                    self.flush();
                    self.push(Token::Close);
                    self.i += 1;
                }
                b'|' => {
                    self.flush();
                    self.push(Token::Sep);
                    self.i += 1;
                    if matches!(self.at(self.i), Some(b'|' | b'&')) {
                        self.i += 1;
                    }
                }
                b'&' => {
                    self.flush();
                    self.i += 1;
                    if self.at(self.i) == Some(b'>') {
                        // `&>` and `&>>` write.
                        self.i += 1;
                        if self.at(self.i) == Some(b'>') {
                            self.i += 1;
                        }
                        self.push(Token::Redirect(Redir::Write));
                    } else {
                        if self.at(self.i) == Some(b'&') {
                            self.i += 1;
                        }
                        self.push(Token::Sep);
                    }
                }
                b'>' | b'<' => self.redirection(c),
                b'\'' => {
                    self.in_word = true;
                    match memchr(b'\'', self.b, self.i + 1) {
                        Some(end) => {
                            self.word.extend_from_slice(&self.b[self.i + 1..end]);
                            self.steps += end - self.i;
                            self.i = end + 1;
                        }
                        None => self.unterminated(),
                    }
                }
                b'"' => self.double_quoted(),
                b'\\' => {
                    self.in_word = true;
                    match self.at(self.i + 1) {
                        Some(b'\n') | None => {}
                        Some(next) => self.word.push(next),
                    }
                    self.i += 2;
                }
                b'`' => {
                    self.in_word = true;
                    self.literal = false;
                    self.word.push(b'`');
                    self.skip_backquoted();
                }
                b'$' => {
                    self.in_word = true;
                    self.literal = false;
                    self.word.push(b'$');
                    match self.at(self.i + 1) {
                        Some(b'(') => {
                            self.i += 1;
                            self.skip_balanced(b'(', b')');
                        }
                        Some(b'{') => {
                            self.i += 1;
                            self.skip_balanced(b'{', b'}');
                        }
                        _ => self.i += 1,
                    }
                }
                b'#' if !self.in_word => {
                    // A comment, to the end of the line.
                    let end = memchr(b'\n', self.b, self.i).unwrap_or(self.b.len());
                    self.steps += end - self.i;
                    self.i = end;
                }
                b'*' | b'?' | b'[' | b'{' | b'~' => {
                    self.in_word = true;
                    self.literal = false;
                    self.word.push(c);
                    self.i += 1;
                }
                _ => {
                    self.in_word = true;
                    self.word.push(c);
                    self.i += 1;
                }
            }
        }
        self.i = self.i.min(self.b.len());
        if self.cut.is_some() {
            return;
        }
        match self.after_cut {
            None => self.flush(),
            Some(next) => {
                self.cut = Some(Bound::Bytes);
                // A word the cut went through is not the word the command has.
                if ends_word(next) && !self.quote_cut {
                    self.flush();
                }
            }
        }
    }

    /// At `>` or `<`: one redirection operator.
    fn redirection(&mut self, c: u8) {
        // A descriptor number right before the operator belongs to it.
        let fd = self.in_word
            && self.literal
            && !self.word.is_empty()
            && self.word.iter().all(u8::is_ascii_digit);
        if fd {
            self.word.clear();
            self.in_word = false;
        } else {
            self.flush();
        }
        self.i += 1;
        let next = self.at(self.i);
        let redir = if c == b'<' {
            match next {
                Some(b'<') if self.at(self.i + 1) == Some(b'<') => {
                    self.i += 2;
                    Redir::Other
                }
                Some(b'<') => {
                    self.i += 1;
                    let strip = self.at(self.i) == Some(b'-');
                    if strip {
                        self.i += 1;
                    }
                    self.expect_delimiter = Some(strip);
                    Redir::HereDoc
                }
                Some(b'>') => {
                    self.i += 1;
                    Redir::ReadWrite
                }
                Some(b'&') => {
                    self.i += 1;
                    Redir::Other
                }
                _ => Redir::Other,
            }
        } else {
            match next {
                Some(b'>') | Some(b'|') => {
                    self.i += 1;
                    Redir::Write
                }
                Some(b'&') => {
                    self.i += 1;
                    if fd { Redir::Other } else { Redir::DupOrWrite }
                }
                _ => Redir::Write,
            }
        };
        self.push(Token::Redirect(redir));
    }

    fn double_quoted(&mut self) {
        self.in_word = true;
        self.i += 1;
        loop {
            self.steps += 1;
            let Some(c) = self.at(self.i) else {
                return self.unterminated();
            };
            match c {
                b'"' => {
                    self.i += 1;
                    return;
                }
                b'\\' => match self.at(self.i + 1) {
                    Some(n @ (b'"' | b'\\' | b'$' | b'`')) => {
                        self.word.push(n);
                        self.i += 2;
                    }
                    Some(b'\n') => self.i += 2,
                    _ => {
                        self.word.push(b'\\');
                        self.i += 1;
                    }
                },
                b'$' => {
                    self.literal = false;
                    self.word.push(b'$');
                    match self.at(self.i + 1) {
                        Some(b'(') => {
                            self.i += 1;
                            self.skip_balanced(b'(', b')');
                        }
                        Some(b'{') => {
                            self.i += 1;
                            self.skip_balanced(b'{', b'}');
                        }
                        _ => self.i += 1,
                    }
                }
                b'`' => {
                    self.literal = false;
                    self.word.push(b'`');
                    self.skip_backquoted();
                }
                _ => {
                    self.word.push(c);
                    self.i += 1;
                }
            }
        }
    }

    /// From `open` at `i` to after its matching `close`, stepping over quoted text.
    fn skip_balanced(&mut self, open: u8, close: u8) {
        let mut depth = 0usize;
        while let Some(c) = self.at(self.i) {
            self.steps += 1;
            match c {
                b'\\' => self.i += 1,
                b'\'' => match memchr(b'\'', self.b, self.i + 1) {
                    Some(end) => {
                        self.steps += end - self.i;
                        self.i = end;
                    }
                    None => break,
                },
                b'"' => {
                    // Quoted text inside: to the next unescaped `"`.
                    self.i += 1;
                    while let Some(q) = self.at(self.i) {
                        self.steps += 1;
                        match q {
                            b'\\' => self.i += 1,
                            b'"' => break,
                            _ => {}
                        }
                        self.i += 1;
                    }
                }
                _ if c == open => depth += 1,
                _ if c == close => {
                    depth -= 1;
                    if depth == 0 {
                        self.i += 1;
                        return;
                    }
                }
                _ => {}
            }
            self.i += 1;
        }
        self.i = self.i.min(self.b.len());
        self.unterminated();
    }

    /// From a backquote at `i` to after the next unescaped one.
    fn skip_backquoted(&mut self) {
        self.i += 1;
        while let Some(c) = self.at(self.i) {
            self.steps += 1;
            match c {
                b'\\' => self.i += 2,
                b'`' => {
                    self.i += 1;
                    return;
                }
                _ => self.i += 1,
            }
        }
        self.i = self.i.min(self.b.len());
        self.unterminated();
    }

    /// Quoted text runs to the end: a syntax error, unless the cut made it so.
    fn unterminated(&mut self) {
        self.i = self.b.len();
        match self.after_cut {
            None => self.shaky = true,
            Some(_) => self.quote_cut = true,
        }
    }

    /// After a newline: the bodies of the here-documents opened on the line just ended.
    fn skip_heredoc_bodies(&mut self) {
        for (delimiter, strip) in std::mem::take(&mut self.heredocs) {
            while self.i < self.b.len() {
                let end = memchr(b'\n', self.b, self.i).unwrap_or(self.b.len());
                self.steps += end - self.i + 1;
                let mut line = &self.b[self.i..end];
                if strip {
                    while let [b'\t', rest @ ..] = line {
                        line = rest;
                    }
                }
                self.i = (end + 1).min(self.b.len());
                if line == delimiter.as_slice() {
                    break;
                }
            }
        }
    }
}

/// The index of the first `needle` at or after `from`.
fn memchr(needle: u8, hay: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&c| c == needle)
        .map(|p| from + p)
}

/// A word of a simple command.
#[derive(Debug, Clone)]
struct Word {
    text: String,
    literal: bool,
}

/// One simple command: its words and its redirections.
#[derive(Default)]
struct Simple {
    words: Vec<Word>,
    targets: Vec<(Word, Redir)>,
}

/// Walks the tokens once, simple command by simple command, keeping the working directory.
struct Classifier<'l> {
    limits: &'l Limits,
    /// None once a `cd` went somewhere the text does not say.
    cwd: Option<PathBuf>,
    cwd_parts: usize,
    /// The working directories to return to at each `)`.
    stack: Vec<(Option<PathBuf>, usize)>,
    shaky: bool,
    /// A function was defined: what follows may only run when it is called.
    in_function: bool,
    out: Vec<Target>,
    index: HashMap<PathBuf, usize>,
    /// The first bound hit, the lexer's included.
    bound: Option<Bound>,
    /// No more paths are resolved.
    paths_full: bool,
    work: Work,
}

impl Classifier<'_> {
    fn run(&mut self, tokens: Vec<Token>, cut: bool) {
        let mut simple = Simple::default();
        let mut pending: Option<Redir> = None;
        let mut last_was_open = false;
        for t in tokens {
            self.work.steps += 1;
            let open = matches!(t, Token::Open);
            match t {
                Token::Sep | Token::Open | Token::Close => {
                    pending = None;
                    let s = std::mem::take(&mut simple);
                    // `name ( )` defines a function.
                    if matches!(t, Token::Close) && last_was_open {
                        self.in_function = true;
                    }
                    self.simple(s, true);
                    match t {
                        Token::Open => self.stack.push((self.cwd.clone(), self.cwd_parts)),
                        Token::Close => match self.stack.pop() {
                            Some((cwd, parts)) => {
                                self.cwd = cwd;
                                self.cwd_parts = parts;
                            }
                            None => self.shaky = true,
                        },
                        _ => {}
                    }
                }
                Token::Redirect(r) => pending = Some(r),
                Token::Word { text, literal } => {
                    let w = Word { text, literal };
                    match pending.take() {
                        Some(r) => simple.targets.push((w, r)),
                        None => simple.words.push(w),
                    }
                }
            }
            last_was_open = open;
        }
        if !self.stack.is_empty() && !cut {
            self.shaky = true;
        }
        self.simple(simple, !cut);
        if self.shaky || self.in_function {
            for t in &mut self.out {
                t.certain = false;
            }
        }
    }

    /// Resolves a literal word to the file it names, within the bounds.
    fn resolve(&mut self, w: &Word) -> Option<PathBuf> {
        if !w.literal || w.text.is_empty() || w.text.len() > 4096 || w.text.starts_with("/dev/") {
            return None;
        }
        if self.paths_full {
            return None;
        }
        let relative = !w.text.starts_with('/');
        let cwd = match (&self.cwd, relative) {
            (Some(cwd), true) => cwd.to_str()?,
            (None, true) => return None,
            (_, false) => "/",
        };
        self.work.steps += w.text.len() / 64 + 1;
        let parts = w.text.bytes().filter(|&c| c == b'/').count()
            + 1
            + if relative { self.cwd_parts } else { 0 };
        if self.work.paths >= self.limits.paths || self.work.lookups + parts > self.limits.lookups {
            self.paths_full = true;
            self.bound.get_or_insert(Bound::Paths);
            return None;
        }
        self.work.paths += 1;
        self.work.lookups += parts;
        let path = paths::canonical(Some(cwd), &w.text);
        (!path.starts_with("/dev")).then_some(path)
    }

    fn add(&mut self, path: PathBuf, certain: bool) {
        match self.index.get(&path) {
            Some(&at) => self.out[at].certain |= certain,
            None => {
                self.index.insert(path.clone(), self.out.len());
                self.out.push(Target { path, certain });
            }
        }
    }

    fn add_word(&mut self, w: &Word, certain: bool) {
        if let Some(p) = self.resolve(w) {
            self.add(p, certain);
        }
    }

    /// The writes of one simple command; `complete` is false for one the bound cut short.
    fn simple(&mut self, s: Simple, complete: bool) {
        let test = s.words.first().is_some_and(|w| w.text == "[[");
        for (target, redir) in &s.targets {
            self.work.steps += 1;
            let certain = match redir {
                // Inside `[[ ]]`, `>` compares strings.
                _ if test => continue,
                Redir::Write => true,
                Redir::DupOrWrite if target.text == "-" || is_digits(&target.text) => continue,
                Redir::DupOrWrite => true,
                Redir::ReadWrite => false,
                Redir::HereDoc | Redir::Other => continue,
            };
            self.add_word(target, certain);
        }
        let Some(at) = self.program_at(&s.words) else {
            return;
        };
        let program = &s.words[at];
        let args = &s.words[at + 1..];
        if !program.literal {
            return;
        }
        // A variable or glob among the arguments could be an option or several words.
        let known = complete && args.iter().all(|a| a.literal);
        let name = program.text.rsplit('/').next().unwrap_or(&program.text);
        match name {
            "cd" | "pushd" => self.cd(args),
            "popd" => self.cwd = None,
            "function" => self.in_function = true,
            "tee" => self.each_operand(args, b"", &[], known),
            "rm" | "unlink" => {
                let opts = options(args, b"", &[], &mut self.work);
                let asks = opts.short.iter().any(|c| matches!(c, b'i' | b'I'))
                    || opts.long.iter().any(|l| l.starts_with("interactive"));
                for w in &opts.operands {
                    self.add_word(w, known && !asks);
                }
            }
            "shred" => {
                self.each_operand(args, b"ns", &["iterations", "size", "random-source"], known)
            }
            "truncate" => self.each_operand(args, b"sr", &["size", "reference"], known),
            "touch" => self.each_operand(args, b"drt", &["date", "reference"], false),
            "dd" => {
                for a in args {
                    self.work.steps += 1;
                    if let Some(file) = a.text.strip_prefix("of=") {
                        let w = Word {
                            text: file.to_owned(),
                            literal: a.literal,
                        };
                        self.add_word(&w, known);
                    }
                }
            }
            "sed" | "gsed" => self.sed(args, known),
            "cp" | "mv" | "install" | "ln" => self.copy(name, args, known),
            _ => {}
        }
    }

    /// Where the program is among the words: after assignments, wrappers and reserved words.
    fn program_at(&mut self, words: &[Word]) -> Option<usize> {
        let mut i = 0;
        while let Some(w) = words.get(i) {
            self.work.steps += 1;
            let t = w.text.as_str();
            let assignment = w.literal
                && t.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty()
                        && !k.starts_with(|c: char| c.is_ascii_digit())
                        && k.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'_')
                });
            if assignment {
                i += 1;
                continue;
            }
            let skip_options = |i: usize, with_value: &[&str]| {
                let mut j = i + 1;
                while let Some(o) = words.get(j).filter(|o| o.text.starts_with('-')) {
                    if o.text == "--" {
                        return j + 1;
                    }
                    j += if with_value.contains(&o.text.as_str()) {
                        2
                    } else {
                        1
                    };
                }
                j
            };
            i = match t {
                "!" | "{" | "if" | "then" | "else" | "elif" | "do" | "while" | "until"
                | "nohup" | "exec" | "builtin" => i + 1,
                "time" => skip_options(i, &[]),
                "command" => {
                    // `command -v rm` prints where rm is; it does not run it.
                    if words
                        .get(i + 1)
                        .is_some_and(|o| o.text.starts_with('-') && o.text.contains(['v', 'V']))
                    {
                        return None;
                    }
                    skip_options(i, &[])
                }
                "sudo" | "doas" => skip_options(
                    i,
                    &[
                        "-u", "-g", "-C", "-D", "-h", "-p", "-r", "-t", "-U", "-T", "--user",
                        "--group",
                    ],
                ),
                "nice" => skip_options(i, &["-n", "--adjustment"]),
                "timeout" => skip_options(i, &["-s", "-k", "--signal", "--kill-after"]) + 1,
                "env" => {
                    let j = skip_options(i, &["-u", "--unset"]);
                    // `env -C DIR` runs elsewhere; `env -S` splits a string we did not read.
                    if words[i + 1..j.min(words.len())].iter().any(|o| {
                        o.text.starts_with("-C")
                            || o.text.starts_with("--chdir")
                            || o.text.starts_with("-S")
                            || o.text.starts_with("--split-string")
                    }) {
                        return None;
                    }
                    j
                }
                _ => return Some(i),
            };
        }
        None
    }

    fn cd(&mut self, args: &[Word]) {
        let opts = options(args, b"", &[], &mut self.work);
        let dir = match opts.operands.first() {
            Some(w) if w.literal && w.text != "-" => self.resolve(w),
            _ => None,
        };
        self.cwd_parts = dir.as_ref().map_or(0, |d| d.components().count());
        self.cwd = dir;
    }

    fn each_operand(&mut self, args: &[Word], short: &[u8], long: &[&str], certain: bool) {
        let opts = options(args, short, long, &mut self.work);
        for w in &opts.operands {
            self.add_word(w, certain);
        }
    }

    fn sed(&mut self, args: &[Word], known: bool) {
        let mut in_place = false;
        let mut script_given = false;
        let mut operands: Vec<&Word> = Vec::new();
        let mut it = args.iter().peekable();
        let mut options_end = false;
        while let Some(a) = it.next() {
            self.work.steps += 1;
            let t = a.text.as_str();
            if options_end || !t.starts_with('-') || t == "-" {
                operands.push(a);
                continue;
            }
            if t == "--" {
                options_end = true;
            } else if let Some(long) = t.strip_prefix("--") {
                let name = long.split('=').next().unwrap_or(long);
                match name {
                    "in-place" => in_place = true,
                    "expression" | "file" => {
                        script_given = true;
                        if !long.contains('=') {
                            it.next();
                        }
                    }
                    "line-length" if !long.contains('=') => {
                        it.next();
                    }
                    _ => {}
                }
            } else {
                for (k, c) in t.bytes().enumerate().skip(1) {
                    self.work.steps += 1;
                    match c {
                        b'i' => {
                            in_place = true;
                            // BSD sed's `-i ''`: the suffix is the next word.
                            if k + 1 == t.len() && it.peek().is_some_and(|n| n.text.is_empty()) {
                                it.next();
                            }
                            break;
                        }
                        b'e' | b'f' | b'l' => {
                            script_given |= c != b'l';
                            if k + 1 == t.len() {
                                it.next();
                            }
                            break;
                        }
                        _ => {}
                    }
                }
            }
        }
        if !in_place {
            return;
        }
        let files = if script_given {
            &operands[..]
        } else {
            operands.get(1..).unwrap_or(&[])
        };
        for w in files {
            self.add_word(w, known);
        }
    }

    /// `cp`, `mv`, `install`, `ln`: the destination, and `mv`'s sources.
    fn copy(&mut self, program: &str, args: &[Word], known: bool) {
        let (short, long): (&[u8], &[&str]) = match program {
            "install" => (
                b"mogSt",
                &[
                    "mode",
                    "owner",
                    "group",
                    "suffix",
                    "target-directory",
                    "strip-program",
                ],
            ),
            _ => (b"St", &["suffix", "target-directory"]),
        };
        let opts = options(args, short, long, &mut self.work);
        if program == "install" && (opts.short.contains(&b'd') || opts.has_long("directory")) {
            return;
        }
        // Whether the write happens depends on what exists, or on the user.
        let conditional = opts.short.iter().any(|c| matches!(c, b'n' | b'u' | b'i'))
            || ["no-clobber", "update", "interactive", "attributes-only"]
                .iter()
                .any(|l| opts.has_long(l));
        let certain = known && !conditional && program != "ln";
        let target_dir = opts
            .values
            .iter()
            .rev()
            .find(|(o, _)| *o == "t" || *o == "target-directory")
            .map(|(_, w)| w.clone());
        let no_target_dir = opts.short.contains(&b'T') || opts.has_long("no-target-directory");
        let (sources, dest_dir): (&[Word], Option<PathBuf>) = match target_dir {
            Some(dir) => (&opts.operands[..], self.resolve(&dir)),
            None => {
                let Some((dest, sources)) = opts.operands.split_last() else {
                    return;
                };
                if sources.is_empty() {
                    return;
                }
                let Some(resolved) = self.resolve(dest) else {
                    return;
                };
                self.work.lookups += 1;
                if !no_target_dir && resolved.is_dir() {
                    (sources, Some(resolved))
                } else if sources.len() == 1 || !known {
                    // (A variable among several sources may expand to nothing.)
                    self.add(resolved, certain);
                    (sources, None)
                } else {
                    // Several sources into what is not a directory: an error, nothing written.
                    return;
                }
            }
        };
        if let Some(dir) = dest_dir {
            for src in sources {
                self.work.steps += 1;
                if let (true, Some(name)) = (src.literal, Path::new(&src.text).file_name()) {
                    self.add(dir.join(name), certain);
                }
            }
        }
        if program == "mv" {
            for src in sources {
                self.add_word(src, certain);
            }
        }
    }
}

fn is_digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit())
}

/// A command's arguments split the getopt way.
#[derive(Default)]
struct Options {
    /// Short flags seen, clustered or not (`-rf` gives `r`, `f`).
    short: Vec<u8>,
    /// Long options seen, without `--` and value.
    long: Vec<String>,
    /// Options with a value: (name without dashes, value).
    values: Vec<(String, Word)>,
    operands: Vec<Word>,
}

impl Options {
    fn has_long(&self, name: &str) -> bool {
        self.long.iter().any(|l| l == name)
    }
}

/// Splits `args`: `short` are the short options that take a value, `long` the long ones.
fn options(args: &[Word], short: &[u8], long: &[&str], work: &mut Work) -> Options {
    let mut out = Options::default();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        work.steps += 1;
        let t = a.text.as_str();
        if !a.literal || !t.starts_with('-') || t == "-" {
            out.operands.push(a.clone());
        } else if t == "--" {
            out.operands.extend(it.by_ref().cloned());
        } else if let Some(l) = t.strip_prefix("--") {
            let (name, value) = match l.split_once('=') {
                Some((n, v)) => (n, Some(v.to_owned())),
                None => (l, None),
            };
            let value = match value {
                Some(v) => Some(Word {
                    text: v,
                    literal: true,
                }),
                None if long.contains(&name) => it.next().cloned(),
                None => None,
            };
            out.long.push(name.to_owned());
            if let Some(v) = value {
                out.values.push((name.to_owned(), v));
            }
        } else {
            for (k, c) in t.bytes().enumerate().skip(1) {
                work.steps += 1;
                out.short.push(c);
                if short.contains(&c) {
                    let rest = &t[k + 1..];
                    let value = if rest.is_empty() {
                        it.next().cloned()
                    } else {
                        Some(Word {
                            text: rest.to_owned(),
                            literal: true,
                        })
                    };
                    if let Some(v) = value {
                        out.values.push(((c as char).to_string(), v));
                    }
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const WS: &str = "/nonexistent/ws";

    /// (path, certain) of each write.
    fn w(cmd: &str) -> Vec<(String, bool)> {
        writes(cmd, WS)
            .targets
            .into_iter()
            .map(|t| (t.path.to_string_lossy().into_owned(), t.certain))
            .collect()
    }

    fn certain(cmd: &str) -> Vec<String> {
        w(cmd)
            .into_iter()
            .filter(|(_, c)| *c)
            .map(|(p, _)| p)
            .collect()
    }

    fn maybe(cmd: &str) -> Vec<String> {
        w(cmd)
            .into_iter()
            .filter(|(_, c)| !*c)
            .map(|(p, _)| p)
            .collect()
    }

    fn ws(rel: &str) -> String {
        format!("{WS}/{rel}")
    }

    #[test]
    fn quoting_is_safe_and_minimal() {
        assert_eq!(quote("/a/b.rs"), "/a/b.rs");
        assert_eq!(quote("/a/my file"), "'/a/my file'");
        assert_eq!(quote("it's"), "'it'\\''s'");
        assert_eq!(quote(""), "''");
        assert_eq!(quote("$(id)"), "'$(id)'");
    }

    #[test]
    fn redirections_write_their_targets_for_certain() {
        assert_eq!(certain("echo hi > out.txt"), [ws("out.txt")]);
        assert_eq!(certain("echo hi>>log"), [ws("log")]);
        assert_eq!(
            certain("make 2> err.log 1>/tmp/o"),
            [ws("err.log"), "/tmp/o".into()]
        );
        assert_eq!(certain("cmd &> all.txt"), [ws("all.txt")]);
        assert_eq!(certain("cmd &>> all.txt"), [ws("all.txt")]);
        assert_eq!(certain("cmd >| forced"), [ws("forced")]);
        assert_eq!(certain("cmd >& both.txt"), [ws("both.txt")]);
        assert!(w("cmd > /dev/null 2>&1").is_empty());
        assert!(w("cmd >&2; cmd >&-").is_empty());
        assert!(w("cat < in.txt; cat <<< 'x > y'").is_empty());
        assert!(w("cmd 2>&1 | less").is_empty());
        assert_eq!(certain("echo 'a > b' > \"my file\""), [ws("my file")]);
        assert_eq!(maybe("cat <> rw.txt"), [ws("rw.txt")]);
    }

    #[test]
    fn common_write_commands() {
        assert_eq!(
            certain("printf x | tee -a a.txt b.txt"),
            [ws("a.txt"), ws("b.txt")]
        );
        assert_eq!(certain("sed -i 's/a/b/' src/x.rs"), [ws("src/x.rs")]);
        assert_eq!(
            certain("sed -i.bak -e 's/a/b/' -e 's/c/d/' f1 f2"),
            [ws("f1"), ws("f2")]
        );
        assert_eq!(certain("sed -Ei 's/a/b/' f"), [ws("f")]);
        assert_eq!(certain("sed -i '' 's/a/b/' f"), [ws("f")]);
        assert_eq!(certain("sed --in-place=.b --expression=p f"), [ws("f")]);
        assert!(w("sed 's/a/b/' f1").is_empty(), "no -i: prints");
        assert!(
            w("sed -e s/i/x/ f1").is_empty(),
            "an i in a script is no -i"
        );
        assert_eq!(certain("cp -r a.txt dest.txt"), [ws("dest.txt")]);
        assert_eq!(certain("cp -t /d a b"), ["/d/a", "/d/b"]);
        assert_eq!(certain("mv old.rs new.rs"), [ws("new.rs"), ws("old.rs")]);
        assert_eq!(certain("install -m 644 a bin/a"), [ws("bin/a")]);
        assert!(w("install -d a b").is_empty());
        assert_eq!(
            certain("rm -rf build tmp.txt"),
            [ws("build"), ws("tmp.txt")]
        );
        assert_eq!(certain("truncate -s 0 big.log"), [ws("big.log")]);
        assert_eq!(
            certain("dd if=/dev/zero of=disk.img bs=1M"),
            [ws("disk.img")]
        );
        assert_eq!(certain("shred -n 3 -u key"), [ws("key")]);
        assert_eq!(certain("sudo -u bob FOO=1 tee /etc/x"), ["/etc/x"]);
        assert_eq!(certain("env -i A=1 nice -n 5 timeout 10 rm f"), [ws("f")]);
    }

    #[test]
    fn writes_that_depend_on_what_exists_or_on_the_user_are_only_maybe() {
        assert_eq!(maybe("touch -d tomorrow a b"), [ws("a"), ws("b")]);
        assert_eq!(maybe("cp -n a b"), [ws("b")]);
        assert_eq!(maybe("cp --update a b"), [ws("b")]);
        assert_eq!(maybe("mv -i a b"), [ws("b"), ws("a")]);
        assert_eq!(maybe("rm -i a"), [ws("a")]);
        assert_eq!(maybe("ln -sf a b"), [ws("b")]);
        assert!(
            certain("cp a b c").is_empty(),
            "several into a non-directory"
        );
    }

    #[test]
    fn sequences_subshells_and_cd_are_followed() {
        assert_eq!(
            certain("cd src && echo x > a.rs; cd .. && rm b.rs\nls > /tmp/list"),
            [ws("src/a.rs"), ws("b.rs"), "/tmp/list".into()]
        );
        assert_eq!(
            certain("(cd sub && echo > a); echo > b"),
            [ws("sub/a"), ws("b")]
        );
        assert_eq!(certain("cd \"$D\" && echo > a; echo > /abs"), ["/abs"]);
        assert_eq!(certain("if true; then rm x; fi"), [ws("x")]);
        assert_eq!(certain("{ echo a; } > grouped"), [ws("grouped")]);
    }

    #[test]
    fn what_cannot_be_known_is_left_out() {
        assert!(w("echo x > $OUT").is_empty());
        assert!(w("rm *.tmp").is_empty());
        assert!(w("echo x > \"$HOME/f\"").is_empty());
        assert!(w("echo x > ~/f").is_empty());
        assert!(w("python gen.py").is_empty());
        assert!(w("ls -la && git status").is_empty());
        assert!(w("command -v rm x").is_empty());
        assert!(w("").is_empty());
        assert!(w("echo $(rm inner) `rm inner2` \"$(echo > inner3)\"").is_empty());
        assert!(w("(( a > b )); echo $((1 > 2)); [[ a > b ]]").is_empty());
    }

    #[test]
    fn a_variable_among_the_arguments_makes_the_rest_only_maybe() {
        assert_eq!(maybe("rm $FLAGS held"), [ws("held")]);
        assert_eq!(maybe("cp a \"$x\" dest"), [ws("dest")]);
        assert_eq!(certain("echo $X > out"), [ws("out")]);
    }

    #[test]
    fn comments_and_here_documents_are_text() {
        assert!(w("echo hi # > not-a-file").is_empty());
        assert_eq!(certain("echo a#b > f"), [ws("f")]);
        assert_eq!(
            certain("cat <<'EOF' > out.txt\nrm important\necho > x\nEOF\nrm after"),
            [ws("out.txt"), ws("after")]
        );
        assert_eq!(
            certain("cat <<-EOF >o\n\trm a\n\tEOF\ntouch b; tee c"),
            [ws("o"), ws("c")]
        );
    }

    #[test]
    fn a_command_that_does_not_parse_writes_nothing_for_certain() {
        assert_eq!(maybe("echo hi > a; echo 'open"), [ws("a")]);
        assert_eq!(maybe("echo hi > a; )"), [ws("a")]);
        assert_eq!(maybe("(echo hi > a"), [ws("a")]);
        assert_eq!(maybe("f() { echo > a; }"), [ws("a")]);
    }

    #[test]
    fn a_file_named_twice_is_listed_once_and_certain_if_either_is() {
        assert_eq!(w("touch a; echo > a; rm -i a"), [(ws("a"), true)]);
    }

    #[test]
    fn each_bound_stops_the_work_and_says_so() {
        let names: String = (0..5000).map(|i| format!(" f{i}")).collect();
        let cmd = format!("echo > first;touch{names}");
        let small = Limits {
            bytes: 1 << 20,
            words: 1 << 20,
            paths: 100,
            lookups: 1 << 20,
        };
        let r = writes_within(&cmd, WS, &small);
        assert_eq!(r.bound, Some(Bound::Paths));
        assert_eq!(r.work.paths, 100);
        assert_eq!(r.targets.len(), 100);
        assert!(
            r.targets[0].certain,
            "what was found before the bound stays"
        );

        let r = writes_within(
            &cmd,
            WS,
            &Limits {
                bytes: 100,
                ..small
            },
        );
        assert_eq!(r.bound, Some(Bound::Bytes));
        assert_eq!(r.work.bytes, 100);

        let r = writes_within(&cmd, WS, &Limits { words: 50, ..small });
        assert_eq!(r.bound, Some(Bound::Words));
        assert!(r.work.words <= 50);

        let r = writes_within(
            &cmd,
            WS,
            &Limits {
                lookups: 30,
                ..small
            },
        );
        assert_eq!(r.bound, Some(Bound::Paths));
        assert!(r.work.lookups <= 30);
        assert!(writes("echo > a; tee b", WS).bound.is_none());
    }

    #[test]
    fn a_word_the_byte_bound_cuts_is_dropped_and_the_cut_command_is_only_maybe() {
        let cut = |cmd: &str, bytes: usize| {
            let r = writes_within(
                cmd,
                WS,
                &Limits {
                    bytes,
                    ..Limits::HOOK
                },
            );
            assert_eq!(r.bound, Some(Bound::Bytes), "{cmd}");
            r.targets
                .into_iter()
                .map(|t| (t.path.to_string_lossy().into_owned(), t.certain))
                .collect::<Vec<_>>()
        };
        assert_eq!(cut("tee aaa bbbb", 9), [(ws("aaa"), false)]);
        assert_eq!(
            cut("tee aaa bbbb ccc", 12),
            [(ws("aaa"), false), (ws("bbbb"), false)]
        );
        assert_eq!(
            cut("echo > out; tee a 'b c'", 21),
            [(ws("out"), true), (ws("a"), false)]
        );
    }

    #[test]
    fn a_redirection_before_the_cut_stays_certain() {
        let body = "x".repeat(200);
        let cmd = format!("cat > out.txt <<EOF\n{body}\nEOF\n");
        let r = writes_within(
            &cmd,
            WS,
            &Limits {
                bytes: 100,
                ..Limits::HOOK
            },
        );
        assert_eq!(r.bound, Some(Bound::Bytes));
        assert_eq!(
            r.targets,
            [Target {
                path: PathBuf::from(ws("out.txt")),
                certain: true
            }]
        );
    }

    #[test]
    fn copies_into_a_directory_name_the_files_inside_it() {
        let dir = std::env::temp_dir().join(format!("ah-shell-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = paths::canonical(None, dir.to_str().unwrap());
        let got: Vec<PathBuf> = writes(&format!("cp a.txt sub/b.txt {}", dir.display()), WS)
            .certain()
            .map(Path::to_path_buf)
            .collect();
        assert_eq!(got, [dir.join("a.txt"), dir.join("b.txt")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
