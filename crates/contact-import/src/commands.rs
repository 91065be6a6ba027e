//! What each command does: it calls the client library and prints what `render` makes of the
//! answer. Standard output carries only the command's result (with `--json`, exactly one JSON
//! document); progress, warnings and errors go to standard error.

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::time::Duration;

use clap::CommandFactory as _;
use contact_contract::{
    AccountId, AttributeDef, AttributeType, ContactFilter, ImportId, ImportOptions, ImportState,
    ImportStatus, Namespace, SetAttributeRequest,
};
use contact_import_client::{preflight, Client, FollowUpdate};

use crate::args::{
    AttributesCommand, Cli, Command, ContactsCommand, ExportFormat, ImportArgs, ImportsCommand,
};
use crate::exit::{ExitStatus, UsageError};
use crate::output::Output;
use crate::{error_file, progress, render};

/// Runs the command line's command; an error says what went wrong and, through
/// [`ExitStatus::of_error`], which exit code that is.
pub async fn run(cli: Cli) -> anyhow::Result<ExitStatus> {
    if let Command::Completions { shell } = cli.command {
        // Needs no connection: the script comes from the command line's definition.
        let mut definition = Cli::command();
        let name = definition.get_name().to_string();
        let mut stdout = std::io::stdout().lock();
        clap_complete::generate(shell, &mut definition, name, &mut stdout);
        stdout.flush()?;
        return Ok(ExitStatus::Success);
    }
    let account = AccountId::new(&cli.account)?;
    let namespace = Namespace::new(&cli.namespace)?;
    let client = Client::connect(&cli.nats, namespace, account).await?;
    match cli.command {
        Command::Import(args) => import(&client, args).await,
        Command::Status { import_id, json } => {
            let status = client.status(&ImportId::new(import_id)?).await?;
            print_status(&status, json);
            Ok(ExitStatus::Success)
        }
        Command::Errors { import_id, output } => {
            let import_id = ImportId::new(import_id)?;
            error_file::write(&client, &import_id, &output).await?;
            Ok(ExitStatus::Success)
        }
        Command::Cancel { import_id, json } => {
            let status = client.cancel(&ImportId::new(import_id)?).await?;
            print_status(&status, json);
            Ok(ExitStatus::Success)
        }
        Command::Template { output } => {
            let template = client.template().await?;
            let mut sink = output.open()?;
            sink.write_all(template.csv.as_bytes())?;
            sink.flush()?;
            Ok(ExitStatus::Success)
        }
        Command::Preview {
            file,
            mappings,
            value_mappings,
            reading,
            json,
        } => {
            let options = ImportOptions {
                mappings,
                value_mappings,
                encoding: reading.encoding,
                delimiter: reading.delimiter,
                ..ImportOptions::default()
            };
            let preview = client.preview(&file, &options).await?;
            if json {
                println!("{}", render::json(&preview));
            } else {
                println!("{}", render::preview(&preview));
            }
            Ok(ExitStatus::Success)
        }
        Command::Attributes(command) => attributes(&client, command).await,
        Command::Contacts(ContactsCommand::Export {
            format,
            output,
            import_id,
            tag,
            contact_type,
            category,
        }) => {
            let filter = ContactFilter {
                import_id: import_id.map(ImportId::new).transpose()?,
                tag,
                contact_type,
                category,
            };
            export(&client, format, &output, &filter).await
        }
        Command::Imports(ImportsCommand::List {
            limit,
            status,
            json,
        }) => {
            let imports = client.imports(status, limit).await?;
            if json {
                println!("{}", render::json(&imports));
            } else {
                println!("{}", render::imports_table(&imports));
            }
            Ok(ExitStatus::Success)
        }
        Command::Undo { import_id, json } => undo(&client, &ImportId::new(import_id)?, json).await,
        Command::Completions { .. } => unreachable!("answered before connecting"),
    }
}

