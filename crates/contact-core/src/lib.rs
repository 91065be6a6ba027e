//! Owns the pure import logic of contact-import: CSV decoding, column mapping, value validation
//! and normalization, and the merge rule.
//!
//! **Architecture Invariant:** this crate does no IO: no files, no network, no async runtime.
//! Callers feed it bytes and get values back, so its tests run in milliseconds.

pub mod csv_parser;
pub mod mapping;
pub mod merge;
pub mod validate;

pub use csv_parser::{ParsedRecord, RawRecord, RecordError, RecordErrorKind, RecordParser};
pub use mapping::{
    resolve_mapping, standard_attributes, validate_attribute_key, AttributeDef, AttributeType,
    ColumnMapping, MappingErrors, MappingPlan, MappingProblem,
};
pub use validate::{normalize_value, validate_record, PhoneRegion, RowError, ValidRecord};
