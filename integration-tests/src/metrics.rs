//! Reactor's `/metrics` and the local Prometheus: one parser for the
//! exposition text, one HTTP GET, and the scrape targets the local
//! Prometheus reads.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

/// GETs `url`, with `query` as the URL-encoded `query` parameter if given:
/// the status code and the body.
pub async fn http_get(url: &str, query: Option<&str>) -> Result<(u16, String)> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()?;
    let mut request = client.get(url);
    if let Some(query) = query {
        request = request.query(&[("query", query)]);
    }
    let response = request.send().await.with_context(|| format!("GET {url}"))?;
    let status = response.status().as_u16();
    Ok((status, response.text().await?))
}

/// Labels of a series, without the metric name.
pub type Labels = BTreeMap<String, String>;

/// One sample of the Prometheus text exposition format.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Metric name (with `_bucket`, `_sum`, `_count` suffixes as written).
    pub name: String,
    /// Its labels.
    pub labels: Labels,
    /// Its value (NaN and ±Inf included).
    pub value: f64,
}

/// A parsed `/metrics` page.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    /// Every sample, in page order.
    pub samples: Vec<Sample>,
}

impl Metrics {
    /// Parses the text exposition format (comments skipped).
    pub fn parse(text: &str) -> Result<Self> {
        let samples = text
            .lines()
            .filter(|line| !line.trim().is_empty() && !line.starts_with('#'))
            .map(|line| parse_sample(line).with_context(|| format!("/metrics line {line:?}")))
            .collect::<Result<_>>()?;
        Ok(Metrics { samples })
    }

    /// Samples of the metric `name`.
    pub fn named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Sample> + 'a {
        self.samples.iter().filter(move |s| s.name == name)
    }

    /// The sum of `name` over all its label sets; `None` if it is absent.
    pub fn sum(&self, name: &str) -> Option<f64> {
        let mut samples = self.named(name).peekable();
        samples.peek()?;
        Some(samples.map(|s| s.value).sum())
    }

    /// `name` by its `topic` and `partition` labels.
    pub fn by_partition(&self, name: &str) -> BTreeMap<(String, i32), f64> {
        self.named(name)
            .filter_map(|s| {
                let topic = s.labels.get("topic")?.clone();
                let partition = s.labels.get("partition")?.parse().ok()?;
                Some(((topic, partition), s.value))
            })
            .collect()
    }
}

fn parse_sample(line: &str) -> Result<Sample> {
    let (series, value) = line.rsplit_once(' ').context("no value")?;
    let value = match value.trim() {
        "NaN" => f64::NAN,
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        number => number.parse()?,
    };
    let (name, labels) = match series.split_once('{') {
        None => (series.trim().to_owned(), Labels::new()),
        Some((name, rest)) => {
            let body = rest
                .trim_end()
                .strip_suffix('}')
                .context("unclosed labels")?;
            (name.to_owned(), parse_labels(body)?)
        }
    };
    Ok(Sample {
        name,
        labels,
        value,
    })
}

/// `a="x",b="y\"z"` (values escaped as the format says).
fn parse_labels(mut body: &str) -> Result<Labels> {
    let mut labels = Labels::new();
    while !body.is_empty() {
        let (key, rest) = body.split_once("=\"").context("label without a value")?;
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let end = loop {
            match chars.next().context("unterminated label value")? {
                (i, '"') => break i,
                (_, '\\') => match chars.next().context("dangling escape")?.1 {
                    'n' => value.push('\n'),
                    other => value.push(other),
                },
                (_, c) => value.push(c),
            }
        };
        let _previous = labels.insert(key.trim_start_matches(',').to_owned(), value);
        body = rest[end + 1..].trim_start_matches(',');
    }
    Ok(labels)
}

/// Fetches and parses `http://{address}/metrics`.
pub async fn scrape(address: &str) -> Result<Metrics> {
    let (status, body) = http_get(&format!("http://{address}/metrics"), None).await?;
    anyhow::ensure!(status == 200, "/metrics answered HTTP {status}");
    Metrics::parse(&body)
}

