//! Measures ClickHouse INSERT latency of Reactor's rollup rows per batch
//! size, with and without TCP_NODELAY on the HTTP connector, against the
//! server at `CLICKHOUSE_URL` (default: the one `scripts/services-start` runs).
//!
//! ```sh
//! cargo run --release --example clickhouse_insert_latency
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client as HyperClient;
use hyper_util::rt::TokioExecutor;
use reactor::sink::clickhouse::rows::RollupRow;

fn client(url: &str, nodelay: bool) -> clickhouse::Client {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(nodelay);
    let http = HyperClient::builder(TokioExecutor::new()).build(connector);
    clickhouse::Client::with_http_client(http)
        .with_url(url)
        .with_compression(clickhouse::Compression::None)
        .with_validation(false)
        .with_database("reactor_bench")
}

fn row(i: usize) -> RollupRow {
    RollupRow {
        metric: "engagement.dwell_ms".into(),
        campaign_id: format!("campaign-{:03}", i % 50),
        content_id: format!("content-{i:06}"),
        channel: "web".into(),
        window_start: 1_767_225_600 + (i as u32 / 1000) * 60,
        window_end: 1_767_225_660 + (i as u32 / 1000) * 60,
        count: 17,
        sum: 51_000.5,
        min: 12.0,
        max: 9_000.0,
        avg: 3_000.03,
        p50: None,
        p90: None,
        p95: None,
        p99: None,
        trend_slope: None,
        anomaly_score: None,
        source_topic: "engagement.events".into(),
        source_partition: 0,
        version: 1,
    }
}

#[tokio::main]
async fn main() {
    let url = std::env::var("CLICKHOUSE_URL").unwrap_or_else(|_| "http://127.0.0.1:18123".into());
    let admin = client(&url, true).with_database("default");
    for statement in reactor::sink::clickhouse::schema::statements("reactor_bench") {
        admin.query(&statement).execute().await.unwrap();
    }
    println!("ClickHouse {url}: median / p90 INSERT latency of rollup rows (25 inserts each)");
    println!(
        "{:>8} | {:>21} | {:>21}",
        "rows", "TCP_NODELAY on", "TCP_NODELAY off"
    );
    for rows in [1usize, 10, 100, 1_000, 5_000, 20_000] {
        let mut cells = Vec::new();
        for nodelay in [true, false] {
            let client = client(&url, nodelay);
            let batch: Vec<RollupRow> = (0..rows).map(row).collect();
            let mut times = Vec::new();
            for attempt in 0..27 {
                let started = Instant::now();
                let mut insert = client.insert::<RollupRow>("rollups").await.unwrap();
                for r in &batch {
                    insert.write(r).await.unwrap();
                }
                insert.end().await.unwrap();
                if attempt >= 2 {
                    times.push(started.elapsed()); // the first two warm the connection
                }
            }
            times.sort();
            let ms = |d: Duration| d.as_secs_f64() * 1000.0;
            cells.push(format!(
                "{:>8.2} / {:>8.2} ms",
                ms(times[times.len() / 2]),
                ms(times[times.len() * 9 / 10])
            ));
        }
        println!("{rows:>8} | {} | {}", cells[0], cells[1]);
    }
    admin
        .query("DROP DATABASE reactor_bench")
        .execute()
        .await
        .unwrap();
}
