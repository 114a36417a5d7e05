//! The workbench as a user meets it: `cargo xtask run` stopped by a signal leaves nothing behind,
//! refuses bad input before starting anything, and `cargo xtask test NAME` selects files or
//! fails when nothing matches.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard};

use workbench::{paths, process};

/// Commands that build the plugin write the same main.wasm: one at a time.
static BUILDS: Mutex<()> = Mutex::new(());

fn one_build_at_a_time() -> MutexGuard<'static, ()> {
    BUILDS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// `cargo xtask ARGS` (cargo runs xtask in its own place, so the child's pid is xtask's).
fn xtask(args: &[&str]) -> Command {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let mut command = Command::new(cargo);
    command
        .current_dir(paths::repo_root())
        .args(["run", "--quiet", "--package", "xtask", "--"])
        .args(args);
    // If this test process is killed, what it started ends too.
    process::die_with_parent_std(&mut command);
    command
}

fn text(output: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// A port nobody listens on right now, on every interface.
fn free_port() -> u16 {
    TcpListener::bind(("0.0.0.0", 0))
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A process as /proc shows it: its parent, its name, when it started (to tell it from a later
/// process given the same pid) and its state.
#[derive(Debug, Clone)]
struct Proc {
    parent: u32,
    name: String,
    started: u64,
    state: char,
}

fn read_proc(pid: u32) -> Option<Proc> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1.to_owned();
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(Proc {
        state: fields.first()?.chars().next()?,
        parent: fields.get(1)?.parse().ok()?,
        started: fields.get(19)?.parse().ok()?,
        name,
    })
}

/// Every process descending from `root`.
fn descendants(root: u32) -> BTreeMap<u32, Proc> {
    let all: BTreeMap<u32, Proc> = std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_proc(pid)?)))
        .collect();
    let mut found = BTreeMap::new();
    let mut frontier = vec![root];
    while let Some(parent) = frontier.pop() {
        for (pid, proc) in &all {
            if proc.parent == parent && !found.contains_key(pid) {
                found.insert(*pid, proc.clone());
                frontier.push(*pid);
            }
        }
    }
    found
}

/// Whether the very process seen earlier still runs (a zombie has ended).
fn still_running(pid: u32, seen: &Proc) -> bool {
    read_proc(pid).is_some_and(|now| now.started == seen.started && now.state != 'Z')
}

fn envoy_folders(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("envoy-"))
        .collect()
}

/// A started `cargo xtask run`, stopped with SIGTERM if the test ends (or fails) without
/// stopping it.
struct RunningXtask(Child);

impl Drop for RunningXtask {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = signal(&self.0, "TERM");
            let _ = self.0.wait();
        }
    }
}

fn signal(child: &Child, signal: &str) -> std::io::Result<std::process::ExitStatus> {
    Command::new("kill")
        .args([&format!("-{signal}"), &child.id().to_string()])
        .status()
}

/// Starts `cargo xtask run` on free ports, with its temporary files in `tmp`, and returns once
/// it has printed its banner, with what it printed so far.
fn start_run(
    tmp: &Path,
    port: u16,
    admin_port: u16,
    extra: &[&str],
) -> (RunningXtask, Vec<String>) {
    let admin_port = admin_port.to_string();
    let mut args = vec!["--admin-port", admin_port.as_str()];
    args.extend_from_slice(extra);
    start_run_with(tmp, port, &args)
}

/// [`start_run`] with only `--port` given of the ports.
fn start_run_with(tmp: &Path, port: u16, extra: &[&str]) -> (RunningXtask, Vec<String>) {
    let port = port.to_string();
    let mut args = vec!["run", "--port", &port];
    args.extend_from_slice(extra);
    let mut child = RunningXtask(
        xtask(&args)
            .env("TMPDIR", tmp)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    let (lines, received) = mpsc::channel();
    for stream in [
        Box::new(child.0.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.0.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                let _ = lines.send(line);
            }
        });
    }
    drop(lines);
    let mut seen = Vec::new();
    // The streams stay drained after the banner, so xtask never blocks on a full pipe.
    for line in received.iter() {
        let done = line.starts_with("Ctrl-C (or SIGTERM, SIGHUP) stops");
        seen.push(line);
        if done {
            std::thread::spawn(move || for _ in received {});
            return (child, seen);
        }
    }
    let status = child.0.wait().unwrap();
    panic!(
        "cargo xtask run ended ({status}) before its banner:\n{}",
        seen.join("\n")
    );
}

/// A line with every number in it replaced, so that banners on different ports compare equal.
fn without_numbers(line: &str) -> String {
    let mut out = String::new();
    for c in line.chars() {
        if !c.is_ascii_digit() {
            out.push(c);
        } else if !out.ends_with('#') {
            out.push('#');
        }
    }
    out
}

