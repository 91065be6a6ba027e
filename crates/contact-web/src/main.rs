//! contact-web: serves the import page.

use clap::Parser;
use contact_runtime::{telemetry, Shutdown};
use contact_web::{Application, Settings};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("contact-web");
    let settings = Settings::parse();
    let application = Application::build(settings, Shutdown::on_signals()).await?;
    application.run_until_stopped().await
}
