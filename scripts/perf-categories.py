#!/usr/bin/env python3
"""Where Reactor's CPU goes, by concept, from a `perf record --call-graph
dwarf` profile of the release binary (BENCHMARKS.md, "End-to-end
throughput").

Usage: perf script -i perf.data -F comm,tid,ip,sym | scripts/perf-categories.py

Each sample is charged to the first category, in the order below, that
any frame of its stack (or its thread's name) matches; the rest is "other".
Prints each category's share of the samples, then the share spent, whoever
the caller, in the allocator and in the kernel zeroing fresh pages.
"""
import re
import sys
from collections import Counter

# (category, pattern over a frame's symbol or the thread's name). Order
# matters: the first category matching any frame wins, so specific work
# (encoding a derived event) is listed before the task that runs it
# (shipping a batch), and generic machinery last.
CATEGORIES = [
    ("derived events: building and encoding", r"derived::rollup_event|derived::batch_events|sink::derived::encode|event_id|sha1|serde_json::ser"),
    ("derived events: producing (librdkafka, LZ4)", r"rd_kafka_produce|rd_kafka_msg_new|LZ4_compress|rd_kafka_msgset_create|rd_kafka_ProduceRequest|rd_kafka_msgq|FutureProducer|send_result|DeliveryFuture|^producer poll|rdkafka::util::Deadline"),
    ("ClickHouse: RowBinary and insert", r"clickhouse::|rowbinary|RowBinary|sink::clickhouse"),
    ("checkpoint and series snapshots", r"pipeline::snapshots|pipeline::checkpoint|SeriesSnapshot|state::"),
    ("window close (rows, trend, anomaly)", r"close_passed|pipeline::close|PartitionPipeline::close|Trend::observe|anomaly::|::finish(?!_)"),
    ("decoding (JSON, Avro)", r"serde_json::de|serde_json::read|event::decode|Decoder|avro|parse_rfc3339"),
    ("aggregation (admit, windows, interner)", r"pipeline::admit|accept|interner|window::|aggregate::|PartitionPipeline::process"),
    ("reading: librdkafka fetch and copy into Record", r"rd_kafka_(consume|fetch|msgset_reader|event|queue|op)|rd_slice|LZ4_decompress|crc32|reader::batch|to_record|poll_queue|BorrowedMessage"),
    ("actor and task machinery", r"actix|tokio::|futures_|Instrumented|mio::"),
    ("metrics and tracing", r"metrics::|tracing::|clock_gettime"),
    ("allocator", r"^_?mi_|mi_free|malloc|free$|memmove|memcpy|memset"),
]
COMPILED = [(name, re.compile(pattern)) for name, pattern in CATEGORIES]
PAGE_FAULTS = re.compile(r"clear_page|do_huge_pmd|handle_mm_fault|asm_exc_page_fault")
ALLOCATOR = re.compile(r"^_?mi_|^mi_|malloc|^_int_free|^free$|sysmalloc")


def classify(frames):
    for name, pattern in COMPILED:
        if any(pattern.search(frame) for frame in frames):
            return name
    return "other"


def samples(lines):
    """Each sample's frames, leaf first, then its thread's name."""
    frames, thread = [], ""
    for line in lines:
        line = line.rstrip("\n")
        if not line.strip():
            if frames:
                yield frames + [thread]
            frames, thread = [], ""
            continue
        if line.startswith((" ", "\t")):
            parts = line.strip().split(None, 1)
            frames.append(parts[1] if len(parts) > 1 else parts[0])
        else:
            # "comm tid": the thread's name may contain spaces.
            thread = line.rsplit(None, 1)[0]
    if frames:
        yield frames + [thread]


def main():
    counts, faults, allocator, total = Counter(), 0, 0, 0
    for frames in samples(sys.stdin):
        total += 1
        counts[classify(frames)] += 1
        faults += any(PAGE_FAULTS.search(f) for f in frames)
        allocator += bool(frames) and bool(ALLOCATOR.search(frames[0]))
    total = total or 1
    print(f"{total} samples")
    for name, n in counts.most_common():
        print(f"{100 * n / total:5.1f} %  {name}")
    print(f"of which, whoever the caller: {100 * faults / total:.1f} % page faults "
          f"(fresh memory zeroed by the kernel), {100 * allocator / total:.1f} % in the allocator")


if __name__ == "__main__":
    main()
