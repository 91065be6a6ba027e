//! contact-mapper: resolves each raw row's cells to the account's attributes through the
//! import's mapping plan, validates and normalizes every value, and publishes the valid
//! records and the row errors of the chunk for the writer, the valid records split into the
//! import's lanes by the hash of each row's match key. Stateless: any replica handles any
//! chunk, in any order.

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::Arc;

use async_nats::jetstream::{self, Message};
use clap::Parser;
use contact_contract::gate::decode_import_message;
use contact_contract::{
    message_id, ConsumerRole, FailedRow, ImportRequest, ImportSubjectKind, Namespace, RawChunk,
    ValidatedChunk,
};
use contact_core::csv_parser::RawRecord;
use contact_core::lanes::{lane_count, row_lane};
use contact_core::mapping::MappingPlan;
use contact_core::validate::{validate_record, PhoneRegion};
use contact_runtime::metrics::metrics;
use contact_runtime::publish::{publish_bytes, publish_rejection};
use contact_runtime::service::{self, ServiceSettings};
use contact_runtime::{run_consumer, MessageHandler, Outcome, Shutdown};
use tracing::Instrument as _;

/// How a mapper replica is configured (flags or environment).
#[derive(Debug, Clone, Parser)]
#[command(
    name = "contact-mapper",
    version,
    about = "Validates and normalizes imported rows"
)]
pub struct Settings {
    #[command(flatten)]
    pub service: ServiceSettings,
    /// Chunks validated at once by this replica.
    #[arg(long, env = "MAPPER_CONCURRENCY", default_value_t = 4)]
    pub concurrency: usize,
}

pub struct Application {
    consumer: jetstream::consumer::PullConsumer,
    handler: Arc<ChunkValidator>,
    concurrency: usize,
    http_addr: Option<SocketAddr>,
    shutdown: Shutdown,
}

impl Application {
    /// Connects (waiting for NATS if it is down) and makes sure the streams exist.
    pub async fn build(settings: Settings, shutdown: Shutdown) -> anyhow::Result<Self> {
        let started = service::start(&settings.service, ConsumerRole::Mapper, &shutdown).await?;
        started.ready(started.nats_probe());
        Ok(Self {
            consumer: started.consumer,
            handler: Arc::new(ChunkValidator {
                jetstream: started.jetstream,
                namespace: started.namespace,
            }),
            concurrency: settings.concurrency,
            http_addr: started.http_addr,
            shutdown,
        })
    }

    /// Where /healthz, /readyz and /metrics are served, when they are.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        tracing::info!("contact-mapper is validating chunks");
        run_consumer(self.consumer, self.concurrency, self.handler, self.shutdown).await
    }
}

struct ChunkValidator {
    jetstream: jetstream::Context,
    namespace: Namespace,
}

impl MessageHandler for ChunkValidator {
    const SERVICE: &'static str = "mapper";

    async fn handle(&self, message: &Message) -> Outcome {
        let Some((account, import_id, ImportSubjectKind::Chunks)) =
            self.namespace.parse_import_subject(&message.subject)
        else {
            return Outcome::Reject {
                reason: format!("the mapper does not take {}", message.subject),
            };
        };
        let chunk: RawChunk = match decode_import_message(&message.payload, &account, &import_id) {
            Ok(chunk) => chunk,
            Err(undecodable) => return undecodable.into(),
        };
        let region: PhoneRegion = match chunk.phone_region.parse() {
            Ok(region) => region,
            Err(error) => {
                return Outcome::FailImport {
                    reason: format!("a chunk of the file names an unknown phone region: {error}"),
                }
            }
        };
        // The consume loop's span names the import and the trace; the chunk is known here.
        tracing::Span::current().record("chunk", chunk.chunk_index);
        let span = tracing::info_span!("validate");
        let max_payload = self.jetstream.client().server_info().max_payload;
        let chunk_index = chunk.chunk_index;
        let (validated, body) = {
            let _entered = span.enter();
            let mut validated = validate_chunk(chunk, region);
            match fit_payload(&mut validated, max_payload) {
                Ok(body) => (validated, body),
                Err(size) => {
                    return Outcome::FailImport {
                        reason: format!(
                            "chunk {chunk_index} of the file is {size} bytes once validated, more \
                             than the {max_payload} bytes a message may hold"
                        ),
                    }
                }
            }
        };
        let subject = self.namespace.import_subject(
            ImportSubjectKind::Records,
            &validated.account,
            &validated.import_id,
        );
        let id = message_id::records(&validated.account, &validated.import_id, chunk_index);
        match publish_bytes(&self.jetstream, subject, &id, body)
            .instrument(span)
            .await
        {
            Ok(()) => {
                let valid = validated.lanes.iter().map(Vec::len).sum::<usize>();
                metrics().count_rows("mapper", "valid", valid as u64);
                metrics().count_rows("mapper", "invalid", validated.failed.len() as u64);
                Outcome::Done
            }
            Err(error) => Outcome::RetryLater {
                reason: format!("{error:#}"),
            },
        }
    }

