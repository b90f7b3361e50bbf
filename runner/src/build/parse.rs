//! The Containerfile parser, with the grammar `podman build` 4.3.1 uses
//! (openshift/imagebuilder; runner-build.md §1): a UTF-8 BOM dropped,
//! `# escape=` directives only at the very top, comment lines dropped
//! (also inside continuations), continuation lines appended as they are
//! (indentation kept), instruction words matched case-insensitively and
//! leading `--name=value` builder flags. No heredocs: `<<` is plain text.
//!
//! Arguments are split per instruction later ([`Instruction::json`],
//! [`super::words`]), when the variables in scope are known.

use super::error::BuildError;

/// Largest Containerfile read (Podman has no limit; vigil refuses more).
pub const MAX_CONTAINERFILE: u64 = 1 << 20;

/// One logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instruction {
    /// The first physical line (1-based).
    pub line: usize,
    /// The instruction word as written (`Run`, `FROM`...).
    pub word: String,
    /// The instruction word, lower case.
    pub keyword: String,
    /// `--name=value` flags as written (quotes still in).
    pub flags: Vec<String>,
    /// Everything after the word and the flags, leading blanks removed.
    pub args: String,
    /// The whole logical line after the word (flags included), as written.
    pub rest: String,
}

impl Instruction {
    /// The logical line as written: what `STEP n/m:` shows.
    pub fn text(&self) -> String {
        if self.rest.is_empty() {
            format!("{} ", self.word)
        } else {
            format!("{} {}", self.word, self.rest)
        }
    }

    /// The JSON (exec) form of the arguments, if they are one: a single JSON
    /// value read from the start; trailing text is ignored. `Ok(None)` means
    /// shell form (not JSON, or JSON that is not an array, fall back silently);
    /// a JSON array with a non-string element is an error.
    pub fn json(&self) -> Result<Option<Vec<String>>, String> {
        json_form(&self.args)
    }
}

/// See [`Instruction::json`].
pub fn json_form(args: &str) -> Result<Option<Vec<String>>, String> {
    let text = args.trim_start();
    if !text.starts_with('[') {
        return Ok(None);
    }
    let mut stream = serde_json::Deserializer::from_str(text).into_iter::<serde_json::Value>();
    match stream.next() {
        Some(Ok(serde_json::Value::Array(items))) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                match item {
                    serde_json::Value::String(s) => out.push(s),
                    _ => return Err(
                        "when using JSON array syntax, arrays must be comprised of strings only"
                            .into(),
                    ),
                }
            }
            Ok(Some(out))
        }
        _ => Ok(None),
    }
}

/// A parsed Containerfile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Containerfile {
    /// The escape character (`\` or `` ` ``).
    pub escape: char,
    pub instructions: Vec<Instruction>,
}

/// Is `line` (lower-cased) an escape directive? Returns its character.
fn escape_directive(line: &str) -> Option<Option<char>> {
    let rest = line.strip_prefix('#')?.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix("escape")?.trim_start_matches([' ', '\t']);
    let rest = rest.strip_prefix('=')?.trim_start_matches([' ', '\t']);
    Some(rest.chars().next())
}

/// Does `line` end with the escape character followed only by blanks?
/// Returns the line without them.
fn continued(line: &str, escape: char) -> Option<&str> {
    let trimmed = line.trim_end_matches([' ', '\t']);
    trimmed.strip_suffix(escape)
}

fn is_comment(line: &str) -> bool {
    line.trim_start_matches([' ', '\t']).starts_with('#')
}

fn is_blank(line: &str) -> bool {
    line.trim_matches([' ', '\t']).is_empty()
}

/// Parses the text of a Containerfile. `path` names it in errors.
pub fn parse(text: &str, path: &str) -> Result<Containerfile, BuildError> {
    let err = |line: usize, reason: String| BuildError::Parse {
        path: path.to_string(),
        line,
        reason,
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l))
        .collect();
    let mut escape = '\\';
    let mut i = 0;
    let mut seen_escape = false;
    while i < lines.len() {
        match escape_directive(&lines[i].to_ascii_lowercase()) {
            Some(c) => {
                if seen_escape {
                    return Err(err(
                        i + 1,
                        "only one escape parser directive can be used".into(),
                    ));
                }
                // The character as written (lower-casing does not touch ` or \).
                let c = escape_directive(lines[i]).flatten().or(c);
                match c {
                    Some(c @ ('`' | '\\')) => escape = c,
                    other => {
                        return Err(err(
                            i + 1,
                            format!(
                                "invalid ESCAPE '{}'. Must be ` or \\",
                                other.map(String::from).unwrap_or_default()
                            ),
                        ))
                    }
                }
                seen_escape = true;
                i += 1;
            }
            None => break,
        }
    }
    let mut instructions = Vec::new();
    while i < lines.len() {
        let first = lines[i];
        let start = i + 1;
        i += 1;
        if is_blank(first) || is_comment(first) {
            continue;
        }
        let mut logical = String::new();
        let mut current = first.trim_start_matches([' ', '\t']);
        loop {
            match continued(current, escape) {
                Some(head) => {
                    logical.push_str(head);
                    // Blank and comment lines inside a continuation are skipped.
                    while i < lines.len() && (is_blank(lines[i]) || is_comment(lines[i])) {
                        i += 1;
                    }
                    if i >= lines.len() {
                        break;
                    }
                    current = lines[i];
                    i += 1;
                }
                None => {
                    logical.push_str(current);
                    break;
                }
            }
        }
        if is_blank(&logical) {
            continue;
        }
        instructions.push(split_instruction(&logical, start, escape));
    }
    Ok(Containerfile {
        escape,
        instructions,
    })
}

