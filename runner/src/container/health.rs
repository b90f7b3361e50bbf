//! Healthchecks of a container. The monitor runs them (vigil's extension,
//! `vigil::client::HealthOptions`); this module decides what it runs: the
//! container's `Healthcheck` from `--health-*` flags or from the image, with
//! Podman 4.3.1's rules and messages; reads the health log back (`ps`,
//! `inspect`, `--filter health=`); runs a check on request (`healthcheck
//! run`); and restarts a container its monitor stopped for
//! `--health-on-failure restart`.

use std::path::Path;
use std::time::{Duration, Instant};

use vigil::client::{self, Ctl, HealthOptions, OnFailure};
use vigil::proto::health::{self, HealthLog};

pub use crate::image::oci::Healthcheck;

use super::lifecycle::Engine;
use super::record::{now_nanos, Record, Status};
use crate::error::RunnerError;

/// Podman's defaults.
const DEFAULT_INTERVAL: &str = "30s";
const DEFAULT_TIMEOUT: &str = "30s";
const DEFAULT_RETRIES: i64 = 3;

/// The `--health-*` flags of `run`/`create`, as typed.
#[derive(Clone, Debug, Default)]
pub struct HealthFlags {
    pub cmd: Option<String>,
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub retries: Option<String>,
    pub start_period: Option<String>,
    pub no_healthcheck: bool,
    pub on_failure: Option<String>,
}

fn err(msg: impl Into<String>) -> RunnerError {
    RunnerError::Engine(msg.into())
}

/// The container's healthcheck: from the flags when `--health-cmd` or
/// `--no-healthcheck` is given, else the image's (Podman 4.3.1 ignores the
/// other `--health-*` flags then, and so does vigil).
pub fn from_flags(
    flags: &HealthFlags,
    image: Option<&Healthcheck>,
) -> Result<Option<Healthcheck>, RunnerError> {
    let cmd = flags.cmd.as_deref().filter(|c| !c.is_empty());
    if flags.no_healthcheck {
        if cmd.is_some() {
            return Err(err("cannot specify both --no-healthcheck and --health-cmd"));
        }
        return Ok(Some(Healthcheck {
            test: vec!["NONE".into()],
            ..Default::default()
        }));
    }
    let Some(cmd) = cmd else {
        return Ok(image.cloned());
    };
    let duration = |flag: &str, value: Option<&str>, default: &str| {
        let v = value.unwrap_or(default);
        if flag == "interval" && v == "disable" {
            return Ok(0);
        }
        go_duration(v).map_err(|e| err(format!("invalid healthcheck-{flag}: {e}")))
    };
    let interval = duration("interval", flags.interval.as_deref(), DEFAULT_INTERVAL)?;
    let timeout = duration("timeout", flags.timeout.as_deref(), DEFAULT_TIMEOUT)?;
    if timeout < 1 {
        return Err(err("healthcheck-timeout must be at least 1 second"));
    }
    let start_period = duration("start-period", flags.start_period.as_deref(), "0s")?;
    if start_period < 0 {
        return Err(err("healthcheck-start-period must be 0 seconds or greater"));
    }
    let retries = match flags.retries.as_deref() {
        None => DEFAULT_RETRIES,
        Some(r) => match r.parse::<u64>() {
            Ok(0) => return Err(err("healthcheck-retries must be greater than 0")),
            Ok(n) => i64::try_from(n).unwrap_or(i64::MAX),
            Err(e) => {
                let why = if r.is_empty() || !r.bytes().all(|b| b.is_ascii_digit()) {
                    "invalid syntax"
                } else {
                    let _ = e;
                    "value out of range"
                };
                return Err(err(format!(
                    "invalid argument \"{r}\" for \"--health-retries\" flag: strconv.ParseUint: parsing \"{r}\": {why}"
                )));
            }
        },
    };
    Ok(Some(Healthcheck {
        test: test_from_cmd(cmd)?,
        start_period,
        interval,
        timeout,
        retries,
    }))
}

/// `--health-on-failure`: Podman 4.6's names.
pub fn parse_on_failure(v: Option<&str>) -> Result<Option<String>, RunnerError> {
    match v {
        None => Ok(None),
        Some(s) => match OnFailure::parse(s) {
            Some(a) => Ok(Some(a.as_str().to_string())),
            None => Err(err(format!(
                "invalid on-failure action \"{s}\" for health check: supported actions are none, kill, restart and stop"
            ))),
        },
    }
}

