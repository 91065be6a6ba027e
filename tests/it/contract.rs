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
use contact_contract::schema::published_schema;
use contact_contract::{
    AttributeDef, AttributeType, ImportOptions, ImportState, Namespace, OperatorOperation,
    SetAttributeRequest,
};
use contact_tests::{NatsServer, TestSystem};
use futures::{FutureExt as _, StreamExt};
use serde_json::Value;

/// The document, with every message schema compiled.
struct Contract {
    document: Value,
    schemas: Schemas,
    compiled: BTreeMap<String, SchemaIndex>,
    /// By message: its payload's definition as the services write it (every field, nothing
    /// more), from `contact_contract::schema::published_schema`.
    published: BTreeMap<String, SchemaIndex>,
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
        let published_location = format!("{base}schemas/published.schema.json");
        compiler
            .add_resource(&published_location, published_schema())
            .expect("the published form is a resource");
        let mut schemas = Schemas::new();
        let mut compiled = BTreeMap::new();
        let mut published = BTreeMap::new();
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
            let definition = message["payload"]["$ref"]
                .as_str()
                .and_then(|reference| reference.split_once("#/definitions/"))
                .map(|(_, definition)| definition.to_string());
            if let Some(definition) = definition {
                let location = format!("{published_location}#/definitions/{definition}");
                let index = compiler
                    .compile(&location, &mut schemas)
                    .unwrap_or_else(|error| panic!("{definition} does not compile: {error:#}"));
                published.insert(name.clone(), index);
            }
        }
        Self {
            document,
            schemas,
            compiled,
            published,
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

    /// Checks one message against the first of `candidates` its payload fits (`strictly`, for
    /// what a service wrote: every field written, none unknown); returns why none does.
    fn check(
        &self,
        candidates: &[String],
        message: &Message,
        strictly: bool,
    ) -> Result<String, String> {
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
            if let (true, Some(index)) = (strictly, self.published.get(name)) {
                if let Err(error) = self.schemas.validate(&payload, *index) {
                    reasons.push(format!("{name} as published: {error:#}\n{payload}"));
                    continue;
                }
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

/// Bounds on what the recorder holds of other tests' traffic.
const UNMATCHED_KEPT: usize = 4096;
const DRAIN_AT_MOST: usize = 100_000;

/// Keeps a test's messages out of everything the server carries: those on the namespace's
/// subjects, and those sent to the reply subject of one of them. The subscriptions deliver
/// in parallel, so a reply may be read before its request: the latest inbox messages wait
/// for their request in a bounded queue.
struct Recorder {
    prefix: String,
    kept: Vec<Message>,
    awaited: BTreeSet<String>,
    unmatched: std::collections::VecDeque<Message>,
}

impl Recorder {
    fn new(prefix: String) -> Self {
        Self {
            prefix,
            kept: Vec::new(),
            awaited: BTreeSet::new(),
            unmatched: std::collections::VecDeque::new(),
        }
    }

    fn take(&mut self, message: Message) {
        if message.subject.as_str().starts_with(&self.prefix) {
            if let Some(reply) = &message.reply {
                let reply = reply.to_string();
                if let Some(at) = self
                    .unmatched
                    .iter()
                    .position(|early| early.subject.as_str() == reply)
                {
                    let early = self.unmatched.remove(at).expect("found");
                    self.kept.push(early);
                }
                self.awaited.insert(reply);
            }
            self.kept.push(message);
        } else if self.awaited.contains(message.subject.as_str()) {
            self.kept.push(message);
        } else {
            if self.unmatched.len() == UNMATCHED_KEPT {
                self.unmatched.pop_front();
            }
            self.unmatched.push_back(message);
        }
    }

    fn finish(self) -> Vec<Message> {
        self.kept
    }
}

#[tokio::test]
async fn what_the_services_and_the_client_publish_is_what_the_asyncapi_document_says() {
    let contract = Contract::load();
    // A server of the test's own: its capture of every reply inbox sees this test's traffic
    // alone, not the deliveries of every test running beside it.
    let server = NatsServer::start_open().await;
    let system = TestSystem::start_on(&server.url(), 1).await;
    let namespace_token = system
        .namespace
        .import_wildcard(contact_contract::ImportSubjectKind::Start)
        .split('.')
        .next()
        .expect("a first token")
        .to_string();
    // Everything published in the namespace, and every reply to a request published there:
    // the services take theirs on `_INBOX`, a tenant's client on its own prefix. A connection
    // of its own, which outlives the services, with room for every JetStream delivery of
    // the import (they come on `_INBOX` too), so that a burst never fills the subscription.
    let capture = system
        .nats
        .connect_options("contract-capture", None)
        .await
        .expect("options")
        .subscription_capacity(1 << 20)
        .connect(system.nats.servers()[0])
        .await
        .expect("NATS");
    let tenant_inbox = Namespace::inbox_prefix(&system.account);
    let marker = format!("{namespace_token}.contract-check-done");
    let mut subscriptions = Vec::new();
    for subject in [
        format!("{namespace_token}.>"),
        "_INBOX.>".to_string(),
        format!("{tenant_inbox}.>"),
    ] {
        subscriptions.push(capture.subscribe(subject).await.expect("subscribed"));
    }
    // A flush only hands the subscriptions to the socket; a message of its own coming back
    // says the server has them (it handles one connection's commands in order).
    let ready = format!("{namespace_token}-capture-ready");
    let mut echo = capture.subscribe(ready.clone()).await.expect("subscribed");
    capture.publish(ready, "".into()).await.expect("published");
    tokio::time::timeout(Duration::from_secs(10), echo.next())
        .await
        .expect("the capture's own message comes back")
        .expect("the subscription stays open");
    drop(echo);
    // Read as it comes, keeping only this test's messages: other tests share the server.
    let recorder = {
        let prefix = format!("{namespace_token}.");
        let marker = marker.clone();
        tokio::spawn(async move {
            let mut everything = futures::stream::select_all(subscriptions);
            let mut recorder = Recorder::new(prefix);
            while let Some(message) = everything.next().await {
                if message.subject.as_str() == marker {
                    // What the connection handed to the other subscriptions before the
                    // marker is waiting in them.
                    for _ in 0..DRAIN_AT_MOST {
                        match everything.next().now_or_never() {
                            Some(Some(message)) => recorder.take(message),
                            _ => break,
                        }
                    }
                    break;
                }
                recorder.take(message);
            }
            recorder.finish()
        })
    };

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
    // A file refused at its header: the control message that fails an import.
    let refused = system
        .import(
            "email,city,City\nada@example.com,X,Y\n",
            ImportOptions::default(),
        )
        .await;
    assert_eq!(refused.status, ImportState::Failed, "{refused:?}");
    client.status(&import_id).await.expect("status");
    let started = client.import_options(&import_id).await.expect("options");
    assert_eq!(started.options.tags, ["fair".to_string()].into());
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
    client
        .nats()
        .request(
            register,
            serde_json::to_vec(&serde_json::json!({"account": system.account}))
                .expect("JSON")
                .into(),
        )
        .await
        .expect("the operator's request answered");

    // Once the services have stopped, everything they published has reached the server; the
    // marker, published after, closes the recording.
    system.stop().await;
    capture.publish(marker, "".into()).await.expect("published");
    capture.flush().await.expect("flushed");
    let captured = tokio::time::timeout(Duration::from_secs(30), recorder)
        .await
        .expect("the marker arrives")
        .expect("the recorder ends");

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
            // Requests come from clients, who may leave optional fields out; the pipeline's
            // messages and the events are written by the services.
            let written_by_a_service = !answered && channel != "importStart";
            match contract.check(
                &contract.channel_messages(&channel),
                message,
                written_by_a_service,
            ) {
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
    // Replies: exactly one to each request, written by the writer.
    let mut replies: BTreeMap<&str, usize> = BTreeMap::new();
    for message in &captured {
        let Some(channel) = reply_channels.get(message.subject.as_str()) else {
            continue;
        };
        *replies.entry(message.subject.as_str()).or_default() += 1;
        match contract.check(&contract.reply_messages(channel), message, true) {
            Ok(name) => {
                seen.insert("apiReply".to_string());
                seen.insert(name);
            }
            Err(reason) => failures.push(format!("reply on {channel}:\n{reason}")),
        }
    }
    for (reply, channel) in &reply_channels {
        let count = replies.get(reply.as_str()).copied().unwrap_or(0);
        if count != 1 {
            failures.push(format!("a request on {channel} got {count} replies"));
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
    // Each kind of control message was among them.
    let control_kinds: BTreeSet<String> = captured
        .iter()
        .filter(|message| message.subject.as_str().ends_with(".control"))
        .filter_map(|message| serde_json::from_slice::<Value>(&message.payload).ok())
        .filter_map(|control| control["event"]["kind"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        control_kinds,
        ["accepted", "finished", "rejected"]
            .map(String::from)
            .into(),
    );
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
