//! Owns reading a contact file: its encoding and delimiter chosen once from its first block (or
//! forced), its text decoded as it streams, NUL characters made visible, and its records
//! parsed. The preview (the first 64 KiB) and ingest (the whole file) both read through it, so
//! their rules cannot drift.

use crate::csv_parser::{ParsedRecord, RecordParser, MAX_RECORD_BYTES};
use crate::encoding::{detect_encoding, NotText, TextDecoder, TextEncoding};
use crate::sniff::detect_delimiter;

/// A file being read, block by block.
#[derive(Debug)]
pub struct FileReader {
    decoder: TextDecoder,
    parser: RecordParser,
    delimiter: u8,
    /// Decoded text of the block in hand; kept to reuse its memory.
    text: Vec<u8>,
}

impl FileReader {
    /// Starts reading with the file's first block (`whole_file` when it is all of the file),
    /// pushing the records it completes to `records`. A forced encoding or delimiter wins over
    /// detection; a file that is not text (or not CSV) is refused either way, unless UTF-16 is
    /// forced, whose NUL bytes look binary to detection.
    pub fn open(
        first_block: &[u8],
        whole_file: bool,
        encoding: Option<TextEncoding>,
        delimiter: Option<u8>,
        records: &mut Vec<ParsedRecord>,
    ) -> Result<Self, NotText> {
        let detected = detect_encoding(first_block, whole_file);
        let encoding = match (encoding, detected) {
            (Some(forced @ (TextEncoding::Utf16Le | TextEncoding::Utf16Be)), _) => forced,
            (_, Err(not_text)) => return Err(not_text),
            (Some(forced), Ok(_)) => forced,
            (None, Ok(detected)) => detected,
        };
        let mut decoder = TextDecoder::new(encoding);
        let mut text = Vec::with_capacity(first_block.len());
        // A cut sample may end inside a character: without `last` the decoder holds it back.
        decoder.decode(first_block, whole_file, &mut text);
        replace_nul_characters(&mut text);
        let delimiter =
            delimiter.unwrap_or_else(|| detect_delimiter(&String::from_utf8_lossy(&text)));
        let mut parser = RecordParser::new(delimiter, MAX_RECORD_BYTES);
        parser.feed(&text, records);
        if whole_file {
            parser.finish(records);
        }
        Ok(Self {
            decoder,
            parser,
            delimiter,
            text,
        })
    }

    pub fn encoding(&self) -> TextEncoding {
        self.decoder.encoding()
    }

    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// Reads the next block of the file.
    pub fn read(&mut self, block: &[u8], records: &mut Vec<ParsedRecord>) {
        self.text.clear();
        self.decoder.decode(block, false, &mut self.text);
        replace_nul_characters(&mut self.text);
        self.parser.feed(&self.text, records);
    }

    /// The end of the file: the last record, and what an unclosed quote gives back.
    pub fn finish(&mut self, records: &mut Vec<ParsedRecord>) {
        self.text.clear();
        self.decoder.decode(&[], true, &mut self.text);
        replace_nul_characters(&mut self.text);
        self.parser.feed(&self.text, records);
        self.parser.finish(records);
    }
}

/// PostgreSQL cannot store U+0000 in text or JSON, so a NUL character (a stray byte) becomes
/// U+FFFD; validation then fails its cell as unreadable, and the row keeps its place in the
/// error file.
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Reads `file` in blocks of `block_size` and describes what came out. The delimiter is
    /// detected from the first block, so tests of small blocks give it.
    fn read(
        file: &[u8],
        block_size: usize,
        encoding: Option<TextEncoding>,
        delimiter: Option<u8>,
    ) -> Vec<String> {
        let mut blocks = file.chunks(block_size.max(1));
        let first = blocks.next().unwrap_or_default();
        let mut records = Vec::new();
        let mut reader = FileReader::open(
            first,
            first.len() == file.len(),
            encoding,
            delimiter,
            &mut records,
        )
        .expect("readable");
        for block in blocks {
            reader.read(block, &mut records);
        }
        if first.len() < file.len() {
            reader.finish(&mut records);
        }
        records
            .into_iter()
            .map(|record| match record {
                ParsedRecord::Record(record) => {
                    format!("{}: {}", record.line, record.fields.join("|"))
                }
                ParsedRecord::Error(error) => format!("{}: error", error.line),
            })
            .collect()
    }

    #[test]
    fn a_file_reads_alike_in_one_block_or_many() {
        let file = "imię;miasto\nŁucja;Kraków\n\"Jan\";\"Gdańsk\nPółnoc\"\n".as_bytes();
        let expected = ["1: imię|miasto", "2: Łucja|Kraków", "3: Jan|Gdańsk\nPółnoc"];
        for block_size in [1, 2, 3, 7, 16] {
            assert_eq!(
                read(file, block_size, None, Some(b';')),
                expected,
                "blocks of {block_size}"
            );
        }
        assert_eq!(read(file, file.len(), None, None), expected, "detected");
    }

    #[test]
    fn nul_characters_become_replacement_characters_and_the_file_stays_text() {
        let file = b"email,city\na@x.pl,Kra\x00k\nb@x.pl,Opole\n";
        assert_eq!(
            read(file, 5, None, Some(b',')),
            ["1: email|city", "2: a@x.pl|Kra\u{FFFD}k", "3: b@x.pl|Opole"]
        );
    }

    #[test]
    fn a_forced_encoding_wins_but_a_file_that_is_not_text_is_refused_anyway() {
        let windows_1250 = b"imi\xea,miasto\n\xa3ucja,Krak\xf3w\n";
        assert_eq!(
            read(windows_1250, 4, Some(TextEncoding::Windows1250), Some(b',')),
            ["1: imię|miasto", "2: Łucja|Kraków"]
        );
        let refused = FileReader::open(
            b"PK\x03\x04\x00\x00",
            true,
            Some(TextEncoding::Windows1252),
            None,
            &mut Vec::new(),
        );
        assert!(refused.is_err());
        // UTF-16 forced: its NUL bytes do not make it binary.
        let utf16: Vec<u8> = "a,b\n1,2\n"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect();
        assert_eq!(
            read(&utf16, 3, Some(TextEncoding::Utf16Le), Some(b',')),
            ["1: a|b", "2: 1|2"]
        );
    }

    #[test]
    fn a_cut_sample_leaves_its_last_incomplete_record_out() {
        let mut records = Vec::new();
        let reader = FileReader::open(b"a,b\n1,2\n3,", false, None, Some(b','), &mut records)
            .expect("readable");
        assert_eq!(records.len(), 2);
        assert_eq!(reader.delimiter(), b',');
    }
}
