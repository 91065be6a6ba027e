//! Owns CSV decoding: a push-style RFC 4180 record parser that takes bytes in blocks of any size.
//!
//! The parser buffers only the record it is currently reading, so memory stays flat however large
//! the file is. It is lenient like the `csv` crate for input that is not strictly RFC 4180 (a quote
//! inside an unquoted field is literal; text after a closing quote is appended to the field).

use std::fmt;

/// The UTF-8 byte order mark some spreadsheet programs put at the start of a CSV export.
const UTF8_BYTE_ORDER_MARK: [u8; 3] = [0xEF, 0xBB, 0xBF];

/// Decodes CSV records from bytes fed in blocks of any size.
///
/// Use one parser per file: call [`RecordParser::feed`] for every block as it arrives (blocks may
/// split a field, a UTF-8 character, or a CR LF pair anywhere), then [`RecordParser::finish`] once
/// at the end of input.
#[derive(Debug, Clone)]
pub struct RecordParser {
    delimiter: u8,
    max_record_bytes: usize,
    state: ParserState,
    byte_order_mark: ByteOrderMarkCheck,
    /// Field contents of the current record, concatenated; `field_ends` marks where each ends.
    record_bytes: Vec<u8>,
    field_ends: Vec<usize>,
    /// The physical line the next byte belongs to (1-based).
    current_line: u64,
    record_start_line: u64,
    quoted_field_start_line: u64,
    /// Offset in the whole input of the first byte of the block being processed.
    block_start_offset: u64,
    /// A record ended by a CR waits to see whether an LF follows, so its `end_offset` covers the
    /// whole terminator; this is that record's end offset so far.
    pending_record_end_offset: Option<u64>,
    stopped_by_fatal_error: bool,
    finished: bool,
}

/// One result of parsing: a record, or the reason a record could not be read.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParsedRecord {
    Record(RawRecord),
    Error(RecordError),
}

/// One CSV record as text fields, before any mapping or validation.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RawRecord {
    /// The 1-based physical line on which the record starts (the header is line 1), so users can
    /// find it in their editor even when earlier quoted fields spanned several lines.
    pub line: u64,
    pub fields: Vec<String>,
    /// Byte offset in the whole input just past this record's line terminator; tells how much of
    /// the file is done, for progress reporting and resuming.
    pub end_offset: u64,
}

/// A record that could not be read.
///
/// Non-fatal errors concern one record and parsing goes on; after a fatal error the parser stops.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct RecordError {
    /// The line the record starts on; for [`RecordErrorKind::UnclosedQuote`], the line on which
    /// the unclosed quoted field starts.
    pub line: u64,
    pub kind: RecordErrorKind,
    pub fatal: bool,
}

/// Why a record could not be read; each kind calls for a different fix by the user.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordErrorKind {
    /// The record's bytes are not UTF-8 (often a file saved as Windows-1250 or Latin-1).
    NotUtf8 {
        /// 1-based number of the first field that is not valid UTF-8.
        field_number: usize,
        /// The first byte that cannot be decoded.
        invalid_byte: u8,
    },
    /// A quoted field is still open at the end of input: the rest of the file became one field.
    UnclosedQuote,
    /// A record grew beyond the configured limit, usually because of an unclosed quote.
    RecordTooLarge { limit_bytes: u64 },
}

impl RecordParser {
    /// `delimiter` is a single byte (b',' for now; later ';', '\t', '|'). `max_record_bytes`: a
    /// record larger than this is an error (protects memory from an unclosed quote in a huge file).
    pub fn new(delimiter: u8, max_record_bytes: usize) -> Self {
        Self {
            delimiter,
            max_record_bytes,
            state: ParserState::RecordStart,
            byte_order_mark: ByteOrderMarkCheck::Matched(0),
            record_bytes: Vec::new(),
            field_ends: Vec::new(),
            current_line: 1,
            record_start_line: 1,
            quoted_field_start_line: 1,
            block_start_offset: 0,
            pending_record_end_offset: None,
            stopped_by_fatal_error: false,
            finished: false,
        }
    }

