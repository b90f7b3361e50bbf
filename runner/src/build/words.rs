//! Word splitting and variable substitution as imagebuilder does them
//! (runner-build.md §1.6, §1.7): `$name`, `${name}`, `${name:-word}`,
//! `${name:+word}`; `'…'` literal, `"…"` with `$` expansion, `\X` gives X
//! (in substitution the escape is always backslash). Unset variables expand
//! to nothing.

/// Looks a variable up (ENV of the stage, then ARGs in scope).
pub type Lookup<'a> = dyn Fn(&str) -> Option<String> + 'a;

struct Expander<'a, 'b> {
    chars: Vec<char>,
    pos: usize,
    lookup: &'a Lookup<'b>,
    original: &'a str,
}

impl Expander<'_, '_> {
    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += 1;
        Some(c)
    }

    /// Processes until `stop` (not consumed) or the end. With `split`,
    /// unquoted blanks (and blanks in unquoted expansions) separate words.
    fn words(&mut self, stop: Option<char>, split: bool) -> Result<Vec<String>, String> {
        let mut words = Vec::new();
        let mut word = String::new();
        let mut in_word = false;
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                break;
            }
            self.pos += 1;
            match c {
                ' ' | '\t' | '\n' if split => {
                    if in_word {
                        words.push(std::mem::take(&mut word));
                        in_word = false;
                    }
                }
                '\'' => {
                    in_word = true;
                    loop {
                        match self.next() {
                            Some('\'') | None => break,
                            Some(ch) => word.push(ch),
                        }
                    }
                }
                '"' => {
                    in_word = true;
                    loop {
                        match self.next() {
                            Some('"') | None => break,
                            Some('\\') => match self.peek() {
                                Some(ch @ ('"' | '$' | '\\')) => {
                                    self.pos += 1;
                                    word.push(ch);
                                }
                                _ => word.push('\\'),
                            },
                            Some('$') => word.push_str(&self.variable()?),
                            Some(ch) => word.push(ch),
                        }
                    }
                }
                '\\' => {
                    in_word = true;
                    if let Some(ch) = self.next() {
                        word.push(ch);
                    }
                }
                '$' => {
                    let value = self.variable()?;
                    if split {
                        // An unquoted expansion is split too.
                        let mut parts = value.split([' ', '\t', '\n']).peekable();
                        let starts_blank = value.starts_with([' ', '\t', '\n']);
                        if starts_blank && in_word {
                            words.push(std::mem::take(&mut word));
                            in_word = false;
                        }
                        while let Some(part) = parts.next() {
                            if !part.is_empty() {
                                word.push_str(part);
                                in_word = true;
                            }
                            if parts.peek().is_some() && in_word {
                                words.push(std::mem::take(&mut word));
                                in_word = false;
                            }
                        }
                    } else {
                        in_word = true;
                        word.push_str(&value);
                    }
                }
                other => {
                    in_word = true;
                    word.push(other);
                }
            }
        }
        if in_word || (!split && words.is_empty()) {
            words.push(word);
        }
        Ok(words)
    }

    fn name_char(c: char) -> bool {
        c.is_ascii_alphanumeric() || c == '_'
    }

    /// After a `$`: the expansion (`$` alone stays literal).
    fn variable(&mut self) -> Result<String, String> {
        match self.peek() {
            Some('{') => {
                self.pos += 1;
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|c| Self::name_char(*c)) {
                    name.push(c);
                    self.pos += 1;
                }
                match self.next() {
                    Some('}') => Ok((self.lookup)(&name).unwrap_or_default()),
                    Some(':') => {
                        let modifier = self.next();
                        let word = self.words(Some('}'), false)?.concat();
                        if self.next() != Some('}') {
                            return Err(format!("Missing '}}' in substitution: {}", self.original));
                        }
                        let value = (self.lookup)(&name).unwrap_or_default();
                        match modifier {
                            Some('-') => Ok(if value.is_empty() { word } else { value }),
                            Some('+') => Ok(if value.is_empty() {
                                String::new()
                            } else {
                                word
                            }),
                            Some(m) => Err(format!(
                                "Unsupported modifier ({m}) in substitution: {}",
                                self.original
                            )),
                            None => Err(format!("Missing '}}' in substitution: {}", self.original)),
                        }
                    }
                    Some(_) => Err(format!("Missing ':' in substitution: {}", self.original)),
                    None => Err(format!("Missing '}}' in substitution: {}", self.original)),
                }
            }
            Some(c) if c.is_ascii_digit() => {
                self.pos += 1;
                Ok((self.lookup)(&c.to_string()).unwrap_or_default())
            }
            Some(c) if Self::name_char(c) => {
                let mut name = String::new();
                while let Some(c) = self.peek().filter(|c| Self::name_char(*c)) {
                    name.push(c);
                    self.pos += 1;
                }
                Ok((self.lookup)(&name).unwrap_or_default())
            }
            _ => Ok("$".into()),
        }
    }
}

/// One word: quotes removed, variables expanded, blanks kept.
pub fn process_word(word: &str, lookup: &Lookup<'_>) -> Result<String, String> {
    let mut e = Expander {
        chars: word.chars().collect(),
        pos: 0,
        lookup,
        original: word,
    };
    Ok(e.words(None, false)?.concat())
}

