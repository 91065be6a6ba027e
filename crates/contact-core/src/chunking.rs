//! Owns cutting a file's records into chunks, bounded in rows and in the size they will have
//! as JSON messages, whatever the file: a chunk of many short columns weighs its attributes'
//! keys, a chunk of control characters weighs six bytes for each of them. A record too large to
//! travel alone fails as a row error, with its line, instead of breaking the message it is in.

use crate::csv_parser::{ParsedRecord, RawRecord};
use crate::mapping::MappingPlan;
use crate::validate::RowError;

/// How much one chunk may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChunkLimits {
    pub rows: usize,
    /// Bytes the chunk's rows may weigh as JSON, raw or validated; a single record over this
    /// fails.
    pub encoded_bytes: usize,
}

/// Records of a file, in order, with the row errors of the records that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Chunk {
    pub rows: Vec<RawRecord>,
    pub unreadable: Vec<RowError>,
}

impl Chunk {
    /// Records of the file in the chunk, read or not.
    pub fn len(&self) -> usize {
        self.rows.len() + self.unreadable.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Gathers records into chunks.
#[derive(Debug)]
pub struct Chunker {
    limits: ChunkLimits,
    chunk: Chunk,
    encoded_bytes: usize,
    /// A record that did not fit the chunk in hand: it opens the next one.
    carried: Option<(RawRecord, usize)>,
}

/// JSON punctuation around a row or a value: quotes, separators, the line number.
const PER_ROW: usize = 32;
const PER_VALUE: usize = 6;

impl Chunker {
    pub fn new(limits: ChunkLimits) -> Self {
        Self {
            limits,
            chunk: Chunk::default(),
            encoded_bytes: 0,
            carried: None,
        }
    }

    /// Adds the next record of the file (mapped by `plan`). A record that would take the chunk
    /// past its size waits for the next chunk ([`Self::is_full`] says so).
    pub fn push(&mut self, item: ParsedRecord, plan: &MappingPlan) {
        debug_assert!(self.carried.is_none(), "take the full chunk first");
        match item {
            ParsedRecord::Record(record) => {
                let size = encoded_size(&record, plan);
                if size > self.limits.encoded_bytes {
                    let reason = format!(
                        "the row on line {} is too large to import: {} KiB as text, at most {} KiB",
                        record.line,
                        size.div_ceil(1024),
                        self.limits.encoded_bytes / 1024
                    );
                    self.add_error(record.line, reason);
                } else if !self.chunk.is_empty()
                    && self.encoded_bytes + size > self.limits.encoded_bytes
                {
                    self.carried = Some((record, size));
                } else {
                    self.encoded_bytes += size;
                    self.chunk.rows.push(record);
                }
            }
            ParsedRecord::Error(error) => self.add_error(error.line, error.to_string()),
        }
    }

    fn add_error(&mut self, line: u64, reason: String) {
        self.encoded_bytes += PER_ROW + reason.len();
        self.chunk.unreadable.push(RowError {
            line,
            column: None,
            value: None,
            reason,
        });
    }

    /// True when the chunk must go before another record is added.
    pub fn is_full(&self) -> bool {
        self.carried.is_some() || self.chunk.len() >= self.limits.rows
    }

    /// The chunk gathered so far (none when empty); a record carried over opens the next one.
    pub fn take(&mut self) -> Option<Chunk> {
        let chunk = std::mem::take(&mut self.chunk);
        self.encoded_bytes = 0;
        if let Some((record, size)) = self.carried.take() {
            self.encoded_bytes = size;
            self.chunk.rows.push(record);
        }
        (!chunk.is_empty()).then_some(chunk)
    }
}

/// What a record weighs as JSON: the larger of the raw row (every field) and the validated
/// row (mapped fields with their attributes' keys), escapes counted.
pub fn encoded_size(record: &RawRecord, plan: &MappingPlan) -> usize {
    let (raw, validated) = record.fields.iter().enumerate().fold(
        (PER_ROW, PER_ROW),
        |(raw, validated), (column, field)| {
            let value = escaped_len(field) + PER_VALUE;
            let mapped = plan
                .attribute_for_column(column)
                .map_or(0, |attribute| attribute.key.len() + value);
            (raw + value, validated + mapped)
        },
    );
    raw.max(validated)
}

/// The length of `text` inside a JSON string: quotes and backslashes take two bytes, control
/// characters two (`\n`, `\t`…) or six (`\u0001`).
fn escaped_len(text: &str) -> usize {
    text.len()
        + text
            .bytes()
            .map(|byte| match byte {
                b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0C => 1,
                0x00..=0x1F => 5,
                _ => 0,
            })
            .sum::<usize>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::csv_parser::{RecordError, RecordErrorKind};
    use crate::mapping::{resolve_mapping, standard_attributes};

    fn plan(header: &[&str]) -> MappingPlan {
        let header: Vec<String> = header.iter().map(|name| name.to_string()).collect();
        resolve_mapping(&header, &standard_attributes(), &[], &[]).expect("a valid mapping")
    }

    fn record(line: u64, fields: &[&str]) -> ParsedRecord {
        ParsedRecord::Record(RawRecord {
            line,
            fields: fields.iter().map(|field| field.to_string()).collect(),
            end_offset: 0,
        })
    }

    /// Pushes every record, taking a chunk whenever the chunker is full, and returns the chunks'
    /// line numbers.
    fn cut(limits: ChunkLimits, plan: &MappingPlan, records: Vec<ParsedRecord>) -> Vec<Vec<u64>> {
        let mut chunker = Chunker::new(limits);
        let mut chunks = Vec::new();
        for record in records {
            chunker.push(record, plan);
            if chunker.is_full() {
                chunks.extend(chunker.take());
            }
        }
        chunks.extend(chunker.take());
        chunks
            .into_iter()
            .map(|chunk| {
                let mut lines: Vec<u64> = chunk.rows.iter().map(|row| row.line).collect();
                lines.extend(chunk.unreadable.iter().map(|error| error.line));
                lines.sort();
                lines
            })
            .collect()
    }

    #[test]
    fn chunks_close_at_the_row_limit_and_keep_every_record() {
        let plan = plan(&["email"]);
        let records = (2..12).map(|line| record(line, &["a@x.pl"])).collect();
        let limits = ChunkLimits {
            rows: 4,
            encoded_bytes: 1 << 20,
        };
        assert_eq!(
            cut(limits, &plan, records),
            vec![vec![2, 3, 4, 5], vec![6, 7, 8, 9], vec![10, 11]]
        );
    }

    #[test]
    fn chunks_stay_under_their_encoded_size_whatever_the_cells() {
        let limits = ChunkLimits {
            rows: 10_000,
            encoded_bytes: 64 * 1024,
        };
        // Many short mapped columns: the keys outweigh the values.
        let wide = plan(&[
            "email",
            "first_name",
            "last_name",
            "company",
            "city",
            "street",
        ]);
        let short_cells: Vec<ParsedRecord> = (2..3000)
            .map(|line| record(line, &["a@x.pl", "A", "B", "C", "D", "E"]))
            .collect();
        // Control characters weigh six bytes each as JSON.
        let narrow = plan(&["email", "city"]);
        let control = "\u{1}".repeat(500);
        let control_cells: Vec<ParsedRecord> = (2..500)
            .map(|line| record(line, &["a@x.pl", &control]))
            .collect();
        for (plan, records) in [(wide, short_cells), (narrow, control_cells)] {
            let mut chunker = Chunker::new(limits);
            let mut count = 0;
            let mut chunks = Vec::new();
            for item in records {
                chunker.push(item, &plan);
                count += 1;
                if chunker.is_full() {
                    chunks.extend(chunker.take());
                }
            }
            chunks.extend(chunker.take());
            assert_eq!(chunks.iter().map(Chunk::len).sum::<usize>(), count);
            assert!(chunks.len() > 1, "the records fill several chunks");
            for chunk in chunks {
                let json = chunk
                    .rows
                    .iter()
                    .map(|row| {
                        let values: Vec<String> = row
                            .fields
                            .iter()
                            .enumerate()
                            .filter_map(|(column, field)| {
                                plan.attribute_for_column(column).map(|attribute| {
                                    format!("{:?}:{}", attribute.key, json_string(field))
                                })
                            })
                            .collect();
                        values.join(",").len() + 32
                    })
                    .sum::<usize>();
                assert!(json <= limits.encoded_bytes, "{json} bytes");
            }
        }
    }

    fn json_string(text: &str) -> String {
        let mut out = String::from("\"");
        for character in text.chars() {
            match character {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                character if (character as u32) < 0x20 => {
                    out.push_str(&format!("\\u{:04x}", character as u32))
                }
                character => out.push(character),
            }
        }
        out.push('"');
        out
    }

    #[test]
    fn escapes_are_counted_as_json_writes_them() {
        for text in [
            "plain",
            "quote\"d",
            "back\\slash",
            "line\nbreak",
            "\u{1}\u{1f}",
            "Łódź",
        ] {
            assert_eq!(escaped_len(text) + 2, json_string(text).len(), "{text:?}");
        }
    }

    #[test]
    fn a_record_too_large_to_travel_fails_with_its_line_and_the_rest_go_on() {
        let plan = plan(&["email", "city"]);
        let huge = "x".repeat(10_000);
        let limits = ChunkLimits {
            rows: 100,
            encoded_bytes: 4096,
        };
        let mut chunker = Chunker::new(limits);
        chunker.push(record(2, &["a@x.pl", "Kraków"]), &plan);
        chunker.push(record(3, &["b@x.pl", &huge]), &plan);
        chunker.push(
            ParsedRecord::Error(RecordError {
                line: 4,
                kind: RecordErrorKind::RecordTooLarge { limit_bytes: 4096 },
            }),
            &plan,
        );
        chunker.push(record(5, &["c@x.pl", "Opole"]), &plan);
        let chunk = chunker.take().expect("a chunk");
        assert_eq!(
            chunk.rows.iter().map(|row| row.line).collect::<Vec<_>>(),
            vec![2, 5]
        );
        assert_eq!(
            chunk
                .unreadable
                .iter()
                .map(|error| error.line)
                .collect::<Vec<_>>(),
            vec![3, 4]
        );
        assert!(chunk.unreadable[0].reason.contains("too large to import"));
        assert!(chunker.take().is_none());
    }
}
