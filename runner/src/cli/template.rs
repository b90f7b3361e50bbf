//! `--format`: Go templates as Podman takes them (gotmpl, a Rust port of Go's
//! text/template), evaluated against the same JSON the command prints with
//! `--format json`, plus Podman's extra functions (`json`, `join`, `upper`,
//! `lower`, `title`, `split`, `truncate`, `pad`) and its `table` prefix
//! (a header row from the field names, columns aligned like Go's tabwriter).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use gotmpl::{Template, Value};

use crate::error::RunnerError;

/// A parsed `--format`.
pub struct Format {
    template: Template,
    /// Started with `table`: print a header, align the columns.
    table: bool,
    /// The field names of each column, for the header.
    columns: Vec<String>,
}

/// What `--format` asks for.
pub enum Output {
    /// No format, `table` alone: the command's own table.
    Default,
    /// `json`: the command's JSON.
    Json,
    /// A Go template.
    Template(Format),
}

impl Output {
    /// Parses `--format` for the command `name` (used in template errors).
    pub fn parse(name: &str, format: Option<&str>) -> Result<Output, RunnerError> {
        match format.map(str::trim) {
            None | Some("") | Some("table") => Ok(Output::Default),
            Some("json") => Ok(Output::Json),
            Some(text) => Format::parse(name, text).map(Output::Template),
        }
    }
}

/// Podman turns the two-character escapes `\t` and `\n` of a format into
/// the characters (scripts write `'{{.A}}\t{{.B}}'` in single quotes).
fn unescape(text: &str) -> String {
    text.replace("\\t", "\t").replace("\\n", "\n")
}

fn template_error(e: gotmpl::TemplateError) -> RunnerError {
    let text = e.to_string();
    if text.starts_with("template: ") {
        RunnerError::Engine(text)
    } else {
        RunnerError::Engine(format!("template: {text}"))
    }
}

impl Format {
    pub fn parse(name: &str, text: &str) -> Result<Format, RunnerError> {
        let (table, body) = match text.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with([' ', '\t']) => {
                (true, rest.trim_start())
            }
            _ => (false, text),
        };
        let body = unescape(body);
        let columns = if table {
            body.split('\t').map(column_field).collect()
        } else {
            Vec::new()
        };
        // Podman's data are Go structs: a field that does not exist is an
        // error, not `<no value>` (maps would print that; they are rarer).
        let template = with_podman_funcs(Template::new(name))
            .missing_key(gotmpl::MissingKey::Error)
            .parse(&body)
            .map_err(template_error)?;
        Ok(Format {
            template,
            table,
            columns,
        })
    }

    /// Renders one value (an object of the command's JSON).
    ///
    /// Podman's data are Go structs holding a few maps (labels, annotations,
    /// networks...): a missing struct field is an error, a missing map key
    /// prints `<no value>`. JSON cannot tell them apart, so the template runs
    /// with missing keys as errors, and a key missing from an object that is
    /// a map in Podman's types ([`MAP_FIELDS`]) is added to those objects as
    /// nil and the template run again (once per such key, bounded).
    pub fn render(&self, value: &serde_json::Value) -> Result<String, RunnerError> {
        let mut absent: BTreeSet<String> = BTreeSet::new();
        loop {
            match self
                .template
                .execute_to_string(&to_value_with(value, None, &absent))
            {
                Ok(text) => return Ok(text),
                Err(gotmpl::TemplateError::MissingKey { key })
                    if absent.len() < MAX_ABSENT_KEYS
                        && !absent.contains(&key)
                        && has_map_without(value, None, &key) =>
                {
                    absent.insert(key);
                }
                Err(gotmpl::TemplateError::MissingKey { key }) => {
                    return Err(RunnerError::Engine(format!(
                        "template: {}: executing \"{}\": can't evaluate field {key}",
                        self.template.name(),
                        self.template.name()
                    )))
                }
                Err(e) => return Err(template_error(e)),
            }
        }
    }

    /// The same format without the header row of a `table` format
    /// (`--noheading`); the columns are still aligned.
    pub fn without_header(mut self) -> Format {
        self.columns.clear();
        self
    }

    /// Renders every row, one per line, with the header and alignment of a
    /// `table` format; `header` names a field (`ID` -> `CONTAINER ID`).
    pub fn render_all(
        &self,
        rows: &[serde_json::Value],
        header: &dyn Fn(&str) -> String,
    ) -> Result<String, RunnerError> {
        let mut lines = Vec::new();
        if self.table && !self.columns.is_empty() {
            lines.push(
                self.columns
                    .iter()
                    .map(|c| header(c))
                    .collect::<Vec<_>>()
                    .join("\t"),
            );
        }
        for row in rows {
            lines.push(self.render(row)?);
        }
        if self.table {
            Ok(tabwrite(&lines, 12))
        } else {
            Ok(lines.iter().map(|l| format!("{l}\n")).collect())
        }
    }
}

