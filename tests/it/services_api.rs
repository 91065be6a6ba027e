//! The writers' API as a NATS service, after the services convention: what `nats micro
//! ls|info|stats` and other languages' micro clients rely on, with the contract's own subjects
//! and bodies unchanged.

use std::collections::BTreeSet;
use std::time::Duration;

use contact_contract::micro::{self, ERROR_CODE_HEADER, ERROR_HEADER};
use contact_contract::ApiOperation;
use contact_tests::{Replicas, TestSystem};
use futures::StreamExt as _;

/// The replies of this test's writers to the discovery request `subject`, one per writer:
/// other tests' writers on the same server answer too, and are told apart by their namespace
/// (in `$SRV.PING` and `$SRV.INFO`) or by the ids `ours` already found.
async fn replies_of_ours(
    nats: &async_nats::Client,
    subject: &str,
    is_ours: impl Fn(&serde_json::Value) -> bool,
    wanted: usize,
) -> Vec<serde_json::Value> {
    let inbox = nats.new_inbox();
    let mut replies = nats.subscribe(inbox.clone()).await.expect("subscribe");
    nats.publish_with_reply(subject.to_string(), inbox, "".into())
        .await
        .expect("ask");
    let gathered = async {
        let mut found = Vec::new();
        while found.len() < wanted {
            let reply = replies.next().await.expect("the inbox stays open");
            let body: serde_json::Value =
                serde_json::from_slice(&reply.payload).expect("a JSON reply");
            if is_ours(&body) {
                found.push(body);
            }
        }
        found
    };
    tokio::time::timeout(Duration::from_secs(10), gathered)
        .await
        .unwrap_or_else(|_| panic!("fewer than {wanted} writers answered {subject}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_writer_answers_discovery_for_each_operation_and_errors_come_in_headers_too() {
    let system = TestSystem::start_with(Replicas {
        ingest: 0,
        mapper: 0,
        writer: 2,
    })
    .await;
    let namespace = system.namespace.clone();
    let nats = async_nats::connect(contact_tests::nats_url())
        .await
        .expect("NATS");
    let in_namespace =
        |body: &serde_json::Value| body["metadata"][micro::NAMESPACE_METADATA] == namespace.name();

    let pings = replies_of_ours(
        &nats,
        &format!("$SRV.PING.{}", micro::SERVICE_NAME),
        in_namespace,
        2,
    )
    .await;
    let ids: BTreeSet<String> = pings
        .iter()
        .map(|ping| ping["id"].as_str().expect("an id").to_string())
        .collect();
    assert_eq!(ids.len(), 2, "each replica is an instance: {pings:?}");
    for ping in &pings {
        assert_eq!(ping["type"], "io.nats.micro.v1.ping_response");
        assert_eq!(ping["version"], env!("CARGO_PKG_VERSION"));
    }

    let infos = replies_of_ours(&nats, "$SRV.INFO", in_namespace, 2).await;
    let expected: BTreeSet<(String, String)> = ApiOperation::ALL
        .iter()
        .map(|&operation| {
            (
                operation.endpoint_name(),
                namespace.api_wildcard_for(operation),
            )
        })
        .collect();
    for info in &infos {
        let endpoints = info["endpoints"].as_array().expect("endpoints");
        let served: BTreeSet<(String, String)> = endpoints
            .iter()
            .map(|endpoint| {
                (
                    endpoint["name"].as_str().expect("a name").to_string(),
                    endpoint["subject"].as_str().expect("a subject").to_string(),
                )
            })
            .collect();
        assert!(served.is_superset(&expected), "{info}");
        assert!(
            endpoints
                .iter()
                .all(|endpoint| endpoint["queue_group"] == namespace.api_queue_group()),
            "one queue group: each request is answered once ({info})"
        );
    }

    // An error reply: the body the contract gives, and the convention's headers.
    let subject = namespace.api_subject(&system.account, ApiOperation::Status);
    let reply = nats
        .request(subject, r#"{"import_id":"no-such-import"}"#.into())
        .await
        .expect("a reply");
    let body: serde_json::Value = serde_json::from_slice(&reply.payload).expect("JSON");
    assert_eq!(body["error"]["kind"], "not_found", "{body}");
    let headers = reply.headers.expect("an error reply has headers");
    assert_eq!(
        headers.get(ERROR_CODE_HEADER).map(|code| code.as_str()),
        Some("404")
    );
    let description = headers.get(ERROR_HEADER).expect("a description");
    assert!(
        description.as_str().contains("no import no-such-import"),
        "{description:?}"
    );
    // A good reply has neither.
    let reply = nats
        .request(
            namespace.api_subject(&system.account, ApiOperation::AttributesList),
            "{}".into(),
        )
        .await
        .expect("a reply");
    assert!(reply
        .headers
        .is_none_or(|headers| headers.get(ERROR_CODE_HEADER).is_none()));

    // One of the two writers answered it: their stats add up to the request and its error.
    let mut requests = 0;
    let mut error_replies = 0;
    for id in &ids {
        let stats = replies_of_ours(
            &nats,
            &format!("$SRV.STATS.{}.{id}", micro::SERVICE_NAME),
            |_| true,
            1,
        )
        .await;
        let status = stats[0]["endpoints"]
            .as_array()
            .expect("endpoints")
            .iter()
            .find(|endpoint| endpoint["name"] == ApiOperation::Status.endpoint_name())
            .cloned()
            .expect("the status endpoint");
        requests += status["num_requests"].as_u64().expect("a count");
        error_replies += status["data"]["error_replies"].as_u64().expect("a count");
    }
    assert_eq!((requests, error_replies), (1, 1));
    system.stop().await;
}
