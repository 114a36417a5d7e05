//! httpbin from the virtualenv, served by gunicorn on loopback: the seed's auth service.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{paths, process, venv};

/// How long gunicorn may take to import httpbin and bind its port.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// gunicorn runs as the leader of its own process group, so that stopping it (or dropping this)
/// stops its workers too.
pub struct Httpbin {
    child: Child,
    pub port: u16,
}

impl Httpbin {
    /// Starts httpbin on 127.0.0.1 with a kernel-chosen port. Its access log and any warning or
    /// error are printed behind `[httpbin]`; gunicorn's start-up chatter is not.
    pub async fn start() -> Result<Httpbin> {
        let gunicorn = venv::venv_bin("gunicorn");
        let mut command = Command::new(&gunicorn);
        command
            .arg("--config")
            .arg(paths::gunicorn_config())
            .args([
                "--bind",
                "127.0.0.1:0",
                "--workers",
                "2",
                // Its default socket path is shared by every gunicorn of this user.
                "--no-control-socket",
                "--access-logfile",
                "-",
                "httpbin:app",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        process::die_with_parent(&mut command);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {}", gunicorn.display()))?;
        if let Some(out) = child.stdout.take() {
            process::print_prefixed(out, "httpbin");
        }
        let Some(err) = child.stderr.take() else {
            bail!("gunicorn's stderr is not captured");
        };
        // From here on, a failed start stops the whole group (see `Drop`).
        let mut httpbin = Httpbin { child, port: 0 };
        // gunicorn announces the port it bound ("Listening at: http://127.0.0.1:PORT").
        let mut lines = BufReader::new(err).lines();
        let mut before = Vec::new();
        let port = tokio::time::timeout(START_TIMEOUT, async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(port) = listening_port(&line) {
                    return Some(port);
                }
                before.push(line);
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(port) = port else {
            bail!(
                "httpbin (gunicorn) did not report a listening port. Its output:\n{}",
                before.join("\n")
            );
        };
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if !is_chatter(&line) {
                    println!("[httpbin] {line}");
                }
            }
        });
        httpbin.port = port;
        Ok(httpbin)
    }

    pub async fn stop(mut self) {
        process::stop_group(&mut self.child, Duration::from_secs(5)).await;
    }
}

impl Drop for Httpbin {
    fn drop(&mut self) {
        process::kill_group_now(&mut self.child);
    }
}

fn listening_port(line: &str) -> Option<u16> {
    line.split("Listening at: http://127.0.0.1:")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|port| port.parse().ok())
}

/// gunicorn's routine INFO lines (workers booting and exiting, signals handled).
fn is_chatter(line: &str) -> bool {
    line.contains("] [INFO] ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_port_gunicorn_bound() {
        let line = "[2026-11-27 02:19:28 +0000] [14327] [INFO] Listening at: http://127.0.0.1:28080 (14327)";
        assert_eq!(listening_port(line), Some(28080));
        assert_eq!(listening_port("[INFO] Using worker: sync"), None);
    }

    #[test]
    fn info_lines_are_chatter_and_warnings_are_not() {
        assert!(is_chatter(
            "[2026-11-27 02:19:28 +0000] [14329] [INFO] Booting worker with pid: 14329"
        ));
        assert!(!is_chatter(
            "[2026-11-27 02:19:28 +0000] [14329] [ERROR] Exception in worker process"
        ));
    }
}
