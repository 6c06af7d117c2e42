//! Links the hook binaries and the status line as static executables at a fixed address on Linux
//! with glibc, when the C toolchain can.
//!
//! Claude Code starts one of these processes for every hook event, so their start is most of
//! their cost. A dynamically linked one loads libc, libm and libgcc_s, resolves a few hundred
//! symbols, and runs libgcc_s's constructor, which asks the CPU for its features with `cpuid`.
//! Under a hypervisor each `cpuid` traps (12 µs each on the machine this was measured on); static
//! linking leaves only glibc's own start-up queries. Measured on PreToolUse, interleaved with the
//! bench's floors: 12% less wall time per call (README, Speed).
//!
//! Not position-independent: a static PIE relocates itself at every start (5,600 relocations in
//! PreToolUse, each page of them copied on write), which cost 8% of a call's CPU time (1.31 ms
//! against 1.20 ms of user and system time, four interleaved rounds of 300 calls; 13 fewer page
//! faults). The price is that the binary's own code and data sit at the same address in every
//! process (its stack, heap and mappings are still randomized), as in Go's default static builds;
//! the process lives for a few milliseconds and reads only its stdin, its configuration and the
//! store. `AGENT_HARNESS_DYNAMIC_HOOKS=1` keeps the ordinary dynamic, position-independent link.
//!
//! Cargo cannot set `-C target-feature=+crt-static` for some binaries of a package, so this does
//! what that flag does at link time, for the named binaries only: `-static -no-pie`, and a directory
//! searched first in which each library the standard library asks for (`-lc`, `-lm`, ...) is the
//! static archive, and `-lgcc_s` is libgcc_eh (the unwinder, as static builds use). The `harness`
//! CLI stays dynamic: it resolves host names (OTLP export), which static glibc cannot do without
//! loading its own shared modules.
//!
//! Before it says so, it links a C program the same way and runs it; if any archive is missing
//! (Fedora keeps them in glibc-static) or that program fails, the binaries stay dynamic, with a
//! Cargo warning. `AGENT_HARNESS_DYNAMIC_HOOKS=1` keeps them dynamic on purpose.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The binaries that start once per event: every hook and the status line (as
/// `install::HOOK_BINARIES` and `STATUSLINE_BINARY` name them; tests/hooks.rs checks that each
/// of those is linked as this decided).
const SHORT_PROCESSES: &[&str] = &[
    "harness-session-start",
    "harness-user-prompt-submit",
    "harness-user-prompt-expansion",
    "harness-pre-tool-use",
    "harness-post-tool-use",
    "harness-post-tool-use-failure",
    "harness-stop",
    "harness-stop-failure",
    "harness-subagent-start",
    "harness-subagent-stop",
    "harness-pre-compact",
    "harness-post-compact",
    "harness-notification",
    "harness-session-end",
    "harness-pre-skill-shell-command",
    "harness-pre-model-switch",
    "harness-post-model-switch",
    "harness-directory-added",
    "harness-permission-request",
    "harness-permission-denied",
    "harness-statusline",
];

/// The libraries rustc links a dynamic glibc binary against (`-l` name), and the static archives
/// that stand in for each. libc comes last on rustc's line and needs the unwinder and libgcc
/// after it, as a static build lists them; GNU ld reads archives in order, so libc's stand-in is
/// a linker script grouping the three (lld and mold take it too).
const STAND_INS: &[(&str, &[&str])] = &[
    ("gcc_s", &["libgcc_eh.a"]),
    ("util", &["libutil.a"]),
    ("rt", &["librt.a"]),
    ("pthread", &["libpthread.a"]),
    ("m", &["libm.a"]),
    ("dl", &["libdl.a"]),
    ("c", &["libc.a", "libgcc_eh.a", "libgcc.a"]),
];

/// The link options of a static, not position-independent executable (see the module's doc);
/// after rustc's own `-pie`, which the last of them overrides.
const STATIC_LINK: &[&str] = &["-static", "-no-pie"];

fn main() {
    println!("cargo::rerun-if-changed=build.rs");
    println!("cargo::rerun-if-env-changed=AGENT_HARNESS_DYNAMIC_HOOKS");
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    let linked_static = link_short_processes_static();
    // For tests/hooks.rs, which checks the binaries are what this decided.
    println!(
        "cargo::rustc-env=AGENT_HARNESS_STATIC_HOOKS={}",
        u8::from(linked_static)
    );
}

