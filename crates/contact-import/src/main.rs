//! contact-import: the command-line client. `args` is the command line, `commands` what each
//! command does, `render` what it prints, `exit` the exit codes scripts can rely on.

mod args;
mod commands;
mod error_file;
mod exit;
mod output;
mod progress;
mod render;

use std::process::ExitCode;

use clap::Parser as _;

#[tokio::main]
async fn main() -> ExitCode {
    // A wrong command line ends here, with clap's message and exit code 2 (`ExitStatus::Usage`).
    let cli = args::Cli::parse();
    match commands::run(cli).await {
        Ok(status) => status.into(),
        Err(error) => {
            eprintln!("contact-import: {error:#}");
            exit::ExitStatus::of_error(&error).into()
        }
    }
}
