//! What every command shares to print results and report errors.

use std::io::{self, Write};

use crate::error::RunnerError;

/// Writes `text` to stdout; a closed pipe (`vigil images | head`) is not an error.
pub fn print_out(text: &str) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

/// Writes raw bytes to stdout (a tar stream); a closed pipe is not an error.
pub fn print_bytes(bytes: &[u8]) {
    let mut out = io::stdout().lock();
    let _ = out.write_all(bytes).and_then(|()| out.flush());
}

/// Maps an error of a layer below the CLI (image store, archives) to the
/// runner's engine error (exit code 125).
pub fn engine_err(err: impl std::fmt::Display) -> RunnerError {
    RunnerError::Engine(err.to_string())
}

/// Left-aligned columns separated by at least two spaces, the last one
/// unpadded, like Go's tabwriter in Podman's tables.
pub fn table<R: AsRef<[String]>>(rows: &[R]) -> String {
    let cols = rows.iter().map(|r| r.as_ref().len()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..cols)
        .map(|c| {
            rows.iter()
                .filter_map(|r| r.as_ref().get(c))
                .map(|s| s.chars().count())
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = String::new();
    for row in rows {
        let row = row.as_ref();
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            line.push_str(cell);
            if c + 1 < row.len() {
                line.push_str(&" ".repeat(widths[c] - cell.chars().count() + 2));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_align() {
        let rows = [
            ["A".to_string(), "BB".to_string()],
            ["CCC".to_string(), "D".to_string()],
        ];
        assert_eq!(table(&rows), "A    BB\nCCC  D\n");
        let ragged = vec![vec!["x".to_string()], vec!["yy".into(), "z ".into()]];
        assert_eq!(table(&ragged), "x\nyy  z\n");
    }
}
