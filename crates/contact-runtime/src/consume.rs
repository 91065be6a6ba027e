//! Consuming a durable pull consumer with bounded concurrency, and [`settle`]: the one function
//! that turns a handler's [`Outcome`] into ack, nak-with-delay or term, and the one place where
//! a message that can never be handled fails its import.

use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_nats::jetstream::consumer::PullConsumer;
use async_nats::jetstream::{AckKind, Message};
use futures::StreamExt;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use contact_contract::gate::Undecodable;
use contact_contract::{trace, ImportSubjectKind, TraceParent};
use tracing::Instrument as _;

use crate::metrics::metrics;
use crate::Shutdown;

/// What a handler made of a message. Handlers never ack themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Its effects are committed: ack.
    Done,
    /// It had been handled before (a redelivery or a repeated publish): ack.
    Duplicate,
    /// A transient failure (a dependency is down): nak, redeliver later, backing off.
    RetryLater { reason: String },
    /// It must wait for another message of its kind to be handled first (an earlier part of
    /// its lane, a lane another import of the account is writing): nak with a short delay
    /// that does not escalate like a failure's. JetStream keeps it meanwhile, so waiting work
    /// holds no memory or connection of ours.
    NotYet { reason: String },
    /// Its import waits for its turn among its account's imports: nak with a delay of about a
    /// second, which does not escalate (the turn comes when another import ends).
    Queued { reason: String },
    /// It can never succeed and concerns no import (a foreign subject): term, so it is not
    /// redelivered.
    Reject { reason: String },
    /// It can never succeed, and the import it belongs to would wait for it for ever: the
    /// handler's [`MessageHandler::fail_import`] ends the import with the reason, then the
    /// message is terminated (or tried again later, when failing did not work).
    FailImport { reason: String },
}

impl From<Undecodable> for Outcome {
    /// A body the contract's gate did not let through: one of a later schema waits for an
    /// upgraded replica, one that does not name its subject's import is dropped, any other
    /// fails its import.
    fn from(undecodable: Undecodable) -> Self {
        match undecodable {
            Undecodable::OfLaterSchema => Self::RetryLater {
                reason: "the message is of a later schema; waiting for an upgraded replica".into(),
            },
            Undecodable::Refused(reason) => Self::FailImport { reason },
            Undecodable::Foreign(reason) => Self::Reject { reason },
        }
    }
}

/// Handles one message of a consumer. Implementations are shared by concurrent tasks.
pub trait MessageHandler: Send + Sync + 'static {
    /// The service's name in metrics (`service` label).
    const SERVICE: &'static str;

    fn handle(&self, message: &Message) -> impl Future<Output = Outcome> + Send;

    /// Ends the import `message` belongs to, for `reason` (what this means differs: ingest and
    /// mapper tell the writer, the writer records it).
    fn fail_import(
        &self,
        message: &Message,
        reason: &str,
    ) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// A message whose handler panicked this many times fails its import instead of being
/// redelivered for ever.
const PANICS_BEFORE_GIVING_UP: i64 = 5;

/// Acks, naks or terms `message` as `outcome` says, failing its import first when the outcome
/// asks for it, and counts it (handled since `started`). Redeliveries back off with the
/// delivery count, from half a second to four seconds: a dependency that comes back is used
/// again within seconds.
pub async fn settle<H: MessageHandler>(
    handler: &H,
    message: &Message,
    outcome: Outcome,
    started: Instant,
) {
    let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
    let subject = message.subject.as_str();
    let outcome = match outcome {
        Outcome::FailImport { reason } => {
            tracing::error!(
                subject,
                delivered,
                reason,
                "message can never be handled: failing its import"
            );
            match handler.fail_import(message, &reason).await {
                Ok(()) => Outcome::Reject { reason },
                Err(error) => Outcome::RetryLater {
                    reason: format!("could not fail the import ({error:#}); {reason}"),
                },
            }
        }
        other => other,
    };
    let ack = match &outcome {
        Outcome::Done | Outcome::Duplicate => AckKind::Ack,
        Outcome::RetryLater { reason } => {
            let delay = retry_delay(delivered);
            tracing::warn!(subject, delivered, retry_in = ?delay, reason, "message will be retried");
            AckKind::Nak(Some(delay))
        }
        Outcome::NotYet { reason } => {
            let delay = not_yet_delay(delivered);
            tracing::debug!(subject, delivered, retry_in = ?delay, reason, "message must wait");
            AckKind::Nak(Some(delay))
        }
        Outcome::Queued { reason } => {
            tracing::debug!(subject, delivered, reason, "import waits for its turn");
            AckKind::Nak(Some(QUEUED_DELAY))
        }
        Outcome::Reject { reason } => {
            tracing::error!(subject, delivered, reason, "message rejected for good");
            AckKind::Term
        }
        Outcome::FailImport { .. } => unreachable!("settled into Reject or RetryLater above"),
    };
    if matches!(outcome, Outcome::Duplicate) {
        tracing::debug!(subject, "duplicate message acknowledged");
    }
    let disposition = match ack {
        AckKind::Ack => "ack",
        AckKind::Term => "term",
        _ => "nak",
    };
    metrics().message_settled(
        H::SERVICE,
        message_kind(subject),
        disposition,
        started.elapsed(),
    );
    if let Err(error) = message.ack_with(ack).await {
        // The message will be redelivered after its ack wait; handlers are idempotent.
        tracing::warn!(subject, %error, "could not settle message");
    }
}

