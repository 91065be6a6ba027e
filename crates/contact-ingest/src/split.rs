//! Streaming a CSV file into chunk messages: the header is checked against the mapping first,
//! then rows go out in chunks of bounded size, so memory stays flat whatever the file's size.

use std::collections::VecDeque;

use async_nats::jetstream::{self, context::PublishAckFuture};
use contact_contract::ImportOptions;
use contact_contract::{
    message_id, ControlEvent, ImportControl, ImportRequest, ImportSubjectKind, Namespace, RawChunk,
    CHUNK_TARGET_BYTES, CHUNK_TARGET_ROWS, SCHEMA_VERSION,
};
use contact_core::csv_parser::{ParsedRecord, RawRecord, RecordParser};
use contact_core::encoding::{detect_encoding, TextDecoder, TextEncoding};
use contact_core::mapping::{resolve_mapping, AttributeDef, MappingPlan};
use contact_core::sniff::{delimiter_name, detect_delimiter, parse_delimiter};
use contact_core::validate::{PhoneRegion, RowError};
use contact_runtime::publish::send_json;
use contact_runtime::Shutdown;

use crate::upload::UploadReader;
use crate::window::ApplyWindow;

/// A record larger than this stops the read: almost always an unclosed quote.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;
/// Chunks published but not yet acknowledged by the stream.
const PUBLISHES_IN_FLIGHT: usize = 16;

