//! contact-ingest: reads uploaded CSV files and splits them into chunk messages.

use clap::Parser;
use contact_ingest::{Application, Settings};
use contact_runtime::{telemetry, Shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("contact-ingest");
    let settings = Settings::parse();
    let application = Application::build(settings, Shutdown::on_signals()).await?;
    application.run_until_stopped().await
}
