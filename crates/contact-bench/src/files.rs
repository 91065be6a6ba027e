//! The files the benchmark imports: which kind, their columns as the plain-SQL paths type them,
//! the custom attributes the pipeline needs for them, and the counts the generator knows the
//! pipeline must report.
//!
//! A file is generated once per kind, size and edition into the data folder; when it is there
//! already the generator runs again into nothing, because the counts come from the generator
//! and a file on disk does not carry them.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::ValueEnum;
use contact_contract::AttributeDef;

use crate::{easy_file, realistic_file};

/// Which file a scenario imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum FileKind {
    /// Seven columns, unique emails, every value valid: the file of the first benchmarks.
    Easy,
    /// Thirteen columns as a marketer exports them: repeated emails, bad values, custom
    /// attributes, Polish names, several phone and date layouts.
    Realistic,
}

/// How the plain-SQL paths treat a column (the pipeline knows its types from the attributes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// The match key: lower-cased and trimmed, nothing more.
    Email,
    Text,
    Date,
    Boolean,
    Integer,
}

/// One column of a generated file, in file order.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub name: &'static str,
    pub kind: ColumnKind,
}

/// What the pipeline must report for a file imported into an empty account under the default
/// `link` policy, emails being the match key.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExpectedCounts {
    pub rows: u64,
    /// Rows holding at least one value the core refuses.
    pub failed: u64,
    /// Valid rows whose email no earlier valid row had.
    pub created: u64,
    /// Valid rows whose email an earlier valid row had (the same address in other case or with
    /// spaces around it counts as the same).
    pub linked: u64,
}

/// A file on disk with what its generator knows about it.
#[derive(Debug, Clone)]
pub struct GeneratedFile {
    pub path: PathBuf,
    pub kind: FileKind,
    pub expected: ExpectedCounts,
}

impl ExpectedCounts {
    /// Rows that the pipeline writes: on a second import of the same contacts, every one links.
    pub fn valid_rows(&self) -> u64 {
        self.rows - self.failed
    }
}

impl FileKind {
    pub fn name(self) -> &'static str {
        match self {
            Self::Easy => "easy",
            Self::Realistic => "realistic",
        }
    }

    pub fn columns(self) -> &'static [Column] {
        match self {
            Self::Easy => easy_file::COLUMNS,
            Self::Realistic => realistic_file::COLUMNS,
        }
    }

    /// Attributes beyond the standard ones that an account needs before it imports the file;
    /// the benchmark creates them through the API, as a marketer would.
    pub fn custom_attributes(self) -> Vec<AttributeDef> {
        match self {
            Self::Easy => Vec::new(),
            Self::Realistic => realistic_file::custom_attributes()
                .into_iter()
                .map(|(key, label, attribute_type)| AttributeDef {
                    key: key.to_owned(),
                    label: label.to_owned(),
                    attribute_type,
                    required: false,
                    identifier: false,
                })
                .collect(),
        }
    }
}

/// The file of `rows` contacts as edition `edition` has them: edition 0 is the file itself;
/// from edition 1 on the same emails, the same bad cells and the same repeats, with other names
/// and cities (what a re-import that changes every contact reads).
pub fn generated_file(
    data_dir: &Path,
    kind: FileKind,
    rows: usize,
    edition: usize,
) -> anyhow::Result<GeneratedFile> {
    let name = match edition {
        0 => format!("contacts-{}-{rows}.csv", kind.name()),
        _ => format!("contacts-{}-{rows}-edition{edition}.csv", kind.name()),
    };
    let path = data_dir.join(name);
    let expected = if path.exists() {
        write_file(kind, rows, edition, &mut std::io::sink())?
    } else {
        // Written beside and renamed: a run stopped halfway leaves no file that a later run
        // would take for a whole one.
        let partial = path.with_extension("csv.partial");
        let mut out = std::io::BufWriter::new(
            std::fs::File::create(&partial)
                .with_context(|| format!("creating {}", partial.display()))?,
        );
        let expected = write_file(kind, rows, edition, &mut out)?;
        out.flush()?;
        drop(out);
        std::fs::rename(&partial, &path)?;
        expected
    };
    Ok(GeneratedFile {
        path,
        kind,
        expected,
    })
}

fn write_file(
    kind: FileKind,
    rows: usize,
    edition: usize,
    out: &mut dyn Write,
) -> anyhow::Result<ExpectedCounts> {
    let expected = match kind {
        FileKind::Easy => easy_file::write(out, rows, edition)?,
        FileKind::Realistic => realistic_file::write(out, rows, edition)?,
    };
    Ok(expected)
}
