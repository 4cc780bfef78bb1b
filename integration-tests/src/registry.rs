//! A schema registry of a test's own (`scripts/schema-registry.py`, in
//! memory, on a port of its own), for tests that take it down or configure
//! it differently from the shared one.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Result;

/// A running registry; killed when dropped.
#[derive(Debug)]
pub struct TestRegistry {
    child: Child,
    port: u16,
}

impl TestRegistry {
    /// Starts one on a free port, with `args` (e.g. `--basic-auth u:p`).
    pub async fn start(args: &[&str]) -> Result<Self> {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        Self::start_on(port, args).await
    }

    /// Starts one on `port` (an empty registry: ids count from 1 again) and
    /// waits until it answers.
    pub async fn start_on(port: u16, args: &[&str]) -> Result<Self> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../scripts/schema-registry.py");
        let child = Command::new("python3")
            .arg(script)
            .args(["--port", &port.to_string()])
            .args(args)
            .stderr(Stdio::null())
            .spawn()?;
        let registry = TestRegistry { child, port };
        let url = registry.url();
        crate::eventually("the registry to listen", Duration::from_secs(10), || {
            let url = url.clone();
            async move {
                let answer = crate::metrics::http_get(&format!("{url}/subjects"), None).await;
                Ok(answer.ok().map(|(status, _)| status))
            }
        })
        .await?;
        Ok(registry)
    }

    /// Its base URL.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Its port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its first answer to `GET /subjects` (401 with basic authentication).
    pub async fn first_status(&self) -> Result<u16> {
        Ok(
            crate::metrics::http_get(&format!("{}/subjects", self.url()), None)
                .await?
                .0,
        )
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ignored = self.child.kill();
        let _ignored = self.child.wait();
    }
}