    /// Feed the next block of bytes (any split, even mid-field or mid-UTF-8-char or between CR
    /// and LF). Complete records are pushed to `out`.
    ///
    /// Input after a fatal error or after [`RecordParser::finish`] is ignored.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<ParsedRecord>) {
        if self.stopped_by_fatal_error || self.finished {
            return;
        }
        let remaining_input = self.skip_byte_order_mark(input, out);
        self.process_block(remaining_input, out);
    }

    /// End of input: flush the last record (a last line without a final newline is a record) and
    /// report an unclosed quote.
    pub fn finish(&mut self, out: &mut Vec<ParsedRecord>) {
        if self.stopped_by_fatal_error || self.finished {
            return;
        }
        if let ByteOrderMarkCheck::Matched(bytes_matched) = self.byte_order_mark {
            // Input ended inside what looked like a byte order mark: those bytes are data.
            self.byte_order_mark = ByteOrderMarkCheck::Resolved;
            self.process_block(&UTF8_BYTE_ORDER_MARK[..bytes_matched], out);
        }
        self.finished = true;
        if self.stopped_by_fatal_error {
            return;
        }
        let end_of_input_offset = self.block_start_offset;
        match self.state {
            ParserState::RecordStart => {}
            ParserState::AfterCarriageReturn => self.emit_pending_record(out),
            ParserState::FieldStart | ParserState::Unquoted | ParserState::QuotedSawQuote => {
                self.end_field();
                self.emit_record(end_of_input_offset, out);
            }
            ParserState::Quoted | ParserState::QuotedAfterCarriageReturn => {
                self.stop_with_fatal_error(
                    self.quoted_field_start_line,
                    RecordErrorKind::UnclosedQuote,
                    out,
                );
            }
        }
        self.state = ParserState::RecordStart;
    }

    /// True after a fatal error (unclosed quote at end of input, or an over-large record): nothing
    /// more will be produced; further input is ignored.
    pub fn is_stopped(&self) -> bool {
        self.stopped_by_fatal_error
    }
}

impl fmt::Display for RecordError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            RecordErrorKind::NotUtf8 {
                field_number,
                invalid_byte,
            } => write!(
                formatter,
                "line {} is not valid UTF-8 text (byte 0x{:02X} at field {}); save the file as UTF-8",
                self.line, invalid_byte, field_number
            ),
            RecordErrorKind::UnclosedQuote => write!(
                formatter,
                "the quoted field that starts on line {} is never closed: the rest of the file was read as one field",
                self.line
            ),
            RecordErrorKind::RecordTooLarge { limit_bytes } => write!(
                formatter,
                "the record starting on line {} is larger than {} bytes (an unclosed quote?); the rest of the file was not read",
                self.line, limit_bytes
            ),
        }
    }
}