/// Words split on unquoted blanks after expansion (EXPOSE).
pub fn process_words(text: &str, lookup: &Lookup<'_>) -> Result<Vec<String>, String> {
    let mut e = Expander {
        chars: text.chars().collect(),
        pos: 0,
        lookup,
        original: text,
    };
    e.words(None, true)
}

/// Splits on blanks, nothing else (COPY, ADD, VOLUME shell form; FROM; ARG).
pub fn blank_split(text: &str) -> Vec<String> {
    text.split([' ', '\t'])
        .filter(|w| !w.is_empty())
        .map(String::from)
        .collect()
}

/// Splits `ENV`/`LABEL` arguments into raw (unexpanded) name/value pairs:
/// `name=value` words (quotes group, the escape character escapes the next
/// character), or the legacy `name rest of line`.
pub fn name_values(
    args: &str,
    escape: char,
    instruction: &str,
) -> Result<Vec<(String, String)>, String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quote: Option<char> = None;
    let mut chars = args.chars();
    while let Some(c) = chars.next() {
        match quote {
            Some(q) => {
                word.push(c);
                if c == q {
                    quote = None;
                } else if c == escape && q == '"' {
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
            }
            None => match c {
                ' ' | '\t' => {
                    if !word.is_empty() {
                        words.push(std::mem::take(&mut word));
                    }
                }
                '\'' | '"' => {
                    quote = Some(c);
                    word.push(c);
                }
                c if c == escape => {
                    word.push(c);
                    if let Some(n) = chars.next() {
                        word.push(n);
                    }
                }
                c => word.push(c),
            },
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    let Some(first) = words.first() else {
        return Err(format!("{instruction} requires at least one argument"));
    };
    if !first.contains('=') {
        // Legacy form: the name, then everything after the first blanks.
        let trimmed = args.trim_start_matches([' ', '\t']);
        let at = trimmed.find([' ', '\t']).unwrap_or(trimmed.len());
        let value = trimmed[at..].trim_start_matches([' ', '\t']);
        if value.is_empty() {
            return Err(format!("{instruction} names can not be blank"));
        }
        return Ok(vec![(trimmed[..at].to_string(), value.to_string())]);
    }
    words
        .into_iter()
        .map(|w| match w.split_once('=') {
            Some((k, v)) if !k.is_empty() => Ok((k.to_string(), v.to_string())),
            _ => Err(format!(
                "Syntax error - can't find = in {w:?}. Must be of the form: name=value"
            )),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(name: &str) -> Option<String> {
        match name {
            "V1" => Some("cli".into()),
            "EMPTY" => Some(String::new()),
            "PORTS" => Some("80 443/udp".into()),
            "BASE" => Some("localhost/busybox".into()),
            _ => None,
        }
    }

    fn word(w: &str) -> String {
        process_word(w, &vars).unwrap()
    }

    #[test]
    fn substitutions() {
        assert_eq!(word("$V1"), "cli");
        assert_eq!(word("${V1}x"), "clix");
        assert_eq!(word("${UNSET:-dflt}"), "dflt");
        assert_eq!(word("${EMPTY:-dflt}"), "dflt");
        assert_eq!(word("${V1:+alt}"), "alt");
        assert_eq!(word("${UNSET:+alt}"), "");
        assert_eq!(word("\\$V1"), "$V1");
        assert_eq!(word("'$V1'"), "$V1");
        assert_eq!(word("\"$V1 q\""), "cli q");
        assert_eq!(word("${BASE}:${TAG:-latest}"), "localhost/busybox:latest");
        assert_eq!(word("a$"), "a$");
        assert_eq!(word("$-x"), "$-x");
        assert_eq!(word("${UNSET:-${V1}}"), "cli");
        assert!(process_word("${V1-x}", &vars)
            .unwrap_err()
            .starts_with("Missing ':'"));
        assert!(process_word("${V1:?x}", &vars)
            .unwrap_err()
            .starts_with("Unsupported modifier (?)"));
        assert!(process_word("${V1", &vars).is_err());
    }

    #[test]
    fn word_splitting() {
        assert_eq!(
            process_words("${PORTS} 9090/udp", &vars).unwrap(),
            ["80", "443/udp", "9090/udp"]
        );
        assert_eq!(process_words("${PORT:-8080}", &vars).unwrap(), ["8080"]);
        assert_eq!(process_words("\"a b\" c", &vars).unwrap(), ["a b", "c"]);
    }

    #[test]
    fn env_and_label_pairs() {
        let p = |s: &str| name_values(s, '\\', "ENV").unwrap();
        assert_eq!(
            p("A=1 B=\"two words\""),
            [
                ("A".into(), "1".into()),
                ("B".into(), "\"two words\"".into())
            ]
        );
        assert_eq!(p("C 3 4"), [("C".into(), "3 4".into())]);
        assert_eq!(
            p("E10 ${V1} and more"),
            [("E10".into(), "${V1} and more".into())]
        );
        assert_eq!(
            p("\"l 2\"=\"sp ace\""),
            [("\"l 2\"".into(), "\"sp ace\"".into())]
        );
        assert_eq!(p("A=a\\ b"), [("A".into(), "a\\ b".into())]);
        let e = name_values("X=1 Y", '\\', "ENV").unwrap_err();
        assert_eq!(
            e,
            "Syntax error - can't find = in \"Y\". Must be of the form: name=value"
        );
        assert!(name_values("", '\\', "ENV").is_err());
    }
}
