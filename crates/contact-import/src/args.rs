//! The command line: every command, flag and value of `contact-import`, as clap parses them.
//! Its commands, flags and outputs are a contract scripts rely on (see the README); change
//! them only compatibly.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum, ValueHint};
use clap_complete::Shell;
use contact_contract::NatsSettings;
use contact_contract::{AttributeType, ColumnMapping, DuplicatePolicy, ImportState, ValueMapping};

use crate::exit::ExitStatus;
use crate::output::Output;

#[derive(Debug, Parser)]
#[command(
    name = "contact-import",
    version,
    about = "Import contacts from CSV files into the contact base",
    after_help = ExitStatus::help()
)]
pub struct Cli {
    #[command(flatten)]
    pub nats: NatsSettings,
    #[arg(
        long,
        env = "CONTACT_IMPORT_ACCOUNT",
        default_value = "default",
        global = true
    )]
    pub account: String,
    /// Prefix of every subject and stream, when a deployment uses another than "ci".
    #[arg(
        long,
        env = "CONTACT_IMPORT_NAMESPACE",
        default_value = "ci",
        global = true,
        hide = true
    )]
    pub namespace: String,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Upload a CSV file and start importing it; prints the import id.
    Import(ImportArgs),
    /// Show where an import is.
    Status {
        import_id: String,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write an import's failed rows as they stood in the file, followed by line, column and
    /// reason: fix them and import the file again with the same mapping.
    Errors {
        import_id: String,
        /// Where to write: a file, or - for standard output (also without -o).
        #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-", value_parser = Output::parse, value_hint = ValueHint::FilePath)]
        output: Output,
    },
    /// Stop a running import; what was written stays.
    Cancel {
        import_id: String,
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Write the account's sample file: its attributes as columns and one example row.
    Template {
        /// Where to write: a file, or - for standard output (also without -o).
        #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-", value_parser = Output::parse, value_hint = ValueHint::FilePath)]
        output: Output,
    },
    /// Show how a file will be read (encoding, delimiter, header, first rows) and the mapping
    /// suggested for its columns; reads only the start of the file.
    Preview {
        #[arg(value_hint = ValueHint::FilePath)]
        file: PathBuf,
        #[arg(long = "map", value_name = "COLUMN=ATTRIBUTE")]
        mappings: Vec<ColumnMapping>,
        /// Read a value of an enum or boolean column as one its attribute allows.
        #[arg(long = "map-value", value_name = "ATTRIBUTE:VALUE=ALLOWED")]
        value_mappings: Vec<ValueMapping>,
        #[command(flatten)]
        reading: ReadingArgs,
        /// Print one JSON document instead of text.
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
        /// Print one JSON document instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script: `source <(contact-import completions bash)`, or save
    /// it where the shell loads completions from.
    Completions {
        #[arg(value_enum)]
        shell: Shell,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportsCommand {
    /// The account's imports, newest first.
    List {
        #[arg(long, default_value_t = 20)]
        limit: usize,
        /// Only imports in this state: running, completed, failed, cancelled, undoing, undone.
        #[arg(long, value_parser = parse_state)]
        status: Option<ImportState>,
        /// Print one JSON array of the imports' status objects.
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
pub struct ImportArgs {
    #[arg(value_hint = ValueHint::FilePath)]
    pub file: PathBuf,
    /// Map a file column to an attribute; a column named like an attribute maps itself, and
    /// `COLUMN=` keeps a column out.
    #[arg(long = "map", value_name = "COLUMN=ATTRIBUTE")]
    pub mappings: Vec<ColumnMapping>,
    /// Read a value of an enum or boolean column as one its attribute allows, e.g.
    /// `--map-value gender:K=F` (the value compared ignoring case).
    #[arg(long = "map-value", value_name = "ATTRIBUTE:VALUE=ALLOWED")]
    pub value_mappings: Vec<ValueMapping>,
    #[arg(long = "type", value_name = "TYPE")]
    pub contact_type: Option<String>,
    #[arg(long)]
    pub category: Option<String>,
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// What to do with a row that matches an existing contact.
    #[arg(long = "duplicates", default_value = "link", value_parser = parse_policy)]
    pub policy: DuplicatePolicy,
    /// Attribute(s) that identify a duplicate (default: email).
    #[arg(long = "match-on", value_name = "ATTRIBUTE")]
    pub match_on: Vec<String>,
    /// Map the columns `--map` leaves open as the preview suggests.
    #[arg(long)]
    pub auto_map: bool,
    /// Run the whole file through the pipeline and report what would happen; write no contact.
    #[arg(long)]
    pub dry_run: bool,
    #[command(flatten)]
    pub reading: ReadingArgs,
    /// Show progress and wait for the summary.
    #[arg(long)]
    pub follow: bool,
    /// Print one JSON object describing the import (and not the import id line before it).
    #[arg(long)]
    pub json: bool,
}

/// How to read the file, when detection should not decide.
#[derive(Debug, Args)]
pub struct ReadingArgs {
    /// The file's encoding: UTF-8, UTF-16LE, UTF-16BE, windows-1250, ISO-8859-2, windows-1252.
    #[arg(long)]
    pub encoding: Option<String>,
    /// The delimiter: "," ";" "tab" "|" (or comma, semicolon, pipe).
    #[arg(long)]
    pub delimiter: Option<String>,
}

fn parse_policy(text: &str) -> Result<DuplicatePolicy, String> {
    text.parse()
}

#[derive(Debug, Subcommand)]
pub enum AttributesCommand {
    List {
        /// Print one JSON document instead of text.
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
pub enum ContactsCommand {
    Export {
        #[arg(long, value_enum, default_value_t = ExportFormat::Jsonl)]
        format: ExportFormat,
        /// Where to write: a file, or - for standard output (also without -o).
        #[arg(short = 'o', long = "output", value_name = "FILE", default_value = "-", value_parser = Output::parse, value_hint = ValueHint::FilePath)]
        output: Output,
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
pub enum ExportFormat {
    Jsonl,
    Csv,
}
