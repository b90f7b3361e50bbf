//! The monitor's GOption-compatible argv parser (monitor/src/cli.rs, compiled
//! here as-is: it depends on std only).
//!
//! Input: argv items separated by NUL bytes (argv[0] excluded). Invariants:
//! no panic; list options never hold more items than argv has; and integer
//! options agree with C `strtol(s, &end, 0)` plus GLib's checks (the oracle
//! is the C library's strtol, on the value as the parser sees it).
#![no_main]

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStringExt;

use libfuzzer_sys::fuzz_target;

#[allow(dead_code)]
#[path = "../../../monitor/src/cli.rs"]
mod cli;

/// What GLib's `parse_int`/`parse_int64` make of `s` in `[lo, hi]`.
#[derive(Debug, PartialEq, Eq)]
enum Int {
    Ok(i64),
    OutOfRange,
    Unparsable,
}

fn glib_int(s: &str, lo: i64, hi: i64) -> Int {
    let c = CString::new(s).expect("no NUL in an argv item");
    let mut end: *mut libc::c_char = std::ptr::null_mut();
    // SAFETY: `c` is a valid C string; errno is thread-local.
    let (v, errno, rest) = unsafe {
        *libc::__errno_location() = 0;
        let v = libc::strtol(c.as_ptr(), &mut end, 0);
        (v, *libc::__errno_location(), *end)
    };
    if s.is_empty() || rest != 0 {
        Int::Unparsable
    } else if errno == libc::ERANGE || !(lo..=hi).contains(&v) {
        Int::OutOfRange
    } else {
        Int::Ok(v)
    }
}

fn parsed(args: &[&str]) -> Result<Box<cli::Options>, String> {
    match cli::parse(args.iter().map(OsString::from)) {
        Ok(cli::Parsed::Run(o)) => Ok(o),
        Ok(cli::Parsed::Help) => Err("help".into()),
        Err(e) => Err(e.0),
    }
}

fn check_int(value: &str) {
    for (opt, lo, hi) in [
        ("--log-size-max", i64::MIN, i64::MAX),
        ("--timeout", i64::from(i32::MIN), i64::from(i32::MAX)),
    ] {
        let expected = glib_int(value, lo, hi);
        let got = parsed(&[opt, value]);
        let got = match got {
            Ok(o) if opt == "--timeout" => Int::Ok(i64::from(o.timeout)),
            Ok(o) => Int::Ok(o.log_size_max),
            Err(e) if e.starts_with("Integer value") && e.ends_with("out of range") => {
                Int::OutOfRange
            }
            Err(e) if e.starts_with("Cannot parse integer value") => Int::Unparsable,
            Err(e) => panic!("{opt} {value:?}: unexpected error {e:?}"),
        };
        assert_eq!(
            got, expected,
            "{opt} {value:?}: parser disagrees with strtol(base 0)"
        );
    }
}

fuzz_target!(|data: &[u8]| {
    if data.len() > 64 * 1024 {
        return;
    }
    let args: Vec<OsString> = data
        .split(|&b| b == 0)
        .map(|a| OsString::from_vec(a.to_vec()))
        .collect();
    let n = args.len();
    if let Ok(cli::Parsed::Run(o)) = cli::parse(args.clone()) {
        let lists = o.exit_command_args.len()
            + o.log_paths.len()
            + o.log_labels.len()
            + o.runtime_args.len()
            + o.runtime_opts.len()
            + o.log_allowlist_dirs.len();
        assert!(lists <= n, "{lists} list items from {n} argv items");
    }
    // Integer conversion, differentially: the first item as an option value.
    if let Some(first) = args.first() {
        let value = String::from_utf8_lossy(first.as_encoded_bytes()).into_owned();
        check_int(&value);
    }
});