/// Why a file could not be split.
#[derive(Debug, thiserror::Error)]
pub enum SplitError {
    /// The file or its header cannot be imported; the reason is for the person who sent it.
    #[error("{0}")]
    Rejected(String),
    /// NATS or the object store failed; trying again later may work.
    #[error(transparent)]
    Transient(#[from] anyhow::Error),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitReport {
    pub chunks_total: u32,
    pub rows_in_file: u64,
}

/// Reads `file` to the end and publishes its chunks, then the `Finished` control message.
/// `started_with` is the mapping of an import that already started (a redelivered request):
/// it is kept rather than resolved again.
#[allow(clippy::too_many_arguments)]
pub async fn split_file(
    file: &mut UploadReader,
    request: &ImportRequest,
    attributes: &[AttributeDef],
    started_with: Option<&MappingPlan>,
    phone_region: PhoneRegion,
    client: &async_nats::Client,
    jetstream: &jetstream::Context,
    namespace: &Namespace,
    shutdown: &Shutdown,
) -> Result<SplitReport, SplitError> {
    let file_bytes = file.size();
    let mut window = ApplyWindow::open(client, namespace, request).await?;
    let mut publisher = ChunkPublisher {
        jetstream,
        namespace,
        request,
        phone_region: phone_region.to_string(),
        in_flight: VecDeque::new(),
        chunks_published: 0,
        accepted: false,
        file_bytes,
        last_end_offset: 0,
    };
    let Some(first_block) = file.next_block().await? else {
        return Err(SplitError::Rejected("the file is empty".to_string()));
    };
    let whole_file_in_first_block = first_block.len() as u64 >= file_bytes;
    let encoding = choose_encoding(&request.options, &first_block, whole_file_in_first_block)?;
    let mut decoder = TextDecoder::new(encoding);
    let mut text = Vec::new();
    decoder.decode(&first_block, false, &mut text);
    replace_nul_characters(&mut text);
    let delimiter = match &request.options.delimiter {
        Some(forced) => parse_delimiter(forced).map_err(SplitError::Rejected)?,
        None => detect_delimiter(&String::from_utf8_lossy(&text)),
    };
    tracing::debug!(%encoding, delimiter = delimiter_name(delimiter), "reading the file");
    let mut parser = RecordParser::new(delimiter, MAX_RECORD_BYTES);
    let mut raw_bytes_read = first_block.len() as u64;
    let mut parsed = Vec::new();
    parser.feed(&text, &mut parsed);
    let mut plan: Option<MappingPlan> = None;
    let mut chunk = ChunkInProgress::default();
    let mut rows_in_file: u64 = 0;
    let mut cut_short = None;
    let mut at_end = false;
    loop {
        for item in parsed.drain(..) {
            let Some(plan) = &plan else {
                plan = Some(read_header(item, attributes, started_with, request)?);
                continue;
            };
            rows_in_file += 1;
            match item {
                ParsedRecord::Record(record) => chunk.push_record(record, plan),
                ParsedRecord::Error(error) => {
                    if error.fatal {
                        cut_short = Some(error.to_string());
                    }
                    chunk.push_error(RowError {
                        line: error.line,
                        column: None,
                        value: None,
                        reason: error.to_string(),
                    });
                }
            }
            if chunk.is_full() {
                publisher
                    .publish(std::mem::take(&mut chunk), plan, raw_bytes_read)
                    .await?;
                window.wait_for_room(rows_in_file, shutdown).await?;
                if window.import_ended() {
                    publisher.wait_for_all().await?;
                    tracing::info!(
                        chunks = publisher.chunks_published,
                        "import ended while its file was read: reading stopped"
                    );
                    return Ok(SplitReport {
                        chunks_total: publisher.chunks_published,
                        rows_in_file,
                    });
                }
            }
        }
        if at_end || parser.is_stopped() {
            break;
        }
        text.clear();
        match file.next_block().await? {
            Some(block) => {
                raw_bytes_read += block.len() as u64;
                decoder.decode(&block, false, &mut text);
                replace_nul_characters(&mut text);
                parser.feed(&text, &mut parsed);
            }
            None => {
                decoder.decode(&[], true, &mut text);
                replace_nul_characters(&mut text);
                parser.feed(&text, &mut parsed);
                parser.finish(&mut parsed);
                at_end = true;
            }
        }
    }
    let Some(plan) = plan else {
        return Err(SplitError::Rejected("the file is empty".to_string()));
    };
    if rows_in_file == 0 {
        return Err(SplitError::Rejected(
            "the file has a header but no rows".to_string(),
        ));
    }
    if !chunk.is_empty() {
        publisher.publish(chunk, &plan, file_bytes).await?;
    }
    publisher.finish(rows_in_file, cut_short).await?;
    Ok(SplitReport {
        chunks_total: publisher.chunks_published,
        rows_in_file,
    })
}

/// PostgreSQL cannot store U+0000 in text or JSON, so a NUL character (a stray byte, or a
/// UTF-16 file read as something else) becomes U+FFFD here; validation then fails its cell
/// as unreadable, and the row keeps its place in the error file.
fn replace_nul_characters(text: &mut Vec<u8>) {
    if !text.contains(&0) {
        return;
    }
    let replacement = char::REPLACEMENT_CHARACTER.to_string();
    let mut cleaned = Vec::with_capacity(text.len() + 16);
    for &byte in text.iter() {
        if byte == 0 {
            cleaned.extend_from_slice(replacement.as_bytes());
        } else {
            cleaned.push(byte);
        }
    }
    *text = cleaned;
}

/// The forced encoding, or the one detected from the first block; a file that is not text is
/// refused either way.
fn choose_encoding(
    options: &ImportOptions,
    first_block: &[u8],
    whole_file: bool,
) -> Result<TextEncoding, SplitError> {
    let detected = detect_encoding(first_block, whole_file);
    match &options.encoding {
        None => detected.map_err(|not_text| SplitError::Rejected(not_text.to_string())),
        Some(name) => {
            let forced: TextEncoding = name
                .parse()
                .map_err(|error: String| SplitError::Rejected(error))?;
            let wide = matches!(forced, TextEncoding::Utf16Le | TextEncoding::Utf16Be);
            match detected {
                Err(not_text) if !wide => Err(SplitError::Rejected(not_text.to_string())),
                _ => Ok(forced),
            }
        }
    }
}

fn read_header(
    item: ParsedRecord,
    attributes: &[AttributeDef],
    started_with: Option<&MappingPlan>,
    request: &ImportRequest,
) -> Result<MappingPlan, SplitError> {
    let header = match item {
        ParsedRecord::Record(record) => record.fields,
        ParsedRecord::Error(error) => {
            return Err(SplitError::Rejected(format!(
                "the header cannot be read: {error}"
            )))
        }
    };
    if let Some(plan) = started_with {
        // The plan keeps the header's names trimmed, as mapping reads them.
        if !plan
            .header
            .iter()
            .map(String::as_str)
            .eq(header.iter().map(|name| name.trim()))
        {
            return Err(SplitError::Rejected(
                "the file's header differs from the one the import started with".to_string(),
            ));
        }
        return Ok(plan.clone());
    }
    resolve_mapping(
        &header,
        attributes,
        &request.options.mappings,
        &request.options.match_on,
    )
    .map_err(|errors| SplitError::Rejected(errors.to_string()))
}

#[derive(Default)]
struct ChunkInProgress {
    rows: Vec<RawRecord>,
    unreadable: Vec<RowError>,
    /// What the chunk will weigh as JSON, after validation: each value travels with its
    /// attribute's key, which for a file of many short columns outweighs the value.
    encoded_bytes: usize,
}

impl ChunkInProgress {
    fn push_record(&mut self, record: RawRecord, plan: &MappingPlan) {
        self.encoded_bytes += encoded_size(&record, plan);
        self.rows.push(record);
    }

