//! Owns the pure import logic of contact-import: text encodings, delimiter detection, CSV
//! decoding, column mapping and its suggestions, value validation and normalization, the sample
//! file, the import preview, the merge rule, how rows are spread over lanes, when an account's
//! import may start, and what undoing an import restores.
//!
//! **Architecture Invariant:** this crate does no IO: no files, no network, no async runtime.
//! Callers feed it bytes and get values back, so its tests run in milliseconds.

pub mod admission;
pub mod chunking;
pub mod csv_parser;
pub mod encoding;
pub mod file_reader;
pub mod lanes;
pub mod mapping;
pub mod merge;
pub mod phone;
pub mod preview;
pub mod remembered;
pub mod sniff;
pub mod suggest;
pub mod template;
pub mod undo;
pub mod validate;
pub mod value_map;

pub use csv_parser::{ParsedRecord, RawRecord, RecordError, RecordErrorKind, RecordParser};
pub use encoding::{detect_encoding, NotText, TextDecoder, TextEncoding};
pub use mapping::{
    resolve_mapping, standard_attributes, validate_attribute_key, AttributeDef, AttributeType,
    ColumnMapping, MappingErrors, MappingPlan, MappingProblem, ValueMaps,
};
pub use preview::{
    preview, InvalidColumn, Preview, PreviewError, PreviewOptions, DEFAULT_PREVIEW_ROWS,
};
pub use remembered::choices_of_plan;
pub use sniff::{delimiter_name, detect_delimiter, parse_delimiter, DELIMITERS};
pub use suggest::{normalize_column_name, suggest_mapping, ColumnSuggestion};
pub use template::{example_value, neutralize_formula, strip_formula_guard, template_csv};
pub use validate::{normalize_value, validate_record, PhoneRegion, RowError, ValidRecord};
pub use value_map::{resolve_plan, UnfitColumn, UnfitValue, ValueMapping};