/// The span of the handling of `message`: every log line of it names the service, the kind,
/// the import and the trace (handlers record `chunk` when they know it).
fn handling_span<H: MessageHandler>(message: &Message, trace: &TraceParent) -> tracing::Span {
    let subject = message.subject.as_str();
    tracing::info_span!(
        "handle",
        service = H::SERVICE,
        kind = message_kind(subject),
        import_id = contact_contract::import_of_subject(subject).unwrap_or("-"),
        chunk = tracing::field::Empty,
        trace_id = %trace.trace_id(),
    )
}

/// The kind of a message for metrics: its subject's last token when that is an import
/// subject kind, so that no client can grow the label set.
fn message_kind(subject: &str) -> &'static str {
    subject
        .rsplit('.')
        .next()
        .and_then(ImportSubjectKind::from_suffix)
        .map_or("other", ImportSubjectKind::suffix)
}

/// How soon a queued import asks for its turn again: well within the writer's
/// `FORGOTTEN_AFTER`, and quick enough that a freed place is taken at once.
const QUEUED_DELAY: Duration = Duration::from_secs(1);

/// A waiting message comes back soon: what it waits for usually takes milliseconds. Only a
/// long wait (its predecessor failing and retried) slows it down, doubling every eight
/// deliveries up to a second.
fn not_yet_delay(delivered: i64) -> Duration {
    let doublings = (delivered.max(1) as u32 - 1) / 8;
    (Duration::from_millis(10) * 2u32.saturating_pow(doublings.min(7))).min(Duration::from_secs(1))
}

/// The delay before a transient failure is tried again: doubling from half a second, and no
/// more than [`LONGEST_RETRY_DELAY`], so that a message whose dependency (PostgreSQL, the
/// writer) was down for minutes is handled within seconds of its coming back.
fn retry_delay(delivered: i64) -> Duration {
    let exponent = delivered.clamp(1, 7) as u32 - 1;
    (Duration::from_millis(500) * 2u32.pow(exponent)).min(LONGEST_RETRY_DELAY)
}

/// See [`retry_delay`].
pub const LONGEST_RETRY_DELAY: Duration = Duration::from_secs(4);

/// How long one pull request waits for messages. Short, because a pull sent to a node that
/// then stops answering (a stream leader killed or cut off) is lost: the next one, to the
/// new leader, goes out this much later at the most.
const PULL_EXPIRES: Duration = Duration::from_secs(2);

/// Messages held beyond the running ones: each waits for a slot, so a handler that finishes
/// starts the next message at once instead of after a round trip to the server. Kept to one:
/// a message held here is out of other replicas' reach until this one settles it (or dies and
/// its ack wait runs out).
const HELD_AHEAD: usize = 1;

