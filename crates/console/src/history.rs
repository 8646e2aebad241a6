//! Time series kept in memory for the console's charts: the last
//! [`KEEP`] of samples per series, taken every [`INTERVAL`] by
//! [`crate::sample`] (throughput, group lag). Lost on restart (charts show
//! "the last minutes"); `/metrics` is the durable, scraped view.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use serde::Serialize;

/// How often the sampler runs.
pub const INTERVAL: Duration = Duration::from_secs(5);
/// How much history a series keeps.
pub const KEEP: Duration = Duration::from_secs(30 * 60);
/// Series not updated for this long are dropped (a deleted topic's).
const IDLE: Duration = Duration::from_secs(10 * 60);

/// Points of one series: (unix seconds, value).
#[derive(Default)]
struct Series {
    points: VecDeque<(i64, f64)>,
}

/// Every series, by name (`bytes_in`, `lag:GROUP`, ...).
#[derive(Default)]
pub struct History {
    series: Mutex<HashMap<String, Series>>,
}

/// What a chart draws (the JSON `console.js` expects): shared timestamps
/// and one array of values per series (`null` where a series has no point).
#[derive(Serialize, Debug, PartialEq)]
pub struct Chart {
    pub t: Vec<i64>,
    pub series: Vec<ChartSeries>,
}

#[derive(Serialize, Debug, PartialEq)]
pub struct ChartSeries {
    pub label: String,
    pub values: Vec<Option<f64>>,
}

impl History {
    /// Adds the point (`at` unix seconds, `value`) to series `name`.
    pub fn record(&self, name: &str, at: i64, value: f64) {
        let mut all = self.series.lock();
        let s = all.entry(name.to_string()).or_default();
        s.points.push_back((at, value));
        let oldest = at - KEEP.as_secs() as i64;
        while s.points.front().is_some_and(|(t, _)| *t < oldest) {
            s.points.pop_front();
        }
        all.retain(|_, s| s.points.back().is_some_and(|(t, _)| *t >= at - IDLE.as_secs() as i64));
    }

    /// The points of series `name`.
    pub fn points(&self, name: &str) -> Vec<(i64, f64)> {
        self.series.lock().get(name).map(|s| s.points.iter().copied().collect()).unwrap_or_default()
    }

    /// The names of the series that start with `prefix`.
    pub fn names(&self, prefix: &str) -> Vec<String> {
        let mut names: Vec<String> = self.series.lock().keys().filter(|k| k.starts_with(prefix)).cloned().collect();
        names.sort();
        names
    }

    /// A chart of the series `names` with their labels.
    pub fn chart(&self, names: &[(&str, &str)]) -> Chart {
        let all = self.series.lock();
        let mut t: Vec<i64> =
            names.iter().filter_map(|(n, _)| all.get(*n)).flat_map(|s| s.points.iter().map(|(t, _)| *t)).collect();
        t.sort_unstable();
        t.dedup();
        let series = names
            .iter()
            .map(|(name, label)| {
                let points: HashMap<i64, f64> =
                    all.get(*name).map(|s| s.points.iter().copied().collect()).unwrap_or_default();
                ChartSeries { label: label.to_string(), values: t.iter().map(|at| points.get(at).copied()).collect() }
            })
            .collect();
        Chart { t, series }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn series_keep_their_window_and_charts_align_timestamps() {
        let h = History::default();
        h.record("a", 100, 1.0);
        h.record("a", 105, 2.0);
        h.record("b", 105, 5.0);
        let chart = h.chart(&[("a", "A"), ("b", "B")]);
        assert_eq!(chart.t, vec![100, 105]);
        assert_eq!(chart.series[0].values, vec![Some(1.0), Some(2.0)]);
        assert_eq!(chart.series[1].values, vec![None, Some(5.0)]);
        h.record("a", 100 + KEEP.as_secs() as i64 + 1, 3.0);
        assert_eq!(h.points("a").len(), 2, "the first point fell out of the window");
        assert_eq!(h.names(""), vec!["a".to_string()], "b was idle too long");
    }
}