/// The banner README's Quick start shows.
fn readme_banner() -> Vec<String> {
    let readme = std::fs::read_to_string(paths::repo_root().join("README.md")).unwrap();
    let after = readme
        .split("`cargo xtask run` prints, once Envoy is ready")
        .nth(1)
        .expect("README's Quick start shows the banner");
    let block = after.split("```").nth(1).expect("in a code block");
    block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(without_numbers)
        .collect()
}

fn stopping_run_leaves_nothing_behind(signal: &str) {
    let _build = one_build_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let (mut child, printed) = start_run(tmp.path(), port, admin_port, &[]);
    let banner: Vec<String> = printed
        .iter()
        .skip_while(|l| !l.starts_with("Envoy is ready"))
        .map(|l| without_numbers(l))
        .collect();
    assert_eq!(
        banner,
        readme_banner(),
        "README's Quick start shows another banner than run prints"
    );

    // The shipped config limits downstream connections, so Envoy has no warning to give.
    assert!(
        !printed
            .iter()
            .any(|l| l.contains("no configured limit to the number of allowed active downstream")),
        "{printed:?}"
    );

    let started = descendants(child.0.id());
    let names: Vec<&str> = started.values().map(|p| p.name.as_str()).collect();
    assert!(names.contains(&"envoy"), "no Envoy among {started:?}");
    assert!(
        names.iter().filter(|n| n.starts_with("gunicorn")).count() >= 3,
        "no gunicorn master and workers among {started:?}"
    );
    assert_eq!(envoy_folders(tmp.path()).len(), 1, "Envoy's folder");

    assert!(self::signal(&child.0, signal).unwrap().success());
    let status = child.0.wait().unwrap();
    assert!(
        status.success(),
        "a stop signal is run's normal end: {status}"
    );

    let left: Vec<_> = started
        .iter()
        .filter(|(pid, proc)| still_running(**pid, proc))
        .collect();
    assert!(left.is_empty(), "still running after {signal}: {left:?}");
    TcpListener::bind(("0.0.0.0", port)).expect("the listener's port is free again");
    TcpListener::bind(("127.0.0.1", admin_port)).expect("the admin port is free again");
    assert_eq!(
        envoy_folders(tmp.path()),
        Vec::<String>::new(),
        "Envoy's folder is removed"
    );
}

#[test]
fn sigterm_stops_run_with_every_child_and_frees_its_ports_and_files() {
    stopping_run_leaves_nothing_behind("TERM");
}

#[test]
fn sighup_stops_run_with_every_child_and_frees_its_ports_and_files() {
    stopping_run_leaves_nothing_behind("HUP");
}

#[test]
fn a_bad_plugin_config_is_refused_with_the_parsers_error_before_envoy_starts() {
    let port = free_port().to_string();
    let admin = free_port().to_string();
    let output = xtask(&[
        "run",
        "--plugin-config",
        r#"{"timeout_ms": 0}"#,
        "--port",
        &port,
        "--admin-port",
        &admin,
    ])
    .output()
    .unwrap();
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains(
            "--plugin-config (invalid configuration: timeout_ms: 0 is out of range: must be 1 to 3600000 ms)"
        ),
        "{stderr}"
    );
    assert!(
        !stdout.contains("[envoy]") && !stderr.contains("building"),
        "nothing was started or built:\n{stdout}\n{stderr}"
    );
}

#[test]
fn a_plugin_config_file_is_read_after_an_at_sign() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plugin.json");
    std::fs::write(&file, r#"{"timeout_ms": 0}"#).unwrap();
    let port = free_port().to_string();
    let admin = free_port().to_string();
    let flag = format!("@{}", file.display());
    let output = xtask(&[
        "run",
        "--plugin-config",
        &flag,
        "--port",
        &port,
        "--admin-port",
        &admin,
    ])
    .output()
    .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!(
            "--plugin-config {flag} (invalid configuration: timeout_ms: 0 is out of range"
        )),
        "the file was read and checked: {stderr}"
    );
    assert!(!stderr.contains("building"), "{stderr}");
}

#[test]
fn a_taken_port_is_named_before_anything_starts() {
    let taken = TcpListener::bind(("0.0.0.0", 0)).unwrap();
    let port = taken.local_addr().unwrap().port();
    let output = xtask(&[
        "run",
        "--port",
        &port.to_string(),
        "--admin-port",
        &free_port().to_string(),
    ])
    .output()
    .unwrap();
    let (_, stderr) = text(&output);
    assert!(!output.status.success());
    assert!(
        stderr.contains(&format!("port {port} is taken")) && stderr.contains("--port"),
        "{stderr}"
    );
    assert!(!stderr.contains("building"), "{stderr}");
}

