//! contact-import: the command-line client. Its commands, flags and outputs are a contract
//! scripts rely on (see the README); change them only compatibly.

mod error_file;
mod progress;

use std::collections::BTreeSet;
use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand, ValueEnum};
use contact_contract::{
    AccountId, AttributeDef, AttributeType, ColumnMapping, ContactFilter, DuplicatePolicy,
    ImportId, ImportOptions, ImportState, ImportStatus, Namespace, Preview, SetAttributeRequest,
    UndoConflict, UndoField, UndoReport,
};
use contact_import::{preflight, Client, FollowUpdate, PreflightError};
use contact_runtime::NatsSettings;

#[derive(Debug, Parser)]
#[command(
    name = "contact-import",
    version,
    about = "Import contacts from CSV files into the contact base"
)]
struct Cli {
    #[command(flatten)]
    nats: NatsSettings,
    #[arg(
        long,
        env = "CONTACT_IMPORT_ACCOUNT",
        default_value = "default",
        global = true
    )]
    account: String,
    /// Prefix of every subject and stream, when a deployment uses another than "ci".
    #[arg(
        long,
        env = "CONTACT_IMPORT_NAMESPACE",
        default_value = "ci",
        global = true,
        hide = true
    )]
    namespace: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Upload a CSV file and start importing it; prints the import id.
    Import(ImportArgs),
    /// Show where an import is.
    Status {
        import_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Write an import's failed rows as they stood in the file, followed by line, column and
    /// reason: fix them and import the file again with the same mapping.
    Errors {
        import_id: String,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Stop a running import; what was written stays.
    Cancel {
        import_id: String,
        #[arg(long)]
        json: bool,
    },
    /// Write the account's sample file: its attributes as columns and one example row.
    Template {
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
    },
    /// Show how a file will be read (encoding, delimiter, header, first rows) and the mapping
    /// suggested for its columns; reads only the start of the file.
    Preview {
        file: PathBuf,
        #[arg(long = "map", value_name = "COLUMN=ATTRIBUTE")]
        mappings: Vec<ColumnMapping>,
        #[command(flatten)]
        reading: ReadingArgs,
        #[arg(long)]
        json: bool,
    },
    /// List or change the account's attributes.
    #[command(subcommand)]
    Attributes(AttributesCommand),
    /// Read the account's contacts.
    #[command(subcommand)]
    Contacts(ContactsCommand),
    /// The account's past imports.
    #[command(subcommand)]
    Imports(ImportsCommand),
    /// Take back an ended import: the contacts it created are removed, those it linked get
    /// back what it changed. Fields changed since the import are left as they are, and listed.
    Undo {
        import_id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Debug, Subcommand)]
enum ImportsCommand {
    /// The account's imports, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only imports in this state: running, completed, failed, cancelled, undoing, undone.
        #[arg(long, value_parser = parse_state)]
        status: Option<ImportState>,
        /// Print one JSON array.
        #[arg(long)]
        json: bool,
    },
}

fn parse_state(text: &str) -> Result<ImportState, String> {
    ImportState::parse(text.trim()).ok_or_else(|| {
        format!("unknown status \"{text}\" (expected queued, running, completed, failed, cancelled, undoing or undone)")
    })
}

#[derive(Debug, Args)]
struct ImportArgs {
    file: PathBuf,
    /// Map a file column to an attribute; a column named like an attribute maps itself.
    #[arg(long = "map", value_name = "COLUMN=ATTRIBUTE")]
    mappings: Vec<ColumnMapping>,
    #[arg(long = "type", value_name = "TYPE")]
    contact_type: Option<String>,
    #[arg(long)]
    category: Option<String>,
    #[arg(long = "tag", value_name = "TAG")]
    tags: Vec<String>,
    /// What to do with a row that matches an existing contact.
    #[arg(long = "duplicates", default_value = "link", value_parser = parse_policy)]
    policy: DuplicatePolicy,
    /// Attribute(s) that identify a duplicate (default: email).
    #[arg(long = "match-on", value_name = "ATTRIBUTE")]
    match_on: Vec<String>,
    /// Map the columns `--map` leaves open as the preview suggests.
    #[arg(long)]
    auto_map: bool,
    /// Run the whole file through the pipeline and report what would happen; write no contact.
    #[arg(long)]
    dry_run: bool,
    #[command(flatten)]
    reading: ReadingArgs,
    /// Show progress and wait for the summary.
    #[arg(long)]
    follow: bool,
    /// End with one JSON object describing the import.
    #[arg(long)]
    json: bool,
}

