//! The runner's layer rule (README, "Architecture"): `cli/` -> `container/`,
//! `build/`, `registry/`, `network/` -> `spec/`, `image/`, `rootless/` ->
//! `config/`, `context`, `paths`, `error`, `fsroot/`, `clock`, `logging`, `interrupt`. An arrow never points
//! up: no file names (`crate::NAME`) a module of a higher layer, and so
//! nothing outside `cli/` names `crate::cli`.
//!
//! This reads the source tree; modules that do not exist (yet) are skipped,
//! and a module `lib.rs` declares that is not in [`LAYERS`] fails the test
//! until it is placed in a layer.

use std::fs;
use std::path::{Path, PathBuf};

/// Top-level modules of `runner/src`, by layer: a module may name modules of
/// its own layer and of the layers after it, never of the ones before it.
const LAYERS: &[&[&str]] = &[
    &["cli"],
    &["container", "build", "registry", "network"],
    &["spec", "image", "rootless"],
    &[
        "config",
        "context",
        "paths",
        "error",
        "fsroot",
        "clock",
        "logging",
        "interrupt",
    ],
];

fn layer_of(module: &str) -> Option<usize> {
    LAYERS.iter().position(|layer| layer.contains(&module))
}

fn src_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// Every `.rs` file of a module: `NAME.rs` and everything under `NAME/`.
fn module_files(module: &str) -> Vec<PathBuf> {
    let src = src_dir();
    let mut files = Vec::new();
    let file = src.join(format!("{module}.rs"));
    if file.is_file() {
        files.push(file);
    }
    let mut dirs = vec![src.join(module)];
    while let Some(dir) = dirs.pop() {
        let Ok(entries) = fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The top-level modules a source text names as `crate::NAME`, including
/// grouped imports (`use crate::{a::X, b};`), with their line numbers.
fn crate_paths(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let ident = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    for (i, line) in text.lines().enumerate() {
        let mut rest = line;
        while let Some(at) = rest.find("crate::") {
            // `vigil_runner::...` is not this crate's path syntax; a word
            // ending in "crate" (e.g. `subcrate::`) is not `crate::`.
            let before = rest[..at].chars().last();
            rest = &rest[at + "crate::".len()..];
            if before.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_') {
                continue;
            }
            if let Some(group) = rest.strip_prefix('{') {
                // Top-level items of the group (nested braces skipped).
                let mut depth = 0;
                let mut item_start = true;
                for (j, c) in group.char_indices() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => item_start = true,
                        _ if item_start && !c.is_whitespace() => {
                            item_start = false;
                            out.push((i + 1, ident(&group[j..])));
                        }
                        _ => {}
                    }
                }
            } else {
                out.push((i + 1, ident(rest)));
            }
        }
    }
    out
}

/// `pub mod NAME;` / `mod NAME;` lines of lib.rs.
fn declared_modules() -> Vec<String> {
    let lib = fs::read_to_string(src_dir().join("lib.rs")).expect("reading lib.rs");
    lib.lines()
        .filter_map(|l| {
            let l = l.trim();
            let l = l.strip_prefix("pub ").unwrap_or(l);
            l.strip_prefix("mod ")?
                .strip_suffix(';')
                .map(str::to_string)
        })
        .collect()
}

#[test]
fn every_module_has_a_layer() {
    let unplaced: Vec<String> = declared_modules()
        .into_iter()
        .filter(|m| layer_of(m).is_none())
        .collect();
    assert!(
        unplaced.is_empty(),
        "modules in runner/src/lib.rs without a layer: {unplaced:?}; add each to LAYERS in \
         runner/tests/layering.rs (and to the module map in README)"
    );
}

#[test]
fn no_arrow_points_up() {
    let mut violations = Vec::new();
    let mut checked = 0;
    for (layer, modules) in LAYERS.iter().enumerate() {
        for module in *modules {
            for file in module_files(module) {
                let text = fs::read_to_string(&file).expect("reading a source file");
                checked += 1;
                for (line, target) in crate_paths(&text) {
                    if layer_of(&target).is_some_and(|t| t < layer) {
                        violations.push(format!(
                            "{}:{line}: `{module}` names `crate::{target}` of a higher layer",
                            file.strip_prefix(src_dir()).unwrap_or(&file).display()
                        ));
                    }
                }
            }
        }
    }
    assert!(checked > 10, "only {checked} source files found");
    assert!(
        violations.is_empty(),
        "layer rule broken (README, Architecture):\n{}",
        violations.join("\n")
    );
}

#[test]
fn the_scanner_sees_every_form_of_path() {
    let text = "use crate::cli::LogLevel;\n\
                use crate::{context::Context, cli::{a, b}, spec};\n\
                let x = crate::container::Engine::new(ctx);\n\
                // subcrate::cli is not ours\n";
    let found: Vec<(usize, String)> = crate_paths(text);
    let names: Vec<&str> = found.iter().map(|(_, n)| n.as_str()).collect();
    assert_eq!(names, ["cli", "context", "cli", "spec", "container"]);
    assert_eq!(found[1].0, 2);
}
