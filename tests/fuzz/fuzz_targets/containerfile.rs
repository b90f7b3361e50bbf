//! The Containerfile parser (`vigil_runner::build::parse`) and the
//! per-instruction splitting and substitution (`build::words`) on arbitrary
//! text: no panic, every instruction keyword lower-case and non-empty, line
//! numbers within the file, and an instruction's text starting with its word.
#![no_main]

use libfuzzer_sys::fuzz_target;
use vigil_runner::build::{parse, words};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let lines = text.split('\n').count();
    let Ok(file) = parse::parse(text, "Containerfile") else {
        return;
    };
    let lookup = |name: &str| (name.len() % 2 == 0).then(|| format!("v{name}"));
    for ins in &file.instructions {
        assert!(!ins.keyword.is_empty());
        assert_eq!(ins.keyword, ins.keyword.to_ascii_lowercase());
        assert!(ins.line >= 1 && ins.line <= lines);
        assert!(ins.text().starts_with(&ins.word));
        let _ = ins.json();
        let _ = words::process_word(&ins.args, &lookup);
        let _ = words::process_words(&ins.args, &lookup);
        let _ = words::name_values(&ins.args, file.escape, "ENV");
    }
});