/// How to read the file, when detection should not decide.
#[derive(Debug, Args)]
struct ReadingArgs {
    /// The file's encoding: UTF-8, UTF-16LE, UTF-16BE, windows-1250, ISO-8859-2, windows-1252.
    #[arg(long)]
    encoding: Option<String>,
    /// The delimiter: "," ";" "tab" "|" (or comma, semicolon, pipe).
    #[arg(long)]
    delimiter: Option<String>,
}

fn parse_policy(text: &str) -> Result<DuplicatePolicy, String> {
    text.parse()
}

#[derive(Debug, Subcommand)]
enum AttributesCommand {
    List {
        #[arg(long)]
        json: bool,
    },
    Add {
        key: String,
        #[arg(long = "type", value_name = "TYPE")]
        attribute_type: AttributeType,
        /// Allowed values of an enum attribute.
        #[arg(long, value_delimiter = ',')]
        values: Vec<String>,
        #[arg(long)]
        required: bool,
        #[arg(long)]
        identifier: bool,
        #[arg(long)]
        label: Option<String>,
    },
    Set {
        key: String,
        #[arg(long)]
        required: Option<bool>,
        #[arg(long)]
        identifier: Option<bool>,
    },
    /// Removes an attribute and its values from every contact of the account.
    Remove { key: String },
}

