//! Partitions and leader failures of a three-node JetStream cluster whose nodes each run in a
//! network namespace of their own: one node cut off from the others and from every client
//! mid-import and healed, and the leader of each pipeline stream killed in turn and started
//! again. Each time the import completes exactly as an uninterrupted run of the same file,
//! and it moves on again soon after the cluster has a quorum back; how soon is printed, and
//! asserted only against a liveness bound, not a speed.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use contact_contract::NatsSettings;
use contact_contract::{AccountId, ImportId, ImportState, ImportStatus};
use contact_import_client::Client;
use contact_tests::{unique, NatsCluster, TestSystem};
use tokio::task::JoinHandle;

use crate::faults::{
    assert_same_as_uninterrupted, assert_same_as_uninterrupted_in, fault_options, file,
    stored_events, uninterrupted_run,
};

/// How long an import may take to move on after the cluster has its quorum back before the
/// test calls it stuck. The aim is under 5 s; this bound only tells stuck from slow, so that
/// a busy machine fails no test.
const LIVENESS_BOUND: Duration = Duration::from_secs(30);

#[tokio::test]
async fn partitions_a_node_cut_off_mid_import_and_healed_changes_nothing_in_the_result() {
    let Some(cluster) = NatsCluster::start_partitionable().await else {
        return;
    };
    let system = TestSystem::start_on(&cluster.urls(), 3).await;
    let path = system.file("people.csv", file());
    let (uninterrupted, calm) = uninterrupted_run(&system, &path).await;

    // The node leading the chunk stream: cut off, it takes a leader away from the
    // survivors, and whatever service or client is connected to it hears nothing.
    let jetstream = jetstream::new(system.client.nats().clone());
    let target = leader_of(&jetstream, &system.namespace.chunks_stream(), None).await;
    // The test watches from the survivors only, so that the watching is not cut off too.
    let survivors = survivor_urls(&cluster, &target);
    let watcher = Client::connect(
        &NatsSettings::plain(&survivors),
        system.namespace.clone(),
        system.account.clone(),
    )
    .await
    .expect("a client of the survivors");
    let survivors_jetstream = jetstream::new(watcher.nats().clone());

    let import_id = system
        .client
        .start_import(&path, fault_options())
        .await
        .expect("started");
    let progress = Progress::watch(watcher.clone(), import_id.clone());
    progress.await_rows(4_000).await;

    cluster.cut_off(&target);
    let cut_at = Instant::now();
    // The survivors have a quorum of their own once each stream the cut-off node led
    // elected another leader: heal then.
    for stream in pipeline_streams(&system) {
        leader_of(&survivors_jetstream, &stream, Some(&target)).await;
    }
    let quorum_without_it_after = cut_at.elapsed();
    cluster.heal(&target);
    let healed_at = Instant::now();
    let resumed_after_heal = progress.next_rows_after(healed_at).await;
    let interrupted = summary_or_report(&system, &system.client, &progress, &import_id).await;

    eprintln!(
        "partition of {target}: survivors led every stream {:.1} s after the cut; \
         longest stall from the cut on {:.1} s; first progress {:.1} s after the heal",
        quorum_without_it_after.as_secs_f64(),
        progress.longest_stall_since(cut_at).as_secs_f64(),
        resumed_after_heal.as_secs_f64(),
    );
    assert!(
        resumed_after_heal < LIVENESS_BOUND,
        "no progress within {LIVENESS_BOUND:?} of the heal: {:?}",
        progress.last_status()
    );
    assert_same_as_uninterrupted(&system, &import_id, &interrupted, &uninterrupted, &calm).await;
    progress.stop();
    system.stop().await;
}