fn print_status(status: &ImportStatus, json: bool) {
    if json {
        println!("{}", render::json(status));
    } else {
        println!("{}", render::status(status));
    }
}

async fn import(client: &Client, args: ImportArgs) -> anyhow::Result<ExitStatus> {
    let tags: BTreeSet<String> = args
        .tags
        .iter()
        .map(|tag| tag.trim().to_string())
        .filter(|tag| !tag.is_empty())
        .collect();
    let options = ImportOptions {
        mappings: args.mappings,
        value_mappings: args.value_mappings,
        policy: args.policy,
        match_on: args.match_on,
        contact_type: args.contact_type.filter(|text| !text.trim().is_empty()),
        category: args.category.filter(|text| !text.trim().is_empty()),
        tags,
        dry_run: args.dry_run,
        encoding: args.reading.encoding,
        delimiter: args.reading.delimiter,
    };
    // Refuse a wrong file or mapping before uploading anything; the services check again.
    let options = preflight(client, &args.file, options, args.auto_map)
        .await
        .map_err(|error| {
            anyhow::Error::from(error).context(format!("cannot import {}", args.file.display()))
        })?;
    let import_id = Client::new_import_id();
    let request = client.upload(&import_id, &args.file, options).await?;
    if let Some(digest) = &request.file_sha256 {
        // The same content again is often a mistake, but may be meant: warn, then go on.
        if let Some(earlier) = client.latest_import_of_file(digest).await? {
            eprintln!(
                "contact-import: warning: {} has the same content as import {} ({}{}); importing it again",
                args.file.display(),
                earlier.import_id,
                earlier.status.as_str(),
                earlier
                    .created_at
                    .map(|time| format!(", started {}", time.format("%Y-%m-%d %H:%M")))
                    .unwrap_or_default()
            );
        }
    }
    client.publish_request(&request).await?;
    // With --json the id is in the one JSON object; without, it is the first line.
    if !args.json {
        println!("{import_id}");
    }
    if !args.follow {
        if args.json {
            print_status(
                &ImportStatus::queued(client.account().clone(), import_id),
                true,
            );
        }
        return Ok(ExitStatus::Success);
    }
    let mut display = progress::Progress::new(std::io::stderr().is_terminal());
    let summary = client
        .follow(&import_id, Duration::from_secs(10), |update| match update {
            FollowUpdate::Event(event) => display.show(&event.import),
            FollowUpdate::Quiet { waited } => display.quiet(waited),
        })
        .await?;
    display.finish();
    print_status(&summary, args.json);
    if summary.status == ImportState::Completed {
        Ok(ExitStatus::Success)
    } else {
        if !args.json {
            eprintln!("{}", render::not_completed(&summary));
        }
        Ok(ExitStatus::ImportNotCompleted)
    }
}

async fn undo(client: &Client, import_id: &ImportId, json: bool) -> anyhow::Result<ExitStatus> {
    let terminal = std::io::stderr().is_terminal();
    let report = client
        .undo(import_id, |report| {
            if terminal && !json {
                eprintln!(
                    "undoing {}: {} removed, {} restored so far",
                    report.import_id, report.contacts_removed, report.contacts_restored
                );
            }
        })
        .await?;
    // An undo of a large import may keep many fields: they are written as their pages come.
    let mut sink = std::io::BufWriter::new(std::io::stdout().lock());
    let mut failure: Option<anyhow::Error> = None;
    let mut first = true;
    if json {
        write!(sink, "{}", render::undo_json_start(&report))?;
    } else {
        writeln!(sink, "{}", render::undo(&report))?;
    }
    client
        .undo_conflicts(import_id, |conflict| {
            let written = if json {
                write!(sink, "{}", render::undo_json_kept(&conflict, first))
            } else {
                writeln!(sink, "{}", render::conflict(&conflict))
            };
            first = false;
            if let Err(error) = written {
                failure.get_or_insert(error.into());
            }
        })
        .await?;
    if let Some(error) = failure {
        return Err(error.context("writing the undo report"));
    }
    if json {
        writeln!(sink, "{}", render::UNDO_JSON_END)?;
    }
    sink.flush()?;
    Ok(ExitStatus::Success)
}

