//! Where the local services are: the addresses `scripts/services-start`
//! prints, read from the environment with the same loopback defaults.

/// Addresses of the local services.
#[derive(Debug, Clone)]
pub struct Services {
    /// Kafka bootstrap, host:port.
    pub kafka: String,
    /// ClickHouse HTTP URL.
    pub clickhouse: String,
    /// Schema registry URL.
    pub registry: String,
    /// Prometheus URL.
    pub prometheus: String,
}

impl Services {
    /// From `KAFKA_BROKERS`, `CLICKHOUSE_URL`, `SCHEMA_REGISTRY_URL` and
    /// `PROMETHEUS_URL`, or the defaults of `scripts/services-start`.
    pub fn from_env() -> Self {
        Services {
            kafka: env_or("KAFKA_BROKERS", "127.0.0.1:19092"),
            clickhouse: env_or("CLICKHOUSE_URL", "http://127.0.0.1:18123"),
            registry: env_or("SCHEMA_REGISTRY_URL", "http://127.0.0.1:18081"),
            prometheus: env_or("PROMETHEUS_URL", "http://127.0.0.1:19090"),
        }
    }
}

/// `name` from the environment, else `default`.
pub fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}
