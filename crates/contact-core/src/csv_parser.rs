//! Owns CSV decoding: a push-style RFC 4180 record parser that takes bytes in blocks of any size.
//!
//! The parser buffers only the record it is currently reading, so memory stays flat however large
//! the file is. It is lenient like the `csv` crate for input that is not strictly RFC 4180 (a quote
//! inside an unquoted field is literal; text after a closing quote is appended to the field).
//!
//! **A bad record never ends the file.** A record that grows past the size limit on its first
//! line fails, and reading goes on after that line, without keeping its bytes. A quoted field
//! that runs over line ends and then reaches the size limit or the end of the input without
//! its closing quote is taken back: the record is read as ending at its first line end and
//! fails as an unclosed quote, and the lines after it, which the field had swallowed (at most
//! the size limit, already held), are read again as records. Every record of the file is
//! therefore either read or reported, with the line it starts on.

use std::fmt;

/// The largest record the import reads (256 KiB): a larger one fails, usually because of an
/// unclosed quote, and the parser's memory stays bounded.
pub const MAX_RECORD_BYTES: usize = 256 * 1024;

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
    /// Offset in the whole input of the first byte of the block being processed.
    block_start_offset: u64,
    /// A record ended by a CR waits to see whether an LF follows, so its `end_offset` covers the
    /// whole terminator; this is that record's end offset so far.
    pending_record_end_offset: Option<u64>,
    /// Set once a quoted field of the current record crosses its first line end: where reading
    /// starts again if the quote turns out never to close.
    take_back: Option<TakeBack>,
    finished: bool,
}

/// Where a record whose quote never closes is read again from.
#[derive(Debug, Clone)]
struct TakeBack {
    /// The line after the record's first line end, and its offset in the input.
    line: u64,
    offset: u64,
    /// The input from `offset` on, as far as it has been read (at most the size limit).
    bytes: Vec<u8>,
    /// The first line end was a CR: an LF right after it still belongs to it.
    after_carriage_return: bool,
}

/// One result of parsing: a record, or the reason a record could not be read (reading goes on).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ParsedRecord {
    Record(RawRecord),
    Error(RecordError),
}

/// One CSV record as text fields, before any mapping or validation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RawRecord {
    /// The 1-based physical line on which the record starts (the header is line 1), so users can
    /// find it in their editor even when earlier quoted fields spanned several lines.
    pub line: u64,
    pub fields: Vec<String>,
    /// Byte offset in the whole input just past this record's line terminator; tells how much of
    /// the file is done, for progress reporting and resuming.
    pub end_offset: u64,
}

/// A record that could not be read; the records after it are read on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordError {
    /// The line the record starts on.
    pub line: u64,
    pub kind: RecordErrorKind,
}

