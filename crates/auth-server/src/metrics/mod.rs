//! Metrics in the Prometheus text format, written by hand (a few families of atomics need no
//! library): request latency histograms ([`requests`]), the service's counters and gauges
//! ([`service`]), the outbox's counters (kept by the relays) and gauges (read from the outbox
//! table when scraped). Another family is a [`Family`] more in [`render`].

pub mod requests;
pub mod service;

pub use service::Counters;

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use auth_core::outbox::ChannelStats;

/// The counters of one outbox channel's relay in this process.
#[derive(Debug, Default)]
pub struct ChannelCounters {
    pub delivered: AtomicU64,
    pub failures: AtomicU64,
}

/// The counters of every outbox channel relayed by this process.
#[derive(Debug, Default)]
pub struct OutboxCounters {
    channels: Mutex<Vec<(String, Arc<ChannelCounters>)>>,
}

impl OutboxCounters {
    /// The counters of `channel` (created at zero on first use).
    pub fn channel(&self, channel: &str) -> Arc<ChannelCounters> {
        let mut channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((_, c)) = channels.iter().find(|(name, _)| name == channel) {
            return c.clone();
        }
        let c = Arc::new(ChannelCounters::default());
        channels.push((channel.to_owned(), c.clone()));
        c
    }

    fn snapshot(&self) -> Vec<(String, u64, u64)> {
        let channels = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        channels
            .iter()
            .map(|(name, c)| {
                (
                    name.clone(),
                    c.delivered.load(Ordering::Relaxed),
                    c.failures.load(Ordering::Relaxed),
                )
            })
            .collect()
    }
}

/// One metric family: its name, type, help and samples (labels, value).
pub struct Family {
    pub name: &'static str,
    pub kind: &'static str,
    pub help: &'static str,
    pub samples: Vec<(Vec<(&'static str, String)>, f64)>,
}

impl Family {
    fn write(&self, out: &mut String) {
        let _ = writeln!(out, "# HELP {} {}", self.name, self.help);
        let _ = writeln!(out, "# TYPE {} {}", self.name, self.kind);
        for (labels, value) in &self.samples {
            let labels: Vec<String> = labels
                .iter()
                .map(|(k, v)| format!("{k}=\"{}\"", escape(v)))
                .collect();
            let labels = if labels.is_empty() {
                String::new()
            } else {
                format!("{{{}}}", labels.join(","))
            };
            let _ = writeln!(out, "{}{labels} {value}", self.name);
        }
    }
}

/// A label value as the text format wants it.
pub(crate) fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// The outbox families: gauges of the table's backlog at `now` and this process's counters.
/// Channels of either appear in all, so a series never vanishes while another is shown.
pub fn outbox_families(stats: &[ChannelStats], counters: &OutboxCounters, now: i64) -> Vec<Family> {
    let snapshot = counters.snapshot();
    let mut channels: Vec<String> = ["event".to_owned(), "mail".to_owned()].into();
    channels.extend(stats.iter().map(|s| s.channel.clone()));
    channels.extend(snapshot.iter().map(|(c, _, _)| c.clone()));
    channels.sort();
    channels.dedup();
    let stat = |c: &str| stats.iter().find(|s| s.channel == c);
    let count = |c: &str| snapshot.iter().find(|(n, _, _)| n == c);
    let series = |value: &dyn Fn(&str) -> f64| {
        channels
            .iter()
            .map(|c| (vec![("channel", c.clone())], value(c)))
            .collect()
    };
    vec![
        Family {
            name: "auth_outbox_pending",
            kind: "gauge",
            help: "Outbox entries waiting for delivery (neither delivered nor parked).",
            samples: series(&|c| stat(c).map_or(0.0, |s| s.pending as f64)),
        },
        Family {
            name: "auth_outbox_parked",
            kind: "gauge",
            help: "Outbox entries parked after too many failed attempts.",
            samples: series(&|c| stat(c).map_or(0.0, |s| s.parked as f64)),
        },
        Family {
            name: "auth_outbox_oldest_pending_seconds",
            kind: "gauge",
            help: "Age of the oldest pending outbox entry (0 when none): the relay's lag.",
            samples: series(&|c| {
                stat(c)
                    .and_then(|s| s.oldest_pending_at)
                    .map_or(0.0, |at| (now - at).max(0) as f64)
            }),
        },
        Family {
            name: "auth_outbox_delivered_total",
            kind: "counter",
            help: "Outbox entries delivered by this instance.",
            samples: series(&|c| count(c).map_or(0.0, |(_, d, _)| *d as f64)),
        },
        Family {
            name: "auth_outbox_failures_total",
            kind: "counter",
            help: "Failed delivery attempts of this instance (an unreachable broker included).",
            samples: series(&|c| count(c).map_or(0.0, |(_, _, f)| *f as f64)),
        },
    ]
}

/// The families in the text format (version 0.0.4).
pub fn render(families: &[Family]) -> String {
    let mut out = String::new();
    for family in families {
        family.write(&mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_outbox_families_show_every_channel_with_its_lag_and_counts() {
        let counters = OutboxCounters::default();
        counters
            .channel("event")
            .delivered
            .fetch_add(3, Ordering::Relaxed);
        counters
            .channel("event")
            .failures
            .fetch_add(1, Ordering::Relaxed);
        let stats = [ChannelStats {
            channel: "event".into(),
            pending: 2,
            parked: 1,
            delivered: 7,
            oldest_pending_at: Some(100),
        }];
        let text = render(&outbox_families(&stats, &counters, 130));
        for line in [
            "# TYPE auth_outbox_pending gauge",
            "auth_outbox_pending{channel=\"event\"} 2",
            "auth_outbox_pending{channel=\"mail\"} 0",
            "auth_outbox_parked{channel=\"event\"} 1",
            "auth_outbox_oldest_pending_seconds{channel=\"event\"} 30",
            "auth_outbox_oldest_pending_seconds{channel=\"mail\"} 0",
            "# TYPE auth_outbox_delivered_total counter",
            "auth_outbox_delivered_total{channel=\"event\"} 3",
            "auth_outbox_failures_total{channel=\"event\"} 1",
        ] {
            assert!(text.lines().any(|l| l == line), "{line} in\n{text}");
        }
        assert_eq!(escape("a\"b\\c\n"), "a\\\"b\\\\c\\n");
    }
}
