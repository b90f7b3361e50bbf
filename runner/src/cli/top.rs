//! `vigil top`: the processes of a running container, with Podman's (psgo)
//! descriptors and columns, or ps(1) run inside the container for anything
//! else (`top c -eo pid,comm`).
//!
//! The processes are those in the container's PID namespace, read from the
//! host's /proc (`NSpid` gives each one's pid inside the container); user and
//! group names come from the container's own /etc/passwd and /etc/group,
//! read inside its root file system.

use std::collections::HashMap;
use std::fs;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::Args;

use super::output::print_out;
use super::template::tabwrite;
use super::units::go_duration;
use crate::container::{Engine, Record, Status};
use crate::context::Context;
use crate::error::RunnerError;

#[derive(Debug, Clone, Args)]
#[command(disable_help_flag = false)]
pub struct TopArgs {
    /// Act on the most recently created container (all arguments are descriptors)
    #[arg(short, long)]
    pub latest: bool,

    /// The container, then descriptors (`pid,user,args`) or ps(1) options
    #[arg(
        value_name = "CONTAINER [DESCRIPTOR...]",
        trailing_var_arg = true,
        allow_hyphen_values = true
    )]
    pub args: Vec<String>,
}

/// Podman's default descriptors.
pub const DEFAULT_DESCRIPTORS: [&str; 8] = [
    "user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args",
];

/// Descriptor -> header, for the ones vigil computes (psgo's names and `%` codes).
fn header(descriptor: &str) -> Option<&'static str> {
    Some(match descriptor {
        "user" | "%U" => "USER",
        "ruser" | "%u" => "RUSER",
        "uid" => "UID",
        "group" | "%G" => "GROUP",
        "rgroup" | "%g" => "RGROUP",
        "pid" | "%p" => "PID",
        "ppid" | "%P" => "PPID",
        "pgid" | "%r" => "PGID",
        "pcpu" | "%C" => "%CPU",
        "etime" | "%t" => "ELAPSED",
        "time" | "%x" => "TIME",
        "tty" | "%y" => "TTY",
        "vsz" | "%z" => "VSZ",
        "rss" => "RSS",
        "nice" | "%n" => "NI",
        "args" | "%a" | "comm" | "%c" => "COMMAND",
        "state" => "STATE",
        "hpid" => "HPID",
        "huser" => "HUSER",
        "huid" => "HUID",
        "hgroup" => "HGROUP",
        _ => return None,
    })
}

/// What one process looks like through /proc.
struct Proc {
    host_pid: i32,
    pid: i32,
    host_ppid: i32,
    pgid: i32,
    comm: String,
    state: String,
    nice: i64,
    start_ticks: u64,
    cpu_ticks: u64,
    vsize: u64,
    tty_nr: u64,
    uids: [u32; 2],
    gids: [u32; 2],
    host_uid: u32,
    host_gid: u32,
    rss_kb: u64,
    cmdline: Vec<u8>,
}

fn read_proc(host_pid: i32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{host_pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let f: Vec<&str> = stat[close + 1..].split_whitespace().collect();
    // f[0] is field 3 (state).
    let num = |i: usize| f.get(i).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
    let status = fs::read_to_string(format!("/proc/{host_pid}/status")).ok()?;
    let line = |key: &str| -> Vec<String> {
        status
            .lines()
            .find_map(|l| l.strip_prefix(key))
            .map(|v| v.split_whitespace().map(String::from).collect())
            .unwrap_or_default()
    };
    let ids = |v: Vec<String>| -> [u32; 2] {
        [
            v.first().and_then(|x| x.parse().ok()).unwrap_or(0),
            v.get(1).and_then(|x| x.parse().ok()).unwrap_or(0),
        ]
    };
    let nspid = line("NSpid:");
    let pid = nspid
        .last()
        .and_then(|p| p.parse().ok())
        .unwrap_or(host_pid);
    let uids = ids(line("Uid:"));
    let gids = ids(line("Gid:"));
    let meta = fs::metadata(format!("/proc/{host_pid}")).ok();
    use std::os::unix::fs::MetadataExt;
    Some(Proc {
        host_pid,
        pid,
        host_ppid: num(1) as i32,
        pgid: num(2) as i32,
        comm,
        state: f.first().unwrap_or(&"?").to_string(),
        nice: num(16),
        start_ticks: num(19) as u64,
        cpu_ticks: (num(11) + num(12)) as u64,
        vsize: num(20) as u64,
        tty_nr: num(4) as u64,
        // uids as [real, effective].
        uids,
        gids,
        host_uid: meta.as_ref().map_or(0, |m| m.uid()),
        host_gid: meta.as_ref().map_or(0, |m| m.gid()),
        rss_kb: line("VmRSS:")
            .first()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0),
        cmdline: fs::read(format!("/proc/{host_pid}/cmdline")).unwrap_or_default(),
    })
}