    fn push_error(&mut self, error: RowError) {
        self.unreadable.push(error);
    }

    fn is_full(&self) -> bool {
        self.rows.len() + self.unreadable.len() >= CHUNK_TARGET_ROWS
            || self.encoded_bytes >= CHUNK_TARGET_BYTES
    }

    fn is_empty(&self) -> bool {
        self.rows.is_empty() && self.unreadable.is_empty()
    }
}

/// The larger of a record's size as a raw row and as validated values (key, value, quotes
/// and separators for every mapped cell), as JSON.
fn encoded_size(record: &RawRecord, plan: &MappingPlan) -> usize {
    const PER_VALUE: usize = 6;
    const PER_ROW: usize = 32;
    let (raw, validated) = record.fields.iter().enumerate().fold(
        (PER_ROW, PER_ROW),
        |(raw, validated), (column, field)| {
            let mapped = plan
                .attribute_for_column(column)
                .map_or(0, |attribute| attribute.key.len() + field.len() + PER_VALUE);
            (raw + field.len() + PER_VALUE, validated + mapped)
        },
    );
    raw.max(validated)
}

struct ChunkPublisher<'a> {
    jetstream: &'a jetstream::Context,
    namespace: &'a Namespace,
    request: &'a ImportRequest,
    phone_region: String,
    in_flight: VecDeque<PublishAckFuture>,
    chunks_published: u32,
    accepted: bool,
    file_bytes: u64,
    last_end_offset: u64,
}

