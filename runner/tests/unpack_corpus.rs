//! A deterministic random corpus of hostile layers (issue #9): a few hundred
//! tar streams mixing `..` components, absolute paths, symlinks out of the
//! root (absolute and relative) with entries written through them, hard
//! links to outside paths and to symlinks, directories replaced by symlinks,
//! whiteouts with traversal, very long names (GNU and PAX), duplicates,
//! devices and fifos. Each is applied with the real unpacker, in flat and in
//! overlay mode (and the overlay result replayed with `apply_layer_dir`),
//! inside a sandbox of decoys; nothing outside the target may change, and the
//! unpacker must return (Ok or an error), never panic.
//!
//! `VIGIL_CORPUS_CASES` overrides the number of cases, `VIGIL_CORPUS_SEED`
//! the seed (a failure message names the case's seed to replay it alone).

mod image_support;

use std::fs;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::{Duration, Instant};

use image_support::{Header, Sandbox, Tar};
use vigil_runner::image::unpack::{apply_layer, apply_layer_dir, Mode, Options};

/// xorshift64*: small, deterministic, no dependency.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

/// Builds one hostile layer. `sandbox` is the sandbox's absolute path, so
/// absolute names and link targets aim at the real decoys.
struct Gen<'a> {
    rng: Rng,
    sandbox: &'a str,
    /// Names used so far (for duplicates, links to them, writes through them).
    names: Vec<String>,
    /// What the stream holds, for the failure message.
    listing: Vec<String>,
}