#[test]
fn a_test_name_that_matches_nothing_fails() {
    let output = xtask(&["test", "nonexistent_xyz"]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(!output.status.success(), "{stdout}");
    assert!(
        stderr.contains("no end-to-end test file or test name matches \"nonexistent_xyz\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("shipped_configs"),
        "the files are listed: {stderr}"
    );
    assert!(!stdout.contains("==> end-to-end tests"), "{stdout}");
}

#[test]
fn a_test_file_name_runs_that_file_alone_and_summarizes_it() {
    let _build = one_build_at_a_time();
    let output = xtask(&["test", "shipped_configs"]).output().unwrap();
    let (stdout, stderr) = text(&output);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    let summary = stdout
        .split("==> summary, per test file")
        .nth(1)
        .unwrap_or_else(|| panic!("no summary:\n{stdout}"));
    let files: Vec<&str> = summary
        .lines()
        .filter(|l| {
            l.starts_with("  passed") || l.starts_with("  FAILED") || l.starts_with("  not run")
        })
        .collect();
    assert_eq!(files.len(), 1, "{summary}");
    assert!(
        files[0].starts_with("  passed   e2e/tests/shipped_configs.rs: "),
        "{summary}"
    );
    assert!(!stdout.contains("unit tests (configuration"), "{stdout}");
}

/// One HTTP/1.1 GET on loopback; the whole response as text.
fn get(port: u16, headers: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        stream,
        "GET / HTTP/1.1\r\nhost: example\r\nconnection: close\r\n{headers}\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn run_with_protocol_grpc_serves_the_example_check_service_and_stops_it() {
    let _build = one_build_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let (port, admin_port) = (free_port(), free_port());
    let (mut child, printed) = start_run(tmp.path(), port, admin_port, &["--protocol", "grpc"]);
    let banner = printed.join("\n");
    assert!(
        banner.contains("the example gRPC Check service"),
        "{banner}"
    );
    assert!(banner.contains("(from envoy/envoy-grpc.yaml)"), "{banner}");

    let denied = get(port, "");
    assert!(denied.starts_with("HTTP/1.1 401"), "{denied}");
    assert!(
        denied.contains("www-authenticate: Bearer realm=\"example\""),
        "{denied}"
    );
    let allowed = get(port, "authorization: Bearer alice\r\n");
    assert!(allowed.starts_with("HTTP/1.1 200"), "{allowed}");
    assert!(allowed.contains("x-auth-example: allowed"), "{allowed}");
    // The demo's upstream echoes what it got: the user the Check service named shows.
    assert!(banner.contains("an echo server on 127.0.0.1:"), "{banner}");
    assert!(
        banner.contains("the echo server shows the x-user-id: alice it got"),
        "{banner}"
    );
    // (The body comes chunked: the echo's lines are whole within it.)
    assert!(
        allowed.contains("\r\nthe upstream got GET / with these headers:\n"),
        "{allowed}"
    );
    assert!(allowed.contains("\nx-user-id: alice\n"), "{allowed}");

    assert!(self::signal(&child.0, "TERM").unwrap().success());
    assert!(child.0.wait().unwrap().success());
    TcpListener::bind(("0.0.0.0", port)).expect("the listener's port is free again");
}

#[test]
fn an_unresolvable_public_httpbin_gets_what_the_banner_says() {
    let _build = one_build_at_a_time();
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, printed) = start_run(tmp.path(), port, free_port(), &["--public-httpbin"]);
    let banner = printed.join("\n");
    if !banner.contains("DOES NOT RESOLVE") {
        // With internet the public httpbin answers; this test sends nothing there.
        eprintln!("httpbin.org resolves here: nothing to check without internet");
        return;
    }
    assert!(
        banner.contains("(every request gets 503 \"authorization overloaded\""),
        "{banner}"
    );
    assert!(!banner.contains("unchecked"), "{banner}");
    let answer = get(port, "");
    assert!(answer.starts_with("HTTP/1.1 503"), "{answer}");
    assert!(answer.ends_with("authorization overloaded"), "{answer}");
    assert!(self::signal(&child.0, "TERM").unwrap().success());
    assert!(child.0.wait().unwrap().success());
}

#[test]
fn a_taken_default_admin_port_gives_way_to_a_free_one() {
    let _build = one_build_at_a_time();
    // Taken by this test, or already by someone else (kubectl proxy, another run): taken either way.
    let _held = TcpListener::bind(("127.0.0.1", 8001));
    let tmp = tempfile::tempdir().unwrap();
    let port = free_port();
    let (mut child, printed) = start_run_with(tmp.path(), port, &[]);
    let text = printed.join("\n");
    assert!(
        text.contains("xtask: port 8001 is taken (kubectl proxy uses it, for one)"),
        "{text}"
    );
    let admin = printed
        .iter()
        .find(|l| l.starts_with("  admin:"))
        .unwrap_or_else(|| panic!("no admin line:\n{text}"));
    assert!(!admin.contains("127.0.0.1:8001 "), "{admin}");
    assert!(admin.contains("port 8001 was taken"), "{admin}");
    assert!(self::signal(&child.0, "TERM").unwrap().success());
    assert!(child.0.wait().unwrap().success());
}