/// A file_sd target of the local Prometheus (`scripts/services-start` makes
/// it read `PROMETHEUS_TARGETS_DIR/*.json`) naming one Reactor; removed on
/// drop, so Prometheus stops scraping it even when the test fails.
#[derive(Debug)]
pub struct ScrapeTarget {
    path: PathBuf,
}

impl ScrapeTarget {
    /// Makes Prometheus scrape `address`, labelled `instance`.
    pub fn register(instance: &str, address: &str) -> Result<Self> {
        let dir = prometheus_targets_dir();
        anyhow::ensure!(
            dir.is_dir(),
            "{} does not exist: start Prometheus with scripts/services-start prometheus",
            dir.display()
        );
        let path = dir.join(format!("{instance}.json"));
        // Written aside and renamed, so Prometheus (which reads *.json only)
        // never sees half a file.
        let partial = dir.join(format!("{instance}.json.partial"));
        std::fs::write(
            &partial,
            format!(r#"[{{"targets":["{address}"],"labels":{{"instance":"{instance}"}}}}]"#),
        )?;
        std::fs::rename(&partial, &path)?;
        Ok(ScrapeTarget { path })
    }
}

impl Drop for ScrapeTarget {
    fn drop(&mut self) {
        let _ignored = std::fs::remove_file(&self.path);
    }
}

/// `PROMETHEUS_TARGETS_DIR`, else where `scripts/services-start` puts it.
fn prometheus_targets_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PROMETHEUS_TARGETS_DIR") {
        return dir.into();
    }
    std::env::var_os("REACTOR_SERVICES_DIR")
        .map_or_else(
            || std::env::temp_dir().join("reactor-services"),
            PathBuf::from,
        )
        .join(Path::new("prometheus/targets"))
}

/// What a replica's `/state` says of each of its partitions.
async fn states_of(address: &str) -> anyhow::Result<Vec<serde_json::Value>> {
    let (status, body) = http_get(&format!("http://{address}/state"), None).await?;
    anyhow::ensure!(status == 200, "/state: HTTP {status}");
    Ok(serde_json::from_str(&body)?)
}

/// How many partitions the replica at `address` is running (state loaded,
/// epoch claimed), as `/state` says.
pub async fn running_partitions_of(address: &str) -> anyhow::Result<usize> {
    let states = states_of(address).await?;
    Ok(states.iter().filter(|s| s["phase"] == "running").count())
}

/// The partitions a replica's `/state` lists, with their generations.
pub async fn partitions_of(address: &str) -> anyhow::Result<BTreeMap<(String, i32), u64>> {
    use anyhow::Context as _;
    states_of(address)
        .await?
        .iter()
        .map(|s| {
            let topic = s["topic"].as_str().context("topic")?.to_owned();
            let partition = i32::try_from(s["partition"].as_i64().context("partition")?)?;
            let generation = s["generation"].as_u64().context("generation")?;
            Ok(((topic, partition), generation))
        })
        .collect()
}

/// Waits until the replica at `address` owns some but not all of the
/// `all` partitions (a rebalance moved part of them to it) and returns
/// them with their generations.
pub async fn some_partitions_move_to(
    address: &str,
    all: usize,
    timeout: std::time::Duration,
) -> anyhow::Result<BTreeMap<(String, i32), u64>> {
    crate::eventually("partitions to move to the new replica", timeout, || async {
        let moved = partitions_of(address).await.unwrap_or_default();
        Ok((!moved.is_empty() && moved.len() < all).then_some(moved))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_labels_escapes_and_special_values() {
        let text = "# HELP x y\n# TYPE x counter\nx_total{topic=\"a\\\"b\",partition=\"3\"} 5\nup 1\ng{topic=\"t\",partition=\"0\"} NaN\n";
        let m = Metrics::parse(text).unwrap();
        assert_eq!(m.samples.len(), 3);
        assert_eq!(m.samples[0].labels["topic"], "a\"b");
        assert_eq!(m.sum("x_total"), Some(5.0));
        assert_eq!(m.sum("up"), Some(1.0));
        assert_eq!(m.sum("absent"), None);
        assert!(m.by_partition("g")[&("t".to_owned(), 0)].is_nan());
    }
}