fn split_instruction(logical: &str, line: usize, escape: char) -> Instruction {
    let logical = logical.trim_start_matches([' ', '\t']);
    let (word, rest) = match logical.find([' ', '\t']) {
        Some(at) => (
            &logical[..at],
            logical[at..].trim_start_matches([' ', '\t']),
        ),
        None => (logical, ""),
    };
    let (flags, args) = split_flags(rest, escape);
    Instruction {
        line,
        word: word.to_string(),
        keyword: word.to_ascii_lowercase(),
        flags,
        args: args.to_string(),
        rest: rest.to_string(),
    }
}

/// Takes the leading `--name=value` words (quotes group, the escape
/// character escapes); a bare `--` ends them.
fn split_flags(rest: &str, escape: char) -> (Vec<String>, &str) {
    let mut flags = Vec::new();
    let mut remaining = rest;
    loop {
        let text = remaining.trim_start_matches([' ', '\t']);
        if !text.starts_with("--") {
            return (flags, text);
        }
        let mut end = text.len();
        let mut quote: Option<char> = None;
        let mut chars = text.char_indices();
        while let Some((at, c)) = chars.next() {
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) => {}
                None if c == '\'' || c == '"' => quote = Some(c),
                None if c == escape => {
                    chars.next();
                }
                None if c == ' ' || c == '\t' => {
                    end = at;
                    break;
                }
                None => {}
            }
        }
        let word = &text[..end];
        remaining = &text[end..];
        if word == "--" {
            return (flags, remaining.trim_start_matches([' ', '\t']));
        }
        flags.push(word.to_string());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_ok(text: &str) -> Containerfile {
        parse(text, "Containerfile").unwrap()
    }

    #[test]
    fn continuation_keeps_indentation_and_skips_comments() {
        let f = parse_ok(
            "# escape=`\nfrom localhost/busybox:latest\n# comment between\nrun echo a `\n    b `\n\n    c > /x.txt\nRun [\"echo\", \"json\"  ]\n",
        );
        assert_eq!(f.escape, '`');
        assert_eq!(f.instructions.len(), 3);
        assert_eq!(f.instructions[1].text(), "run echo a     b     c > /x.txt");
        assert_eq!(f.instructions[1].keyword, "run");
        assert_eq!(f.instructions[1].line, 4);
        assert_eq!(
            f.instructions[2].json().unwrap(),
            Some(vec!["echo".to_string(), "json".to_string()])
        );
    }

    #[test]
    fn directives_only_at_the_top() {
        let f = parse_ok("\n# escape=`\nRUN a \\\n b\n");
        assert_eq!(f.escape, '\\');
        assert_eq!(f.instructions[0].args, "a  b");
        assert!(parse("# escape=x\nFROM a", "f").is_err());
        assert!(parse("# escape=`\n# escape=`\nFROM a", "f").is_err());
        let f = parse_ok("\u{feff}# syntax=docker/dockerfile:1\nFROM a\r\nRUN x \\\r\n  y\r\n");
        assert_eq!(f.instructions[1].args, "x   y");
    }

    #[test]
    fn json_forms() {
        assert_eq!(
            json_form("[\"a\", \"b\"] trailing").unwrap().unwrap(),
            ["a", "b"]
        );
        assert_eq!(json_form("['a']").unwrap(), None);
        assert_eq!(json_form("[\"a\" \"b\"]").unwrap(), None);
        assert_eq!(json_form("[ \"echo\", bad ]").unwrap(), None);
        assert_eq!(json_form("echo hi").unwrap(), None);
        assert!(json_form("[1, 2]").is_err());
        assert_eq!(json_form("[]").unwrap().unwrap(), Vec::<String>::new());
    }

    #[test]
    fn flags() {
        let f = parse_ok("COPY --from=builder --chown=\"a b\" /x /y\nRUN -- --x\nRUN --mount=type=tmpfs,target=/t ls\n");
        assert_eq!(
            f.instructions[0].flags,
            ["--from=builder", "--chown=\"a b\""]
        );
        assert_eq!(f.instructions[0].args, "/x /y");
        assert_eq!(f.instructions[1].args, "--x");
        assert_eq!(f.instructions[2].flags, ["--mount=type=tmpfs,target=/t"]);
        assert_eq!(
            f.instructions[2].text(),
            "RUN --mount=type=tmpfs,target=/t ls"
        );
    }

    #[test]
    fn heredocs_are_plain_text() {
        let f = parse_ok("FROM a\nRUN <<EOT\necho hi\nEOT\n");
        assert_eq!(f.instructions.len(), 4);
        assert_eq!(f.instructions[2].keyword, "echo");
    }

    #[test]
    fn no_panics_on_odd_input() {
        for text in [
            "",
            "\\",
            "`",
            "RUN \\",
            "# escape=",
            "#",
            "  \t",
            "--",
            "RUN --",
            "RUN \"--a",
            "ä\\\nö",
        ] {
            let _ = parse(text, "f");
        }
    }
}
