//! The schema registry client against the test registry.

use std::time::Duration;

use integration_tests::Services;
use reactor::event::decode::AVRO_SCHEMAS;
use reactor::event::registry::SchemaRegistry;

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

/// Whitespace-insensitive form of a JSON schema.
fn canonical(text: &str) -> String {
    text.chars().filter(|c| !c.is_whitespace()).collect()
}
