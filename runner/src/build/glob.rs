//! Go `filepath.Match` syntax for one path segment (`*`, `?`, `[…]`, `[^…]`,
//! `\` escapes; nothing matches `/`), and path patterns of segments where a
//! `**` segment matches any number of segments (Docker's ignore files).

/// Does the pattern contain glob characters?
pub fn has_meta(pattern: &str) -> bool {
    pattern.contains(['*', '?', '[', '\\'])
}

/// Matches one segment `name` against `pattern`. A malformed pattern
/// (unclosed `[`) matches nothing.
pub fn match_segment(pattern: &str, name: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let n: Vec<char> = name.chars().collect();
    match_from(&p, &n)
}

fn match_from(p: &[char], n: &[char]) -> bool {
    let (mut pi, mut ni) = (0, 0);
    // Backtracking point for the last `*`.
    let mut star: Option<(usize, usize)> = None;
    loop {
        if pi < p.len() {
            match p[pi] {
                '*' => {
                    star = Some((pi, ni));
                    pi += 1;
                    continue;
                }
                '?' if ni < n.len() && n[ni] != '/' => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                '[' if ni < n.len() => {
                    if let Some((matched, next)) = class(p, pi, n[ni]) {
                        if matched {
                            pi = next;
                            ni += 1;
                            continue;
                        }
                    } else {
                        return false;
                    }
                }
                '\\' if pi + 1 < p.len() && ni < n.len() && p[pi + 1] == n[ni] => {
                    pi += 2;
                    ni += 1;
                    continue;
                }
                c if c != '[' && c != '?' && c != '\\' && ni < n.len() && c == n[ni] => {
                    pi += 1;
                    ni += 1;
                    continue;
                }
                _ => {}
            }
        } else if ni == n.len() {
            return true;
        }
        match star {
            Some((sp, sn)) if sn < n.len() && n[sn] != '/' => {
                star = Some((sp, sn + 1));
                pi = sp + 1;
                ni = sn + 1;
            }
            _ => return false,
        }
    }
}

/// A `[…]` class at `p[start]` against `c`: (matched, index after `]`), or
/// None if malformed.
fn class(p: &[char], start: usize, c: char) -> Option<(bool, usize)> {
    let mut i = start + 1;
    let negate = matches!(p.get(i), Some('^') | Some('!'));
    if negate {
        i += 1;
    }
    let mut matched = false;
    let mut first = true;
    loop {
        let ch = *p.get(i)?;
        if ch == ']' && !first {
            return Some((matched != negate && c != '/', i + 1));
        }
        first = false;
        let lo = if ch == '\\' {
            i += 1;
            *p.get(i)?
        } else {
            ch
        };
        i += 1;
        let mut hi = lo;
        if p.get(i) == Some(&'-') && p.get(i + 1).is_some_and(|x| *x != ']') {
            hi = if p[i + 1] == '\\' {
                i += 1;
                *p.get(i + 1)?
            } else {
                p[i + 1]
            };
            i += 2;
        }
        if lo <= c && c <= hi {
            matched = true;
        }
    }
}

/// Matches a `/`-separated `path` against a `/`-separated pattern whose
/// `**` segments match zero or more segments.
pub fn match_path(pattern: &[String], path: &[&str]) -> bool {
    match pattern.first() {
        None => path.is_empty(),
        Some(seg) if seg == "**" => {
            (0..=path.len()).any(|skip| match_path(&pattern[1..], &path[skip..]))
        }
        Some(seg) => {
            !path.is_empty() && match_segment(seg, path[0]) && match_path(&pattern[1..], &path[1..])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments() {
        assert!(match_segment("*.txt", "a.txt"));
        assert!(!match_segment("*.txt", "a.txt.gz"));
        assert!(match_segment("a?c", "abc"));
        assert!(match_segment("[a-c]x", "bx"));
        assert!(!match_segment("[^a-c]x", "bx"));
        assert!(match_segment("\\*", "*"));
        assert!(!match_segment("[a", "a"));
        assert!(match_segment("*", ""));
        assert!(match_segment("a*b*c", "aXbYc"));
    }

    #[test]
    fn paths() {
        let pat = |s: &str| s.split('/').map(String::from).collect::<Vec<_>>();
        assert!(match_path(&pat("**/n.tmp"), &["src", "keep", "n.tmp"]));
        assert!(match_path(&pat("**/n.tmp"), &["n.tmp"]));
        assert!(match_path(&pat("a/*/z.tmp"), &["a", "b", "z.tmp"]));
        assert!(!match_path(&pat("*.tmp"), &["a", "y.tmp"]));
    }
}
