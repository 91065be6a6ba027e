//! contact-mapper: validates raw chunks against their mapping plan and passes them on.

use clap::Parser;
use contact_mapper::{Application, Settings};
use contact_runtime::{telemetry, Shutdown};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("contact-mapper");
    let settings = Settings::parse();
    let application = Application::build(settings, Shutdown::on_signals()).await?;
    application.run_until_stopped().await
}