/// Why a record could not be read; each kind calls for a different fix by the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordErrorKind {
    /// The record's bytes are not UTF-8 (often a file saved as Windows-1250 or Latin-1).
    NotUtf8 {
        /// 1-based number of the first field that is not valid UTF-8.
        field_number: usize,
        /// The first byte that cannot be decoded.
        invalid_byte: u8,
    },
    /// A quoted field does not close within the size limit or before the end of the input: the
    /// record was read as ending at its first line end.
    UnclosedQuote { limit_bytes: u64 },
    /// A record grew beyond the size limit on its first line: the line was skipped.
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
            block_start_offset: 0,
            pending_record_end_offset: None,
            take_back: None,
            finished: false,
        }
    }

    /// Feed the next block of bytes (any split, even mid-field or mid-UTF-8-char or between CR
    /// and LF). Complete records are pushed to `out`.
    ///
    /// Input after [`RecordParser::finish`] is ignored.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<ParsedRecord>) {
        if self.finished {
            return;
        }
        let remaining_input = self.skip_byte_order_mark(input, out);
        self.process_block(remaining_input, out);
    }

    /// End of input: flush the last record (a last line without a final newline is a record);
    /// a quoted field still open is taken back (see the module's documentation).
    pub fn finish(&mut self, out: &mut Vec<ParsedRecord>) {
        if self.finished {
            return;
        }
        if let ByteOrderMarkCheck::Matched(bytes_matched) = self.byte_order_mark {
            // Input ended inside what looked like a byte order mark: those bytes are data.
            self.byte_order_mark = ByteOrderMarkCheck::Resolved;
            self.process_block(&UTF8_BYTE_ORDER_MARK[..bytes_matched], out);
        }
        loop {
            let end_of_input_offset = self.block_start_offset;
            match self.state {
                ParserState::RecordStart | ParserState::SkippingLine => {}
                ParserState::AfterCarriageReturn => self.emit_pending_record(out),
                ParserState::FieldStart | ParserState::Unquoted | ParserState::QuotedSawQuote => {
                    self.end_field();
                    self.emit_record(end_of_input_offset, out);
                }
                ParserState::Quoted | ParserState::QuotedAfterCarriageReturn => {
                    // The lines the field swallowed are read again; they may end the same way.
                    if let Some(again) = self.give_up_quote(out) {
                        self.process_block(&again, out);
                        continue;
                    }
                }
            }
            break;
        }
        self.state = ParserState::RecordStart;
        self.finished = true;
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
            RecordErrorKind::UnclosedQuote { limit_bytes } => write!(
                formatter,
                "line {} opens a quote that is not closed within {} or before the end of the file: \
                 the row fails, and the lines after it are read as rows",
                self.line,
                size(*limit_bytes)
            ),
            RecordErrorKind::RecordTooLarge { limit_bytes } => write!(
                formatter,
                "the row on line {} is larger than {}: it fails, and reading goes on at the next line",
                self.line,
                size(*limit_bytes)
            ),
        }
    }
}

impl std::error::Error for RecordError {}

