//! Shell text: quoting a word for a shell, and finding the files a shell command writes.
//!
//! Writes through Bash (Claude Code) or run_shell_command (Gemini CLI) cannot be seen before
//! they happen. After the command ran, [`written_paths`] reads the command for the common write
//! forms so that a collision with another agent's claim can be reported:
//!
//! - redirections: `>`, `>>`, `>|`, `&>`, `&>>`, `N>`, `N>>` (not `N>&M`, not `/dev/...`);
//! - `tee [-a] FILE...`;
//! - `sed -i` / `--in-place` on its file arguments;
//! - `cp` and `mv` destinations (`-t DIR` included; into a directory as `DIR/<name>`), and the
//!   sources of `mv`, which disappear;
//! - `rm`, `touch`, `truncate` on their arguments;
//! - across `;`, `&&`, `||`, `|`, newlines, with `cd DIR` followed, and with `sudo`, `env`,
//!   `command`, `nohup`, `time` and leading `VAR=value` assignments skipped.
//!
//! Not covered: words with variables, command substitutions or globs (`$HOME/x`, `$(...)`,
//! `*.rs`), writes by the programs a command runs (`python script.py`, `make`, `git checkout`),
//! here-documents' consumers other than redirections, and `find -delete` / `xargs`.
//! Must not touch the filesystem beyond `paths::canonical`'s lookups and one `is_dir` per
//! `cp`/`mv` destination.

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

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    /// A word, unquoted; `literal` is false when it held `$`, a backquote or a glob character
    /// outside single quotes, so that its value cannot be known.
    Word { text: String, literal: bool },
    /// `;`, `&&`, `||`, `|`, `&`, newline, `(`, `)`.
    Separator,
    /// A redirection that writes to the next word.
    WriteRedirect,
    /// Any other redirection operator (`<`, `<<`, `N>&M`, ...); the next word is not a target.
    OtherRedirect,
}

fn tokenize(command: &str) -> Vec<Token> {
    let chars: Vec<char> = command.chars().collect();
    let mut tokens = Vec::new();
    let mut i = 0;
    let mut word = String::new();
    let mut literal = true;
    let mut in_word = false;
    let flush =
        |tokens: &mut Vec<Token>, word: &mut String, literal: &mut bool, in_word: &mut bool| {
            if *in_word {
                tokens.push(Token::Word {
                    text: std::mem::take(word),
                    literal: *literal,
                });
            }
            *literal = true;
            *in_word = false;
        };
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => {
                flush(&mut tokens, &mut word, &mut literal, &mut in_word);
                i += 1;
            }
            '\n' | ';' | '(' | ')' => {
                flush(&mut tokens, &mut word, &mut literal, &mut in_word);
                tokens.push(Token::Separator);
                i += 1;
            }
            '|' | '&' => {
                // `&>` and `&>>` write; `&&`, `||`, `|`, `&` separate.
                if c == '&' && chars.get(i + 1) == Some(&'>') {
                    flush(&mut tokens, &mut word, &mut literal, &mut in_word);
                    i += 2;
                    if chars.get(i) == Some(&'>') {
                        i += 1;
                    }
                    tokens.push(Token::WriteRedirect);
                    continue;
                }
                flush(&mut tokens, &mut word, &mut literal, &mut in_word);
                tokens.push(Token::Separator);
                i += 1;
                if chars.get(i) == Some(&c) {
                    i += 1;
                }
            }
            '>' | '<' => {
                // A file-descriptor number right before the operator belongs to it.
                if in_word && word.chars().all(|d| d.is_ascii_digit()) && !word.is_empty() {
                    word.clear();
                    in_word = false;
                } else {
                    flush(&mut tokens, &mut word, &mut literal, &mut in_word);
                }
                i += 1;
                if c == '<' {
                    while matches!(chars.get(i), Some('<') | Some('&')) {
                        i += 1;
                    }
                    tokens.push(Token::OtherRedirect);
                    continue;
                }
                match chars.get(i) {
                    Some('&') => {
                        i += 1;
                        tokens.push(Token::OtherRedirect);
                    }
                    Some('>') | Some('|') => {
                        i += 1;
                        tokens.push(Token::WriteRedirect);
                    }
                    _ => tokens.push(Token::WriteRedirect),
                }
            }
            '\'' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '\'' {
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '"' => {
                in_word = true;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    match chars[i] {
                        '\\' if matches!(chars.get(i + 1), Some('"' | '\\' | '$' | '`')) => {
                            word.push(chars[i + 1]);
                            i += 2;
                            continue;
                        }
                        '$' | '`' => literal = false,
                        _ => {}
                    }
                    word.push(chars[i]);
                    i += 1;
                }
                i += 1;
            }
            '\\' => {
                in_word = true;
                if let Some(&next) = chars.get(i + 1)
                    && next != '\n'
                {
                    word.push(next);
                }
                i += 2;
            }
            '$' | '`' | '*' | '?' | '[' | '{' | '~' => {
                in_word = true;
                literal = false;
                word.push(c);
                i += 1;
            }
            _ => {
                in_word = true;
                word.push(c);
                i += 1;
            }
        }
    }
    flush(&mut tokens, &mut word, &mut literal, &mut in_word);
    tokens
}

