//! The contract check: every message the services and the client really publish during an
//! import, every API request and every reply, validated against `docs/asyncapi.yaml` (whose
//! payloads point into the JSON Schemas generated from the wire types). A channel of the
//! document that nothing used, or a message on no channel of it, fails the test too: the
//! document may not describe less, nor more, than the system does.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use async_nats::Message;
use boon::{Compiler, SchemaIndex, Schemas};
use contact_contract::{
    AttributeDef, AttributeType, ImportOptions, ImportState, Namespace, OperatorOperation,
    SetAttributeRequest,
};
use contact_tests::TestSystem;
use futures::{FutureExt as _, StreamExt};
use serde_json::Value;

/// The document, with every message schema compiled.
struct Contract {
    document: Value,
    schemas: Schemas,
    compiled: BTreeMap<String, SchemaIndex>,
}

impl Contract {
    fn load() -> Self {
        let docs = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs");
        let docs = docs.canonicalize().expect("the docs folder");
        let text = std::fs::read_to_string(docs.join("asyncapi.yaml")).expect("the document");
        let document: Value = serde_yaml::from_str(&text).expect("the document is YAML");
        let schema_text = std::fs::read_to_string(docs.join("schemas/contract.schema.json"))
            .expect("the generated schemas");
        let schema_file: Value = serde_json::from_str(&schema_text).expect("JSON");
        let base = format!("file://{}/", docs.display());
        let mut compiler = Compiler::new();
        // AsyncAPI's schema format is a superset of JSON Schema draft 7.
        compiler.set_default_draft(boon::Draft::V7);
        compiler
            .add_resource(&format!("{base}asyncapi.yaml"), document.clone())
            .expect("the document is a resource");
        compiler
            .add_resource(&format!("{base}schemas/contract.schema.json"), schema_file)
            .expect("the schemas are a resource");
        let mut schemas = Schemas::new();
        let mut compiled = BTreeMap::new();
        let messages = document["components"]["messages"]
            .as_object()
            .expect("component messages");
        for (name, message) in messages {
            for part in ["payload", "headers"] {
                if message.get(part).is_none() {
                    continue;
                }
                let location = format!("{base}asyncapi.yaml#/components/messages/{name}/{part}");
                let index = compiler
                    .compile(&location, &mut schemas)
                    .unwrap_or_else(|error| panic!("{name} {part} does not compile: {error:#}"));
                compiled.insert(format!("{name}/{part}"), index);
            }
        }
        Self {
            document,
            schemas,
            compiled,
        }
    }

    /// The component message a `$ref` (to a component or to a channel's message) names.
    fn message_name(&self, reference: &Value) -> String {
        let pointer = reference["$ref"]
            .as_str()
            .expect("a $ref")
            .trim_start_matches('#');
        let target = self
            .document
            .pointer(pointer)
            .unwrap_or_else(|| panic!("{pointer} points nowhere"));
        match target.get("$ref") {
            Some(_) => self.message_name(target),
            None => pointer.rsplit('/').next().expect("a name").to_string(),
        }
    }

    /// The channel whose address matches `subject`, the document's `ci` standing for the
    /// deployment's namespace and each `{parameter}` for one token.
    fn channel_of(&self, subject: &str, namespace: &str) -> Option<String> {
        let tokens: Vec<&str> = subject.split('.').collect();
        let channels = self.document["channels"].as_object().expect("channels");
        channels.iter().find_map(|(name, channel)| {
            let address = channel["address"].as_str()?;
            let pattern: Vec<&str> = address.split('.').collect();
            let fits = pattern.len() == tokens.len()
                && pattern
                    .iter()
                    .zip(&tokens)
                    .enumerate()
                    .all(|(at, (want, got))| {
                        (at == 0 && *got == namespace)
                            || (at > 0 && want.starts_with('{') && want.ends_with('}'))
                            || (at > 0 && want == got)
                    });
            fits.then(|| name.clone())
        })
    }

    /// The component messages a channel carries.
    fn channel_messages(&self, channel: &str) -> Vec<String> {
        self.document["channels"][channel]["messages"]
            .as_object()
            .expect("channel messages")
            .values()
            .map(|reference| self.message_name(reference))
            .collect()
    }

