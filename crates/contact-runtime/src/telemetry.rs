//! Tracing set-up: `RUST_LOG` filters (default `info`), `LOG_FORMAT=json` writes JSON lines.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber once; later calls (tests start many services) do nothing.
pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|format| format.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _already_installed = if json {
        builder.json().flatten_event(true).try_init()
    } else {
        builder.try_init()
    };
}