/// The processes in the PID namespace of `init_pid`, sorted by their pid there.
fn container_processes(init_pid: i32) -> Vec<Proc> {
    let ns = |pid: i32| fs::read_link(format!("/proc/{pid}/ns/pid")).ok();
    let Some(want) = ns(init_pid) else {
        return Vec::new();
    };
    let mut procs: Vec<Proc> = fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| ns(*pid).as_ref() == Some(&want))
        .filter_map(read_proc)
        .collect();
    procs.sort_by_key(|p| p.pid);
    procs
}

fn clock_ticks() -> u64 {
    match nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => t as u64,
        _ => 100,
    }
}

fn boot_time() -> u64 {
    fs::read_to_string("/proc/stat")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// `name:x:id:...` files as id -> name.
fn id_names(text: &str) -> HashMap<u32, String> {
    text.lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f.first()?.to_string()))
        })
        .collect()
}

fn tty_name(tty_nr: u64) -> String {
    if tty_nr == 0 {
        return "?".into();
    }
    let major = (tty_nr >> 8) & 0xfff;
    let minor = (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00);
    match major {
        136..=143 => format!("pts/{}", (major - 136) * 256 + minor),
        4 if minor < 64 => format!("tty{minor}"),
        _ => "?".into(),
    }
}

/// The table for `descriptors`, tab-written like Podman.
fn table(rec: &Record, engine: &Engine<'_>, descriptors: &[String], procs: &[Proc]) -> String {
    let root = crate::container::rootfs::rootfs_path(&engine.store.data_dir(&rec.id));
    let read = |p: &str| {
        crate::image::rootfs::read_file(&root, p, 1 << 20)
            .ok()
            .flatten()
            .map(|b| String::from_utf8_lossy(&b).into_owned())
            .unwrap_or_default()
    };
    let (users, groups) = (
        id_names(&read("/etc/passwd")),
        id_names(&read("/etc/group")),
    );
    let host_users = id_names(&fs::read_to_string("/etc/passwd").unwrap_or_default());
    let host_groups = id_names(&fs::read_to_string("/etc/group").unwrap_or_default());
    let name = |map: &HashMap<u32, String>, id: u32| {
        map.get(&id).cloned().unwrap_or_else(|| id.to_string())
    };
    let by_host: HashMap<i32, i32> = procs.iter().map(|p| (p.host_pid, p.pid)).collect();
    let tick = clock_ticks();
    let btime = boot_time();
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let mut lines = vec![descriptors
        .iter()
        .map(|d| header(d).unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\t")];
    for p in procs {
        let start = btime + p.start_ticks / tick;
        let elapsed = now
            .as_nanos()
            .saturating_sub(u128::from(start) * 1_000_000_000);
        let cpu_secs = p.cpu_ticks / tick;
        let cells: Vec<String> = descriptors
            .iter()
            .map(|d| match d.as_str() {
                "user" | "%U" => name(&users, p.uids[1]),
                "ruser" | "%u" => name(&users, p.uids[0]),
                "uid" => p.uids[1].to_string(),
                "group" | "%G" => name(&groups, p.gids[1]),
                "rgroup" | "%g" => name(&groups, p.gids[0]),
                "pid" | "%p" => p.pid.to_string(),
                "ppid" | "%P" => by_host.get(&p.host_ppid).copied().unwrap_or(0).to_string(),
                "pgid" | "%r" => by_host.get(&p.pgid).copied().unwrap_or(0).to_string(),
                "pcpu" | "%C" => {
                    let e = elapsed as f64 / 1e9;
                    let pct = if e > 0.0 {
                        100.0 * p.cpu_ticks as f64 / tick as f64 / e
                    } else {
                        0.0
                    };
                    format!("{pct:.3}")
                }
                "etime" | "%t" => go_duration(elapsed),
                "time" | "%x" => go_duration(u128::from(cpu_secs) * 1_000_000_000),
                "tty" | "%y" => tty_name(p.tty_nr),
                "vsz" | "%z" => (p.vsize / 1024).to_string(),
                "rss" => p.rss_kb.to_string(),
                "nice" | "%n" => p.nice.to_string(),
                "args" | "%a" => {
                    if p.cmdline.is_empty() {
                        format!("[{}]", p.comm)
                    } else {
                        String::from_utf8_lossy(&p.cmdline).replace('\0', " ")
                    }
                }
                "comm" | "%c" => p.comm.clone(),
                "state" => p.state.clone(),
                "hpid" => p.host_pid.to_string(),
                "huser" => name(&host_users, p.host_uid),
                "huid" => p.host_uid.to_string(),
                "hgroup" => name(&host_groups, p.host_gid),
                _ => String::new(),
            })
            .collect();
        lines.push(cells.join("\t"));
    }
    tabwrite(&lines, 12)
}

/// ps(1) in the container (`vigil exec`), its output minus the line of the
/// ps process itself, as Podman does for descriptors psgo does not know.
fn ps_in_container(engine: &Engine<'_>, id: &str, words: &[String]) -> Result<String, RunnerError> {
    let exe = std::env::current_exe().map_err(|e| RunnerError::io("finding vigil", e))?;
    let out = std::process::Command::new(exe)
        .args(engine.ctx.vigil_global_args())
        .args(["exec", id, "ps"])
        .args(words)
        .stdin(std::process::Stdio::null())
        .output()
        .map_err(|e| RunnerError::io("running ps(1) in the container", e))?;
    if !out.status.success() {
        return Err(RunnerError::Engine(format!(
            "executing ps(1) in the container: runtime failed with exit status: {} and output: {}",
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).trim()
        )));
    }
    let joined = words.join(" ");
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| !l.contains(&format!("ps {joined}")))
        .map(|l| format!("{l}\n"))
        .collect())
}

