//! Child processes the workbench starts: tied to this process's life, prefixed output, polite
//! stop of a child or of its whole process group, resource readings.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, BufReader};
use tokio::process::Child;
use tokio::task::JoinHandle;

/// The signal a child gets when the thread that started it ends. SIGTERM rather than SIGKILL, so
/// that Envoy closes its listeners and gunicorn stops its own workers.
const DEATH_SIGNAL: libc::c_int = libc::SIGTERM;

/// Makes the child receive SIGTERM when this process ends in any way, even killed with SIGKILL
/// (`PR_SET_PDEATHSIG`). Strictly, the signal comes when the *thread* that spawns the child ends:
/// the workbench spawns from the main thread, a runtime's worker threads or a test's thread,
/// each of which outlives what it starts.
pub fn die_with_parent(command: &mut tokio::process::Command) {
    let parent = std::process::id();
    // SAFETY: the hook runs between fork and exec and only makes async-signal-safe calls
    // (prctl, getppid), allocating nothing.
    unsafe {
        command.pre_exec(move || set_death_signal(parent));
    }
}

/// `die_with_parent` for a blocking `std::process::Command`.
pub fn die_with_parent_std(command: &mut std::process::Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    // SAFETY: as in `die_with_parent`.
    unsafe {
        command.pre_exec(move || set_death_signal(parent));
    }
}

fn set_death_signal(parent: u32) -> std::io::Result<()> {
    // SAFETY: prctl(PR_SET_PDEATHSIG) only sets a flag on the calling (child) process.
    if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, DEATH_SIGNAL) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    // If the parent died before the flag was set, no signal will come: give up now instead.
    // SAFETY: getppid has no preconditions.
    let now = unsafe { libc::getppid() };
    if u32::try_from(now).ok() != Some(parent) {
        return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
    }
    Ok(())
}

/// Where a child's output lines go: printed behind `[prefix]`, and kept in a log file (so that
/// errors can be quoted even when the output was only printed).
#[derive(Clone)]
pub struct LineSink {
    prefix: Option<&'static str>,
    log: Option<Arc<Mutex<std::fs::File>>>,
}

impl LineSink {
    pub fn new(prefix: Option<&'static str>, log: Option<&Path>) -> std::io::Result<LineSink> {
        let log = match log {
            Some(path) => Some(Arc::new(Mutex::new(std::fs::File::create(path)?))),
            None => None,
        };
        Ok(LineSink { prefix, log })
    }

    pub fn line(&self, line: &str) {
        if let Some(log) = &self.log {
            if let Ok(mut file) = log.lock() {
                let _ = writeln!(file, "{line}");
            }
        }
        if let Some(prefix) = self.prefix {
            println!("[{prefix}] {line}");
        }
    }
}

/// Hands each line a child writes to `sink`, until the stream closes.
pub fn forward_lines<R>(stream: R, sink: LineSink) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            sink.line(&line);
        }
    })
}

/// Hands each line a child writes to `each`, until the stream closes.
pub fn for_each_line<R, F>(stream: R, mut each: F) -> JoinHandle<()>
where
    R: AsyncRead + Unpin + Send + 'static,
    F: FnMut(&str) + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(stream).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            each(&line);
        }
    })
}

/// Prints each line a child writes, behind `[prefix]`, until the stream closes.
pub fn print_prefixed<R>(stream: R, prefix: &'static str)
where
    R: AsyncRead + Unpin + Send + 'static,
{
    let _detached = forward_lines(
        stream,
        LineSink {
            prefix: Some(prefix),
            log: None,
        },
    );
}

/// SIGTERM, then SIGKILL if the child has not exited within `grace`.
pub async fn stop(child: &mut Child, grace: Duration) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    if let Some(pid) = child.id().and_then(|pid| i32::try_from(pid).ok()) {
        // SAFETY: kill(2) on a pid we spawned and have not reaped; no memory is touched.
        unsafe {
            libc::kill(pid, libc::SIGTERM);
        }
    }
    if tokio::time::timeout(grace, child.wait()).await.is_err() {
        let _ = child.kill().await;
    }
}

/// Stops a child that leads its own process group (see `tokio::process::Command::process_group`)
/// together with everything it started: SIGTERM to the group, then SIGKILL to the group if the
/// leader has not exited within `grace`.
pub async fn stop_group(child: &mut Child, grace: Duration) {
    let Some(group) = child.id().and_then(|pid| i32::try_from(pid).ok()) else {
        return;
    };
    match child.try_wait() {
        // The leader is not reaped yet, so its pid, the group's id, names only its group.
        Ok(None) => {
            signal_group(group, libc::SIGTERM);
            if tokio::time::timeout(grace, child.wait()).await.is_err() {
                signal_group(group, libc::SIGKILL);
                let _ = child.wait().await;
            }
        }
        // The leader ended on its own; members it left keep the group id in use.
        _ => signal_group(group, libc::SIGKILL),
    }
}

/// SIGKILL to a child's whole process group, if the child (its leader) has not been reaped; for
/// `Drop`, where nothing can be awaited.
pub fn kill_group_now(child: &mut Child) {
    if let (Ok(None), Some(group)) = (
        child.try_wait(),
        child.id().and_then(|pid| i32::try_from(pid).ok()),
    ) {
        signal_group(group, libc::SIGKILL);
    }
}

fn signal_group(group: i32, signal: libc::c_int) {
    // SAFETY: killpg on a group this process created; no memory is touched.
    unsafe {
        libc::killpg(group, signal);
    }
}

/// Resident set size of a process, from /proc.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}

/// User plus system CPU time a process has used so far, from /proc.
pub fn cpu_time(pid: u32) -> Option<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name; utime and stime are the 12th and 13th.
    let after_name = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    // SAFETY: sysconf has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    let ticks = u64::try_from(ticks).ok().filter(|t| *t > 0)?;
    Some(Duration::from_nanos(
        (utime + stime) * 1_000_000_000 / ticks,
    ))
}

/// Raises this process's open-file limit to its hard limit, so that Envoy (which inherits it)
/// and the load tests can hold thousands of connections on machines whose default is 1,024.
pub fn raise_open_file_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}
