//! contact-writer: persists imported contacts to PostgreSQL and serves the API.

use clap::Parser;
use contact_runtime::{telemetry, Shutdown};
use contact_writer::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init();
    let settings = Settings::parse();
    let application = Application::build(settings, Shutdown::on_signals()).await?;
    application.run_until_stopped().await
}