async fn attributes(client: &Client, command: AttributesCommand) -> anyhow::Result<ExitStatus> {
    match command {
        AttributesCommand::List { json } => {
            let attributes = client.attributes().await?;
            if json {
                println!("{}", render::json(&attributes));
            } else {
                for attribute in &attributes {
                    println!("{}", render::attribute(attribute));
                }
            }
        }
        AttributesCommand::Add {
            key,
            attribute_type,
            values,
            required,
            identifier,
            label,
        } => {
            let attribute_type = match attribute_type {
                AttributeType::Enum { .. } => AttributeType::Enum { values },
                other if !values.is_empty() => {
                    return Err(UsageError(format!(
                        "--values applies to enum attributes, not {other}"
                    ))
                    .into())
                }
                other => other,
            };
            let added = client
                .add_attribute(AttributeDef {
                    label: label.unwrap_or_else(|| key.clone()),
                    key,
                    attribute_type,
                    required,
                    identifier,
                })
                .await?;
            println!("{}", render::attribute(&added));
        }
        AttributesCommand::Set {
            key,
            required,
            identifier,
        } => {
            if required.is_none() && identifier.is_none() {
                return Err(UsageError(
                    "nothing to change: give --required true|false and/or --identifier true|false"
                        .to_string(),
                )
                .into());
            }
            let changed = client
                .set_attribute(SetAttributeRequest {
                    key,
                    required,
                    identifier,
                })
                .await?;
            println!("{}", render::attribute(&changed));
        }
        AttributesCommand::Remove { key } => {
            client.remove_attribute(key.clone()).await?;
            println!("removed attribute {key} and its values");
        }
    }
    Ok(ExitStatus::Success)
}

async fn export(
    client: &Client,
    format: ExportFormat,
    output: &Output,
    filter: &ContactFilter,
) -> anyhow::Result<ExitStatus> {
    let mut sink = output.open()?;
    let mut failure: Option<anyhow::Error> = None;
    match format {
        ExportFormat::Jsonl => {
            client
                .export_filtered(filter, |contact| {
                    let written = serde_json::to_writer(&mut sink, &contact)
                        .map_err(anyhow::Error::from)
                        .and_then(|()| sink.write_all(b"\n").map_err(anyhow::Error::from));
                    if let Err(error) = written {
                        failure.get_or_insert(error);
                    }
                })
                .await?;
        }
        ExportFormat::Csv => {
            let keys: Vec<String> = client
                .attributes()
                .await?
                .into_iter()
                .map(|attribute| attribute.key)
                .collect();
            let mut writer = csv::Writer::from_writer(sink);
            let mut header = vec![
                "id".to_string(),
                "type".to_string(),
                "category".to_string(),
                "tags".to_string(),
            ];
            header.extend(keys.iter().cloned());
            writer.write_record(&header)?;
            client
                .export_filtered(filter, |contact| {
                    let mut record = vec![
                        contact.id.to_string(),
                        contact.contact_type.clone().unwrap_or_default(),
                        contact.category.clone().unwrap_or_default(),
                        contact.tags.join("|"),
                    ];
                    record.extend(
                        keys.iter()
                            .map(|key| contact.attributes.get(key).cloned().unwrap_or_default()),
                    );
                    if let Err(error) = writer.write_record(&record) {
                        failure.get_or_insert(error.into());
                    }
                })
                .await?;
            sink = writer
                .into_inner()
                .map_err(|error| anyhow::anyhow!("writing the export: {error}"))?;
        }
    }
    if let Some(error) = failure {
        return Err(error.context("writing the export"));
    }
    sink.flush()?;
    Ok(ExitStatus::Success)
}
