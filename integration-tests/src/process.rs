//! The real `reactor` binary as a child process, so a test can SIGKILL it,
//! read its log, and find its HTTP server through the address file it
//! writes (`reactor run --http-address-file`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::metrics::{scrape, Metrics};
use crate::wait::eventually;

/// The `reactor` binary: `$REACTOR_BIN`, else the workspace's debug build.
pub fn reactor_binary() -> Result<PathBuf> {
    if let Ok(path) = std::env::var("REACTOR_BIN") {
        return Ok(path.into());
    }
    let target = std::env::var("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"));
    let path = target.join("debug/reactor");
    if !path.exists() {
        bail!(
            "{} not found: build it first (cargo build --bin reactor) or set REACTOR_BIN",
            path.display()
        );
    }
    Ok(path)
}

/// A running `reactor run`; killed when dropped.
#[derive(Debug)]
pub struct ReactorProcess {
    child: Child,
    log_path: PathBuf,
    address_file: PathBuf,
}

impl ReactorProcess {
    /// Starts `reactor --config <config> run`, logging to `log_path`, with
    /// `vars` added to its environment.
    pub fn start(
        config: &Path,
        log_path: PathBuf,
        address_file: PathBuf,
        vars: &[(&str, &str)],
    ) -> Result<Self> {
        let log = std::fs::File::create(&log_path)?;
        let _stale = std::fs::remove_file(&address_file);
        let child = Command::new(reactor_binary()?)
            .arg("--config")
            .arg(config)
            .arg("run")
            .arg("--http-address-file")
            .arg(&address_file)
            .env("RUST_LOG", "info,reactor=debug")
            .env("NO_COLOR", "1")
            .envs(vars.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("starting the reactor binary")?;
        Ok(ReactorProcess {
            child,
            log_path,
            address_file,
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// SIGKILL: no drain, no final checkpoint, nothing flushed.
    pub fn kill(&mut self) {
        let _ignored = self.child.kill();
        let _ignored = self.child.wait();
    }

    /// SIGTERM, then waits for it to exit; returns its exit status (killed
    /// after `timeout`, and an error, if it does not exit by then).
    pub fn terminate(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()?;
        if !status.success() {
            bail!("kill -TERM failed");
        }
        self.wait_for_exit(timeout)
    }

    /// Waits up to `timeout` for it to exit by itself; kills it and fails
    /// after that.
    pub fn wait_for_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait()? {
                return Ok(status);
            }
            if Instant::now() > deadline {
                self.kill();
                bail!(
                    "reactor did not exit within {timeout:?}; log:\n{}",
                    self.log_tail(40)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The graceful end of a test: SIGTERM, and it must drain and exit 0
    /// within 30 s.
    pub fn stop(&mut self) -> Result<()> {
        let status = self.terminate(Duration::from_secs(30))?;
        anyhow::ensure!(
            status.success(),
            "reactor exited with {status} after SIGTERM; log:\n{}",
            self.log_tail(40)
        );
        Ok(())
    }

    /// Waits until its HTTP server listens, and returns its address
    /// (failing if it exits first).
    pub async fn wait_for_http(&mut self, timeout: Duration) -> Result<String> {
        eventually("reactor's HTTP address", timeout, || {
            let running = self.is_running();
            let address = self.http_address();
            let log = self.log_tail(30);
            async move {
                anyhow::ensure!(running, "reactor exited:\n{log}");
                Ok(address)
            }
        })
        .await
    }

    /// The address of its HTTP server, once it listens.
    pub fn http_address(&self) -> Option<String> {
        let text = std::fs::read_to_string(&self.address_file).ok()?;
        Some(text.trim().to_owned()).filter(|a| !a.is_empty())
    }

    /// Its `/metrics`, parsed.
    pub async fn metrics(&self) -> Result<Metrics> {
        let address = self
            .http_address()
            .context("reactor's HTTP server is not listening yet")?;
        scrape(&address).await
    }

    /// A counter or gauge on `/metrics`, summed over its labels; `None` if
    /// the page cannot be read or does not have it.
    pub async fn metric(&self, name: &str) -> Option<f64> {
        self.metrics().await.ok()?.sum(name)
    }

    /// Fails if it counted any event late (`reactor_late_events_total`;
    /// absent means none), or if its `/metrics` cannot be read.
    pub async fn assert_none_late(&self) -> Result<()> {
        let late = self
            .metrics()
            .await?
            .sum("reactor_late_events_total")
            .unwrap_or(0.0);
        anyhow::ensure!(late == 0.0, "{late} events were counted late");
        Ok(())
    }

    /// Where its log is.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// Whether it is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = self.log();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// The whole log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }
}

impl Drop for ReactorProcess {
    fn drop(&mut self) {
        if self.is_running() {
            self.kill();
        }
    }
}
