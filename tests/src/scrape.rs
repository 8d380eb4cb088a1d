//! Reads what the processes export on `/metrics` (the Prometheus text
//! format), and what the dashboard and alerts in `deploy/monitoring` name.

use std::collections::{BTreeMap, BTreeSet};

/// One sample: a series and its value.
#[derive(Debug)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// The samples of one or more scrapes.
#[derive(Debug, Default)]
pub struct Samples(pub Vec<Sample>);

impl Samples {
    pub fn parse(text: &str) -> Self {
        Self(text.lines().filter_map(sample).collect())
    }

    /// The sum of the series of `name` whose labels include `labels`.
    pub fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|s| s.name == name)
            .filter(|s| {
                labels
                    .iter()
                    .all(|(k, v)| s.labels.get(*k).is_some_and(|have| have == v))
            })
            .map(|s| s.value)
            .sum()
    }

    /// Every metric family present, histogram series under their family's
    /// name.
    pub fn families(&self) -> BTreeSet<String> {
        self.0.iter().map(|s| family(&s.name).to_owned()).collect()
    }
}

fn sample(line: &str) -> Option<Sample> {
    if line.starts_with('#') || line.trim().is_empty() {
        return None;
    }
    let (series, value) = line.rsplit_once(' ')?;
    let (name, labels) = match series.split_once('{') {
        Some((name, rest)) => (name, labels(rest.strip_suffix('}')?)),
        None => (series, BTreeMap::new()),
    };
    Some(Sample {
        name: name.to_owned(),
        labels,
        value: value.parse().ok()?,
    })
}

/// `a="x",b="y"`; values here never hold a quote or a comma.
fn labels(text: &str) -> BTreeMap<String, String> {
    text.split(',')
        .filter_map(|pair| pair.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.trim_matches('"').to_owned()))
        .collect()
}

/// `x_bucket`, `x_sum` and `x_count` belong to the family `x`.
pub fn family(name: &str) -> &str {
    ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|suffix| name.strip_suffix(suffix))
        .unwrap_or(name)
}

/// Every `eventsys_*` metric the files of `deploy/monitoring` name.
pub fn named_in_monitoring() -> BTreeSet<String> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy/monitoring");
    let mut names = BTreeSet::new();
    for entry in std::fs::read_dir(&dir).expect("deploy/monitoring") {
        let text = std::fs::read_to_string(entry.expect("a file").path()).expect("a text file");
        let mut rest = text.as_str();
        while let Some(at) = rest.find("eventsys_") {
            let name: String = rest[at..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            rest = &rest[at + name.len()..];
            names.insert(family(&name).to_owned());
        }
    }
    names
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_series_labels_and_values() {
        let samples = Samples::parse(
            "# TYPE eventsys_commands_finished_total counter\n\
             eventsys_commands_finished_total{role=\"ticketing\",command=\"order.place\",status=\"succeeded\"} 7\n\
             eventsys_commands_finished_total{role=\"ticketing\",command=\"order.place\",status=\"rejected\"} 3\n\
             eventsys_command_latency_seconds_count{role=\"ticketing\",command=\"order.place\"} 10\n\
             eventsys_build_info 1\n",
        );
        let finished = "eventsys_commands_finished_total";
        assert_eq!(samples.sum(finished, &[("status", "succeeded")]), 7.0);
        assert_eq!(samples.sum(finished, &[("command", "order.place")]), 10.0);
        assert_eq!(samples.sum(finished, &[("status", "failed")]), 0.0);
        assert_eq!(
            samples.families().into_iter().collect::<Vec<_>>(),
            [
                "eventsys_build_info",
                "eventsys_command_latency_seconds",
                "eventsys_commands_finished_total"
            ]
        );
    }
}