impl ChunkPublisher<'_> {
    /// Publishes a chunk; `file_offset` is how far into the (undecoded) file reading has got.
    async fn publish(
        &mut self,
        chunk: ChunkInProgress,
        plan: &MappingPlan,
        file_offset: u64,
    ) -> anyhow::Result<()> {
        if !self.accepted {
            self.control(
                "accepted",
                ControlEvent::Accepted {
                    request: self.request.clone(),
                    plan: plan.clone(),
                    file_bytes: self.file_bytes,
                },
            )
            .await?;
            self.accepted = true;
        }
        let (account, import_id) = (&self.request.account, &self.request.import_id);
        let end_offset = file_offset.min(self.file_bytes).max(self.last_end_offset);
        self.last_end_offset = end_offset;
        let message = RawChunk {
            schema: SCHEMA_VERSION,
            account: account.clone(),
            import_id: import_id.clone(),
            chunk_index: self.chunks_published,
            plan: plan.clone(),
            phone_region: self.phone_region.clone(),
            rows: chunk.rows,
            unreadable: chunk.unreadable,
            end_offset,
        };
        let subject = self
            .namespace
            .import_subject(ImportSubjectKind::Chunks, account, import_id);
        let id = message_id::chunk(account, import_id, self.chunks_published);
        let acknowledgement = send_json(self.jetstream, subject, &id, &message).await?;
        self.in_flight.push_back(acknowledgement);
        self.chunks_published += 1;
        if self.in_flight.len() >= PUBLISHES_IN_FLIGHT {
            self.wait_oldest().await?;
        }
        Ok(())
    }

    async fn wait_oldest(&mut self) -> anyhow::Result<()> {
        if let Some(oldest) = self.in_flight.pop_front() {
            oldest
                .await
                .map_err(|error| anyhow::anyhow!("a chunk was not stored: {error}"))?;
        }
        Ok(())
    }

    async fn wait_for_all(&mut self) -> anyhow::Result<()> {
        while !self.in_flight.is_empty() {
            self.wait_oldest().await?;
        }
        Ok(())
    }

    async fn finish(&mut self, rows_in_file: u64, cut_short: Option<String>) -> anyhow::Result<()> {
        self.wait_for_all().await?;
        self.control(
            "finished",
            ControlEvent::Finished {
                chunks_total: self.chunks_published,
                rows_in_file,
                cut_short,
            },
        )
        .await
    }

    async fn control(&self, what: &str, event: ControlEvent) -> anyhow::Result<()> {
        let (account, import_id) = (&self.request.account, &self.request.import_id);
        let control = ImportControl {
            schema: SCHEMA_VERSION,
            account: account.clone(),
            import_id: import_id.clone(),
            event,
        };
        let subject = self
            .namespace
            .import_subject(ImportSubjectKind::Control, account, import_id);
        let id = message_id::control(account, import_id, what);
        contact_runtime::publish::publish_json(self.jetstream, subject, &id, &control).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use contact_contract::{AccountId, ImportId};

    #[test]
    fn nul_characters_become_replacement_characters() {
        let mut text = b"a\0b,c\0".to_vec();
        replace_nul_characters(&mut text);
        assert_eq!(
            String::from_utf8(text).expect("UTF-8"),
            "a\u{FFFD}b,c\u{FFFD}"
        );
        let mut clean = b"abc".to_vec();
        replace_nul_characters(&mut clean);
        assert_eq!(clean, b"abc");
    }

    fn header(names: &[&str]) -> ParsedRecord {
        ParsedRecord::Record(RawRecord {
            line: 1,
            fields: names.iter().map(|name| name.to_string()).collect(),
            end_offset: 0,
        })
    }

    #[test]
    fn a_request_read_again_keeps_the_plan_it_started_with() {
        let request = ImportRequest::known_by_subject(
            AccountId::new("acme").expect("account"),
            ImportId::new("i1").expect("import id"),
        );
        let attributes = contact_core::mapping::standard_attributes();
        let started =
            read_header(header(&["email", " city "]), &attributes, None, &request).expect("plan");
        // The catalog lost `city` since, yet the import goes on as it began.
        let fewer: Vec<_> = attributes
            .into_iter()
            .filter(|attribute| attribute.key != "city")
            .collect();
        let again = read_header(
            header(&["email", " city "]),
            &fewer,
            Some(&started),
            &request,
        )
        .expect("the same header");
        assert_eq!(again, started);
        let changed = read_header(header(&["email", "town"]), &fewer, Some(&started), &request);
        assert!(
            matches!(&changed, Err(SplitError::Rejected(reason)) if reason.contains("header differs")),
            "{:?}",
            changed.map(|plan| plan.header)
        );
    }
}
