//! Request latency histograms by matched route and status class, kept on every request with
//! atomics: a route's label is found in a table built once from the router's routes (no
//! allocation, no lock per request), and a path no route matched counts under one label.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Upper bounds of the latency buckets, in microseconds (0.5 ms to 10 s).
const BOUNDS_MICROS: [u64; 14] = [
    500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000, 1_000_000,
    2_500_000, 5_000_000, 10_000_000,
];

/// The label of requests no route matched (404s of unknown paths, whatever they were).
pub const UNMATCHED: &str = "unmatched";

/// Status classes: 1xx to 5xx.
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// One route's requests of one status class: a count per bucket (the last one past every
/// bound) and the sum of durations. Alone in its cache lines, so two routes busy on two cores
/// do not share one.
#[repr(align(128))]
#[derive(Default)]
struct Cell {
    buckets: [AtomicU64; BOUNDS_MICROS.len() + 1],
    sum_micros: AtomicU64,
}

/// A route's place among the histograms ([`RequestMetrics::route`]).
#[derive(Debug, Clone, Copy)]
pub struct Route(usize);

/// The histograms of every route.
pub struct RequestMetrics {
    /// Route template (as axum's `MatchedPath` has it) -> its index.
    index: HashMap<Box<str>, usize>,
    /// Labels by index; the last is [`UNMATCHED`].
    labels: Vec<Box<str>>,
    cells: Box<[Cell]>,
}

impl RequestMetrics {
    /// Histograms for these route templates, plus [`UNMATCHED`].
    pub fn new<'a>(routes: impl IntoIterator<Item = &'a str>) -> Self {
        let mut labels: Vec<Box<str>> = routes.into_iter().map(Box::from).collect();
        labels.sort();
        labels.dedup();
        labels.retain(|l| &**l != UNMATCHED);
        labels.push(UNMATCHED.into());
        let index = labels
            .iter()
            .enumerate()
            .map(|(i, l)| (l.clone(), i))
            .collect();
        let cells = (0..labels.len() * CLASSES.len())
            .map(|_| Cell::default())
            .collect();
        Self {
            index,
            labels,
            cells,
        }
    }

    /// The series of `route` (its template; `None` when no route matched).
    pub fn route(&self, route: Option<&str>) -> Route {
        let unmatched = self.labels.len() - 1;
        Route(
            route
                .and_then(|r| self.index.get(r).copied())
                .unwrap_or(unmatched),
        )
    }

    /// Counts a request of `route` answered with `status` after `elapsed`.
    pub fn observe(&self, route: Route, status: u16, elapsed: Duration) {
        let class = usize::from((status / 100).clamp(1, 5) - 1);
        let cell = &self.cells[route.0 * CLASSES.len() + class];
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let bucket = BOUNDS_MICROS
            .iter()
            .position(|b| micros <= *b)
            .unwrap_or(BOUNDS_MICROS.len());
        cell.buckets[bucket].fetch_add(1, Ordering::Relaxed);
        cell.sum_micros.fetch_add(micros, Ordering::Relaxed);
    }

    /// The histogram family in the text format: the series of the routes and classes that
    /// have answered at least once.
    pub fn write(&self, out: &mut String) {
        const NAME: &str = "auth_http_request_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {NAME} Time from a request's arrival to its answer, by matched route and status class."
        );
        let _ = writeln!(out, "# TYPE {NAME} histogram");
        for (i, label) in self.labels.iter().enumerate() {
            let label = super::escape(label);
            for (c, class) in CLASSES.iter().enumerate() {
                let cell = &self.cells[i * CLASSES.len() + c];
                let counts: Vec<u64> = cell
                    .buckets
                    .iter()
                    .map(|b| b.load(Ordering::Relaxed))
                    .collect();
                let total: u64 = counts.iter().sum();
                if total == 0 {
                    continue;
                }
                let labels = format!("route=\"{label}\",status=\"{class}\"");
                let mut cumulative = 0;
                for (bound, count) in BOUNDS_MICROS.iter().zip(&counts) {
                    cumulative += count;
                    let le = *bound as f64 / 1e6;
                    let _ = writeln!(out, "{NAME}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
                }
                let _ = writeln!(out, "{NAME}_bucket{{{labels},le=\"+Inf\"}} {total}");
                let sum = cell.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
                let _ = writeln!(out, "{NAME}_sum{{{labels}}} {sum}");
                let _ = writeln!(out, "{NAME}_count{{{labels}}} {total}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_land_in_their_route_class_and_bucket() {
        let m = RequestMetrics::new(["/auth/verify", "/auth/admin/users/{id}"]);
        let observe = |route, status, elapsed| m.observe(m.route(route), status, elapsed);
        observe(Some("/auth/verify"), 200, Duration::from_micros(300));
        observe(Some("/auth/verify"), 204, Duration::from_millis(3));
        observe(Some("/auth/admin/users/{id}"), 404, Duration::from_secs(20));
        observe(None, 404, Duration::from_micros(10));
        observe(Some("/not/in/the/table"), 200, Duration::from_micros(10));
        let mut text = String::new();
        m.write(&mut text);
        let name = "auth_http_request_duration_seconds";
        for line in [
            format!("{name}_bucket{{route=\"/auth/verify\",status=\"2xx\",le=\"0.0005\"}} 1"),
            format!("{name}_bucket{{route=\"/auth/verify\",status=\"2xx\",le=\"0.0025\"}} 1"),
            format!("{name}_bucket{{route=\"/auth/verify\",status=\"2xx\",le=\"0.005\"}} 2"),
            format!("{name}_count{{route=\"/auth/verify\",status=\"2xx\"}} 2"),
            format!("{name}_sum{{route=\"/auth/verify\",status=\"2xx\"}} 0.0033"),
            format!(
                "{name}_bucket{{route=\"/auth/admin/users/{{id}}\",status=\"4xx\",le=\"10\"}} 0"
            ),
            format!(
                "{name}_bucket{{route=\"/auth/admin/users/{{id}}\",status=\"4xx\",le=\"+Inf\"}} 1"
            ),
            format!("{name}_count{{route=\"unmatched\",status=\"4xx\"}} 1"),
            format!("{name}_count{{route=\"unmatched\",status=\"2xx\"}} 1"),
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert!(!text.contains("status=\"5xx\""), "{text}");
    }
}
