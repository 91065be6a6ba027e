//! Tracing set-up: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` writes JSON lines.
//!
//! A JSON line is one flat object: the time, level, target and message, the service, every
//! field of the spans it happened in (outermost first, an inner span's field winning), then
//! the event's own fields. Log stores index top-level keys, so `trace_id`, `import_id` and
//! `service` are found without digging into span objects.

use std::fmt;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::fmt::format::{JsonFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once for `service` (the binary's name, on every JSON line
/// outside a span that names another); later calls (tests start many services) do nothing.
pub fn init(service: &'static str) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_installed = if json {
        builder
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson { service })
            .try_init()
    } else {
        builder.try_init()
    };
}

/// The JSON line format described in the module's comment.
pub struct FlatJson {
    pub service: &'static str,
}

impl<S> FormatEvent<S, JsonFields> for FlatJson
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        context: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = Map::new();
        let mut timestamp = String::new();
        SystemTime.format_time(&mut Writer::new(&mut timestamp))?;
        line.insert("timestamp".into(), timestamp.into());
        line.insert("level".into(), event.metadata().level().as_str().into());
        line.insert("target".into(), event.metadata().target().into());
        line.insert("service".into(), self.service.into());
        if let Some(scope) = context.event_scope() {
            for span in scope.from_root() {
                line.insert("span".into(), span.name().into());
                let extensions = span.extensions();
                // JsonFields keeps each span's fields as one JSON object.
                let fields = extensions
                    .get::<FormattedFields<JsonFields>>()
                    .and_then(|fields| serde_json::from_str::<Map<String, Value>>(fields).ok());
                line.extend(fields.unwrap_or_default());
            }
        }
        event.record(&mut FieldsInto(&mut line));
        writeln!(writer, "{}", Value::Object(line))
    }
}

/// Records an event's fields into a JSON object.
struct FieldsInto<'a>(&'a mut Map<String, Value>);

impl Visit for FieldsInto<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().into(), value.into());
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.0
            .insert(field.name().into(), format!("{value:?}").into());
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0
                .lock()
                .expect("not poisoned")
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    fn logged(log: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let writer = lines.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .fmt_fields(JsonFields::new())
            .event_format(FlatJson {
                service: "contact-writer",
            })
            .finish();
        tracing::subscriber::with_default(subscriber, log);
        let bytes = lines.0.lock().expect("not poisoned").clone();
        String::from_utf8(bytes)
            .expect("UTF-8")
            .lines()
            .map(|line| serde_json::from_str(line).expect("each line is one JSON object"))
            .collect()
    }

    #[test]
    fn span_fields_and_the_service_are_top_level_keys_and_inner_spans_win() {
        let lines = logged(|| {
            tracing::info!("starting");
            let outer = tracing::info_span!(
                "handle",
                service = "contact-mapper",
                import_id = "7c0e",
                trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                chunk = tracing::field::Empty,
            );
            let _outer = outer.enter();
            outer.record("chunk", 3);
            let inner = tracing::info_span!("write", import_id = "inner-wins");
            let _inner = inner.enter();
            tracing::warn!(rows = 12u64, "applied a chunk");
        });
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert_eq!(lines[0]["service"], "contact-writer");
        assert_eq!(lines[0]["message"], "starting");
        assert_eq!(lines[0]["level"], "INFO");
        assert!(lines[0].get("trace_id").is_none(), "{}", lines[0]);
        let applied = &lines[1];
        assert_eq!(applied["message"], "applied a chunk");
        assert_eq!(applied["level"], "WARN");
        assert_eq!(applied["service"], "contact-mapper", "the span's service");
        assert_eq!(applied["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(applied["import_id"], "inner-wins");
        assert_eq!(applied["chunk"], 3, "recorded after the span began");
        assert_eq!(applied["rows"], 12);
        assert_eq!(applied["span"], "write");
        assert!(applied["timestamp"]
            .as_str()
            .is_some_and(|time| time.contains('T')));
    }
}