/// `--health-cmd` to a `Test` array, as Podman 4.3.1 does it: a JSON array
/// of strings is the exec form (`CMD`, or `CMD-SHELL` for a single element),
/// anything else a shell command; `none` (any case) disables; a first word
/// `CMD` splits the text on blanks.
pub fn test_from_cmd(cmd: &str) -> Result<Vec<String>, RunnerError> {
    let (mut arr, is_array) = match serde_json::from_str::<Vec<String>>(cmd) {
        Ok(a) => (a, true),
        Err(_) => (
            cmd.splitn(2, ' ').map(String::from).collect::<Vec<_>>(),
            false,
        ),
    };
    if arr.is_empty() {
        return Err(err(
            "must define a healthcheck command for all healthchecks",
        ));
    }
    if arr[0] == "CMD" || arr[0].eq_ignore_ascii_case("none") {
        arr = cmd.split_whitespace().map(String::from).collect();
    } else if arr[0] != "CMD-SHELL" {
        if is_array && arr.len() > 1 {
            arr.insert(0, "CMD".into());
        } else {
            arr = vec!["CMD-SHELL".into(), arr.join(" ")];
        }
    }
    if arr.first().is_some_and(|a| a.eq_ignore_ascii_case("none")) {
        arr = vec!["NONE".into()];
    }
    Ok(arr)
}

/// Go's `time.ParseDuration` (`1s`, `1m30s`, `500ms`, `1.5h`, `-2s`), in ns.
pub fn go_duration(s: &str) -> Result<i64, String> {
    let bad = || format!("time: invalid duration \"{s}\"");
    let (neg, mut rest) = match s.as_bytes().first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    if rest == "0" {
        return Ok(0);
    }
    if rest.is_empty() {
        return Err(bad());
    }
    let mut total: f64 = 0.0;
    while !rest.is_empty() {
        let num_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(rest.len());
        let num = &rest[..num_len];
        if num.is_empty() || num == "." {
            return Err(bad());
        }
        let value: f64 = num.parse().map_err(|_| bad())?;
        rest = &rest[num_len..];
        let unit_len = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let unit = &rest[..unit_len];
        rest = &rest[unit_len..];
        let scale = match unit {
            "ns" => 1.0,
            "us" | "\u{b5}s" | "\u{3bc}s" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            "" => return Err(format!("time: missing unit in duration \"{s}\"")),
            u => return Err(format!("time: unknown unit \"{u}\" in duration \"{s}\"")),
        };
        total += value * scale;
    }
    if total > i64::MAX as f64 {
        return Err(bad());
    }
    let n = total.round() as i64;
    Ok(if neg { -n } else { n })
}

/// Go's `time.Duration.String()` (`1s`, `500ms`, `1m30s`, `1h0m0s`).
pub fn go_duration_string(ns: i64) -> String {
    if ns == 0 {
        return "0s".into();
    }
    let sign = if ns < 0 { "-" } else { "" };
    let u = ns.unsigned_abs();
    let frac = |v: u64, unit: u64| {
        let whole = v / unit;
        let rest = v % unit;
        if rest == 0 {
            whole.to_string()
        } else {
            let digits = unit.ilog10() as usize;
            let f = format!("{rest:0digits$}");
            format!("{whole}.{}", f.trim_end_matches('0'))
        }
    };
    if u < 1_000 {
        return format!("{sign}{u}ns");
    }
    if u < 1_000_000 {
        return format!("{sign}{}\u{b5}s", frac(u, 1_000));
    }
    if u < 1_000_000_000 {
        return format!("{sign}{}ms", frac(u, 1_000_000));
    }
    let h = u / 3_600_000_000_000;
    let m = u / 60_000_000_000 % 60;
    let s = frac(u % 60_000_000_000, 1_000_000_000);
    match (h, m) {
        (0, 0) => format!("{sign}{s}s"),
        (0, m) => format!("{sign}{m}m{s}s"),
        (h, m) => format!("{sign}{h}h{m}m{s}s"),
    }
}

/// The argv the container's check runs, if it has one.
pub fn command(rec: &Record) -> Option<Vec<String>> {
    rec.healthcheck
        .as_ref()
        .and_then(|h| health::command_argv(&h.test))
}