    /// The component messages that answer a request sent on `channel`.
    fn reply_messages(&self, channel: &str) -> Vec<String> {
        let wanted = format!("#/channels/{channel}");
        self.document["operations"]
            .as_object()
            .expect("operations")
            .values()
            .filter(|operation| operation["channel"]["$ref"] == wanted.as_str())
            .flat_map(|operation| {
                operation["reply"]["messages"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .map(|reference| self.message_name(&reference))
            .collect()
    }

    /// Checks one message against the first of `candidates` its payload fits; returns why none
    /// does.
    fn check(&self, candidates: &[String], message: &Message) -> Result<String, String> {
        let mut reasons = Vec::new();
        for name in candidates {
            let content_type = self.document["components"]["messages"][name]["contentType"]
                .as_str()
                .unwrap_or("application/json");
            let payload = if content_type == "text/plain" {
                Value::String(String::from_utf8_lossy(&message.payload).into_owned())
            } else {
                match serde_json::from_slice::<Value>(&message.payload) {
                    Ok(payload) => payload,
                    Err(error) => {
                        reasons.push(format!("{name}: not JSON: {error}"));
                        continue;
                    }
                }
            };
            if let Err(error) = self.validate(name, "payload", &payload) {
                reasons.push(error);
                continue;
            }
            let headers: serde_json::Map<String, Value> = message
                .headers
                .iter()
                .flat_map(|headers| headers.iter())
                .filter_map(|(header, values)| {
                    let value = values.first()?.as_str().to_string();
                    Some((header.to_string(), Value::String(value)))
                })
                .collect();
            if let Err(error) = self.validate(name, "headers", &Value::Object(headers)) {
                reasons.push(error);
                continue;
            }
            return Ok(name.clone());
        }
        Err(reasons.join("\n"))
    }

    fn validate(&self, message: &str, part: &str, value: &Value) -> Result<(), String> {
        let Some(index) = self.compiled.get(&format!("{message}/{part}")) else {
            return Ok(());
        };
        self.schemas
            .validate(value, *index)
            .map_err(|error| format!("{message} {part}: {error:#}\n{value}"))
    }
}

#[tokio::test]
async fn what_the_services_and_the_client_publish_is_what_the_asyncapi_document_says() {
    let contract = Contract::load();
    let system = TestSystem::start().await;
    let namespace_token = system
        .namespace
        .import_wildcard(contact_contract::ImportSubjectKind::Start)
        .split('.')
        .next()
        .expect("a first token")
        .to_string();
    // Everything published in the namespace, and every reply: the services take theirs on
    // `_INBOX`, a tenant's client on its own prefix.
    let nats = system.client.nats().clone();
    let tenant_inbox = Namespace::inbox_prefix(&system.account);
    let mut subscriptions = Vec::new();
    for subject in [
        format!("{namespace_token}.>"),
        "_INBOX.>".to_string(),
        format!("{tenant_inbox}.>"),
    ] {
        subscriptions.push(nats.subscribe(subject).await.expect("subscribed"));
    }
    nats.flush().await.expect("subscriptions in place");
    let mut everything = futures::stream::select_all(subscriptions);

    // An import with a failed row, then every API operation once.
    let client = &system.client;
    let file = "email,first_name,tier\nada@example.com,Ada,gold\n+48 600 100 200,Bob,gold\n";
    let path = system.file("contract.csv", file);
    let tiers = client
        .add_attribute(AttributeDef {
            key: "tier".into(),
            label: "Tier".into(),
            attribute_type: AttributeType::Enum {
                values: vec!["gold".into(), "silver".into()],
            },
            required: false,
            identifier: false,
        })
        .await
        .expect("attribute added");
    client
        .set_attribute(SetAttributeRequest {
            key: tiers.key.clone(),
            required: Some(false),
            identifier: None,
        })
        .await
        .expect("attribute set");
    client.template().await.expect("template");
    client.attributes().await.expect("attributes");
    let options = ImportOptions {
        tags: ["fair".to_string()].into(),
        ..ImportOptions::default()
    };
    client.preview(&path, &options).await.expect("preview");
    let summary = system.import_file(client, &path, options).await;
    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    assert_eq!((summary.created, summary.failed), (1, 1), "{summary:?}");
    let import_id = summary.import_id.clone();
    client.status(&import_id).await.expect("status");
    client.errors(&import_id, |_| {}).await.expect("errors");
    client
        .failed_rows(&import_id, |_| {})
        .await
        .expect("failed rows");
    client.imports(None, 10).await.expect("imports list");
    client.export_contacts(|_| {}).await.expect("contacts");
    // An ended import cannot be cancelled: the error reply is part of the contract too.
    assert!(client.cancel(&import_id).await.is_err());
    client.undo(&import_id, |_| {}).await.expect("undo");
    client
        .undo_conflicts(&import_id, |_| {})
        .await
        .expect("undo conflicts");
    client
        .remove_attribute(tiers.key.clone())
        .await
        .expect("attribute removed");
    let register = system
        .namespace
        .operator_subject(OperatorOperation::RegisterAccount);
    nats.request(
        register,
        serde_json::to_vec(&serde_json::json!({"account": system.account}))
            .expect("JSON")
            .into(),
    )
    .await
    .expect("the operator's request answered");

    // Everything above was answered before this marker is sent, so the connection has
    // handed every message of the test to the subscriptions once the marker arrives.
    let marker = format!("{tenant_inbox}.contract-check-done");
    nats.publish(marker.clone(), "".into())
        .await
        .expect("published");
    let mut captured: Vec<Message> = Vec::new();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), everything.next())
            .await
            .expect("the marker arrives")
            .expect("subscriptions open");
        if message.subject.as_str() == marker {
            break;
        }
        captured.push(message);
    }
    while let Some(Some(message)) = everything.next().now_or_never() {
        captured.push(message);
    }
    system.stop().await;