fn size(bytes: u64) -> String {
    if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} bytes")
    }
}

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
    /// The rest of a line whose record failed as too large: skipped up to the line end.
    SkippingLine,
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

    /// Runs the state machine over `block`, and again over what a take-back gives back.
    fn process_block(&mut self, block: &[u8], out: &mut Vec<ParsedRecord>) {
        let mut again = self.run(block, out);
        while let Some(input) = again {
            again = self.run(&input, out);
        }
    }

    /// The state machine; runs of ordinary bytes inside a field are copied as whole slices.
    /// Returns the input to read again when a quote was given up (see [`TakeBack`]).
    fn run(&mut self, block: &[u8], out: &mut Vec<ParsedRecord>) -> Option<Vec<u8>> {
        let delimiter = self.delimiter;
        // Where in `block` the bytes a take-back would need start, while one is armed.
        let mut kept_from = 0;
        let mut index = 0;
        loop {
            if self.is_too_large() {
                if let Some(again) = self.give_up_record(block, kept_from, index, out) {
                    return Some(again);
                }
            }
            if index >= block.len() {
                break;
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
                        self.state = ParserState::Quoted;
                        index += 1;
                    } else if byte == delimiter {
                        self.end_field();
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
                    self.record_bytes
                        .extend_from_slice(&block[index..index + run_length]);
                    index += run_length;
                    if index < block.len() && !self.is_too_large() {
                        let special_byte = block[index];
                        let special_byte_offset = self.block_start_offset + index as u64;
                        if special_byte == delimiter {
                            self.end_field();
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
                    self.record_bytes
                        .extend_from_slice(&block[index..index + run_length]);
                    index += run_length;
                    if index < block.len() && !self.is_too_large() {
                        let special_byte = block[index];
                        index += 1;
                        if special_byte == b'"' {
                            self.state = ParserState::QuotedSawQuote;
                        } else {
                            self.record_bytes.push(special_byte);
                            self.current_line += 1;
                            if self.take_back.is_none() {
                                // The field's first line end: if its quote never closes, the
                                // record is read as ending here, and reading starts again after.
                                self.take_back = Some(TakeBack {
                                    line: self.current_line,
                                    offset: self.block_start_offset + index as u64,
                                    bytes: Vec::new(),
                                    after_carriage_return: special_byte == b'\r',
                                });
                                kept_from = index;
                            }
                            if special_byte == b'\r' {
                                self.state = ParserState::QuotedAfterCarriageReturn;
                            }
                        }
                    }
                }
                ParserState::QuotedAfterCarriageReturn => {
                    if byte == b'\n' {
                        self.record_bytes.push(b'\n');
                        index += 1;
                        if let Some(take_back) = self.take_back.as_mut() {
                            if take_back.after_carriage_return
                                && take_back.bytes.is_empty()
                                && kept_from + 1 == index
                            {
                                // CR LF is one line end: reading would start after both.
                                take_back.offset += 1;
                                take_back.after_carriage_return = false;
                                kept_from = index;
                            }
                        }
                    }
                    self.state = ParserState::Quoted;
                }
                ParserState::QuotedSawQuote => {
                    if byte == b'"' {
                        self.record_bytes.push(b'"');
                        self.state = ParserState::Quoted;
                        index += 1;
                    } else if byte == delimiter {
                        self.end_field();
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
                ParserState::SkippingLine => {
                    let line_end = block[index..]
                        .iter()
                        .position(|&candidate| candidate == b'\n' || candidate == b'\r');
                    match line_end {
                        None => index = block.len(),
                        Some(length) => {
                            index += length + 1;
                            self.current_line += 1;
                            self.state = if block[index - 1] == b'\r' {
                                ParserState::AfterCarriageReturn
                            } else {
                                ParserState::RecordStart
                            };
                        }
                    }
                }
            }
        }
        if let Some(take_back) = self.take_back.as_mut() {
            take_back.bytes.extend_from_slice(&block[kept_from..]);
        }
        self.block_start_offset += block.len() as u64;
        None
    }

    /// The record's size is its field contents plus one byte per delimiter seen so far, so a
    /// huge line of only delimiters is caught too.
    fn is_too_large(&self) -> bool {
        self.record_bytes.len() + self.field_ends.len() > self.max_record_bytes
    }

    /// The record is too large. On its first line it fails and the rest of the line is skipped;
    /// after a quoted field crossed a line end, the quote is given up (see [`TakeBack`]) and the
    /// input to read again is returned: the bytes after the record's first line end, up to
    /// `index`, then the rest of `block`.
    fn give_up_record(
        &mut self,
        block: &[u8],
        kept_from: usize,
        index: usize,
        out: &mut Vec<ParsedRecord>,
    ) -> Option<Vec<u8>> {
        let Some(take_back) = self.take_back.as_mut() else {
            out.push(ParsedRecord::Error(RecordError {
                line: self.record_start_line,
                kind: RecordErrorKind::RecordTooLarge {
                    limit_bytes: self.max_record_bytes as u64,
                },
            }));
            self.forget_record();
            self.state = ParserState::SkippingLine;
            return None;
        };
        take_back.bytes.extend_from_slice(&block[kept_from..index]);
        let mut again = self.give_up_quote(out)?;
        again.extend_from_slice(&block[index..]);
        Some(again)
    }

    /// Fails the record whose quote never closes as ending at its first line end, and rewinds
    /// to the line after it; returns the input to read again from there (none when the field
    /// never crossed a line end: the record was its last line).
    fn give_up_quote(&mut self, out: &mut Vec<ParsedRecord>) -> Option<Vec<u8>> {
        out.push(ParsedRecord::Error(RecordError {
            line: self.record_start_line,
            kind: RecordErrorKind::UnclosedQuote {
                limit_bytes: self.max_record_bytes as u64,
            },
        }));
        let take_back = self.take_back.take();
        self.forget_record();
        self.state = ParserState::RecordStart;
        let take_back = take_back?;
        self.current_line = take_back.line;
        self.block_start_offset = take_back.offset;
        if take_back.after_carriage_return {
            self.state = ParserState::AfterCarriageReturn;
        }
        Some(take_back.bytes)
    }

    fn forget_record(&mut self) {
        self.record_bytes.clear();
        self.field_ends.clear();
        self.pending_record_end_offset = None;
        self.take_back = None;
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
        // The record ended: its quotes all closed.
        self.take_back = None;
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
}

#[cfg(test)]
mod tests {
    use super::*;

    const GENEROUS_LIMIT: usize = 1 << 20;

    /// A compact, readable form of the parser output: `3@17: a|b|c` is a record starting on line
    /// 3 ending at offset 17; errors are `error line 7: unclosed quote` or `… too large`.
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
                ParsedRecord::Error(error) => match error.kind {
                    RecordErrorKind::UnclosedQuote { .. } => {
                        format!("error line {}: unclosed quote", error.line)
                    }
                    RecordErrorKind::RecordTooLarge { .. } => {
                        format!("error line {}: too large", error.line)
                    }
                    RecordErrorKind::NotUtf8 { .. } => {
                        format!("error line {}: {error}", error.line)
                    }
                },
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
    fn a_quote_open_at_the_end_of_input_fails_its_first_line_and_the_rest_is_read_again() {
        check(
            "a,b\nc,d\ne,\"never\nclosed\nx,y\n",
            &[
                "1@4: a|b",
                "2@8: c|d",
                "error line 3: unclosed quote",
                "4@24: closed",
                "5@28: x|y",
            ],
        );
        check("\"x\r", &["error line 1: unclosed quote"]);
        check("a,\"x", &["error line 1: unclosed quote"]);
        check(
            "a\r\n\"x\r\ny,z\r\n",
            &["1@3: a", "error line 2: unclosed quote", "3@12: y|z"],
        );
        check(
            "a\r\"x\ry,z\r",
            &["1@2: a", "error line 2: unclosed quote", "3@9: y|z"],
        );
    }

    #[test]
    fn a_quote_that_runs_past_the_limit_is_taken_back_and_every_later_row_is_read() {
        check_with(
            b',',
            20,
            b"a\n\"open,\nb,c\nd,e\nf,g\nh,i\nj,k\n",
            &[
                "1@2: a",
                "error line 2: unclosed quote",
                "3@13: b|c",
                "4@17: d|e",
                "5@21: f|g",
                "6@25: h|i",
                "7@29: j|k",
            ],
        );
        // Given up again while read again: each bad line fails, the rest are rows.
        check_with(
            b',',
            8,
            b"\"aaaa\n\"bbbb\ncc\ndd\nee\n",
            &[
                "error line 1: unclosed quote",
                "error line 2: unclosed quote",
                "3@15: cc",
                "4@18: dd",
                "5@21: ee",
            ],
        );
        // A quoted field within the limit keeps its line ends.
        check_with(b',', 20, b"\"x\ny\",z\nw\n", &["1@8: x\ny|z", "3@10: w"]);
    }

    #[test]
    fn a_record_larger_than_the_limit_on_its_line_fails_and_reading_goes_on() {
        check_with(
            b',',
            10,
            b"a,b\n\"0123456789,more\nx,y\n",
            &["1@4: a|b", "error line 2: too large", "3@25: x|y"],
        );
        check_with(b',', 10, b"0123456789\n", &["1@11: 0123456789"]);
        check_with(b',', 10, b"01234,6789\n", &["1@11: 01234|6789"]);
        check_with(
            b',',
            10,
            b"a\n,,,,,,,,,,,,,,,,,,,,\n",
            &["1@2: a", "error line 2: too large"],
        );
        check_with(
            b',',
            10,
            b"first\r\n0123456789abcdef\r\nlast\r\n",
            &["1@7: first", "error line 2: too large", "3@31: last"],
        );
        check_with(
            b',',
            4,
            b"abcdef\nx\n",
            &["error line 1: too large", "2@9: x"],
        );
    }

    #[test]
    fn a_long_line_is_skipped_without_being_kept() {
        let mut parser = RecordParser::new(b',', 16);
        let mut out = Vec::new();
        parser.feed(b"a\n", &mut out);
        for _ in 0..1000 {
            parser.feed(&[b'x'; 1024], &mut out);
            assert!(
                parser.record_bytes.capacity() <= 4096,
                "the skipped line is not kept"
            );
        }
        parser.feed(b"\nb\n", &mut out);
        parser.finish(&mut out);
        assert_eq!(
            describe(&out),
            ["1@2: a", "error line 2: too large", "3@1024005: b"]
        );
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
        let parsed = parse_in_blocks(b',', GENEROUS_LIMIT, &[b"\xE9\na\n"]);
        assert_eq!(describe(&parsed)[1], "2@4: a");
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
}