/// What the monitor needs to keep the container's health.
pub fn monitor_options(rec: &Record, state_dir: &Path) -> Option<HealthOptions> {
    let h = rec.healthcheck.as_ref()?;
    let command = health::command_argv(&h.test)?;
    let nanos = |n: i64| Duration::from_nanos(n.max(0) as u64);
    Some(HealthOptions {
        command,
        interval: nanos(h.interval),
        timeout: if h.timeout > 0 {
            nanos(h.timeout)
        } else {
            Duration::from_secs(30)
        },
        start_period: nanos(h.start_period),
        retries: if h.retries > 0 {
            h.retries.min(i64::from(u32::MAX)) as u32
        } else {
            DEFAULT_RETRIES as u32
        },
        on_failure: rec
            .health_on_failure
            .as_deref()
            .and_then(OnFailure::parse)
            .unwrap_or_default(),
        stop_signal: rec.config.stop_signal,
        stop_timeout: rec.config.stop_timeout,
        log: Some(state_dir.join(health::LOG_FILE)),
    })
}

/// The health log of a container, if it has a check and a log.
pub fn read_log(engine: &Engine<'_>, rec: &Record) -> Option<HealthLog> {
    command(rec)?;
    let bytes = std::fs::read(engine.store.dir(&rec.id).join(health::LOG_FILE)).ok()?;
    HealthLog::decode(&bytes).ok()
}

/// `starting`, `healthy`, `unhealthy`, or empty (no check or never started).
pub fn status(engine: &Engine<'_>, rec: &Record) -> String {
    read_log(engine, rec).map(|l| l.status).unwrap_or_default()
}

/// What `healthcheck run` found.
#[derive(Debug, PartialEq, Eq)]
pub enum CheckResult {
    Healthy,
    Unhealthy,
}

