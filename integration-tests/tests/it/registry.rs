//! The schema registry client against the test registry.

use std::time::Duration;

use integration_tests::{Services, TestRegistry};
use reactor::event::decode::AVRO_SCHEMAS;
use reactor::registry::SchemaRegistry;

#[tokio::test]
async fn registers_resolves_and_reports_unknown_ids() -> anyhow::Result<()> {
    let registry = SchemaRegistry::new(&Services::from_env().registry, Duration::from_secs(5))?;
    let (_, schema) = AVRO_SCHEMAS[1];
    let id = registry.register_avro("it-registry-value", schema).await?;
    assert_eq!(
        registry.register_avro("it-registry-value", schema).await?,
        id,
        "same schema, same id"
    );
    let fetched = registry.schema(id).await?.expect("registered schema");
    assert_eq!(
        canonical(&fetched),
        canonical(schema),
        "the registry returns the schema registered"
    );
    assert_eq!(
        registry.schema(2_000_000_000).await?,
        None,
        "unknown ids are not errors"
    );
    Ok(())
}

#[tokio::test]
async fn an_unreachable_registry_is_an_error_not_an_unknown_id() -> anyhow::Result<()> {
    let registry = SchemaRegistry::new("http://127.0.0.1:9", Duration::from_secs(2))?;
    assert!(registry.schema(1).await.is_err());
    Ok(())
}

/// A registry that requires basic authentication (the test stand-in with
/// `--basic-auth`, on a port of its own): Reactor's client, configured with a
/// user name and a password file as a deployment would, registers and
/// resolves schemas; without credentials the registry refuses it.
#[tokio::test]
async fn basic_authentication_from_configuration() -> anyhow::Result<()> {
    let own = TestRegistry::start(&["--basic-auth", "reactor:s3cret"]).await?;
    let url = own.url();
    let status = own.first_status().await?;
    anyhow::ensure!(status == 401, "no credentials: HTTP {status}, want 401");

    let secrets = tempfile::tempdir()?;
    let password_file = secrets.path().join("registry-password");
    std::fs::write(&password_file, "s3cret\n")?;
    let config = reactor::config::load(
        None,
        [
            ("REACTOR__SCHEMA_REGISTRY__URL", url.as_str()),
            ("REACTOR__SCHEMA_REGISTRY__USERNAME", "reactor"),
            (
                "REACTOR__SCHEMA_REGISTRY__PASSWORD_FILE",
                password_file.to_str().unwrap(),
            ),
        ]
        .map(|(k, v)| (k.to_owned(), v.to_owned())),
    )?;
    let registry = SchemaRegistry::with_config(&url, &config.schema_registry)?;
    let (_, schema) = AVRO_SCHEMAS[0];
    let id = registry.register_avro("it-auth-value", schema).await?;
    assert!(registry.schema(id).await?.is_some());

    let anonymous = SchemaRegistry::new(&url, Duration::from_secs(2))?;
    assert!(anonymous.schema(id).await.is_err(), "401 must be an error");
    Ok(())
}

/// Whitespace-insensitive form of a JSON schema.
fn canonical(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}