#[tokio::test]
async fn partitions_the_leader_of_each_stream_killed_in_turn_mid_import_changes_nothing() {
    let Some(mut cluster) = NatsCluster::start_partitionable().await else {
        return;
    };
    let system = TestSystem::start_on(&cluster.urls(), 3).await;
    let path = system.file("people.csv", file());
    let (uninterrupted, calm) = uninterrupted_run(&system, &path).await;
    let jetstream = jetstream::new(system.client.nats().clone());

    // An import takes a second or two here: one import per stream, each in an account of
    // its own, so that every kill strikes mid-import.
    let mut measured = Vec::new();
    for stream in pipeline_streams(&system) {
        let account = AccountId::new(unique("kill-")).expect("valid");
        let client = system.client_for(&account).await;
        let import_id = client
            .start_import(&path, fault_options())
            .await
            .expect("started");
        let progress = Progress::watch(client.clone(), import_id.clone());
        progress.await_rows(4_000).await;

        let leader = leader_of(&jetstream, &stream, None).await;
        cluster.node_named(&leader).kill().await;
        let killed_at = Instant::now();
        // Two nodes of three are a quorum: the stream is led again once they elected one.
        leader_of(&jetstream, &stream, Some(&leader)).await;
        let quorum_at = Instant::now();
        let resumed_after_quorum = progress.next_rows_after(quorum_at).await;
        cluster.node_named(&leader).restart().await;
        let interrupted = summary_or_report(&system, &client, &progress, &import_id).await;
        eprintln!(
            "{stream} led by {leader}, killed: led again after {:.1} s; first progress \
             {:.1} s after that; longest stall {:.1} s",
            (quorum_at - killed_at).as_secs_f64(),
            resumed_after_quorum.as_secs_f64(),
            progress.longest_stall_since(killed_at).as_secs_f64(),
        );
        assert!(
            resumed_after_quorum < LIVENESS_BOUND,
            "after the leader of {stream} was killed the import moved on only \
             {resumed_after_quorum:?} after the stream was led again: {:?}",
            progress.last_status()
        );
        assert_same_as_uninterrupted_in(
            &system,
            &client,
            &import_id,
            &interrupted,
            &uninterrupted,
            &calm,
        )
        .await;
        progress.stop();
        measured.push(stream);
        // The next kill must not take a quorum away: wait until the restarted node has
        // caught up with every stream.
        for each in pipeline_streams(&system) {
            await_all_replicas_current(&jetstream, &each).await;
        }
    }
    assert_eq!(measured.len(), 4);
    system.stop().await;
}