/// Pulls from `consumer` and runs `handler` on up to `concurrency` messages at once until the
/// shutdown is triggered; then stops pulling, lets the messages at work finish, gives back the
/// ones still waiting for a slot, and returns. At most [`HELD_AHEAD`] message waits in this
/// process beyond the running ones; while a message is held, its ack wait is extended,
/// however long the work takes.
pub async fn run_consumer<H: MessageHandler>(
    consumer: PullConsumer,
    concurrency: usize,
    handler: Arc<H>,
    shutdown: Shutdown,
) -> anyhow::Result<()> {
    let concurrency = concurrency.max(1);
    let progress_every = (consumer.cached_info().config.ack_wait / 3).max(Duration::from_secs(1));
    let permits = Arc::new(Semaphore::new(concurrency + HELD_AHEAD));
    let running = Arc::new(Semaphore::new(concurrency));
    let mut in_flight = JoinSet::new();
    'pulling: while !shutdown.is_triggered() {
        let mut slots = tokio::select! {
            _ = shutdown.triggered() => break 'pulling,
            permit = permits.clone().acquire_owned() => vec![permit.expect("the semaphore is never closed")],
        };
        while let Ok(permit) = permits.clone().try_acquire_owned() {
            slots.push(permit);
        }
        let batch = consumer
            .batch()
            .max_messages(slots.len())
            .expires(PULL_EXPIRES)
            .messages()
            .await;
        let mut messages = match batch {
            Ok(messages) => messages,
            Err(error) => {
                tracing::warn!(%error, "cannot pull from the consumer; trying again");
                drop(slots);
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_secs(1)) => continue 'pulling,
                    _ = shutdown.triggered() => break 'pulling,
                }
            }
        };
        loop {
            let next = tokio::select! {
                _ = shutdown.triggered() => break 'pulling,
                next = messages.next() => next,
            };
            let message = match next {
                Some(Ok(message)) => message,
                Some(Err(error)) => {
                    tracing::warn!(%error, "pull consumer hiccup; continuing");
                    continue;
                }
                // The batch is over (full, or expired): unused slots go back.
                None => continue 'pulling,
            };
            let Some(permit) = slots.pop() else {
                tracing::warn!("the server sent more than was asked; it is redelivered later");
                continue;
            };
            let handler = handler.clone();
            let running = running.clone();
            let shutdown = shutdown.clone();
            let trace = trace::continue_from(message.headers.as_ref());
            let span = handling_span::<H>(&message, &trace);
            let handling = async move {
                let _in_progress = keep_in_progress(&message, progress_every);
                let slot = tokio::select! {
                    slot = running.acquire_owned() => slot.expect("the semaphore is never closed"),
                    _ = shutdown.triggered() => {
                        give_back(&message).await;
                        return;
                    }
                };
                let started = Instant::now();
                let outcome = handle_catching_panics(handler.as_ref(), &message).await;
                settle(handler.as_ref(), &message, outcome, started).await;
                drop((slot, permit));
            };
            in_flight.spawn(trace::in_trace(trace, handling).instrument(span));
            while let Some(finished) = in_flight.try_join_next() {
                report_panic(finished);
            }
        }
    }
    while let Some(finished) = in_flight.join_next().await {
        report_panic(finished);
    }
    Ok(())
}

/// A message that never got a slot before the shutdown goes back at once, to be delivered to
/// another replica without waiting for its ack wait.
async fn give_back(message: &Message) {
    if let Err(error) = message.ack_with(AckKind::Nak(None)).await {
        tracing::warn!(subject = message.subject.as_str(), %error, "could not give back a message");
    }
}

/// A handler that panics on a message is tried again, and after [`PANICS_BEFORE_GIVING_UP`]
/// deliveries fails its import: a poison message is not redelivered for ever.
async fn handle_catching_panics<H: MessageHandler>(handler: &H, message: &Message) -> Outcome {
    use futures::FutureExt as _;
    match std::panic::AssertUnwindSafe(handler.handle(message))
        .catch_unwind()
        .await
    {
        Ok(outcome) => outcome,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|text| text.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown".to_string());
            let delivered = message.info().map(|info| info.delivered).unwrap_or(1);
            let reason =
                format!("the service failed while handling a message of the import ({what})");
            if delivered >= PANICS_BEFORE_GIVING_UP {
                Outcome::FailImport { reason }
            } else {
                Outcome::RetryLater { reason }
            }
        }
    }
}

fn report_panic(finished: Result<(), tokio::task::JoinError>) {
    if let Err(error) = finished {
        // The message stays unacked and is redelivered; the consumer goes on.
        tracing::error!(%error, "a message handler panicked");
    }
}

/// Keeps telling JetStream that a long-running message is in progress, so it is not
/// redelivered while it is still being worked on. Stops when dropped.
pub struct InProgress {
    task: tokio::task::JoinHandle<()>,
}

impl Drop for InProgress {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Starts sending progress acks for `message` every `period` (a third of the ack wait is safe).
pub fn keep_in_progress(message: &Message, period: Duration) -> InProgress {
    let message = message.clone();
    let task = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(period);
        ticks.tick().await;
        loop {
            ticks.tick().await;
            if let Err(error) = message.ack_with(AckKind::Progress).await {
                tracing::warn!(%error, "could not extend the ack wait");
            }
        }
    });
    InProgress { task }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_delay_grows_from_half_a_second_to_four_seconds() {
        let delays: Vec<u64> = (1..=9)
            .map(|delivered| retry_delay(delivered).as_millis() as u64)
            .collect();
        assert_eq!(
            delays,
            vec![500, 1000, 2000, 4000, 4000, 4000, 4000, 4000, 4000]
        );
        assert_eq!(retry_delay(0), Duration::from_millis(500));
    }

    #[test]
    fn a_waiting_message_comes_back_within_a_second() {
        let delays: Vec<u64> = [1, 8, 9, 17, 40, 57, 500]
            .into_iter()
            .map(|delivered| not_yet_delay(delivered).as_millis() as u64)
            .collect();
        assert_eq!(delays, vec![10, 10, 20, 40, 160, 1000, 1000]);
    }
}
