//! Reactor's tables, created from the DDL in `schemas/clickhouse/`.

use std::time::Duration;

use crate::sink::SinkError;

/// The DDL files, in the order they are applied.
const FILES: [(&str, &str); 3] = [
    (
        "000_database.sql",
        include_str!("../../../schemas/clickhouse/000_database.sql"),
    ),
    (
        "001_rollups.sql",
        include_str!("../../../schemas/clickhouse/001_rollups.sql"),
    ),
    (
        "002_partition_state.sql",
        include_str!("../../../schemas/clickhouse/002_partition_state.sql"),
    ),
];

/// The DDL statements for `database`: the files name the database
/// `reactor`; every `reactor.` qualifier and the `CREATE DATABASE` target are
/// renamed. `database` must be a plain identifier (config validation ensures it).
pub fn statements(database: &str) -> Vec<String> {
    FILES
        .iter()
        .flat_map(|(_, text)| text.split(';'))
        .map(|statement| {
            statement
                .lines()
                .filter(|line| !line.trim_start().starts_with("--"))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .map(|statement| statement.trim().to_owned())
        .filter(|statement| !statement.is_empty())
        .map(|statement| {
            statement
                .replace(
                    "DATABASE IF NOT EXISTS reactor",
                    &format!("DATABASE IF NOT EXISTS {database}"),
                )
                .replace(" reactor.", &format!(" {database}."))
        })
        .collect()
}

/// How long one DDL statement or check may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Creates the database and tables where missing.
pub async fn apply(client: &::clickhouse::Client, database: &str) -> Result<(), SinkError> {
    for statement in statements(database) {
        tokio::time::timeout(TIMEOUT, client.query(&statement).execute())
            .await
            .map_err(|_| SinkError::TimedOut("creating the schema"))??;
    }
    Ok(())
}

/// The server's version string; doubles as a connectivity check.
pub async fn server_version(client: &::clickhouse::Client) -> Result<String, SinkError> {
    let version = client.query("SELECT version()").fetch_one::<String>();
    Ok(tokio::time::timeout(TIMEOUT / 3, version)
        .await
        .map_err(|_| SinkError::TimedOut("a version query"))??)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_the_database_everywhere() {
        let statements = statements("test_db_1");
        assert_eq!(statements.len(), 3);
        assert_eq!(statements[0], "CREATE DATABASE IF NOT EXISTS test_db_1");
        assert!(statements[1].starts_with("CREATE TABLE IF NOT EXISTS test_db_1.rollups"));
        assert!(statements[2].starts_with("CREATE TABLE IF NOT EXISTS test_db_1.partition_state"));
        assert!(statements
            .iter()
            .all(|s| !s.contains("reactor") && !s.contains("--")));
    }
}