impl Gen<'_> {
    fn component(&mut self) -> String {
        const PLAIN: [&str; 12] = [
            "a", "b", "etc", "dir", "host", "victim", "outside", "link", "x", "usr", "lib", "sub",
        ];
        match self.rng.below(10) {
            0 | 1 => "..".into(),
            2 => ".".into(),
            3 => format!(".wh.{}", self.rng.pick(&PLAIN)),
            4 if self.rng.chance(30) => ".wh..wh..opq".into(),
            5 if self.rng.chance(20) => "...".into(),
            _ => self.rng.pick(&PLAIN).to_string(),
        }
    }

    /// A path: relative, absolute, with traversal, or aimed at the sandbox.
    fn path(&mut self) -> String {
        if !self.names.is_empty() && self.rng.chance(25) {
            let base = self.rng.pick(&self.names).clone();
            if self.rng.chance(50) {
                return base; // duplicate entry
            }
            let c = self.component();
            return format!("{base}/{c}"); // written through whatever `base` is
        }
        let depth = 1 + self.rng.below(4);
        let mut parts: Vec<String> = (0..depth).map(|_| self.component()).collect();
        match self.rng.below(8) {
            0 => format!("/{}", parts.join("/")),
            1 => format!("{}/{}", self.sandbox, parts.join("/")),
            2 => format!("{}/{}", self.sandbox, self.rng.pick(&SANDBOX_DECOYS)),
            3 => {
                parts.insert(0, "../../..".into());
                parts.join("/")
            }
            4 if self.rng.chance(50) => format!("{}/", parts.join("/")),
            _ => parts.join("/"),
        }
    }

    /// A link target: outside (absolute or relative), the root, or an entry.
    fn target(&mut self) -> String {
        match self.rng.below(7) {
            0 => format!("{}/{}", self.sandbox, self.rng.pick(&SANDBOX_DECOYS)),
            1 => self.sandbox.to_string(),
            2 => "/".into(),
            3 => {
                let ups = "../".repeat(1 + self.rng.below(8));
                format!("{ups}{}", self.rng.pick(&SANDBOX_DECOYS))
            }
            4 if !self.names.is_empty() => self.rng.pick(&self.names).clone(),
            _ => self.path(),
        }
    }

    /// Gives the next entry a long name (GNU `L` record or PAX `path`).
    fn long_name(&mut self, tar: &mut Tar, short: &str) -> String {
        // Mostly a few hundred bytes; now and then past PATH_MAX (the
        // unpacker resolves each entry from the root, so depth costs time).
        let len = if self.rng.chance(10) {
            4000 + self.rng.below(400)
        } else {
            100 + self.rng.below(500)
        };
        let mut name = String::new();
        while name.len() < len {
            name.push_str(if self.rng.chance(10) { "../" } else { "long/" });
        }
        name.push_str(short.trim_start_matches('/'));
        if self.rng.chance(50) {
            tar.gnu_long_name(name.as_bytes());
        } else {
            tar.pax(&[("path", name.as_bytes())]);
        }
        name
    }

    fn entry(&mut self, tar: &mut Tar) {
        let mut name = self.path();
        if self.rng.chance(8) {
            name = self.long_name(tar, &name);
        }
        let short = if name.len() > 100 { "ignored" } else { &name };
        let mut h = Header::new(short, b'0');
        let mut data: Vec<u8> = Vec::new();
        let kind = match self.rng.below(20) {
            0..=5 => {
                data = format!("payload {}\n", self.rng.next()).into_bytes();
                "file"
            }
            6..=8 => {
                h.kind = b'5';
                h.mode = 0o755;
                "dir"
            }
            9..=12 => {
                h.kind = b'2';
                h.link = self.target().into_bytes();
                h.mode = 0o777;
                "symlink"
            }
            13..=15 => {
                h.kind = b'1';
                h.link = self.target().into_bytes();
                "hardlink"
            }
            16 => {
                h.kind = b'6';
                "fifo"
            }
            17 => {
                h.kind = b'3';
                let (major, minor) = *self.rng.pick(&[(0, 0), (1, 3), (1, 5)]);
                (h.major, h.minor) = (major, minor);
                "chardev"
            }
            18 => {
                // A directory, then the same name as a symlink out, then a
                // file written below it.
                tar.dir(short);
                let mut s = Header::new(short, b'2');
                s.link = format!("{}/victim", self.sandbox).into_bytes();
                tar.raw(&s, b"");
                h.name = format!("{}/planted", short.trim_end_matches('/')).into_bytes();
                data = b"through a replaced dir\n".to_vec();
                "dir-then-symlink"
            }
            _ => {
                // Hard link to a symlink that points out.
                let link = format!("{}-sym", short.trim_end_matches('/'));
                let mut s = Header::new(&link, b'2');
                s.link = self.target().into_bytes();
                tar.raw(&s, b"");
                h.kind = b'1';
                h.link = link.into_bytes();
                "hardlink-to-symlink"
            }
        };
        if self.rng.chance(10) {
            h.mode = [0o4755, 0o000, 0o1777, 0o7777][self.rng.below(4)];
        }
        if self.rng.chance(10) {
            h.uid = 1000;
            h.gid = 1000;
        }
        tar.raw(&h, &data);
        self.listing.push(format!(
            "{kind} {name:?} -> {:?}",
            String::from_utf8_lossy(&h.link)
        ));
        if name.len() <= 300 {
            self.names.push(name);
        }
    }
}

/// Decoys of `image_support::Sandbox`, relative to the sandbox.
const SANDBOX_DECOYS: [&str; 7] = [
    "host",
    "host/file",
    "host/dir",
    "host/dir/sub/deep",
    "victim",
    "victim/existing",
    "outside",
];

fn layer(seed: u64, sandbox: &str) -> (Vec<u8>, Vec<String>) {
    let mut g = Gen {
        rng: Rng::new(seed),
        sandbox,
        names: Vec::new(),
        listing: Vec::new(),
    };
    let mut tar = Tar::new();
    let n = 1 + g.rng.below(24);
    for _ in 0..n {
        g.entry(&mut tar);
    }
    (tar.finish(), g.listing)
}

