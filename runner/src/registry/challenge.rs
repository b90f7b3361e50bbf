//! `WWW-Authenticate` challenges (RFC 7235): several per header or several
//! headers, parameters quoted or bare, names case-insensitive.

use std::collections::BTreeMap;

/// One challenge: the scheme (lower case) and its parameters (names lower case).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Challenge {
    pub scheme: String,
    pub params: BTreeMap<String, String>,
}

impl Challenge {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.get(name).map(String::as_str)
    }
}

/// Parses every challenge in `headers`.
pub fn parse(headers: &[&str]) -> Vec<Challenge> {
    let mut out = Vec::new();
    for header in headers {
        parse_one(header, &mut out);
    }
    out
}

fn is_token_char(c: u8) -> bool {
    c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/".contains(&c)
}

fn parse_one(header: &str, out: &mut Vec<Challenge>) {
    let bytes = header.as_bytes();
    let mut i = 0;
    let skip_ws = |i: &mut usize| {
        while *i < bytes.len() && (bytes[*i] == b' ' || bytes[*i] == b'\t' || bytes[*i] == b',') {
            *i += 1;
        }
    };
    let token = |i: &mut usize| -> String {
        let start = *i;
        while *i < bytes.len() && is_token_char(bytes[*i]) {
            *i += 1;
        }
        header[start..*i].to_string()
    };
    loop {
        skip_ws(&mut i);
        if i >= bytes.len() {
            return;
        }
        let scheme = token(&mut i);
        if scheme.is_empty() {
            // Not a token: skip one whole character to make progress (a
            // byte could land inside a multi-byte one, where no slice of
            // `header` may start).
            i += header[i..].chars().next().map_or(1, char::len_utf8);
            continue;
        }
        let mut challenge = Challenge {
            scheme: scheme.to_ascii_lowercase(),
            params: BTreeMap::new(),
        };
        loop {
            skip_ws(&mut i);
            let save = i;
            let name = token(&mut i);
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            if name.is_empty() || i >= bytes.len() || bytes[i] != b'=' {
                // The next challenge's scheme (or the end).
                i = save;
                break;
            }
            i += 1;
            while i < bytes.len() && bytes[i] == b' ' {
                i += 1;
            }
            let value = if i < bytes.len() && bytes[i] == b'"' {
                i += 1;
                let mut v = String::new();
                while i < bytes.len() && bytes[i] != b'"' {
                    if bytes[i] == b'\\' && i + 1 < bytes.len() {
                        i += 1;
                    }
                    // Push whole UTF-8 characters.
                    let ch = header[i..].chars().next().unwrap_or('\u{fffd}');
                    v.push(ch);
                    i += ch.len_utf8();
                }
                // The closing quote, if the header has one (an unterminated
                // value ends at the end of the header, never past it).
                if i < bytes.len() {
                    i += 1;
                }
                v
            } else {
                token(&mut i)
            };
            challenge.params.insert(name.to_ascii_lowercase(), value);
        }
        out.push(challenge);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_basic_and_mixed() {
        let c = parse(&[
            r#"Bearer realm="http://127.0.0.1:5081/token",service="vigil-test-registry",scope="repository:team/bb:pull,push",error="insufficient_scope""#,
        ]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].scheme, "bearer");
        assert_eq!(c[0].param("realm"), Some("http://127.0.0.1:5081/token"));
        assert_eq!(c[0].param("scope"), Some("repository:team/bb:pull,push"));
        let c = parse(&[r#"Basic realm="vigil-test", Bearer realm=x, service = "a\"b""#]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].scheme, "basic");
        assert_eq!(c[1].param("realm"), Some("x"));
        assert_eq!(c[1].param("service"), Some("a\"b"));
        assert!(parse(&["", ",,,", "\"", "="])
            .iter()
            .all(|c| c.params.is_empty()));
    }

    #[test]
    fn non_ascii_between_challenges_is_skipped_whole() {
        // Found by the registry_manifest fuzz target: skipping one byte of
        // a multi-byte character made the next token slice panic.
        let c = parse(&["\u{e9}Bearer realm=x, \u{1f600}Basic realm=\"y\""]);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].param("realm"), Some("x"));
        assert_eq!(c[1].scheme, "basic");
    }

    #[test]
    fn unterminated_quoted_value_ends_at_the_header_end() {
        // Found by the registry_manifest fuzz target: the closing-quote step
        // went one past the end, and the next token sliced out of range.
        let c = parse(&["Bearer realm=\"http://127.0.0.1/t"]);
        assert_eq!(c.len(), 1);
        assert_eq!(c[0].param("realm"), Some("http://127.0.0.1/t"));
    }
}
