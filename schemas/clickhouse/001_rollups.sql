-- One row per metric, dimensions and closed event-time window.
--
-- A window may be written more than once (after a restart, a rebalance or a
-- replay): rows with the same sorting key replace each other, the highest
-- version winning, so readers see each window once. Until ClickHouse merges
-- the parts, query with FINAL, or aggregate with argMax(..., version).
-- p50..p99, trend_slope and anomaly_score are NULL where not computed.
CREATE TABLE IF NOT EXISTS reactor.rollups
(
    metric String,
    campaign_id String,
    content_id String,
    channel String,
    window_start DateTime,
    window_end DateTime,
    count UInt64,
    sum Float64,
    min Float64,
    max Float64,
    avg Float64,
    p50 Nullable(Float64),
    p90 Nullable(Float64),
    p95 Nullable(Float64),
    p99 Nullable(Float64),
    trend_slope Nullable(Float64),
    anomaly_score Nullable(Float64),
    source_topic String,
    source_partition Int32,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
PARTITION BY toYYYYMM(window_start)
ORDER BY (metric, campaign_id, content_id, channel, window_start);