    let mut reply_channels: BTreeMap<String, String> = BTreeMap::new();
    let mut seen: BTreeSet<String> = BTreeSet::new();
    let mut failures = Vec::new();
    for message in &captured {
        let subject = message.subject.as_str();
        if let Some(channel) = contract.channel_of(subject, &namespace_token) {
            // A JetStream publish asks for the stream's acknowledgement: only API requests
            // are answered by the contract.
            let answered = !contract.reply_messages(&channel).is_empty();
            if let (Some(reply), true) = (&message.reply, answered) {
                reply_channels.insert(reply.to_string(), channel.clone());
            }
            match contract.check(&contract.channel_messages(&channel), message) {
                Ok(name) => {
                    seen.insert(channel);
                    seen.insert(name);
                }
                Err(reason) => failures.push(format!("on {subject} ({channel}):\n{reason}")),
            }
        } else if subject.starts_with(&format!("{namespace_token}.")) {
            failures.push(format!("{subject} is on no channel of the document"));
        }
    }
    // Replies, once every request is known (a reply may be taken before its request).
    for message in &captured {
        let Some(channel) = reply_channels.get(message.subject.as_str()) else {
            continue;
        };
        match contract.check(&contract.reply_messages(channel), message) {
            Ok(name) => {
                seen.insert("apiReply".to_string());
                seen.insert(name);
            }
            Err(reason) => failures.push(format!("reply on {channel}:\n{reason}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));

    let channels: BTreeSet<String> = contract.document["channels"]
        .as_object()
        .expect("channels")
        .keys()
        .cloned()
        .collect();
    let unused: Vec<&String> = channels.difference(&seen).collect();
    assert!(unused.is_empty(), "no message used the channels {unused:?}");
    let messages: BTreeSet<String> = contract.document["components"]["messages"]
        .as_object()
        .expect("messages")
        .keys()
        .cloned()
        .collect();
    let unused: Vec<&String> = messages.difference(&seen).collect();
    assert!(unused.is_empty(), "no message fitted {unused:?}");
}

/// The examples of the document are messages too: they must fit their own schemas.
#[test]
fn the_examples_of_the_asyncapi_document_fit_their_schemas() {
    let contract = Contract::load();
    let messages = contract.document["components"]["messages"]
        .as_object()
        .expect("messages");
    let mut checked = 0;
    for (name, message) in messages {
        for example in message["examples"].as_array().into_iter().flatten() {
            for part in ["payload", "headers"] {
                if let Some(value) = example.get(part) {
                    contract
                        .validate(name, part, value)
                        .unwrap_or_else(|error| panic!("example {example}:\n{error}"));
                    checked += 1;
                }
            }
        }
    }
    assert!(checked >= 10, "only {checked} examples checked");
}
