//! httpbin from the virtualenv, served by gunicorn on loopback: the seed's auth service.

use std::process::Stdio;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::{process, venv};

pub struct Httpbin {
    child: Child,
    pub port: u16,
}

impl Httpbin {
    /// Starts httpbin on 127.0.0.1 with a kernel-chosen port, its log lines behind `[httpbin]`.
    pub async fn start() -> Result<Httpbin> {
        let gunicorn = venv::venv_bin("gunicorn");
        let mut child = Command::new(&gunicorn)
            .args([
                "--bind",
                "127.0.0.1:0",
                "--workers",
                "2",
                "--access-logfile",
                "-",
                "httpbin:app",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("cannot start {}", gunicorn.display()))?;
        if let Some(out) = child.stdout.take() {
            process::print_prefixed(out, "httpbin");
        }
        let Some(err) = child.stderr.take() else {
            bail!("gunicorn's stderr is not captured");
        };
        // gunicorn announces the port it bound ("Listening at: http://127.0.0.1:PORT").
        let mut lines = BufReader::new(err).lines();
        let port = tokio::time::timeout(Duration::from_secs(30), async {
            while let Ok(Some(line)) = lines.next_line().await {
                println!("[httpbin] {line}");
                if let Some(port) = line
                    .split("Listening at: http://127.0.0.1:")
                    .nth(1)
                    .and_then(|rest| rest.split_whitespace().next())
                    .and_then(|port| port.parse::<u16>().ok())
                {
                    return Some(port);
                }
            }
            None
        })
        .await
        .ok()
        .flatten();
        let Some(port) = port else {
            bail!("httpbin (gunicorn) did not report a listening port");
        };
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                println!("[httpbin] {line}");
            }
        });
        Ok(Httpbin { child, port })
    }

    pub async fn stop(mut self) {
        process::stop(&mut self.child, Duration::from_secs(5)).await;
    }
}