pub fn handle(ctx: &Context, args: &TopArgs) -> Result<i32, RunnerError> {
    let engine = Engine::new(ctx);
    let (rec, words) = if args.latest {
        let rec = super::latest::latest(&engine).map_err(|_| {
            RunnerError::Engine("unable to look up requested container: no such container".into())
        })?;
        (rec, args.args.clone())
    } else {
        let Some((name, words)) = args.args.split_first() else {
            return Err(RunnerError::Engine(
                "you must provide the name or id of a running container".into(),
            ));
        };
        let id = engine.store.lookup(name)?.ok_or_else(|| {
            RunnerError::Engine(format!(
                "unable to look up requested container: no container with name or ID {name:?} found: no such container"
            ))
        })?;
        (engine.refresh_locked(&id)?, words.to_vec())
    };
    let rec = engine.refresh_locked(&rec.id)?;
    if !matches!(rec.status, Status::Running | Status::Paused) {
        return Err(RunnerError::Engine(
            "top can only be used on running containers".into(),
        ));
    }
    let descriptors: Vec<String> = if words.is_empty() {
        DEFAULT_DESCRIPTORS.iter().map(|d| d.to_string()).collect()
    } else {
        words
            .iter()
            .flat_map(|w| w.split(','))
            .filter(|w| !w.is_empty())
            .map(String::from)
            .collect()
    };
    if descriptors.iter().any(|d| header(d).is_none()) {
        print_out(&ps_in_container(&engine, &rec.id, &words)?);
        return Ok(0);
    }
    let pid = rec.pid.unwrap_or(0);
    print_out(&table(
        &rec,
        &engine,
        &descriptors,
        &container_processes(pid),
    ));
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ttys_and_names() {
        assert_eq!(tty_name(0), "?");
        assert_eq!(tty_name((136 << 8) | 3), "pts/3");
        let names = id_names("root:x:0:0::/root:/bin/sh\nbin:x:1:1::/:\n");
        assert_eq!(names.get(&1).map(String::as_str), Some("bin"));
        assert!(header("bogus").is_none() && header("%C") == Some("%CPU"));
    }
}
