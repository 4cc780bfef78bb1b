-- What each input partition needs to resume as if it had never stopped, per
-- consumer group. The checkpoint row (metric = '') holds, as JSON, the first
-- offset to re-read and what it takes to decide every re-read record as the
-- first read did (the watermark when that record arrived, which windows are
-- already written, where idle closing happened). Series rows hold each
-- series' trend and anomaly history as of that checkpoint.
--
-- A checkpoint and the series rows it changed are written in one INSERT
-- (one block: atomic) with the same seq, and the highest seq per key is current.
-- A seq is the writer's epoch in the high 32 bits and a count within it in the
-- low ones, so a start's claim outranks a write its predecessor still had
-- queued, however late that lands.
-- Kafka's committed offsets are updated too, for lag tooling, but cannot
-- carry this state on every broker, so this table is what Reactor reads.
CREATE TABLE IF NOT EXISTS reactor.partition_state
(
    consumer_group String,
    topic String,
    partition Int32,
    metric String,
    campaign_id String,
    content_id String,
    channel String,
    seq UInt64,
    body String,
    updated_at DateTime
)
ENGINE = ReplacingMergeTree(seq)
ORDER BY (consumer_group, topic, partition, metric, campaign_id, content_id, channel);
