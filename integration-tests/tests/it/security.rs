//! Security settings against real servers: Reactor writes to ClickHouse over
//! HTTPS, trusting a private CA from `clickhouse.tls.ca_file`, as a user whose
//! password comes from a file, all set through environment variables the way
//! a container is configured; the password shows up nowhere in its log.
//! Without the CA, the server's certificate is refused with a clear error.

use std::time::Duration;

use anyhow::Context;
use integration_tests::expected::rollups;
use integration_tests::{eventually, TestEnv};
use reactor::generate::publish::FormatMix;

/// The password-protected user `scripts/services-start` gives ClickHouse.
const USER: &str = "reactor_tls";
const PASSWORD: &str = "reactor-tls-secret";

/// `CLICKHOUSE_HTTPS_URL` and `CLICKHOUSE_CA_FILE`, written by
/// `scripts/services-start` when its ClickHouse serves HTTPS.
fn https_clickhouse() -> anyhow::Result<(String, String)> {
    let var = |name: &str| {
        std::env::var(name).with_context(|| {
            format!(
                "{name} is not set: source the services' env file (. /tmp/reactor-services/env); \
                 if it is still missing, the running ClickHouse predates HTTPS support: \
                 scripts/services-stop clickhouse && scripts/services-start clickhouse"
            )
        })
    };
    Ok((var("CLICKHOUSE_HTTPS_URL")?, var("CLICKHOUSE_CA_FILE")?))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollups_reach_clickhouse_over_tls_with_a_password_from_a_file() -> anyhow::Result<()> {
    let (https_url, ca_file) = https_clickhouse()?;
    let scenario = crate::without_idle_closing();
    let env = TestEnv::new("tls", &scenario).await?;
    let secrets = tempfile::tempdir()?;
    let password_file = secrets.path().join("clickhouse-password");
    std::fs::write(&password_file, format!("{PASSWORD}\n"))?;
    let password_file = password_file.to_str().context("temp path is not UTF-8")?;

    let mut reactor = env.start_reactor_with_env(
        "a",
        &[
            ("REACTOR__CLICKHOUSE__URL", &https_url),
            ("REACTOR__CLICKHOUSE__USER", USER),
            ("REACTOR__CLICKHOUSE__PASSWORD_FILE", password_file),
            ("REACTOR__CLICKHOUSE__TLS__CA_FILE", &ca_file),
        ],
    )?;
    let publisher = env.publisher().await?;
    let events = crate::events(7, 5_000);
    let expected = rollups(&events, 60);
    let mix = FormatMix::Mixed {
        avro_share: 0.5,
        seed: 7,
    };
    let _report = publisher.publish(mix.assign(events), None, None).await?;
    env.close_windows_with_sentinels(&publisher, scenario.partitions, crate::EVENTS_END)
        .await?;
    env.assert_rollups_exact(&mut reactor, &expected, 60, Duration::from_secs(90))
        .await?;

    let log = reactor.log();
    assert!(log.contains(&https_url), "the log names the HTTPS endpoint");
    assert!(!log.contains(PASSWORD), "the password leaked into the log");
    reactor.stop()?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_is_refused_with_a_clear_error() -> anyhow::Result<()> {
    let (https_url, _ca_file) = https_clickhouse()?;
    let env = TestEnv::new("tls-untrusted", &crate::without_idle_closing()).await?;
    let mut reactor = env.start_reactor_with_env(
        "a",
        &[
            ("REACTOR__CLICKHOUSE__URL", &https_url),
            ("REACTOR__CLICKHOUSE__USER", USER),
            ("REACTOR__CLICKHOUSE__PASSWORD", PASSWORD),
        ],
    )?;
    eventually(
        "a certificate error in the log",
        Duration::from_secs(30),
        || {
            let log = reactor.log();
            async move { Ok(log.contains("certificate verify failed").then_some(())) }
        },
    )
    .await
    .with_context(|| reactor.log_tail(20))?;
    assert!(!reactor.log().contains(PASSWORD));
    reactor.kill();
    Ok(())
}
