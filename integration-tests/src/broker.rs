//! A Kafka-protocol broker of the test's own (Tansu, the binary
//! `scripts/services-start` installs, `TANSU_BIN`), so that a test can stop
//! it (SIGSTOP: a broker that hangs, or a network that black-holes) without
//! touching the brokers the other tests share.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// A running Tansu with in-memory storage on a free loopback port; killed on
/// drop.
#[derive(Debug)]
pub struct PrivateBroker {
    child: Child,
    address: String,
}

impl PrivateBroker {
    /// Starts one and waits until it accepts connections.
    pub fn start() -> Result<Self> {
        let binary = std::env::var("TANSU_BIN").context(
            "TANSU_BIN is not set: run the tests through scripts/test, or source the file scripts/services-start writes (it installs Tansu and exports TANSU_BIN)",
        )?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let address = format!("127.0.0.1:{port}");
        let url = format!("tcp://{address}");
        let child = Command::new(&binary)
            .args([
                "broker",
                "--listener-url",
                &url,
                "--advertised-listener-url",
                &url,
            ])
            .args(["--storage-engine", "memory://tansu/"])
            .env_remove("SCHEMA_REGISTRY")
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("CLUSTER_ID")
            .env("NO_COLOR", "1")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("starting {binary}"))?;
        let mut broker = PrivateBroker { child, address };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&broker.address).is_err() {
            if let Some(status) = broker.child.try_wait()? {
                bail!("{binary} exited at start ({status})");
            }
            if Instant::now() > deadline {
                bail!("{binary} did not listen on {} within 30 s", broker.address);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(broker)
    }

    /// Its bootstrap address, host:port.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Stops the process (SIGSTOP): connections stay open, nothing answers.
    pub fn pause(&self) -> Result<()> {
        self.signal("-STOP")
    }

    /// Lets it run again (SIGCONT).
    pub fn resume(&self) -> Result<()> {
        self.signal("-CONT")
    }

    fn signal(&self, signal: &str) -> Result<()> {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()?;
        if !status.success() {
            bail!("kill {signal} {} failed", self.child.id());
        }
        Ok(())
    }
}

impl Drop for PrivateBroker {
    fn drop(&mut self) {
        let _continued = self.resume();
        let _killed = self.child.kill();
        let _reaped = self.child.wait();
    }
}