/// Ask the container's monitor for a check now and wait for its result.
pub fn run_check(engine: &Engine<'_>, name: &str) -> Result<CheckResult, RunnerError> {
    let id = engine.store.resolve(name).map_err(|e| {
        err(format!(
            "unable to look up {name} to perform a health check: {}",
            e.to_string().trim_start_matches("Error: ")
        ))
    })?;
    let rec = {
        let _lock = engine.store.lock(&id)?;
        engine.refresh(&id)?
    };
    let not_running = || err(format!("container {} is not running", rec.id));
    if rec.status != Status::Running {
        return Err(not_running());
    }
    let Some(h) = rec.healthcheck.as_ref().filter(|_| command(&rec).is_some()) else {
        return Err(err(format!(
            "container {} has no defined healthcheck",
            rec.id
        )));
    };
    let timeout = if h.timeout > 0 {
        h.timeout
    } else {
        30_000_000_000
    };
    let dir = engine.store.dir(&rec.id);
    let asked = now_nanos();
    Ctl::open(&dir)
        .and_then(|c| c.request_healthcheck())
        .map_err(|e| err(format!("asking the monitor for a healthcheck: {e}")))?;
    // The check may take its timeout; the runtime's start-up comes on top.
    let deadline = Instant::now() + Duration::from_nanos(timeout as u64) + Duration::from_secs(30);
    loop {
        if let Some(e) = read_log(engine, &rec).and_then(|l| {
            l.log
                .into_iter()
                .find(|e| client::parse_rfc3339_nanos(&e.start).is_some_and(|start| start >= asked))
        }) {
            return match e.exit_code {
                0 => Ok(CheckResult::Healthy),
                health::TIMED_OUT_EXIT_CODE => Err(err(format!(
                    "healthcheck command exceeded timeout of {}",
                    go_duration_string(timeout)
                ))),
                _ => Ok(CheckResult::Unhealthy),
            };
        }
        if !engine.monitor_alive(&rec) || Instant::now() > deadline {
            return Err(not_running());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The monitor's exit command for `--health-on-failure restart`: if the
/// monitor stopped the container because its check failed (it left
/// [`health::RESTART_MARKER`]), start it again.
pub fn restart_if_requested(engine: &Engine<'_>, id: &str) -> Result<bool, RunnerError> {
    let marker = engine.store.dir(id).join(health::RESTART_MARKER);
    let _lock = engine.store.lock(id)?;
    let mut rec = engine.refresh(id)?;
    if std::fs::remove_file(&marker).is_err() || rec.status == Status::Running {
        return Ok(false);
    }
    engine.init(&mut rec, false)?;
    engine.start(&mut rec)?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(a: &[&str]) -> Vec<String> {
        a.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn test_arrays_like_podman_4_3_1() {
        let t = |c: &str| test_from_cmd(c).unwrap();
        assert_eq!(
            t("echo hello; exit 0"),
            v(&["CMD-SHELL", "echo hello; exit 0"])
        );
        assert_eq!(t("none"), v(&["NONE"]));
        assert_eq!(t("None"), v(&["NONE"]));
        assert_eq!(t("none foo"), v(&["NONE"]));
        assert_eq!(t("CMD  true  x"), v(&["CMD", "true", "x"]));
        assert_eq!(t("CMD-SHELL true x"), v(&["CMD-SHELL", "true x"]));
        assert_eq!(t(r#"["CMD-SHELL","a","b"]"#), v(&["CMD-SHELL", "a", "b"]));
        assert_eq!(t(r#"["a","b"]"#), v(&["CMD", "a", "b"]));
        assert_eq!(t(r#"["a"]"#), v(&["CMD-SHELL", "a"]));
        assert_eq!(t(r#"["CMD","true"]"#), v(&[r#"["CMD","true"]"#]));
        assert_eq!(t(" echo  a "), v(&["CMD-SHELL", " echo  a "]));
        assert_eq!(t(r#"{"a":1}"#), v(&["CMD-SHELL", r#"{"a":1}"#]));
        assert!(test_from_cmd("[]").is_err());
    }

    #[test]
    fn flags_and_errors() {
        let f = |cmd: &str, extra: &dyn Fn(&mut HealthFlags)| {
            let mut fl = HealthFlags {
                cmd: Some(cmd.into()),
                ..Default::default()
            };
            extra(&mut fl);
            from_flags(&fl, None)
        };
        let h = f("true", &|_| {}).unwrap().unwrap();
        assert_eq!(
            (h.interval, h.timeout, h.retries, h.start_period),
            (30_000_000_000, 30_000_000_000, 3, 0)
        );
        let e =
            |cmd: &str, extra: &dyn Fn(&mut HealthFlags)| f(cmd, extra).unwrap_err().to_string();
        assert!(e("true", &|f| f.interval = Some("bogus".into()))
            .contains("invalid healthcheck-interval: time: invalid duration \"bogus\""));
        assert!(e("true", &|f| f.interval = Some("1".into()))
            .contains("time: missing unit in duration \"1\""));
        assert!(e("true", &|f| f.timeout = Some("0".into()))
            .contains("healthcheck-timeout must be at least 1 second"));
        assert!(e("true", &|f| f.retries = Some("0".into()))
            .contains("healthcheck-retries must be greater than 0"));
        assert!(e("true", &|f| f.retries = Some("x".into())).contains(
            "invalid argument \"x\" for \"--health-retries\" flag: strconv.ParseUint: parsing \"x\": invalid syntax"
        ));
        assert!(e("true", &|f| f.start_period = Some("-1s".into()))
            .contains("healthcheck-start-period must be 0 seconds or greater"));
        assert!(e("true", &|f| f.no_healthcheck = true).contains("cannot specify both"));
        assert_eq!(
            f("true", &|f| f.interval = Some("disable".into()))
                .unwrap()
                .unwrap()
                .interval,
            0
        );
        let none = from_flags(
            &HealthFlags {
                no_healthcheck: true,
                ..Default::default()
            },
            None,
        );
        assert_eq!(none.unwrap().unwrap().test, v(&["NONE"]));
        let image = Healthcheck {
            test: v(&["CMD-SHELL", "x"]),
            interval: 2,
            ..Default::default()
        };
        let flags = HealthFlags {
            interval: Some("5s".into()),
            ..Default::default()
        };
        assert_eq!(from_flags(&flags, Some(&image)).unwrap(), Some(image));
        assert!(parse_on_failure(Some("bogus")).is_err());
        assert_eq!(
            parse_on_failure(Some("kill")).unwrap().as_deref(),
            Some("kill")
        );
    }

    #[test]
    fn go_durations() {
        assert_eq!(go_duration("1s"), Ok(1_000_000_000));
        assert_eq!(go_duration("1m30s"), Ok(90_000_000_000));
        assert_eq!(go_duration("500ms"), Ok(500_000_000));
        assert_eq!(go_duration("1.5h"), Ok(5_400_000_000_000));
        assert_eq!(go_duration("-1s"), Ok(-1_000_000_000));
        assert_eq!(go_duration("0"), Ok(0));
        assert!(go_duration("").is_err());
        assert!(go_duration("1x").unwrap_err().contains("unknown unit"));
        assert_eq!(go_duration_string(1_000_000_000), "1s");
        assert_eq!(go_duration_string(500_000_000), "500ms");
        assert_eq!(go_duration_string(90_000_000_000), "1m30s");
        assert_eq!(go_duration_string(3_600_000_000_000), "1h0m0s");
        assert_eq!(go_duration_string(1_500_000_000), "1.5s");
    }
}