/// Asks for static links of [`SHORT_PROCESSES`] when this target and toolchain allow it.
fn link_short_processes_static() -> bool {
    let var = |key: &str| std::env::var(key).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux" || var("CARGO_CFG_TARGET_ENV") != "gnu" {
        return false;
    }
    // A build with crt-static links everything statically already.
    if var("CARGO_CFG_TARGET_FEATURE")
        .split(',')
        .any(|f| f == "crt-static")
    {
        return true;
    }
    // Cross builds keep dynamic links: the archives found here are the host's.
    if var("HOST") != var("TARGET") {
        return false;
    }
    if std::env::var_os("AGENT_HARNESS_DYNAMIC_HOOKS").is_some_and(|v| v != "0" && !v.is_empty()) {
        return false;
    }
    let out = PathBuf::from(var("OUT_DIR"));
    let linker = linker();
    let libs = out.join("static-libs");
    match stand_ins(&linker, &libs).and_then(|()| probe(&linker, &libs, &out)) {
        Ok(()) => {
            for bin in SHORT_PROCESSES {
                for arg in STATIC_LINK {
                    println!("cargo::rustc-link-arg-bin={bin}={arg}");
                }
                println!("cargo::rustc-link-arg-bin={bin}=-L{}", libs.display());
            }
            true
        }
        Err(why) => {
            println!(
                "cargo::warning=the hook binaries are linked dynamically (each call starts slower): {why}"
            );
            false
        }
    }
}

/// The C compiler driver rustc links with: the target's configured linker, else `cc`.
fn linker() -> String {
    std::env::var("RUSTC_LINKER")
        .ok()
        .filter(|v| !v.is_empty())
        .unwrap_or_else(|| "cc".into())
}

/// Fills `dir` with a `lib<name>.a` for each of [`STAND_INS`]: a link to its one archive, or a
/// linker script grouping several.
fn stand_ins(linker: &str, dir: &Path) -> Result<(), String> {
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, archives) in STAND_INS {
        let mut paths = Vec::new();
        for archive in *archives {
            let found = Command::new(linker)
                .arg(format!("-print-file-name={archive}"))
                .output()
                .map_err(|e| format!("cannot run `{linker}`: {e}"))?;
            let path = PathBuf::from(String::from_utf8_lossy(&found.stdout).trim());
            // The driver prints the bare name back when it has no such file.
            if !path.is_absolute() || !path.is_file() {
                return Err(format!(
                    "`{linker}` finds no {archive} (install the C library's static archives)"
                ));
            }
            // Linked again if the archive changes (a glibc update) or goes.
            println!("cargo::rerun-if-changed={}", path.display());
            paths.push(path);
        }
        let stand_in = dir.join(format!("lib{name}.a"));
        let made = match paths.as_slice() {
            [one] => std::os::unix::fs::symlink(one, &stand_in),
            all => {
                let quoted: Vec<String> =
                    all.iter().map(|p| format!("\"{}\"", p.display())).collect();
                std::fs::write(&stand_in, format!("GROUP ( {} )\n", quoted.join(" ")))
            }
        };
        made.map_err(|e| format!("cannot write {}: {e}", stand_in.display()))?;
    }
    Ok(())
}

/// Links a C program as the binaries will be linked and, when it can run here, runs it.
fn probe(linker: &str, libs: &Path, out: &Path) -> Result<(), String> {
    let source = out.join("static-probe.c");
    let program = out.join("static-probe");
    std::fs::write(
        &source,
        "#include <stdio.h>\nint main(void) { return puts(\"\") < 0; }\n",
    )
    .map_err(|e| format!("cannot write {}: {e}", source.display()))?;
    let mut cmd = Command::new(linker);
    cmd.args(STATIC_LINK)
        .arg(format!("-L{}", libs.display()))
        .arg("-nodefaultlibs")
        .arg("-o")
        .arg(&program)
        .arg(&source);
    for (name, _) in STAND_INS {
        cmd.arg(format!("-l{name}"));
    }
    let linked = cmd
        .output()
        .map_err(|e| format!("cannot run `{linker}`: {e}"))?;
    if !linked.status.success() {
        let said = String::from_utf8_lossy(&linked.stderr);
        return Err(format!(
            "a static test program does not link: {}",
            said.lines().next().unwrap_or("").trim()
        ));
    }
    let host = std::env::var("HOST").unwrap_or_default();
    if host == std::env::var("TARGET").unwrap_or_default() {
        let ran = Command::new(&program)
            .output()
            .map_err(|e| format!("the static test program does not start: {e}"))?;
        if !ran.status.success() {
            return Err(format!("the static test program exits with {}", ran.status));
        }
    }
    Ok(())
}