/// The field a table column shows: the last name of the first `.A.B` in it.
fn column_field(cell: &str) -> String {
    let Some(start) = cell.find("{{") else {
        return cell.trim().to_string();
    };
    let inner = &cell[start + 2..];
    let inner = &inner[..inner.find("}}").unwrap_or(inner.len())];
    inner
        .split_whitespace()
        .find(|w| w.starts_with('.'))
        .and_then(|w| w.rsplit('.').next())
        .unwrap_or("")
        .to_string()
}

/// A field name as a header: `RunningFor` -> `RUNNING FOR`.
pub fn default_header(field: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = field.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let prev_lower = i > 0 && chars[i - 1].is_lowercase();
        if i > 0 && c.is_uppercase() && (prev_lower || next_lower) {
            out.push(' ');
        }
        out.extend(c.to_uppercase());
    }
    out
}

/// Go's `text/tabwriter` as Podman configures it (minwidth `min`, padding
/// 2, spaces): cells end at tabs; every column but a line's last is padded
/// to `max(widest + 2, min)`.
pub fn tabwrite(lines: &[String], min: usize) -> String {
    let rows: Vec<Vec<&str>> = lines
        .iter()
        .flat_map(|l| l.split('\n'))
        .map(|l| l.split('\t').collect())
        .collect();
    let mut widths: Vec<usize> = Vec::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate().take(row.len().saturating_sub(1)) {
            let w = (cell.chars().count() + 2).max(min);
            if widths.len() <= i {
                widths.push(w);
            } else {
                widths[i] = widths[i].max(w);
            }
        }
    }
    let mut out = String::new();
    for row in &rows {
        for (i, cell) in row.iter().enumerate() {
            out.push_str(cell);
            if i + 1 < row.len() {
                out.push_str(&" ".repeat(widths[i] - cell.chars().count()));
            }
        }
        out.push('\n');
    }
    out
}

/// The fields whose values are Go maps in Podman's inspect, ps, images and
/// info data (everything else with keys is a struct).
const MAP_FIELDS: &[&str] = &[
    "Labels",
    "Annotations",
    "Networks",
    "Ports",
    "PortBindings",
    "ExposedPorts",
    "Volumes",
    "Sysctls",
    "Tmpfs",
    "Data",
    "Options",
    "DriverOpts",
    "Registries",
];

/// How many distinct missing map keys one rendering looks up at most.
const MAX_ABSENT_KEYS: usize = 64;

fn is_map_field(field: Option<&str>) -> bool {
    field.is_some_and(|f| MAP_FIELDS.contains(&f))
}

/// Is there an object under a map field of `v` (named `field` itself) that
/// lacks `key`?
fn has_map_without(v: &serde_json::Value, field: Option<&str>, key: &str) -> bool {
    match v {
        serde_json::Value::Object(o) => {
            (is_map_field(field) && !o.contains_key(key))
                || o.iter().any(|(k, v)| has_map_without(v, Some(k), key))
        }
        serde_json::Value::Array(a) => a.iter().any(|v| has_map_without(v, field, key)),
        // A nil map (`"Labels": null`) is a map too.
        serde_json::Value::Null => false,
        _ => false,
    }
}

/// JSON as a template value (objects become maps; [`Format::parse`] makes a
/// missing key an error, as a missing field of Podman's structs is).
pub fn to_value(v: &serde_json::Value) -> Value {
    to_value_with(v, None, &BTreeSet::new())
}

/// [`to_value`], with the keys `absent` added as nil to the objects under a
/// map field (`field` names `v`'s own field).
fn to_value_with(v: &serde_json::Value, field: Option<&str>, absent: &BTreeSet<String>) -> Value {
    match v {
        serde_json::Value::Object(o) => {
            let mut map: BTreeMap<Arc<str>, Value> = o
                .iter()
                .map(|(k, v)| {
                    (
                        Arc::<str>::from(k.as_str()),
                        to_value_with(v, Some(k), absent),
                    )
                })
                .collect();
            if is_map_field(field) {
                for key in absent {
                    map.entry(Arc::from(key.as_str())).or_insert(Value::Nil);
                }
            }
            Value::Map(Arc::new(map))
        }
        serde_json::Value::Array(a) => {
            Value::List(a.iter().map(|v| to_value_with(v, field, absent)).collect())
        }
        other => scalar_value(other),
    }
}