impl std::error::Error for RecordError {}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ParserState {
    /// No byte of the next record seen yet; line breaks here are blank lines.
    RecordStart,
    /// At the start of a field after a delimiter (or at the first byte of a record).
    FieldStart,
    Unquoted,
    Quoted,
    /// Inside a quoted field right after a CR, so an LF that follows is not another line.
    QuotedAfterCarriageReturn,
    /// Inside a quoted field right after a quote: either an escaped quote or the closing one.
    QuotedSawQuote,
    /// Right after a CR that ended a record or a blank line; an LF here belongs to that CR.
    AfterCarriageReturn,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ByteOrderMarkCheck {
    /// At the start of input, this many bytes of the byte order mark have been seen (and held).
    Matched(usize),
    Resolved,
}

impl RecordParser {
    /// Drops a byte order mark at the very start of input, even when it arrives split across
    /// blocks; returns the rest of `input` to parse.
    fn skip_byte_order_mark<'input>(
        &mut self,
        input: &'input [u8],
        out: &mut Vec<ParsedRecord>,
    ) -> &'input [u8] {
        let mut remaining_input = input;
        while let ByteOrderMarkCheck::Matched(bytes_matched) = self.byte_order_mark {
            let Some((&next_byte, rest)) = remaining_input.split_first() else {
                return remaining_input;
            };
            if next_byte == UTF8_BYTE_ORDER_MARK[bytes_matched] {
                remaining_input = rest;
                if bytes_matched + 1 == UTF8_BYTE_ORDER_MARK.len() {
                    self.byte_order_mark = ByteOrderMarkCheck::Resolved;
                    self.block_start_offset += UTF8_BYTE_ORDER_MARK.len() as u64;
                } else {
                    self.byte_order_mark = ByteOrderMarkCheck::Matched(bytes_matched + 1);
                }
            } else {
                // Not a byte order mark: the held bytes are ordinary data.
                self.byte_order_mark = ByteOrderMarkCheck::Resolved;
                self.process_block(&UTF8_BYTE_ORDER_MARK[..bytes_matched], out);
            }
        }
        remaining_input
    }

    /// The state machine; runs of ordinary bytes inside a field are copied as whole slices.
    fn process_block(&mut self, block: &[u8], out: &mut Vec<ParsedRecord>) {
        let delimiter = self.delimiter;
        let mut index = 0;
        while index < block.len() {
            if self.stopped_by_fatal_error {
                return;
            }
            let byte = block[index];
            let byte_offset = self.block_start_offset + index as u64;
            match self.state {
                ParserState::RecordStart => match byte {
                    b'\n' => {
                        self.current_line += 1;
                        index += 1;
                    }
                    b'\r' => {
                        self.current_line += 1;
                        self.state = ParserState::AfterCarriageReturn;
                        index += 1;
                    }
                    _ => {
                        self.record_start_line = self.current_line;
                        self.state = ParserState::FieldStart;
                    }
                },
                ParserState::FieldStart => {
                    if byte == b'"' {
                        self.quoted_field_start_line = self.current_line;
                        self.state = ParserState::Quoted;
                        index += 1;
                    } else if byte == delimiter {
                        self.end_field_at_delimiter(out);
                        index += 1;
                    } else if byte == b'\n' || byte == b'\r' {
                        self.end_record_at_line_break(byte, byte_offset, out);
                        index += 1;
                    } else {
                        self.state = ParserState::Unquoted;
                    }
                }
                ParserState::Unquoted => {
                    let run_length = block[index..]
                        .iter()
                        .position(|&candidate| {
                            candidate == delimiter || candidate == b'\n' || candidate == b'\r'
                        })
                        .unwrap_or(block.len() - index);
                    self.append_to_field(&block[index..index + run_length], out);
                    index += run_length;
                    if index < block.len() && !self.stopped_by_fatal_error {
                        let special_byte = block[index];
                        let special_byte_offset = self.block_start_offset + index as u64;
                        if special_byte == delimiter {
                            self.end_field_at_delimiter(out);
                            self.state = ParserState::FieldStart;
                        } else {
                            self.end_record_at_line_break(special_byte, special_byte_offset, out);
                        }
                        index += 1;
                    }
                }
                ParserState::Quoted => {
                    let run_length = block[index..]
                        .iter()
                        .position(|&candidate| {
                            candidate == b'"' || candidate == b'\n' || candidate == b'\r'
                        })
                        .unwrap_or(block.len() - index);
                    self.append_to_field(&block[index..index + run_length], out);
                    index += run_length;
                    if index < block.len() && !self.stopped_by_fatal_error {
                        match block[index] {
                            b'"' => self.state = ParserState::QuotedSawQuote,
                            b'\r' => {
                                self.append_to_field(b"\r", out);
                                self.current_line += 1;
                                self.state = ParserState::QuotedAfterCarriageReturn;
                            }
                            _ => {
                                self.append_to_field(b"\n", out);
                                self.current_line += 1;
                            }
                        }
                        index += 1;
                    }
                }
                ParserState::QuotedAfterCarriageReturn => {
                    if byte == b'\n' {
                        self.append_to_field(b"\n", out);
                        index += 1;
                    }
                    self.state = ParserState::Quoted;
                }
                ParserState::QuotedSawQuote => {
                    if byte == b'"' {
                        self.append_to_field(b"\"", out);
                        self.state = ParserState::Quoted;
                        index += 1;
                    } else if byte == delimiter {
                        self.end_field_at_delimiter(out);
                        self.state = ParserState::FieldStart;
                        index += 1;
                    } else if byte == b'\n' || byte == b'\r' {
                        self.end_record_at_line_break(byte, byte_offset, out);
                        index += 1;
                    } else {
                        // Lenient: text after the closing quote is appended to the field.
                        self.state = ParserState::Unquoted;
                    }
                }
                ParserState::AfterCarriageReturn => {
                    if byte == b'\n' {
                        if let Some(end_offset) = self.pending_record_end_offset.as_mut() {
                            *end_offset += 1;
                        }
                        index += 1;
                    }
                    self.emit_pending_record(out);
                    self.state = ParserState::RecordStart;
                }
            }
        }
        self.block_start_offset += block.len() as u64;
    }

    fn append_to_field(&mut self, bytes: &[u8], out: &mut Vec<ParsedRecord>) {
        if bytes.is_empty() {
            return;
        }
        self.record_bytes.extend_from_slice(bytes);
        self.stop_if_record_too_large(out);
    }

    /// Ends a field at a delimiter; delimiters count toward the record's size, so a huge line of
    /// only delimiters is caught too.
    fn end_field_at_delimiter(&mut self, out: &mut Vec<ParsedRecord>) {
        self.end_field();
        self.stop_if_record_too_large(out);
    }

    /// The record's size is its field contents plus one byte per delimiter seen so far.
    fn stop_if_record_too_large(&mut self, out: &mut Vec<ParsedRecord>) {
        if self.record_bytes.len() + self.field_ends.len() > self.max_record_bytes {
            self.stop_with_fatal_error(
                self.record_start_line,
                RecordErrorKind::RecordTooLarge {
                    limit_bytes: self.max_record_bytes as u64,
                },
                out,
            );
        }
    }

    fn end_field(&mut self) {
        self.field_ends.push(self.record_bytes.len());
    }

    /// Ends the current record at an unquoted CR or LF found at `byte_offset`.
    fn end_record_at_line_break(
        &mut self,
        line_break_byte: u8,
        byte_offset: u64,
        out: &mut Vec<ParsedRecord>,
    ) {
        self.end_field();
        self.current_line += 1;
        if line_break_byte == b'\r' {
            self.pending_record_end_offset = Some(byte_offset + 1);
            self.state = ParserState::AfterCarriageReturn;
        } else {
            self.emit_record(byte_offset + 1, out);
            self.state = ParserState::RecordStart;
        }
    }

    fn emit_pending_record(&mut self, out: &mut Vec<ParsedRecord>) {
        if let Some(end_offset) = self.pending_record_end_offset.take() {
            self.emit_record(end_offset, out);
        }
    }

    /// Decodes the buffered record and clears the buffers (keeping their capacity).
    fn emit_record(&mut self, end_offset: u64, out: &mut Vec<ParsedRecord>) {
        let mut fields = Vec::with_capacity(self.field_ends.len());
        let mut field_start = 0;
        let mut decoding_error = None;
        for (field_index, &field_end) in self.field_ends.iter().enumerate() {
            let field_bytes = &self.record_bytes[field_start..field_end];
            match std::str::from_utf8(field_bytes) {
                Ok(text) => fields.push(text.to_owned()),
                Err(error) => {
                    decoding_error = Some(RecordErrorKind::NotUtf8 {
                        field_number: field_index + 1,
                        invalid_byte: field_bytes[error.valid_up_to()],
                    });
                    break;
                }
            }
            field_start = field_end;
        }
        let parsed = match decoding_error {
            Some(kind) => ParsedRecord::Error(RecordError {
                line: self.record_start_line,
                kind,
                fatal: false,
            }),
            None => ParsedRecord::Record(RawRecord {
                line: self.record_start_line,
                fields,
                end_offset,
            }),
        };
        out.push(parsed);
        self.record_bytes.clear();
        self.field_ends.clear();
    }

    fn stop_with_fatal_error(
        &mut self,
        line: u64,
        kind: RecordErrorKind,
        out: &mut Vec<ParsedRecord>,
    ) {
        out.push(ParsedRecord::Error(RecordError {
            line,
            kind,
            fatal: true,
        }));
        self.stopped_by_fatal_error = true;
        // Give the memory back: nothing more will be parsed.
        self.record_bytes = Vec::new();
        self.field_ends = Vec::new();
        self.pending_record_end_offset = None;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENEROUS_LIMIT: usize = 1 << 20;

    /// A compact, readable form of the parser output: `3@17: a|b|c` is a record starting on line
    /// 3 ending at offset 17; errors are `error line 7 (fatal): ...`.
    fn describe(parsed: &[ParsedRecord]) -> Vec<String> {
        parsed
            .iter()
            .map(|item| match item {
                ParsedRecord::Record(record) => {
                    format!(
                        "{}@{}: {}",
                        record.line,
                        record.end_offset,
                        record.fields.join("|")
                    )
                }
                ParsedRecord::Error(error) => format!(
                    "error line {}{}: {}",
                    error.line,
                    if error.fatal { " (fatal)" } else { "" },
                    error
                ),
            })
            .collect()
    }

    fn parse_in_blocks(delimiter: u8, limit: usize, blocks: &[&[u8]]) -> Vec<ParsedRecord> {
        let mut parser = RecordParser::new(delimiter, limit);
        let mut out = Vec::new();
        for block in blocks {
            parser.feed(block, &mut out);
        }
        parser.finish(&mut out);
        out
    }

    fn check_with(delimiter: u8, limit: usize, input: &[u8], expected: &[&str]) {
        let whole = parse_in_blocks(delimiter, limit, &[input]);
        assert_eq!(
            describe(&whole),
            expected,
            "input {:?}",
            String::from_utf8_lossy(input)
        );
        // Every split point, and byte-at-a-time feeding, must give exactly the same output.
        for split_point in 0..=input.len() {
            let (first, second) = input.split_at(split_point);
            let split = parse_in_blocks(delimiter, limit, &[first, second]);
            assert_eq!(split, whole, "split at byte {split_point}");
        }
        let single_bytes: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(
            parse_in_blocks(delimiter, limit, &single_bytes),
            whole,
            "fed one byte at a time"
        );
    }

    fn check(input: &str, expected: &[&str]) {
        check_with(b',', GENEROUS_LIMIT, input.as_bytes(), expected);
    }

    #[test]
    fn simple_rows_become_records_with_line_numbers_and_end_offsets() {
        check("a,b,c\n1,2,3\n", &["1@6: a|b|c", "2@12: 1|2|3"]);
        check(
            "email\nx@example.com\n",
            &["1@6: email", "2@20: x@example.com"],
        );
        check("", &[]);
        check("single", &["1@6: single"]);
    }

    #[test]
    fn quoted_field_keeps_delimiters_and_doubled_quotes() {
        check(
            "\"a,b\",\"he said \"\"hi\"\"\"\n",
            &["1@23: a,b|he said \"hi\""],
        );
        check("\"\",x\n", &["1@5: |x"]);
        check("\"\"\"\"\n", &["1@5: \""]);
    }

    #[test]
    fn quoted_field_keeps_its_line_breaks_and_later_lines_are_counted() {
        check(
            "name,note\n\"Jan\",\"line one\nline two\"\nAnna,x\n",
            &[
                "1@10: name|note",
                "2@36: Jan|line one\nline two",
                "4@43: Anna|x",
            ],
        );
        check(
            "a,\"x\r\ny\r\nz\"\r\nb,c\r\n",
            &["1@13: a|x\r\ny\r\nz", "4@18: b|c"],
        );
        check("a,\"x\ry\"\rb,c\r", &["1@8: a|x\ry", "3@12: b|c"]);
    }

    #[test]
    fn crlf_lf_and_lone_cr_all_end_records() {
        check("a,b\r\nc,d\r\n", &["1@5: a|b", "2@10: c|d"]);
        check("a,b\nc,d\n", &["1@4: a|b", "2@8: c|d"]);
        check("a,b\rc,d\r", &["1@4: a|b", "2@8: c|d"]);
        check("a\r\nb\nc\rd", &["1@3: a", "2@5: b", "3@7: c", "4@8: d"]);
    }

    #[test]
    fn blank_lines_are_skipped_but_still_counted() {
        check("a\n\n\nb\n", &["1@2: a", "4@6: b"]);
        check("a\r\n\r\nb\r\n", &["1@3: a", "3@8: b"]);
        check("\n\na\n", &["3@4: a"]);
        check("a\r\r\nb", &["1@2: a", "3@5: b"]);
    }

    #[test]
    fn a_line_of_only_delimiters_is_a_record_of_empty_fields() {
        check(",,\nx,y,z\n", &["1@3: ||", "2@9: x|y|z"]);
        check("a,\n", &["1@3: a|"]);
    }

    #[test]
    fn a_trailing_line_without_newline_is_a_record() {
        check("a,b\nc,d", &["1@4: a|b", "2@7: c|d"]);
        check("a,\"b\"", &["1@5: a|b"]);
        check("a,", &["1@2: a|"]);
    }

    #[test]
    fn a_byte_order_mark_at_the_start_is_dropped() {
        check(
            "\u{FEFF}email,name\nx@example.com,X\n",
            &["1@14: email|name", "2@30: x@example.com|X"],
        );
        check("\u{FEFF}", &[]);
        // Only at the very start: elsewhere it is ordinary text.
        check("a\n\u{FEFF}b\n", &["1@2: a", "2@7: \u{FEFF}b"]);
    }

    #[test]
    fn a_partial_byte_order_mark_is_kept_as_data() {
        check_with(
            b',',
            GENEROUS_LIMIT,
            b"\xEF\xBBx\n",
            &["error line 1: line 1 is not valid UTF-8 text (byte 0xEF at field 1); save the file as UTF-8"],
        );
        check_with(b',', GENEROUS_LIMIT, b"\xEF", &["error line 1: line 1 is not valid UTF-8 text (byte 0xEF at field 1); save the file as UTF-8"]);
    }

    #[test]
    fn lenient_quotes_follow_the_csv_crate() {
        check("ab\"c,d\n", &["1@7: ab\"c|d"]);
        check("\"ab\"c,d\n", &["1@8: abc|d"]);
        check("\"ab\"c\"d\",e\n", &["1@11: abc\"d\"|e"]);
    }

    #[test]
    fn multibyte_characters_survive_any_split() {
        check(
            "imię,miasto\nŁucja,Kraków\n",
            &["1@13: imię|miasto", "2@28: Łucja|Kraków"],
        );
    }

    #[test]
    fn an_unclosed_quote_at_end_of_input_is_fatal_and_names_its_starting_line() {
        check(
            "a,b\nc,d\ne,\"never\nclosed\nx,y\n",
            &[
                "1@4: a|b",
                "2@8: c|d",
                "error line 3 (fatal): the quoted field that starts on line 3 is never closed: the rest of the file was read as one field",
            ],
        );
        check(
            "\"x\r",
            &["error line 1 (fatal): the quoted field that starts on line 1 is never closed: the rest of the file was read as one field"],
        );
    }

    #[test]
    fn a_record_larger_than_the_limit_is_fatal_and_stops_the_parser() {
        check_with(
            b',',
            10,
            b"a,b\n\"0123456789,more\nx,y\n",
            &[
                "1@4: a|b",
                "error line 2 (fatal): the record starting on line 2 is larger than 10 bytes (an unclosed quote?); the rest of the file was not read",
            ],
        );
        check_with(b',', 10, b"0123456789\n", &["1@11: 0123456789"]);
        check_with(b',', 10, b"01234,6789\n", &["1@11: 01234|6789"]);
        check_with(
            b',',
            10,
            b"a\n,,,,,,,,,,,,,,,,,,,,\n",
            &[
                "1@2: a",
                "error line 2 (fatal): the record starting on line 2 is larger than 10 bytes (an unclosed quote?); the rest of the file was not read",
            ],
        );
    }

    #[test]
    fn a_stopped_parser_ignores_further_input() {
        let mut parser = RecordParser::new(b',', 4);
        let mut out = Vec::new();
        parser.feed(b"abcdef\n", &mut out);
        assert!(parser.is_stopped());
        parser.feed(b"x\n", &mut out);
        parser.finish(&mut out);
        assert_eq!(out.len(), 1);
        assert!(matches!(
            &out[0],
            ParsedRecord::Error(RecordError {
                fatal: true,
                kind: RecordErrorKind::RecordTooLarge { limit_bytes: 4 },
                ..
            })
        ));
    }

    #[test]
    fn invalid_utf8_is_reported_for_that_record_and_parsing_continues() {
        check_with(
            b',',
            GENEROUS_LIMIT,
            b"name,city\nJan,Krak\xF3w\nAnna,Gda\xC5\x84sk\n",
            &[
                "1@10: name|city",
                "error line 2: line 2 is not valid UTF-8 text (byte 0xF3 at field 2); save the file as UTF-8",
                "3@34: Anna|Gdańsk",
            ],
        );
        let parsed = parse_in_blocks(b',', GENEROUS_LIMIT, &[b"\xE9\n"]);
        assert!(matches!(
            &parsed[0],
            ParsedRecord::Error(RecordError { fatal: false, .. })
        ));
    }

    #[test]
    fn other_delimiters_split_fields() {
        check_with(
            b';',
            GENEROUS_LIMIT,
            b"a;b,c;\"d;e\"\n",
            &["1@12: a|b,c|d;e"],
        );
        check_with(b'\t', GENEROUS_LIMIT, b"a\tb\n", &["1@4: a|b"]);
        check_with(b'|', GENEROUS_LIMIT, b"a|b\n", &["1@4: a|b"]);
    }

    #[test]
    fn records_travel_as_json() {
        let record = ParsedRecord::Record(RawRecord {
            line: 2,
            fields: vec!["a".to_owned()],
            end_offset: 9,
        });
        let json = serde_json::to_string(&record).expect("serializable");
        assert_eq!(
            json,
            r#"{"record":{"line":2,"fields":["a"],"end_offset":9}}"#
        );
        let back: ParsedRecord = serde_json::from_str(&json).expect("deserializable");
        assert_eq!(back, record);
    }
}