#[derive(Debug, Subcommand)]
enum ContactsCommand {
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        #[arg(short = 'o', long = "output")]
        output: Option<PathBuf>,
        /// Only the contacts this import created or changed.
        #[arg(long = "import", value_name = "IMPORT_ID")]
        import_id: Option<String>,
        /// Only contacts with this tag.
        #[arg(long)]
        tag: Option<String>,
        /// Only contacts of this type.
        #[arg(long = "type", value_name = "TYPE")]
        contact_type: Option<String>,
        /// Only contacts of this category.
        #[arg(long)]
        category: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum ExportFormat {
    Jsonl,
    Csv,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(error) => {
            eprintln!("contact-import: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let account = AccountId::new(&cli.account)?;
    let namespace = Namespace::new(&cli.namespace)?;
    let client = Client::connect(&cli.nats, namespace, account).await?;
    match cli.command {
        Command::Import(args) => import(&client, args).await,
        Command::Status { import_id, json } => {
            let status = client.status(&ImportId::new(import_id)?).await?;
            print_status(&status, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Errors { import_id, output } => {
            let import_id = ImportId::new(import_id)?;
            error_file::write(&client, &import_id, output.as_deref()).await?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Cancel { import_id, json } => {
            let status = client.cancel(&ImportId::new(import_id)?).await?;
            print_status(&status, json);
            Ok(ExitCode::SUCCESS)
        }
        Command::Template { output } => {
            let template = client.template().await?;
            let mut sink = open_output(output.as_deref())?;
            sink.write_all(template.csv.as_bytes())?;
            sink.flush()?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Preview {
            file,
            mappings,
            reading,
            json,
        } => {
            let options = ImportOptions {
                mappings,
                encoding: reading.encoding,
                delimiter: reading.delimiter,
                ..ImportOptions::default()
            };
            let preview = client.preview(&file, &options).await?;
            if json {
                println!("{}", serde_json::to_string(&preview)?);
            } else {
                print_preview(&preview);
            }
            Ok(ExitCode::SUCCESS)
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
            export(&client, format, output, &filter).await
        }
        Command::Imports(ImportsCommand::List {
            limit,
            status,
            json,
        }) => {
            let imports = client.imports(status, limit).await?;
            if json {
                println!("{}", serde_json::to_string(&imports)?);
            } else {
                print_imports(&imports);
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Undo { import_id, json } => undo(&client, &ImportId::new(import_id)?, json).await,
    }
}

fn print_imports(imports: &[ImportStatus]) {
    let time = |time: Option<chrono::DateTime<chrono::Utc>>| {
        time.map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
            .unwrap_or_else(|| "-".to_string())
    };
    println!(
        "import_id\tfile_name\tstatus\trows_total\tcreated\tlinked\tduplicated\tskipped\tfailed\tdry_run\tstarted\tfinished\trepeat_of"
    );
    for import in imports {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
            import.import_id,
            import.file_name.as_deref().unwrap_or("-"),
            import.status.as_str(),
            import.rows_total,
            import.created,
            import.linked,
            import.duplicated,
            import.skipped,
            import.failed,
            import.dry_run,
            time(import.created_at),
            time(import.finished_at),
            import
                .repeat_of
                .as_ref()
                .map_or("-", |repeat_of| repeat_of.as_str()),
        );
    }
}

async fn undo(client: &Client, import_id: &ImportId, json: bool) -> anyhow::Result<ExitCode> {
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
        // One object: the report's fields, then `kept`, an array of every field kept.
        let report = serde_json::to_string(&report)?;
        let fields = report
            .strip_suffix('}')
            .expect("a report serializes as a JSON object");
        write!(sink, "{fields},\"kept\":[")?;
    } else {
        writeln!(sink, "{}", describe_undo(&report))?;
    }
    client
        .undo_conflicts(import_id, |conflict| {
            let written = if json {
                let separator = if first { "" } else { "," };
                serde_json::to_string(&conflict)
                    .map_err(anyhow::Error::from)
                    .and_then(|text| Ok(write!(sink, "{separator}{text}")?))
            } else {
                writeln!(sink, "{}", describe_conflict(&conflict)).map_err(anyhow::Error::from)
            };
            first = false;
            if let Err(error) = written {
                failure.get_or_insert(error);
            }
        })
        .await?;
    if let Some(error) = failure {
        return Err(error.context("writing the undo report"));
    }
    if json {
        writeln!(sink, "]}}")?;
    }
    sink.flush()?;
    Ok(ExitCode::SUCCESS)
}

fn describe_undo(report: &UndoReport) -> String {
    format!(
        "import {} {}: {} contacts removed, {} restored, {} kept because they changed after the import",
        report.import_id,
        report.status.as_str(),
        report.contacts_removed,
        report.contacts_restored,
        report.contacts_kept
    )
}

fn describe_conflict(conflict: &UndoConflict) -> String {
    let shown = |value: &Option<String>| match value {
        Some(value) => format!("{value:?}"),
        None => "nothing".to_string(),
    };
    let field = match (conflict.field, &conflict.attribute) {
        (UndoField::Attribute, Some(attribute)) => attribute.clone(),
        (UndoField::Attribute, None) => "an attribute".to_string(),
        (UndoField::Type, _) => "type".to_string(),
        (UndoField::Category, _) => "category".to_string(),
        (UndoField::Contact, _) => {
            return format!(
                "contact {}: kept, it changed after the import created it",
                conflict.contact_id
            )
        }
    };
    format!(
        "contact {} {field}: left as {} (changed after the import, which wrote {})",
        conflict.contact_id,
        shown(&conflict.current),
        shown(&conflict.imported)
    )
}

async fn import(client: &Client, args: ImportArgs) -> anyhow::Result<ExitCode> {
    let tags: BTreeSet<String> = args
        .tags
        .iter()
        .map(|tag| tag.trim().to_string())
        .filter(|tag| !tag.is_empty())
        .collect();
    let options = ImportOptions {
        mappings: args.mappings,
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
    let options = match preflight(client, &args.file, options, args.auto_map).await {
        Ok(options) => options,
        Err(PreflightError::Refused(reason)) => {
            eprintln!(
                "contact-import: cannot import {}: {reason}",
                args.file.display()
            );
            return Ok(ExitCode::from(2));
        }
        Err(error) => return Err(error.into()),
    };
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
    println!("{import_id}");
    if !args.follow {
        if args.json {
            print_status(
                &ImportStatus::queued(client.account().clone(), import_id),
                true,
            );
        }
        return Ok(ExitCode::SUCCESS);
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
        Ok(ExitCode::SUCCESS)
    } else {
        if !args.json {
            let reason = summary.error.as_deref().unwrap_or("no reason given");
            eprintln!(
                "contact-import: import {} {}: {reason}",
                summary.import_id,
                summary.status.as_str()
            );
        }
        Ok(ExitCode::FAILURE)
    }
}

fn print_preview(preview: &Preview) {
    println!("encoding: {}", preview.encoding);
    println!(
        "delimiter: {} ({})",
        preview.delimiter_name,
        preview.delimiter.escape_debug()
    );
    println!("columns:");
    for suggestion in &preview.suggested_mapping {
        match &suggestion.attribute {
            Some(attribute) => println!(
                "  {:<24} -> {:<14} {:>3.0}%  {}",
                suggestion.column,
                attribute,
                suggestion.confidence * 100.0,
                suggestion.reason
            ),
            None => println!(
                "  {:<24} (not imported: {})",
                suggestion.column, suggestion.reason
            ),
        }
    }
    if !preview.unmapped_required.is_empty() {
        println!(
            "required attributes no column maps to: {}",
            preview.unmapped_required.join(", ")
        );
    }
    for column in &preview.invalid_columns {
        println!(
            "column {:?} as {}: {} of {} sampled values fail, e.g. {:?} ({})",
            column.column,
            column.attribute,
            column.invalid,
            column.sampled,
            column.example,
            column.reason
        );
    }
    println!("first rows as they will be imported:");
    println!("  {}", preview.header.join(" | "));
    for row in &preview.rows {
        println!("  {}", row.join(" | "));
    }
}

fn print_status(status: &ImportStatus, json: bool) {
    if json {
        println!(
            "{}",
            serde_json::to_string(status).expect("an import status always serializes")
        );
        return;
    }
    println!(
        "{}import {} {}: {} rows: {} created, {} linked, {} duplicated, {} skipped, {} failed",
        if status.dry_run { "dry run: " } else { "" },
        status.import_id,
        status.status.as_str(),
        status.rows_total,
        status.created,
        status.linked,
        status.duplicated,
        status.skipped,
        status.failed
    );
    if !status.unmapped_columns.is_empty() {
        println!(
            "columns not imported: {}",
            status.unmapped_columns.join(", ")
        );
    }
    if let Some(error) = &status.error {
        println!("note: {error}");
    }
    if let Some(repeat_of) = &status.repeat_of {
        println!("the same file content was imported before as import {repeat_of}");
    }
    if status.failed > 0 {
        println!(
            "failed rows: contact-import errors {} -o failed-rows.csv",
            status.import_id
        );
    }
}

async fn attributes(client: &Client, command: AttributesCommand) -> anyhow::Result<ExitCode> {
    match command {
        AttributesCommand::List { json } => {
            let attributes = client.attributes().await?;
            if json {
                println!("{}", serde_json::to_string(&attributes)?);
            } else {
                for attribute in &attributes {
                    println!("{}", describe_attribute(attribute));
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
                    anyhow::bail!("--values applies to enum attributes, not {other}")
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
            println!("{}", describe_attribute(&added));
        }
        AttributesCommand::Set {
            key,
            required,
            identifier,
        } => {
            if required.is_none() && identifier.is_none() {
                anyhow::bail!(
                    "nothing to change: give --required true|false and/or --identifier true|false"
                );
            }
            let changed = client
                .set_attribute(SetAttributeRequest {
                    key,
                    required,
                    identifier,
                })
                .await?;
            println!("{}", describe_attribute(&changed));
        }
        AttributesCommand::Remove { key } => {
            client.remove_attribute(key.clone()).await?;
            println!("removed attribute {key} and its values");
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_attribute(attribute: &AttributeDef) -> String {
    let mut flags = Vec::new();
    if attribute.required {
        flags.push("required");
    }
    if attribute.identifier {
        flags.push("identifier");
    }
    let kind = match &attribute.attribute_type {
        AttributeType::Enum { values } => format!("enum({})", values.join(",")),
        other => other.to_string(),
    };
    format!(
        "{}\t{}\t{}\t{}",
        attribute.key,
        kind,
        flags.join(","),
        attribute.label
    )
}

async fn export(
    client: &Client,
    format: ExportFormat,
    output: Option<PathBuf>,
    filter: &ContactFilter,
) -> anyhow::Result<ExitCode> {
    let mut sink = open_output(output.as_deref())?;
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
    Ok(ExitCode::SUCCESS)
}

pub(crate) fn open_output(path: Option<&Path>) -> anyhow::Result<Box<dyn Write>> {
    Ok(match path {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout())),
    })
}
