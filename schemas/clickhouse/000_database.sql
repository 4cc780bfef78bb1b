-- Reactor's database. Reactor applies these files in order at start when
-- clickhouse.create_schema is true (the default), with `reactor` replaced by
-- clickhouse.database. Valid on ClickHouse 18.16 and current releases.
CREATE DATABASE IF NOT EXISTS reactor;
