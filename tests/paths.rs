//! Adversarial path tests: no spelling of one file gets its own file lock. Each client's rules
//! (Claude Code's tools, Gemini CLI's `write_file` and `replace`, the kernel's for the shell)
//! must take every spelling that client accepts for a held file to that file, and no spelling of
//! another file to it.

use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};

use agent_harness::paths::{self, Rules, tool_file};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// A scratch tree:
///
/// ```text
/// <root>/ws/                  the workspace (cwd); a git repository ignoring /target
///   src/main.rs               the held file
///   src/other.rs              another file
///   sub/dir/                  a nested directory
///   alias -> src              a relative directory link
///   abs_alias -> <ws>/src     an absolute directory link
///   nest -> sub/dir           a link whose `..` differs between kernel and text
///   link.rs -> src/main.rs    a file link, and chain -> link.rs a link to a link
///   other-link -> src/other.rs
///   target/main.rs            ignored by .gitignore; .git/main.rs inside git's own directory
/// <root>/wslink -> ws
/// ```
struct Tree {
    root: PathBuf,
    ws: PathBuf,
}

impl Tree {
    fn new(label: &str) -> Tree {
        let root = std::env::temp_dir().join(format!("ah-tpaths-{label}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        let root = std::fs::canonicalize(&root).unwrap();
        let ws = root.join("ws");
        for d in ["src", "sub/dir", "target", ".git"] {
            std::fs::create_dir_all(ws.join(d)).unwrap();
        }
        for f in [
            "src/main.rs",
            "src/other.rs",
            "target/main.rs",
            ".git/main.rs",
        ] {
            std::fs::write(ws.join(f), f).unwrap();
        }
        std::fs::write(ws.join(".gitignore"), "/target\n").unwrap();
        symlink("src", ws.join("alias")).unwrap();
        symlink(ws.join("src"), ws.join("abs_alias")).unwrap();
        symlink("sub/dir", ws.join("nest")).unwrap();
        symlink("src/main.rs", ws.join("link.rs")).unwrap();
        symlink("link.rs", ws.join("chain")).unwrap();
        symlink("src/other.rs", ws.join("other-link")).unwrap();
        symlink(&ws, root.join("wslink")).unwrap();
        Tree { root, ws }
    }

    fn cwd(&self) -> &str {
        self.ws.to_str().unwrap()
    }

    fn held(&self) -> PathBuf {
        self.ws.join("src/main.rs")
    }

    fn resolve(&self, rules: Rules, raw: &str) -> PathBuf {
        tool_file(rules, Some(self.cwd()), raw)
    }
}

impl Drop for Tree {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

const GEMINI: [Rules; 2] = [Rules::GeminiWriteFile, Rules::GeminiReplace];
const ALL: [Rules; 4] = [
    Rules::Kernel,
    Rules::Claude,
    Rules::GeminiWriteFile,
    Rules::GeminiReplace,
];

#[test]
fn missing_dir_then_dotdot_still_follows_symlinks() {
    // Issue 9, Medium 7: `new/../link.rs` and `new/../alias/main.rs` got claims of their own.
    let t = Tree::new("missing-dotdot");
    for rules in ALL {
        for raw in [
            "new/../link.rs",
            "new/../alias/main.rs",
            "new/deeper/../../chain",
            "src/new/../main.rs",
        ] {
            assert_eq!(t.resolve(rules, raw), t.held(), "{rules:?} {raw}");
        }
    }
    let ws = t.cwd();
    assert_eq!(
        paths::canonical(None, &format!("{ws}/new/../alias/main.rs")),
        t.held()
    );
}

#[test]
fn gemini_at_prefix_meets_the_claim() {
    let t = Tree::new("at");
    for rules in GEMINI {
        for raw in [
            "@src/main.rs",
            "@/src/main.rs",
            "@//alias/main.rs",
            "@link.rs",
        ] {
            assert_eq!(t.resolve(rules, raw), t.held(), "{rules:?} {raw}");
        }
    }
    // A file whose name really starts with `@` keeps it.
    std::fs::create_dir(t.ws.join("@scope")).unwrap();
    std::fs::write(t.ws.join("@scope/x.rs"), "").unwrap();
    assert_eq!(
        t.resolve(Rules::GeminiWriteFile, "@scope/x.rs"),
        t.ws.join("@scope/x.rs")
    );
    // Claude takes `@` literally.
    assert_eq!(
        t.resolve(Rules::Claude, "@src/main.rs"),
        t.ws.join("@src/main.rs")
    );
}

#[test]
fn gemini_at_slash_before_an_absolute_path_makes_it_relative() {
    // The client strips `@` and every slash after it: what was absolute lands in the workspace.
    let t = Tree::new("at-abs");
    let raw = format!("@{}", t.held().display());
    let want = t.ws.join(t.held().strip_prefix("/").unwrap());
    assert_eq!(t.resolve(Rules::GeminiWriteFile, &raw), want);
}

#[test]
fn gemini_nul_bytes_are_removed() {
    let t = Tree::new("nul");
    let abs = format!("\0{}\0", t.held().display());
    for rules in GEMINI {
        for raw in ["src/main.rs\0", "\0src/\0main.rs\0\0", abs.as_str()] {
            assert_eq!(t.resolve(rules, raw), t.held(), "{rules:?} {raw:?}");
        }
    }
}

#[test]
fn gemini_percent_encoding_is_decoded_all_or_nothing() {
    let t = Tree::new("percent");
    let abs = format!("{}/src/%6Dain.rs", t.cwd());
    for rules in GEMINI {
        for raw in [
            "src/main%2Ers",
            "%73rc%2Fmain.rs",
            "new/%2E%2E/src/main.rs",
            "%61lias/main.rs",
            abs.as_str(),
        ] {
            assert_eq!(t.resolve(rules, raw), t.held(), "{rules:?} {raw}");
        }
        // One malformed escape and nothing is decoded, as `decodeURIComponent` throws.
        assert_eq!(
            t.resolve(rules, "src/main%2Ers%zz"),
            t.ws.join("src/main%2Ers%zz")
        );
    }
    // Claude does not decode.
    assert_eq!(
        t.resolve(Rules::Claude, "src/main%2Ers"),
        t.ws.join("src/main%2Ers")
    );
}

#[test]
fn file_url_is_a_relative_path_for_gemini_write_and_replace() {
    // Read from Gemini CLI 0.61.0: `resolveToRealPath` decodes `file://` only when handed one,
    // and `write_file`/`replace` hand it the argument already joined under the workspace.
    let t = Tree::new("url");
    let raw = format!("file://{}", t.held().display());
    for rules in GEMINI {
        let got = t.resolve(rules, &raw);
        assert_ne!(got, t.held(), "{rules:?}");
        assert!(got.starts_with(t.ws.join("file:")), "{rules:?} {got:?}");
    }
}

#[test]
fn gemini_dotdot_is_textual_but_the_kernel_follows_the_link() {
    let t = Tree::new("lexical");
    // `nest` is `sub/dir`: by text `nest/..` is the workspace, for the kernel it is `sub`.
    for rules in [Rules::Claude, Rules::GeminiWriteFile, Rules::GeminiReplace] {
        assert_eq!(
            t.resolve(rules, "nest/../src/main.rs"),
            t.held(),
            "{rules:?}"
        );
    }
    assert_eq!(
        t.resolve(Rules::Kernel, "nest/../src/main.rs"),
        t.ws.join("sub/src/main.rs")
    );
}

#[test]
fn gemini_replace_bare_name_edits_the_workspace_file() {
    let t = Tree::new("bare");
    // `target/` is git-ignored and `.git/` is never searched, so `src/main.rs` is the one match.
    for raw in [
        "main.rs",
        "@main.rs",
        "main.rs\0",
        "rc/main.rs",
        "src/main.rs",
    ] {
        assert_eq!(t.resolve(Rules::GeminiReplace, raw), t.held(), "{raw:?}");
    }
    // `write_file` does not search: it creates the name in the workspace.
    assert_eq!(
        t.resolve(Rules::GeminiWriteFile, "main.rs"),
        t.ws.join("main.rs")
    );
    assert_eq!(t.resolve(Rules::Claude, "main.rs"), t.ws.join("main.rs"));
    // A suffix that is not at a component boundary still matches, as the client's `endsWith`.
    assert_eq!(
        t.resolve(Rules::GeminiReplace, "ain.rs"),
        t.ws.join("ain.rs")
    );
}

#[test]
fn gemini_replace_refuses_an_ambiguous_bare_name() {
    let t = Tree::new("ambiguous");
    std::fs::create_dir(t.ws.join("docs")).unwrap();
    std::fs::write(t.ws.join("docs/main.rs"), "").unwrap();
    // Two matches: the client refuses to guess and uses the name under the workspace.
    assert_eq!(
        t.resolve(Rules::GeminiReplace, "main.rs"),
        t.ws.join("main.rs")
    );
    // A longer suffix is unique again.
    assert_eq!(t.resolve(Rules::GeminiReplace, "src/main.rs"), t.held());
}

#[test]
fn gemini_replace_search_honours_ignore_files() {
    let t = Tree::new("ignore");
    std::fs::create_dir_all(t.ws.join("gen/out")).unwrap();
    std::fs::write(t.ws.join("gen/out/lib.rs"), "").unwrap();
    std::fs::create_dir_all(t.ws.join("keep")).unwrap();
    std::fs::write(t.ws.join("keep/lib.rs"), "").unwrap();
    // Without rules both match.
    assert_eq!(
        t.resolve(Rules::GeminiReplace, "lib.rs"),
        t.ws.join("lib.rs")
    );
    std::fs::write(t.ws.join(".geminiignore"), "gen/\n").unwrap();
    assert_eq!(
        t.resolve(Rules::GeminiReplace, "lib.rs"),
        t.ws.join("keep/lib.rs")
    );
    // A nested .gitignore with a glob, and a negation that wins as the later rule.
    std::fs::remove_file(t.ws.join(".geminiignore")).unwrap();
    std::fs::write(t.ws.join("keep/.gitignore"), "*.rs\n").unwrap();
    assert_eq!(
        t.resolve(Rules::GeminiReplace, "lib.rs"),
        t.ws.join("gen/out/lib.rs")
    );
    std::fs::write(t.ws.join("keep/.gitignore"), "*.rs\n!lib.rs\n").unwrap();
    assert_eq!(
        t.resolve(Rules::GeminiReplace, "lib.rs"),
        t.ws.join("lib.rs")
    );
}

#[test]
fn gemini_replace_search_stops_after_fifty_directories() {
    let t = Tree::new("bounded");
    // 60 sibling directories come before (breadth first) the one level deeper that holds it.
    for i in 0..60 {
        std::fs::create_dir(t.ws.join(format!("d{i:02}"))).unwrap();
    }
    std::fs::create_dir_all(t.ws.join("d59/deep")).unwrap();
    std::fs::write(t.ws.join("d59/deep/far.rs"), "").unwrap();
    assert_eq!(
        t.resolve(Rules::GeminiReplace, "far.rs"),
        t.ws.join("far.rs")
    );
    assert_eq!(
        paths::gemini_search(&t.ws, "far.rs"),
        None,
        "beyond {} directories",
        paths::GEMINI_SEARCH_DIRS
    );
}

#[test]
fn claude_trims_and_expands_home() {
    let t = Tree::new("claude");
    assert_eq!(t.resolve(Rules::Claude, "  src/main.rs \n"), t.held());
    if let Some(home) = paths::home() {
        assert_eq!(
            t.resolve(Rules::Claude, "~/no-such-dir/x.rs"),
            paths::canonical(None, &format!("{}/no-such-dir/x.rs", home.display()))
        );
    }
    // The kernel has no `~`.
    assert_eq!(t.resolve(Rules::Kernel, "~/x.rs"), t.ws.join("~/x.rs"));
}

/// How one random spelling is built: which way to the directory and the file, which prefix, and
/// what the client lets the model add around it.
#[derive(Debug, Clone)]
struct Plan {
    prefix: usize,
    dir: usize,
    whole: Option<usize>,
    dotdots: Vec<bool>,
    encode: Vec<bool>,
    at: bool,
    nuls: Vec<usize>,
    pad: bool,
    /// For `replace`: the bare name (or a tail of its path), left to the workspace search.
    bare: Option<usize>,
}

fn plans() -> impl Strategy<Value = Plan> {
    (
        0..5usize,
        0..DIRS.len(),
        prop::option::weighted(0.3, 0..WHOLE.len()),
        prop::collection::vec(any::<bool>(), 0..4),
        prop::collection::vec(prop::bool::weighted(0.15), 64),
        any::<bool>(),
        prop::collection::vec(0..64usize, 0..3),
        any::<bool>(),
        prop::option::weighted(0.3, 0..3usize),
    )
        .prop_map(
            |(prefix, dir, whole, dotdots, encode, at, nuls, pad, bare)| Plan {
                prefix,
                dir,
                whole,
                dotdots,
                encode,
                at,
                nuls,
                pad,
                bare,
            },
        )
}

/// Ways from the workspace to `src`, good for every client (the kernel included: no `..` right
/// after a link whose target's parent is not the link's).
const DIRS: [&str; 11] = [
    "src",
    "alias",
    "abs_alias",
    "./src",
    "src/.",
    "src//",
    "new/../src",
    "src/new/..",
    "new/../alias",
    "alias/../src",
    "new/deeper/../../abs_alias",
];

/// Ways to the file itself, as links, replacing directory and name: `(held, other)`.
const WHOLE: [(&str, &str); 4] = [
    ("link.rs", "other-link"),
    ("chain", "other-link"),
    ("new/../link.rs", "new/../other-link"),
    ("src/../chain", "src/../other-link"),
];

/// The spelling `plan` makes of `src/<name>` (or of a link to it) for `rules`.
fn spell(t: &Tree, plan: &Plan, rules: Rules, held: bool) -> String {
    let name = if held { "main.rs" } else { "other.rs" };
    let mut rel = match plan.whole {
        Some(i) => (if held { WHOLE[i].0 } else { WHOLE[i].1 }).to_owned(),
        None => format!("{}/{name}", DIRS[plan.dir]),
    };
    for (i, through_missing) in plan.dotdots.iter().enumerate() {
        let detour = if *through_missing {
            format!("gone{i}/../")
        } else {
            "sub/../".to_owned()
        };
        rel = format!("{detour}{rel}");
    }
    let ws = t.cwd();
    let root = t.root.to_str().unwrap();
    let (lead, mut body) = match plan.prefix {
        0 => (String::new(), rel),
        1 => (String::new(), format!("./{rel}")),
        2 => (format!("{ws}/"), rel),
        3 => (format!("/{ws}//"), rel),
        _ => (format!("{root}/wslink/../wslink/"), rel),
    };
    let gemini = matches!(rules, Rules::GeminiWriteFile | Rules::GeminiReplace);
    if let (Rules::GeminiReplace, Some(tail)) = (rules, plan.bare) {
        // Only an unencoded tail of the real path is found: the search matches text.
        body = [name.to_owned(), format!("c/{name}"), format!("src/{name}")][tail].clone();
        return finish(String::new(), body, plan, rules);
    }
    if gemini {
        // %-encode chosen characters of the part after the absolute prefix, but no `/` or `.`:
        // the client resolves `..` by text both before and after decoding, so an encoded
        // separator next to a `..` names another file (`gone/..%2Fsub/..` is `gone`).
        body = body
            .chars()
            .zip(plan.encode.iter().chain(std::iter::repeat(&false)))
            .map(|(c, enc)| {
                if *enc && c.is_ascii() && c != '/' && c != '.' {
                    format!("%{:02X}", c as u32)
                } else {
                    c.to_string()
                }
            })
            .collect();
    }
    finish(lead, body, plan, rules)
}

/// Adds what the client lets the model put around a path: `@` and NULs for Gemini, blanks for
/// Claude.
fn finish(lead: String, body: String, plan: &Plan, rules: Rules) -> String {
    let gemini = matches!(rules, Rules::GeminiWriteFile | Rules::GeminiReplace);
    let mut s = format!("{lead}{body}");
    if gemini {
        if plan.at && lead.is_empty() {
            s = format!("@{s}");
        }
        for &at in &plan.nuls {
            let mut at = at.min(s.len());
            while !s.is_char_boundary(at) {
                at -= 1;
            }
            s.insert(at, '\0');
        }
    }
    if rules == Rules::Claude && plan.pad {
        s = format!(" {s}\t");
    }
    s
}

fn runner() -> TestRunner {
    TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    })
}

#[test]
fn every_spelling_of_the_held_file_meets_it() {
    let t = Tree::new("prop-held");
    runner()
        .run(&(plans(), 0..ALL.len()), |(plan, r)| {
            let rules = ALL[r];
            let raw = spell(&t, &plan, rules, true);
            prop_assert_eq!(t.resolve(rules, &raw), t.held(), "{:?} {:?}", rules, raw);
            Ok(())
        })
        .unwrap();
}

#[test]
fn no_spelling_of_another_file_meets_the_held_one() {
    let t = Tree::new("prop-other");
    let other = t.ws.join("src/other.rs");
    runner()
        .run(&(plans(), 0..ALL.len()), |(plan, r)| {
            let rules = ALL[r];
            let raw = spell(&t, &plan, rules, false);
            let got = t.resolve(rules, &raw);
            prop_assert_ne!(&got, &t.held(), "{:?} {:?}", rules, raw);
            prop_assert_eq!(got, other.clone(), "{:?} {:?}", rules, raw);
            Ok(())
        })
        .unwrap();
}

#[test]
fn spellings_the_client_takes_elsewhere_never_meet_the_held_file() {
    let t = Tree::new("elsewhere");
    let held = t.held();
    let abs = held.display().to_string();
    let cases: Vec<(Rules, String)> = vec![
        (Rules::GeminiWriteFile, "main.rs".into()),
        (Rules::GeminiWriteFile, format!("file://{abs}")),
        (Rules::GeminiReplace, format!("file://{abs}")),
        (Rules::GeminiReplace, format!("%2F{}", &abs[1..])),
        (Rules::GeminiWriteFile, "%40src/main.rs".into()),
        (
            Rules::GeminiWriteFile,
            "gone/..%2Fsub/../src/main.rs".into(),
        ),
        (Rules::GeminiReplace, "target/../target/main.rs".into()),
        (Rules::Claude, "@src/main.rs".into()),
        (Rules::Claude, "main.rs".into()),
        (Rules::Kernel, "nest/../src/main.rs".into()),
        (Rules::Kernel, "src/main.rs.bak".into()),
    ];
    for (rules, raw) in cases {
        assert_ne!(t.resolve(rules, &raw), held, "{rules:?} {raw:?}");
    }
}

/// Cost of the workspace search: `cargo test --test paths measure -- --ignored --nocapture`.
/// Searches this repository, then a generated tree of 50,000 files, for a name that is not there
/// (the worst case: every directory within the bound is read).
#[test]
#[ignore]
fn measure_search_cost() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let time = |root: &Path, name: &str| {
        let runs = 20;
        let start = std::time::Instant::now();
        for _ in 0..runs {
            std::hint::black_box(paths::gemini_search(root, name));
        }
        start.elapsed() / runs
    };
    println!("repo, absent name: {:?}", time(repo, "no-such-file.rs"));
    println!("repo, main.rs:     {:?}", time(repo, "main.rs"));
    let t = Tree::new("measure");
    let big = t.root.join("big");
    for d in 0..500 {
        let dir = big.join(format!("pkg{d:03}/src"));
        std::fs::create_dir_all(&dir).unwrap();
        for f in 0..100 {
            std::fs::write(dir.join(format!("f{f:03}.rs")), "").unwrap();
        }
    }
    println!(
        "50,000 files, absent name: {:?}",
        time(&big, "no-such-file.rs")
    );
    println!("50,000 files, f050.rs:     {:?}", time(&big, "f050.rs"));
    // One flat directory of 50,000 files: the entry bound, not the directory bound, stops it.
    let flat = t.root.join("flat");
    std::fs::create_dir_all(&flat).unwrap();
    for f in 0..50_000 {
        std::fs::write(flat.join(format!("f{f:05}.rs")), "").unwrap();
    }
    println!(
        "50,000 flat, absent name: {:?}",
        time(&flat, "no-such-file.rs")
    );
}