fn scalar_value(v: &serde_json::Value) -> Value {
    match v {
        serde_json::Value::Null => Value::Nil,
        serde_json::Value::Bool(b) => Value::Bool(*b),
        serde_json::Value::Number(n) => match (n.as_i64(), n.as_u64()) {
            (Some(i), _) => Value::Int(i),
            (None, Some(u)) => Value::Uint(u),
            _ => Value::Float(n.as_f64().unwrap_or(0.0)),
        },
        serde_json::Value::String(s) => Value::String(s.as_str().into()),
        serde_json::Value::Array(_) | serde_json::Value::Object(_) => to_value(v),
    }
}

/// A template value as JSON (for `{{json .X}}`).
fn to_json(v: &Value) -> serde_json::Value {
    match v {
        Value::Nil => serde_json::Value::Null,
        Value::Bool(b) => (*b).into(),
        Value::Int(i) => (*i).into(),
        Value::Uint(u) => (*u).into(),
        Value::Float(f) => (*f).into(),
        Value::String(s) => s.as_ref().into(),
        Value::List(l) => l.iter().map(to_json).collect(),
        Value::Map(m) => m
            .iter()
            .map(|(k, v)| (k.to_string(), to_json(v)))
            .collect::<serde_json::Map<_, _>>()
            .into(),
        other => other.to_string().into(),
    }
}

fn arg_error(name: &str, want: &str) -> gotmpl::TemplateError {
    gotmpl::TemplateError::Exec(format!("error calling {name}: {want}"))
}

fn string_arg<'a>(name: &str, args: &'a [Value], i: usize) -> gotmpl::Result<&'a str> {
    args.get(i)
        .and_then(Value::as_str)
        .ok_or_else(|| arg_error(name, "expected a string argument"))
}

fn int_arg(name: &str, args: &[Value], i: usize) -> gotmpl::Result<usize> {
    args.get(i)
        .and_then(Value::as_int)
        .and_then(|n| usize::try_from(n).ok())
        .ok_or_else(|| arg_error(name, "expected a non-negative number"))
}

fn string(s: String) -> Value {
    Value::String(s.into())
}