/// The import's summary; when it does not come, the test fails with what the import waits
/// for and what each stream and consumer holds.
async fn summary_or_report(
    system: &TestSystem,
    client: &Client,
    progress: &Progress,
    import_id: &ImportId,
) -> ImportStatus {
    let following = client.follow(import_id, Duration::from_secs(5), |_| {});
    if let Ok(Ok(summary)) = tokio::time::timeout(Duration::from_secs(60), following).await {
        // Status may say completed before the summary event is stored (its publish is
        // retried): wait for it, and say how long it took.
        let finished_at = Instant::now();
        let stored = async {
            loop {
                let events = stored_events(system, client, import_id).await;
                if events
                    .iter()
                    .any(|event| event.kind == contact_contract::ImportEventKind::Summary)
                {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        };
        tokio::time::timeout(LIVENESS_BOUND, stored)
            .await
            .unwrap_or_else(|_| panic!("no summary event stored within {LIVENESS_BOUND:?}"));
        eprintln!(
            "summary event stored {:.1} s after the import was seen finished",
            finished_at.elapsed().as_secs_f64()
        );
        return summary;
    }
    let jetstream = jetstream::new(system.client.nats().clone());
    let mut report = Vec::new();
    for stream in pipeline_streams(system) {
        if let Ok(mut handle) = jetstream.get_stream(&stream).await {
            if let Ok(info) = handle.info().await {
                report.push(format!(
                    "{stream}: {} messages, cluster {:?}",
                    info.state.messages, info.cluster
                ));
            }
            let mut consumers = handle.consumers();
            while let Some(Ok(consumer)) = futures::StreamExt::next(&mut consumers).await {
                report.push(format!(
                    "  consumer {}: pending {}, ack pending {}, redelivered {}, waiting {}",
                    consumer.name,
                    consumer.num_pending,
                    consumer.num_ack_pending,
                    consumer.num_redelivered,
                    consumer.num_waiting
                ));
            }
        }
    }
    panic!(
        "no summary within 60 s; the import: {:?}\n{}",
        progress.last_status(),
        report.join("\n")
    );
}

/// The streams an import's messages pass through.
fn pipeline_streams(system: &TestSystem) -> [String; 4] {
    [
        system.namespace.requests_stream(),
        system.namespace.chunks_stream(),
        system.namespace.records_stream(),
        system.namespace.events_stream(),
    ]
}

/// Every node but `excluded`, comma-separated.
fn survivor_urls(cluster: &NatsCluster, excluded: &str) -> String {
    cluster
        .names
        .iter()
        .zip(&cluster.nodes)
        .filter(|(name, _)| name.as_str() != excluded)
        .map(|(_, node)| node.url())
        .collect::<Vec<_>>()
        .join(",")
}

/// The server leading `stream`, once it has one that is not `not`. Stream info times out
/// while a leader is being elected, so it is asked again.
async fn leader_of(jetstream: &jetstream::Context, stream: &str, not: Option<&str>) -> String {
    let elected = async {
        loop {
            if let Some(leader) = stream_cluster(jetstream, stream)
                .await
                .and_then(|cluster| cluster.leader)
                .filter(|leader| Some(leader.as_str()) != not)
            {
                return leader;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(LIVENESS_BOUND, elected)
        .await
        .unwrap_or_else(|_| panic!("{stream} had no leader but {not:?} within {LIVENESS_BOUND:?}"))
}

/// Waits until `stream` has a leader and both other copies are online and current.
async fn await_all_replicas_current(jetstream: &jetstream::Context, stream: &str) {
    let current = async {
        loop {
            if let Some(cluster) = stream_cluster(jetstream, stream).await {
                if cluster.leader.is_some()
                    && cluster.replicas.len() == 2
                    && cluster
                        .replicas
                        .iter()
                        .all(|replica| replica.current && !replica.offline)
                {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    };
    tokio::time::timeout(LIVENESS_BOUND, current)
        .await
        .unwrap_or_else(|_| panic!("{stream}'s copies were not current within {LIVENESS_BOUND:?}"));
}

async fn stream_cluster(
    jetstream: &jetstream::Context,
    stream: &str,
) -> Option<jetstream::stream::ClusterInfo> {
    let info = async {
        let mut handle = jetstream.get_stream(stream).await.ok()?;
        let info = handle.info().await.ok()?;
        info.cluster.clone()
    };
    tokio::time::timeout(Duration::from_secs(2), info)
        .await
        .ok()
        .flatten()
}

/// An import's progress as seen by asking its status every 100 ms: when `rows_total` rose.
struct Progress {
    seen: Arc<Mutex<Seen>>,
    task: JoinHandle<()>,
}

#[derive(Default)]
struct Seen {
    /// When each new `rows_total` was first seen, the first sample at the start.
    rows: Vec<(Instant, u64)>,
    last: Option<ImportStatus>,
}

impl Progress {
    fn watch(client: Client, import_id: ImportId) -> Self {
        let seen = Arc::new(Mutex::new(Seen::default()));
        let task = tokio::spawn({
            let seen = seen.clone();
            async move {
                loop {
                    // A request to a node that is cut off gets no answer: ask again.
                    let asked =
                        tokio::time::timeout(Duration::from_secs(1), client.status(&import_id))
                            .await;
                    if let Ok(Ok(status)) = asked {
                        let mut seen = seen.lock().expect("not poisoned");
                        if seen.rows.last().map(|(_, rows)| *rows) != Some(status.rows_total) {
                            seen.rows.push((Instant::now(), status.rows_total));
                        }
                        let ended = status.status.is_terminal();
                        seen.last = Some(status);
                        if ended {
                            return;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Self { seen, task }
    }

    fn last_status(&self) -> Option<ImportStatus> {
        self.seen.lock().expect("not poisoned").last.clone()
    }

    /// Waits until `rows` rows are in, the import still running: the moment to strike.
    async fn await_rows(&self, rows: u64) {
        let reached = async {
            loop {
                if let Some(status) = self.last_status() {
                    if status.rows_total >= rows || status.status.is_terminal() {
                        return status;
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        let status = tokio::time::timeout(Duration::from_secs(120), reached)
            .await
            .expect("the import makes progress");
        assert_eq!(
            status.status,
            ImportState::Running,
            "still running at {rows} rows"
        );
    }

    /// How long after `since` `rows_total` was first seen above what it was at `since` (or
    /// the import ended); at most [`LIVENESS_BOUND`] and a little.
    async fn next_rows_after(&self, since: Instant) -> Duration {
        let rows_then = self.rows_at(since);
        let moved = async {
            loop {
                {
                    let seen = self.seen.lock().expect("not poisoned");
                    if let Some((at, _)) = seen
                        .rows
                        .iter()
                        .find(|(at, rows)| *at > since && *rows > rows_then)
                    {
                        return at.duration_since(since);
                    }
                    if seen
                        .last
                        .as_ref()
                        .is_some_and(|status| status.status.is_terminal())
                    {
                        return since.elapsed();
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
        };
        tokio::time::timeout(LIVENESS_BOUND + Duration::from_secs(1), moved)
            .await
            .unwrap_or_else(|_| LIVENESS_BOUND + Duration::from_secs(1))
    }

    /// The longest time without a new `rows_total` from `since` to the latest sample.
    fn longest_stall_since(&self, since: Instant) -> Duration {
        let seen = self.seen.lock().expect("not poisoned");
        let mut previous = since;
        let mut longest = Duration::ZERO;
        for (at, _) in seen.rows.iter().filter(|(at, _)| *at > since) {
            longest = longest.max(at.duration_since(previous));
            previous = *at;
        }
        longest
    }

    fn rows_at(&self, moment: Instant) -> u64 {
        let seen = self.seen.lock().expect("not poisoned");
        seen.rows
            .iter()
            .take_while(|(at, _)| *at <= moment)
            .last()
            .map_or(0, |(_, rows)| *rows)
    }

    fn stop(self) {
        self.task.abort();
    }
}