    /// A chunk that can never be validated leaves its import short of a chunk: the writer is
    /// told to fail the import with the reason, rather than leave it running for ever.
    async fn fail_import(&self, message: &Message, reason: &str) -> anyhow::Result<()> {
        let Some((account, import_id, _)) = self.namespace.parse_import_subject(&message.subject)
        else {
            anyhow::bail!("{} is not an import's subject", message.subject);
        };
        let request = ImportRequest::known_by_subject(account, import_id);
        publish_rejection(&self.jetstream, &self.namespace, request, reason).await
    }
}

/// Reads a raw chunk that arrived on the subject of `account`'s import `import_id`, or says why
/// it can never be validated.
/// Encodes the validated chunk so that it fits the server's payload limit, or says how large
/// it is. A chunk whose every cell fails carries each cell three times (record, failed row,
/// error); the error's copy of the value is the one to drop, since the failed row keeps the
/// cell as it stood. Ingest cuts chunks so that this is rarely needed and never not enough.
pub fn fit_payload(validated: &mut ValidatedChunk, max_payload: usize) -> Result<Vec<u8>, usize> {
    const MARGIN: usize = 16 * 1024;
    let encode = |validated: &ValidatedChunk| serde_json::to_vec(validated).unwrap_or_default();
    let body = encode(validated);
    if body.len() + MARGIN <= max_payload {
        return Ok(body);
    }
    tracing::warn!(
        size = body.len(),
        max_payload,
        "validated chunk too large: row error values left out"
    );
    for error in &mut validated.errors {
        error.value = None;
    }
    let body = encode(validated);
    if body.len() + MARGIN <= max_payload {
        Ok(body)
    } else {
        Err(body.len())
    }
}

