//! `.containerignore` / `.dockerignore` (runner-build.md §5.2): Docker's
//! PatternMatcher rules. Lines starting with `#` and empty lines are
//! dropped, leading and trailing `/` trimmed, paths cleaned; `!` makes an
//! exception. A pattern matching a path or any of its parent directories
//! matches it; the last matching pattern decides.

use std::path::{Path, PathBuf};

use super::glob::match_path;

/// One pattern line.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Pattern {
    segments: Vec<String>,
    exclusion: bool,
}

/// The ignore rules of a build context.
#[derive(Debug, Clone, Default)]
pub struct Ignore {
    patterns: Vec<Pattern>,
    /// The file they came from, for messages.
    pub source: Option<PathBuf>,
}

/// Cleans a pattern path: no empty or `.` segments, `..` pops.
fn clean(path: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for seg in path.split('/') {
        match seg {
            "" | "." => {}
            ".." => {
                out.pop();
            }
            s => out.push(s.to_string()),
        }
    }
    out
}

impl Ignore {
    /// Parses the text of an ignore file.
    pub fn parse(text: &str) -> Ignore {
        let mut patterns = Vec::new();
        for line in text.split('\n') {
            let line = line.strip_suffix('\r').unwrap_or(line);
            if line.starts_with('#') {
                continue;
            }
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let (exclusion, body) = match line.strip_prefix('!') {
                Some(rest) => (true, rest.trim()),
                None => (false, line),
            };
            let segments = clean(body.trim_matches('/'));
            if segments.is_empty() {
                continue;
            }
            patterns.push(Pattern {
                segments,
                exclusion,
            });
        }
        Ignore {
            patterns,
            source: None,
        }
    }

    /// Reads `<ctx>/.containerignore`, else `<ctx>/.dockerignore`, or the
    /// given file; no file means nothing is ignored.
    pub fn load(context: &Path, file: Option<&Path>) -> std::io::Result<Ignore> {
        let candidates: Vec<PathBuf> = match file {
            Some(f) => vec![f.to_path_buf()],
            None => vec![
                context.join(".containerignore"),
                context.join(".dockerignore"),
            ],
        };
        for path in candidates {
            match std::fs::read_to_string(&path) {
                Ok(text) => {
                    let mut ignore = Ignore::parse(&text);
                    ignore.source = Some(path);
                    return Ok(ignore);
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && file.is_none() => {}
                Err(e) => return Err(e),
            }
        }
        Ok(Ignore::default())
    }

    /// Is there any pattern at all?
    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    /// Is the context-relative `path` (`/`-separated) excluded?
    pub fn excluded(&self, path: &str) -> bool {
        let segs: Vec<&str> = path
            .split('/')
            .filter(|s| !s.is_empty() && *s != ".")
            .collect();
        if segs.is_empty() {
            return false;
        }
        let mut excluded = false;
        for p in &self.patterns {
            // The path itself or one of its parent directories.
            let hit = (1..=segs.len()).any(|n| match_path(&p.segments, &segs[..n]));
            if hit {
                excluded = !p.exclusion;
            }
        }
        excluded
    }

    /// Could something below the excluded directory `dir` be re-included by
    /// an exception? (Then the walk must still look inside.)
    pub fn may_include_below(&self, dir: &str) -> bool {
        let segs: Vec<&str> = dir.split('/').filter(|s| !s.is_empty()).collect();
        self.patterns.iter().any(|p| {
            p.exclusion && {
                // The exception's leading segments must fit the directory.
                let n = segs.len().min(p.segments.len());
                p.segments.iter().any(|s| s == "**")
                    || (p.segments.len() > segs.len() && match_path(&p.segments[..n], &segs[..n]))
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_t6() {
        let ig = Ignore::parse(
            "# comment\n*.tmp\n!important.tmp\nlogs\nsrc/skip/\n**/n.tmp\nContainerfile\n",
        );
        for (path, excluded) in [
            ("top.tmp", true),
            ("important.tmp", false),
            ("logs", true),
            ("logs/x.log", true),
            ("src/skip/b.c", true),
            ("src/keep/a.c", false),
            ("src/keep/n.tmp", true),
            ("Containerfile", true),
            ("README.md", false),
            (".containerignore", false),
        ] {
            assert_eq!(ig.excluded(path), excluded, "{path}");
        }
    }

    #[test]
    fn spec_t6b() {
        let ig = Ignore::parse("*.tmp\n/logs\n!logs/keep.log\n./docs\na/*/z.tmp\n");
        for (path, excluded) in [
            ("x.tmp", true),
            ("a/y.tmp", false),
            ("a/b/z.tmp", true),
            ("logs/1.log", true),
            ("logs/keep.log", false),
            ("docs/r.md", true),
            ("top.md", false),
        ] {
            assert_eq!(ig.excluded(path), excluded, "{path}");
        }
        assert!(ig.may_include_below("logs"));
        assert!(!ig.may_include_below("docs"));
        let all = Ignore::parse("*\n!top.md\n");
        assert!(all.excluded("x.tmp"));
        assert!(all.excluded("a/b"));
        assert!(!all.excluded("top.md"));
    }
}
