//! JSON Schemas of the wire types, generated from the types themselves.
//!
//! `docs/schemas/contract.schema.json` is [`contract_schema`] written out, and every payload of
//! `docs/asyncapi.yaml` points into it; a unit test keeps the file equal to what the types
//! generate, and an integration test validates what the services really publish against the
//! document.

use schemars::generate::SchemaSettings;
use schemars::transform::RecursiveTransform;
use schemars::{Schema, SchemaGenerator};
use serde_json::{json, Value};

use crate::api::{visit_operations, Operation, OperationVisitor};
use crate::{
    ApiReply, ImportControl, ImportEvent, ImportRequest, RawChunk, RegisterAccountRequest,
    ValidatedChunk,
};

/// Where the schema file lives, relative to the repository's root.
pub const CONTRACT_SCHEMA_PATH: &str = "docs/schemas/contract.schema.json";

/// Adds every operation's request and reply to the generator's definitions.
struct AddBodies<'a>(&'a mut SchemaGenerator);

impl OperationVisitor for AddBodies<'_> {
    fn visit<O: Operation>(&mut self) {
        self.0.subschema_for::<O::Request>();
        self.0.subschema_for::<ApiReply<O::Reply>>();
    }
}

/// One JSON Schema (draft 7) document whose `definitions` hold every wire type: the pipeline's
/// messages, the events, and each API operation's request and reply, as a reader accepts them
/// (an optional field may be left out).
pub fn contract_schema() -> Value {
    schema_document(SchemaSettings::draft07())
}

/// The same definitions, as the services write them: every field present (`null` when it has
/// no value) except those skipped when absent, and no field the type does not have. The
/// contract test holds what the services publish to this stricter form.
pub fn published_schema() -> Value {
    let settings = SchemaSettings::draft07()
        .for_serialize()
        .with_transform(RecursiveTransform(|schema: &mut Schema| {
            if schema.get("properties").is_some() && schema.get("additionalProperties").is_none() {
                schema.insert("additionalProperties".into(), Value::Bool(false));
            }
        }));
    schema_document(settings)
}

fn schema_document(settings: SchemaSettings) -> Value {
    let mut generator = settings.into_generator();
    generator.subschema_for::<ImportRequest>();
    generator.subschema_for::<RawChunk>();
    generator.subschema_for::<ValidatedChunk>();
    generator.subschema_for::<ImportControl>();
    generator.subschema_for::<ImportEvent>();
    visit_operations(&mut AddBodies(&mut generator));
    generator.subschema_for::<RegisterAccountRequest>();
    generator.subschema_for::<ApiReply<RegisterAccountRequest>>();
    let definitions = generator.take_definitions(true);
    json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "title": "contact-import wire types",
        "description": "Generated from the crate contact-contract; do not edit by hand (the crate's tests rewrite it).",
        "definitions": definitions,
    })
}

/// [`contract_schema`] as the file holds it: pretty-printed, ending with a new line.
pub fn contract_schema_text() -> String {
    let mut text =
        serde_json::to_string_pretty(&contract_schema()).expect("a JSON value always serializes");
    text.push('\n');
    text
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use schemars::JsonSchema;

    use super::*;

    /// The file is generated: when it differs from the types, the test writes the new one and
    /// fails, so the change shows in the diff and the next run passes.
    #[test]
    fn the_committed_schema_file_is_what_the_wire_types_generate() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../..")
            .join(CONTRACT_SCHEMA_PATH);
        let generated = contract_schema_text();
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        if committed != generated {
            std::fs::write(&path, &generated).expect("the schema file can be written");
            panic!("{CONTRACT_SCHEMA_PATH} was out of date and has been rewritten: commit it");
        }
    }

    /// The schema names of every operation's request body and whole reply.
    fn api_body_names() -> Vec<(String, String)> {
        struct Names(Vec<(String, String)>);
        impl OperationVisitor for Names {
            fn visit<O: Operation>(&mut self) {
                self.0.push((
                    O::Request::schema_name().into_owned(),
                    ApiReply::<O::Reply>::schema_name().into_owned(),
                ));
            }
        }
        let mut names = Names(Vec::new());
        visit_operations(&mut names);
        names.0
    }

    #[test]
    fn every_api_body_has_a_definition() {
        let schema = contract_schema();
        let definitions = schema["definitions"].as_object().expect("definitions");
        for (request, reply) in api_body_names() {
            assert!(definitions.contains_key(&request), "{request}");
            assert!(definitions.contains_key(&reply), "{reply}");
        }
    }

    #[test]
    fn optional_fields_are_not_required_and_ids_carry_their_pattern() {
        let schema = contract_schema();
        let request = &schema["definitions"]["ImportRequest"];
        let required: Vec<&str> = request["required"]
            .as_array()
            .expect("required fields")
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert_eq!(required, ["account", "import_id"]);
        assert_eq!(
            schema["definitions"]["AccountId"]["pattern"],
            "^[A-Za-z0-9_-]{1,64}$"
        );
    }
}