/// Validates every row of a chunk and splits the valid records into the import's lanes;
/// unreadable records from the parser become row errors too.
pub fn validate_chunk(chunk: RawChunk, region: PhoneRegion) -> ValidatedChunk {
    let plan = MappingPlan::from(chunk.plan);
    let lane_total = lane_count(&plan.match_on);
    let mut lanes: Vec<Vec<contact_contract::ValidRecord>> = vec![Vec::new(); lane_total as usize];
    let mut errors = chunk.unreadable;
    let mut failed: Vec<FailedRow> = errors
        .iter()
        .map(|error| error.line)
        .collect::<BTreeSet<_>>()
        .into_iter()
        .map(|line| FailedRow {
            line,
            fields: Vec::new(),
        })
        .collect();
    for row in chunk.rows {
        let row = RawRecord::from(row);
        match validate_record(&plan, &row, region) {
            Ok(record) => {
                let lane = row_lane(&record, &plan.match_on, lane_total);
                lanes[lane as usize].push(record.into());
            }
            Err(row_errors) => {
                errors.extend(row_errors.into_iter().map(Into::into));
                failed.push(FailedRow {
                    line: row.line,
                    fields: row.fields,
                });
            }
        }
    }
    errors.sort_by_key(|error| error.line);
    failed.sort_by_key(|row| row.line);
    ValidatedChunk {
        // Mapped values are already read: the writer needs nothing of a later version.
        schema: contact_contract::FIRST_SCHEMA_VERSION,
        account: chunk.account,
        import_id: chunk.import_id,
        chunk_index: chunk.chunk_index,
        lanes,
        errors,
        failed,
        end_offset: chunk.end_offset,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::{AccountId, ImportId, RawRecord, RowError, ValidRecord};
    use contact_core::mapping::{resolve_mapping, standard_attributes};

    fn chunk(rows: &[&[&str]], unreadable: Vec<RowError>) -> RawChunk {
        let header: Vec<String> = ["email", "mobile"].map(String::from).to_vec();
        RawChunk {
            schema: contact_contract::SCHEMA_VERSION,
            account: AccountId::new("acme").expect("valid"),
            import_id: ImportId::new("i1").expect("valid"),
            chunk_index: 3,
            plan: resolve_mapping(&header, &standard_attributes(), &[], &[])
                .expect("valid mapping")
                .into(),
            phone_region: "PL".into(),
            rows: rows
                .iter()
                .enumerate()
                .map(|(index, fields)| RawRecord {
                    line: index as u64 + 2,
                    fields: fields.iter().map(|field| field.to_string()).collect(),
                    end_offset: 0,
                })
                .collect(),
            unreadable,
            end_offset: 99,
        }
    }

    #[test]
    fn valid_rows_become_records_and_failed_rows_keep_their_cells() {
        let unreadable = vec![RowError {
            line: 9,
            column: None,
            value: None,
            reason: "line 9 is not valid UTF-8 text".into(),
        }];
        let validated = validate_chunk(
            chunk(
                &[&["A@Example.com", "501 234 567"], &["nope", "12"]],
                unreadable,
            ),
            PhoneRegion::default(),
        );
        assert_eq!(validated.lanes.len(), contact_core::lanes::LANES as usize);
        let records: Vec<&ValidRecord> = validated.lanes.iter().flatten().collect();
        assert_eq!(records.len(), 1);
        assert_eq!(records[0].values["email"], "a@example.com");
        assert_eq!(records[0].values["mobile"], "+48501234567");
        let failed: Vec<(u64, usize)> = validated
            .failed
            .iter()
            .map(|row| (row.line, row.fields.len()))
            .collect();
        assert_eq!(failed, vec![(3, 2), (9, 0)]);
        assert_eq!(
            validated
                .errors
                .iter()
                .map(|error| error.line)
                .collect::<Vec<_>>(),
            vec![3, 3, 9]
        );
        assert_eq!((validated.chunk_index, validated.end_offset), (3, 99));
    }

    #[test]
    fn every_row_lands_in_the_lane_of_its_match_key_in_file_order() {
        let emails: Vec<String> = (0..200)
            .map(|index| format!("p{}@x.pl", index % 37))
            .collect();
        let rows: Vec<[&str; 2]> = emails.iter().map(|email| [email.as_str(), ""]).collect();
        let rows: Vec<&[&str]> = rows.iter().map(|row| row.as_slice()).collect();
        let validated = validate_chunk(chunk(&rows, Vec::new()), PhoneRegion::default());
        let mut rows_seen = 0;
        for (lane, records) in validated.lanes.iter().enumerate() {
            let lines: Vec<u64> = records.iter().map(|record| record.line).collect();
            assert!(lines.windows(2).all(|pair| pair[0] < pair[1]), "file order");
            for record in records {
                let key = contact_core::merge::MatchKey {
                    attribute: "email".into(),
                    value: record.values["email"].clone(),
                };
                assert_eq!(contact_core::lanes::key_lane(&key) as usize, lane);
            }
            rows_seen += lines.len();
        }
        assert_eq!(rows_seen, 200);
        assert!(
            validated
                .lanes
                .iter()
                .filter(|records| !records.is_empty())
                .count()
                > 1,
            "37 emails fall in more than one lane"
        );
    }

    #[test]
    fn an_oversized_chunk_drops_the_error_copies_of_values() {
        let long = "x".repeat(2000);
        let rows: Vec<[&str; 2]> = (0..50).map(|_| [long.as_str(), "1"]).collect();
        let rows: Vec<&[&str]> = rows.iter().map(|row| row.as_slice()).collect();
        let mut validated = validate_chunk(chunk(&rows, Vec::new()), PhoneRegion::default());
        assert!(validated.errors.iter().all(|error| error.value.is_some()));
        let body = fit_payload(&mut validated, 200 * 1024).expect("fits once values go");
        assert!(body.len() <= 200 * 1024);
        assert!(validated.errors.iter().all(|error| error.value.is_none()));
        assert!(
            fit_payload(&mut validated, 32 * 1024).is_err(),
            "too large either way"
        );
        assert_eq!(
            validated.failed.len(),
            50,
            "the failed rows keep every cell"
        );
    }
}
