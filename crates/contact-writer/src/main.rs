//! contact-writer: persists imported contacts to PostgreSQL and serves the API.

use clap::Parser;
use contact_runtime::{telemetry, Shutdown};
use contact_writer::{Application, Settings, WriterCommand};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    telemetry::init("contact-writer");
    let settings = Settings::parse();
    if let Some(WriterCommand::Migrate(migrate)) = &settings.command {
        return contact_writer::migrate(&settings.database_url, migrate).await;
    }
    let application = Application::build(settings, Shutdown::on_signals()).await?;
    application.run_until_stopped().await
}
