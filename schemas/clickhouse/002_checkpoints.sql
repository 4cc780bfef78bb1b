-- Where each input partition resumes, per consumer group: the first offset
-- to re-read and the event-time watermark at that point, written together.
-- The latest version per (consumer_group, topic, partition) is current.
-- Kafka's committed offsets are updated too, for lag tooling, but cannot
-- carry the watermark on every broker, so this table is what Reactor reads.
CREATE TABLE IF NOT EXISTS reactor.checkpoints
(
    consumer_group String,
    topic String,
    partition Int32,
    offset Int64,
    watermark Int64,
    has_watermark UInt8,
    updated_at DateTime,
    version UInt64
)
ENGINE = ReplacingMergeTree(version)
ORDER BY (consumer_group, topic, partition);