/// Applies the case's layer and checks the sandbox; `Err` describes a failure.
fn run_case(seed: u64) -> Result<(), String> {
    let sb = Sandbox::new();
    let sandbox = sb.path().to_str().expect("utf-8 temp dir").to_string();
    let (tar, listing) = layer(seed, &sandbox);
    let before = sb.snapshot();
    let mode = if seed.is_multiple_of(2) {
        Mode::Flat
    } else {
        Mode::Overlay
    };
    let layer_dir = sb.target().join("layer");
    fs::create_dir(&layer_dir).map_err(|e| e.to_string())?;
    let outcome = catch_unwind(AssertUnwindSafe(|| {
        let first = apply_layer(&tar[..], &layer_dir, &Options::new(mode));
        if mode == Mode::Overlay && first.is_ok() {
            // The store's copy fallback replays overlay layer directories.
            let flat = sb.target().join("flat");
            let _ = fs::create_dir(&flat);
            let _ = apply_layer_dir(&layer_dir, &flat, &Options::new(Mode::Flat));
        }
        first.map(|_| ()).map_err(|e| e.to_string())
    }));
    let after = sb.snapshot();
    let target_ok = fs::symlink_metadata(sb.target()).is_ok_and(|m| m.is_dir());
    let problem = match (&outcome, before == after, target_ok) {
        (Err(_), _, _) => Some("the unpacker panicked".to_string()),
        (Ok(_), false, _) => Some(format!(
            "files outside the target changed:\n{}",
            diff(&before, &after)
        )),
        (Ok(_), true, false) => Some("the target is no longer a directory".into()),
        _ => None,
    };
    match problem {
        None => Ok(()),
        Some(p) => Err(format!(
            "case seed {seed} ({mode:?}): {p}\nresult: {:?}\nentries:\n  {}",
            outcome.as_ref().ok(),
            listing.join("\n  ")
        )),
    }
}

fn diff<K: std::fmt::Debug + Ord, V: std::fmt::Debug + PartialEq>(
    a: &std::collections::BTreeMap<K, V>,
    b: &std::collections::BTreeMap<K, V>,
) -> String {
    let mut out = Vec::new();
    for (k, v) in a {
        match b.get(k) {
            None => out.push(format!("- {k:?} {v:?}")),
            Some(w) if w != v => out.push(format!("~ {k:?} {v:?} -> {w:?}")),
            _ => {}
        }
    }
    for (k, w) in b {
        if !a.contains_key(k) {
            out.push(format!("+ {k:?} {w:?}"));
        }
    }
    out.join("\n")
}

fn env_u64(var: &str) -> Option<u64> {
    std::env::var(var).ok()?.parse().ok()
}

#[test]
fn random_hostile_layers_stay_in_the_target() {
    let cases = env_u64("VIGIL_CORPUS_CASES").unwrap_or(400);
    let base = env_u64("VIGIL_CORPUS_SEED").unwrap_or(0x5EED_0009);
    let budget = Duration::from_secs(50);
    let start = Instant::now();
    let mut failures = Vec::new();
    let mut ran = 0u64;
    for i in 0..cases {
        let seed = base.wrapping_add(i);
        if let Err(e) = run_case(seed) {
            failures.push(e);
        }
        ran += 1;
        if start.elapsed() > budget {
            break;
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
    // A slow machine may cut the corpus short, but it must not skip most of it.
    assert!(
        ran >= cases.min(100),
        "only {ran} of {cases} cases within {budget:?}"
    );
    eprintln!("{ran} hostile layers in {:?}", start.elapsed());
}

#[test]
fn corpus_is_deterministic_and_hostile() {
    let (a, listing) = layer(7, "/tmp/sb");
    let (b, _) = layer(7, "/tmp/sb");
    assert_eq!(a, b, "same seed, same stream");
    // Across the corpus every kind of hostile entry occurs.
    let mut all = String::new();
    for seed in 0..200 {
        all.push_str(&layer(seed, "/tmp/sb").1.join("\n"));
    }
    for needle in [
        "\"..",
        "/..",
        "\"/",
        "\"/tmp/sb/",
        "-> \"/tmp/sb",
        "-> \"../",
        ".wh.",
        "hardlink-to-symlink",
        "dir-then-symlink",
        "fifo",
        "chardev",
        "long/long/",
    ] {
        assert!(all.contains(needle), "no {needle} in the corpus");
    }
    assert!(!listing.is_empty());
}
