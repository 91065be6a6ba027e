//! The Prometheus metrics of every service, under names dashboards can rely on. One set per
//! process: tests run several services in one process, and the `service` label keeps them
//! apart.

use std::sync::OnceLock;
use std::time::Duration;

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    rows: IntCounterVec,
    messages: IntCounterVec,
    handler_seconds: HistogramVec,
    imports_running: IntGauge,
    imports_without_progress: IntGauge,
    consumer_pending: IntGaugeVec,
    api_requests: IntCounterVec,
    api_seconds: HistogramVec,
    build_info: IntGaugeVec,
}

/// Buckets of the time histograms, in seconds: from a quick lookup to a long batch.
const SECONDS_BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The process's metrics, registered on first use.
pub fn metrics() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(|| Metrics::new().expect("the metric definitions are valid"))
}

impl Metrics {
    fn new() -> prometheus::Result<Self> {
        let registry = Registry::new();
        let rows = IntCounterVec::new(
            Opts::new(
                "contact_import_rows_total",
                "Rows by what became of them: ingest read; mapper valid, invalid; writer created, \
                 linked, duplicated, skipped, failed",
            ),
            &["service", "outcome"],
        )?;
        let messages = IntCounterVec::new(
            Opts::new(
                "contact_import_messages_total",
                "JetStream messages settled, by kind (subject suffix) and disposition (ack, nak, \
                 term)",
            ),
            &["service", "kind", "disposition"],
        )?;
        let handler_seconds = HistogramVec::new(
            HistogramOpts::new(
                "contact_import_handler_seconds",
                "Time a handler took on one message",
            )
            .buckets(SECONDS_BUCKETS.to_vec()),
            &["service", "kind"],
        )?;
        let imports_running = IntGauge::new(
            "contact_import_imports_running",
            "Imports running in the deployment, as the writer's database holds them",
        )?;
        let imports_without_progress = IntGauge::new(
            "contact_import_imports_without_progress",
            "Running imports of the deployment none of whose lanes moved on for a minute, as the \
             writer's database holds them (every writer reports the same number: take the max)",
        )?;
        let consumer_pending = IntGaugeVec::new(
            Opts::new(
                "contact_import_consumer_pending",
                "Messages of a durable consumer not delivered yet (its backlog)",
            ),
            &["consumer"],
        )?;
        let api_requests = IntCounterVec::new(
            Opts::new(
                "contact_import_api_requests_total",
                "API requests answered, by operation and outcome (ok, or the error's kind)",
            ),
            &["operation", "outcome"],
        )?;
        let api_seconds = HistogramVec::new(
            HistogramOpts::new(
                "contact_import_api_seconds",
                "Time from an API request's arrival to its reply",
            )
            .buckets(SECONDS_BUCKETS.to_vec()),
            &["operation"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new(
                "contact_import_build_info",
                "1, labelled with the service and the version it was built as",
            ),
            &["service", "version"],
        )?;
        registry.register(Box::new(rows.clone()))?;
        registry.register(Box::new(messages.clone()))?;
        registry.register(Box::new(handler_seconds.clone()))?;
        registry.register(Box::new(imports_running.clone()))?;
        registry.register(Box::new(imports_without_progress.clone()))?;
        registry.register(Box::new(consumer_pending.clone()))?;
        registry.register(Box::new(api_requests.clone()))?;
        registry.register(Box::new(api_seconds.clone()))?;
        registry.register(Box::new(build_info.clone()))?;
        // What a process exposes of itself (CPU, memory, open files, start time), under the
        // names every Prometheus client uses.
        #[cfg(target_os = "linux")]
        registry.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))?;
        Ok(Self {
            registry,
            rows,
            messages,
            handler_seconds,
            imports_running,
            imports_without_progress,
            consumer_pending,
            api_requests,
            api_seconds,
            build_info,
        })
    }

    /// Says which service and version this process runs (`contact_import_build_info`).
    pub fn set_build_info(&self, service: &str, version: &str) {
        self.build_info
            .with_label_values(&[service, version])
            .set(1);
    }

    /// One API request answered: `outcome` is `ok` or the error's kind.
    pub fn api_answered(&self, operation: &str, outcome: &str, took: Duration) {
        self.api_requests
            .with_label_values(&[operation, outcome])
            .inc();
        self.api_seconds
            .with_label_values(&[operation])
            .observe(took.as_secs_f64());
    }

    pub fn count_rows(&self, service: &str, outcome: &str, rows: u64) {
        if rows > 0 {
            self.rows
                .with_label_values(&[service, outcome])
                .inc_by(rows);
        }
    }

    pub fn message_settled(&self, service: &str, kind: &str, disposition: &str, took: Duration) {
        self.messages
            .with_label_values(&[service, kind, disposition])
            .inc();
        self.handler_seconds
            .with_label_values(&[service, kind])
            .observe(took.as_secs_f64());
    }

    pub fn set_imports_running(&self, running: i64) {
        self.imports_running.set(running);
    }

    pub fn set_imports_without_progress(&self, imports: i64) {
        self.imports_without_progress.set(imports);
    }

    pub fn set_consumer_pending(&self, consumer: &str, pending: u64) {
        self.consumer_pending
            .with_label_values(&[consumer])
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
    }

    /// Everything registered, in the Prometheus text format.
    pub fn render(&self) -> String {
        let mut text = Vec::new();
        if let Err(error) = TextEncoder::new().encode(&self.registry.gather(), &mut text) {
            tracing::warn!(%error, "could not encode the metrics");
        }
        String::from_utf8(text).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_are_rendered_under_their_names_and_labels() {
        let metrics = Metrics::new().expect("valid definitions");
        metrics.count_rows("mapper", "valid", 7);
        metrics.count_rows("mapper", "valid", 0);
        metrics.message_settled("writer", "records", "ack", Duration::from_millis(3));
        metrics.set_consumer_pending("writer", 12);
        let text = metrics.render();
        assert!(text.contains(r#"contact_import_rows_total{outcome="valid",service="mapper"} 7"#));
        assert!(text.contains(
            r#"contact_import_messages_total{disposition="ack",kind="records",service="writer"} 1"#
        ));
        assert!(text.contains(
            r#"contact_import_handler_seconds_bucket{kind="records",service="writer",le="0.005"} 1"#
        ));
        assert!(text.contains(r#"contact_import_consumer_pending{consumer="writer"} 12"#));
        assert!(text.contains("# TYPE contact_import_imports_running gauge"));
        metrics.api_answered("import.status", "not_found", Duration::from_millis(2));
        metrics.set_build_info("writer", "1.2.3");
        let text = metrics.render();
        assert!(text.contains(
            r#"contact_import_api_requests_total{operation="import.status",outcome="not_found"} 1"#
        ));
        assert!(text.contains(
            r#"contact_import_api_seconds_bucket{operation="import.status",le="0.0025"} 1"#
        ));
        assert!(text.contains(r#"contact_import_build_info{service="writer",version="1.2.3"} 1"#));
        assert!(
            text.contains("process_resident_memory_bytes"),
            "the process's own metrics"
        );
    }
}