/// Podman's functions (containers/common `report` package).
fn with_podman_funcs(t: Template) -> Template {
    // Go's `index` gives a missing map key's zero value: "" for Podman's
    // string maps (labels, annotations), where gotmpl gives nil.
    t.func("index", |args| {
        let (collection, keys) = match args {
            [collection, keys @ ..] if !keys.is_empty() => (collection, keys),
            _ => {
                return Err(arg_error(
                    "index",
                    "wrong number of args for index: want at least 1",
                ))
            }
        };
        let mut val = collection.clone();
        for key in keys {
            let string_map =
                matches!(&val, Value::Map(m) if m.values().all(|v| matches!(v, Value::String(_))));
            val = match val.index(key)? {
                Value::Nil if string_map => string(String::new()),
                found => found,
            };
        }
        Ok(val)
    })
    .func("json", |args| {
        let v = args.first().map(to_json).unwrap_or(serde_json::Value::Null);
        Ok(string(v.to_string()))
    })
    .func("join", |args| match args.first() {
        Some(Value::List(items)) => {
            let sep = string_arg("join", args, 1)?;
            let parts: Vec<String> = items.iter().map(|v| v.to_string()).collect();
            Ok(string(parts.join(sep)))
        }
        Some(other) => Err(arg_error(
            "join",
            &format!(
                "wrong type for value; expected []string; got {}",
                other.type_name()
            ),
        )),
        None => Err(arg_error("join", "wrong number of args")),
    })
    .func("upper", |args| {
        Ok(string(string_arg("upper", args, 0)?.to_uppercase()))
    })
    .func("lower", |args| {
        Ok(string(string_arg("lower", args, 0)?.to_lowercase()))
    })
    .func("title", |args| {
        let s = string_arg("title", args, 0)?;
        let mut out = String::new();
        let mut start = true;
        for c in s.chars() {
            if start {
                out.extend(c.to_uppercase());
            } else {
                out.push(c);
            }
            start = c.is_whitespace();
        }
        Ok(string(out))
    })
    .func("split", |args| {
        let (s, sep) = (string_arg("split", args, 0)?, string_arg("split", args, 1)?);
        Ok(Value::List(
            s.split(sep).map(|p| string(p.into())).collect(),
        ))
    })
    .func("truncate", |args| {
        let (s, n) = (
            string_arg("truncate", args, 0)?,
            int_arg("truncate", args, 1)?,
        );
        Ok(string(s.chars().take(n).collect()))
    })
    .func("pad", |args| {
        let s = string_arg("pad", args, 0)?;
        let (left, right) = (int_arg("pad", args, 1)?, int_arg("pad", args, 2)?);
        Ok(string(format!(
            "{}{s}{}",
            " ".repeat(left),
            " ".repeat(right)
        )))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn render(format: &str, v: serde_json::Value) -> String {
        Format::parse("t", format).unwrap().render(&v).unwrap()
    }

    #[test]
    fn the_subset_scripts_use() {
        let v = json!({
            "Names": "web", "ID": "abc", "List": ["a", "b"],
            "Config": {"Labels": {"app": "web", "tier": "1"}, "Cmd": ["sh", "-c", "exit 3"]},
            "State": {"ExitCode": 3, "Status": "exited"}
        });
        assert_eq!(render("{{.Names}}", v.clone()), "web");
        assert_eq!(render("{{.Config.Labels.app}}", v.clone()), "web");
        assert_eq!(render("{{index .Config.Labels \"app\"}}", v.clone()), "web");
        assert_eq!(
            render("{{json .Config.Cmd}}", v.clone()),
            r#"["sh","-c","exit 3"]"#
        );
        assert_eq!(render("{{range .List}}[{{.}}]{{end}}", v.clone()), "[a][b]");
        assert_eq!(
            render(
                "{{range $k, $v := .Config.Labels}}{{$k}}={{$v}};{{end}}",
                v.clone()
            ),
            "app=web;tier=1;"
        );
        assert_eq!(
            render(
                "{{if eq .State.ExitCode 3}}three{{else}}other{{end}}",
                v.clone()
            ),
            "three"
        );
        assert_eq!(render("{{len .List}} {{.List}}", v.clone()), "2 [a b]");
        assert_eq!(
            render("{{upper .Names}} {{join .List \",\"}}", v.clone()),
            "WEB a,b"
        );
        assert_eq!(render("{{printf \"%.2s\" .ID}}", v.clone()), "ab");
        assert_eq!(
            render("{{.Config.Labels}}", v.clone()),
            "map[app:web tier:1]"
        );
        assert_eq!(render("{{.Names}}\\t{{.ID}}", v.clone()), "web\tabc");
        assert!(Format::parse("t", "{{join .Names \",\"}}")
            .unwrap()
            .render(&v)
            .is_err());
    }

    #[test]
    fn missing_map_keys_print_no_value_and_missing_fields_fail() {
        let v = json!({
            "Config": {"Labels": {"a": "b"}, "Annotations": null, "Cmd": ["true"]},
            "NetworkSettings": {"Networks": {"podman": {"IPAddress": ""}}}
        });
        assert_eq!(render("{{.Config.Labels.nope}}", v.clone()), "<no value>");
        assert_eq!(render("{{.Config.Labels.nope.x}}", v.clone()), "<no value>");
        assert_eq!(
            render("{{.Config.Annotations.nope}}", v.clone()),
            "<no value>"
        );
        assert_eq!(
            render(
                "{{.NetworkSettings.Networks.nope}}|{{.Config.Labels.a}}",
                v.clone()
            ),
            "<no value>|b"
        );
        assert_eq!(
            render("{{if .Config.Labels.nope}}y{{else}}n{{end}}", v.clone()),
            "n"
        );
        assert_eq!(render("{{index .Config.Labels \"nope\"}}", v.clone()), "");
        for field in [
            "{{.Config.Nope}}",
            "{{.Nope}}",
            "{{.Config.Labels.nope}}{{.Config.Nope}}",
        ] {
            let err = Format::parse("inspect", field)
                .and_then(|f| f.render(&v))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("can't evaluate field Nope"), "{field}: {err}");
        }
    }

    #[test]
    fn bad_templates_are_errors() {
        let err = match Format::parse("ps", "{{.Names") {
            Err(e) => e.to_string(),
            Ok(_) => panic!("parsed"),
        };
        assert!(err.starts_with("template: "), "{err}");
        let undefined =
            Format::parse("ps", "{{nosuchfunc .A}}").and_then(|f| f.render(&serde_json::json!({})));
        assert!(undefined.is_err());
        eprintln!(
            "{err} / {}",
            undefined.err().map(|e| e.to_string()).unwrap_or_default()
        );
    }

    #[test]
    fn tables_have_headers_and_aligned_columns() {
        let f = Format::parse("ps", "table {{.ID}}\\t{{.Names}}\\t{{.Status}}").unwrap();
        let rows = [json!({"ID": "abc", "Names": "n", "Status": "Up"})];
        let header = |f: &str| match f {
            "ID" => "CONTAINER ID".to_string(),
            other => default_header(other),
        };
        assert_eq!(
            f.render_all(&rows, &header).unwrap(),
            "CONTAINER ID  NAMES       STATUS\nabc           n           Up\n"
        );
        assert_eq!(default_header("RunningFor"), "RUNNING FOR");
        assert_eq!(default_header("ID"), "ID");
    }
}