/// A word and whether its value is known (see [`Token::Word`]).
type Word = (String, bool);

/// One simple command: its words and its redirection targets.
#[derive(Default)]
struct Simple {
    words: Vec<Word>,
    targets: Vec<Word>,
}

fn simple_commands(tokens: Vec<Token>) -> Vec<Simple> {
    let mut out = vec![Simple::default()];
    let mut pending: Option<bool> = None; // Some(is_write) after a redirection operator
    for t in tokens {
        match t {
            Token::Separator => {
                pending = None;
                out.push(Simple::default());
            }
            Token::WriteRedirect => pending = Some(true),
            Token::OtherRedirect => pending = Some(false),
            Token::Word { text, literal } => {
                let cur = out.last_mut().expect("never empty");
                match pending.take() {
                    Some(true) => cur.targets.push((text, literal)),
                    Some(false) => {}
                    None => cur.words.push((text, literal)),
                }
            }
        }
    }
    out.retain(|s| !s.words.is_empty() || !s.targets.is_empty());
    out
}

/// The files a shell command writes, as far as its text shows (see the module docs), resolved
/// against `cwd` to canonical paths, without duplicates.
pub fn written_paths(command: &str, cwd: &str) -> Vec<PathBuf> {
    let mut cwd = PathBuf::from(cwd);
    let mut found: Vec<PathBuf> = Vec::new();
    for simple in simple_commands(tokenize(command)) {
        let resolve = |cwd: &Path, w: &str| paths::canonical(cwd.to_str(), w);
        for (target, literal) in &simple.targets {
            if *literal && !target.starts_with("/dev/") && !target.is_empty() {
                found.push(resolve(&cwd, target));
            }
        }
        // Skip assignments and wrappers to reach the program.
        let mut words: &[Word] = &simple.words;
        while let Some((first, _)) = words.first() {
            let is_assignment = first.split_once('=').is_some_and(|(k, _)| {
                !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            });
            if is_assignment
                || matches!(
                    first.as_str(),
                    "sudo" | "env" | "command" | "nohup" | "time" | "exec"
                )
            {
                words = &words[1..];
            } else {
                break;
            }
        }
        let Some(((program, _), args)) = words.split_first() else {
            continue;
        };
        let program = program.rsplit('/').next().unwrap_or(program);
        match program {
            "cd" => {
                if let Some((dir, true)) = args.first() {
                    cwd = resolve(&cwd, dir);
                }
            }
            "tee" | "rm" | "touch" | "truncate" | "unlink" | "shred" => {
                let skip_value = |a: &str| program == "truncate" && (a == "-s" || a == "-r");
                let mut skip = false;
                for (a, literal) in args {
                    if skip {
                        skip = false;
                        continue;
                    }
                    if a.starts_with('-') {
                        skip = skip_value(a);
                        continue;
                    }
                    if *literal {
                        found.push(resolve(&cwd, a));
                    }
                }
            }
            "sed" => {
                // `-i`, `-i.bak`, `--in-place[=SUFFIX]`, or `i` among clustered short flags (`-Ei`).
                let in_place = args.iter().any(|(a, _)| {
                    a.starts_with("--in-place")
                        || a.starts_with("-i")
                        || (a.starts_with('-')
                            && !a.starts_with("--")
                            && a[1..].chars().all(|c| c.is_ascii_alphabetic())
                            && a.contains('i'))
                });
                if !in_place {
                    continue;
                }
                let has_script_option = args.iter().any(|(a, _)| {
                    a == "-e"
                        || a == "-f"
                        || a.starts_with("--expression")
                        || a.starts_with("--file")
                });
                let mut skip = false;
                let mut script_seen = has_script_option;
                for (a, literal) in args {
                    if skip {
                        skip = false;
                        continue;
                    }
                    if a == "-e" || a == "-f" {
                        skip = true;
                        continue;
                    }
                    if a.starts_with('-') {
                        continue;
                    }
                    if !script_seen {
                        script_seen = true;
                        continue;
                    }
                    if *literal {
                        found.push(resolve(&cwd, a));
                    }
                }
            }
            "cp" | "mv" | "install" | "ln" => {
                let mut target_dir: Option<String> = None;
                let mut plain: Vec<&Word> = Vec::new();
                let mut it = args.iter();
                while let Some(arg) = it.next() {
                    let a = arg.0.as_str();
                    if a == "-t" {
                        target_dir = it.next().filter(|(_, l)| *l).map(|(d, _)| d.clone());
                    } else if let Some(d) = a.strip_prefix("--target-directory=") {
                        target_dir = Some(d.to_owned());
                    } else if !a.starts_with('-') {
                        plain.push(arg);
                    }
                }
                let (sources, dest): (Vec<&Word>, Option<Word>) = match target_dir {
                    Some(d) => (plain, Some((d, true))),
                    None => match plain.split_last() {
                        Some((last, rest)) if !rest.is_empty() => {
                            (rest.to_vec(), Some((*last).clone()))
                        }
                        _ => (Vec::new(), None),
                    },
                };
                if let Some((dest, true)) = dest {
                    let dest = resolve(&cwd, &dest);
                    if dest.is_dir() {
                        for (src, literal) in &sources {
                            if let (true, Some(name)) = (*literal, Path::new(src).file_name()) {
                                found.push(dest.join(name));
                            }
                        }
                    } else {
                        found.push(dest);
                    }
                }
                if program == "mv" {
                    for (src, literal) in &sources {
                        if *literal {
                            found.push(resolve(&cwd, src));
                        }
                    }
                }
            }
            _ => {}
        }
    }
    let mut unique = Vec::new();
    for p in found {
        if !unique.contains(&p) {
            unique.push(p);
        }
    }
    unique
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(cmd: &str) -> Vec<String> {
        written_paths(cmd, "/nonexistent/ws")
            .into_iter()
            .map(|p| p.to_string_lossy().into_owned())
            .collect()
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
    fn redirections_write_their_targets() {
        assert_eq!(w("echo hi > out.txt"), ["/nonexistent/ws/out.txt"]);
        assert_eq!(w("echo hi>>log"), ["/nonexistent/ws/log"]);
        assert_eq!(
            w("make 2> err.log 1>/tmp/o"),
            ["/nonexistent/ws/err.log", "/tmp/o"]
        );
        assert_eq!(w("cmd &> all.txt"), ["/nonexistent/ws/all.txt"]);
        assert_eq!(w("cmd >| forced"), ["/nonexistent/ws/forced"]);
        assert!(w("cmd > /dev/null 2>&1").is_empty());
        assert!(w("cat < in.txt").is_empty());
        assert!(w("cmd 2>&1 | less").is_empty());
        assert_eq!(w("echo 'a > b' > \"my file\""), ["/nonexistent/ws/my file"]);
    }

    #[test]
    fn common_write_commands() {
        assert_eq!(
            w("printf x | tee -a a.txt b.txt"),
            ["/nonexistent/ws/a.txt", "/nonexistent/ws/b.txt"]
        );
        assert_eq!(w("sed -i 's/a/b/' src/x.rs"), ["/nonexistent/ws/src/x.rs"]);
        assert_eq!(
            w("sed -i.bak -e 's/a/b/' -e 's/c/d/' f1 f2"),
            ["/nonexistent/ws/f1", "/nonexistent/ws/f2"]
        );
        assert!(
            w("sed 's/a/b/' f1").is_empty(),
            "no -i: prints, does not write"
        );
        assert_eq!(
            w("cp -r a.txt b.txt dest.txt"),
            ["/nonexistent/ws/dest.txt"]
        );
        assert_eq!(w("cp -t /d a b"), ["/d"]);
        assert_eq!(
            w("mv old.rs new.rs"),
            ["/nonexistent/ws/new.rs", "/nonexistent/ws/old.rs"]
        );
        assert_eq!(
            w("rm -rf build tmp.txt"),
            ["/nonexistent/ws/build", "/nonexistent/ws/tmp.txt"]
        );
        assert_eq!(w("truncate -s 0 big.log"), ["/nonexistent/ws/big.log"]);
        assert_eq!(w("sudo FOO=1 touch /etc/x"), ["/etc/x"]);
    }

    #[test]
    fn sequences_and_cd_are_followed() {
        assert_eq!(
            w("cd src && echo x > a.rs; cd .. && rm b.rs\nls > /tmp/list"),
            [
                "/nonexistent/ws/src/a.rs",
                "/nonexistent/ws/b.rs",
                "/tmp/list"
            ]
        );
    }

    #[test]
    fn what_cannot_be_known_is_left_out() {
        assert!(w("echo x > $OUT").is_empty());
        assert!(w("rm *.tmp").is_empty());
        assert!(w("echo x > \"$HOME/f\"").is_empty());
        assert!(w("python gen.py").is_empty());
        assert!(w("ls -la && git status").is_empty());
        assert!(w("").is_empty());
    }

    #[test]
    fn copies_into_a_directory_name_the_files_inside_it() {
        let dir = std::env::temp_dir().join(format!("ah-shell-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let dir = paths::canonical(None, dir.to_str().unwrap());
        let got = written_paths(
            &format!("cp a.txt sub/b.txt {}", dir.display()),
            "/nonexistent/ws",
        );
        assert_eq!(got, [dir.join("a.txt"), dir.join("b.txt")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
