//! Owns text encodings: telling which encoding a file is in, and decoding it to UTF-8 in blocks.
//!
//! Spreadsheet programs on Polish Windows save CSV files as Windows-1250, older systems as
//! ISO-8859-2, and Excel's "Unicode text" as UTF-16; everything after this module sees UTF-8 only.

use std::fmt;
use std::str::FromStr;

/// The encodings contact files arrive in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TextEncoding {
    Utf8,
    Utf16Le,
    Utf16Be,
    Windows1250,
    Iso8859_2,
    Windows1252,
}

/// The file is not text at all (an image, an archive, a spreadsheet's native format), so reading
/// it as CSV would only produce garbage rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotText {
    /// Why, in words for the user; shown after "the file is not text: ".
    pub reason: String,
}

/// Detects the encoding from the start of a file, on the evidence of all of `sample`.
///
/// `whole_file` is true when `sample` is the whole file; otherwise a multi-byte character may be
/// cut at the end of the sample, which does not make it invalid UTF-8. Order: byte order mark;
/// files that are something else than CSV, named for what they are (a spreadsheet, JSON, a PDF,
/// a binary file); UTF-16 without a byte order mark (every other byte NUL); UTF-8 when most of
/// the non-ASCII characters are valid UTF-8 (a few stray bytes then fail their rows, and the
/// rest keep every letter); otherwise a statistical guess among the single-byte encodings
/// (Central European ones first, as the service's users are mostly Polish). A few NUL or
/// control bytes in an otherwise textual file only fail the rows they are in.
pub fn detect_encoding(sample: &[u8], whole_file: bool) -> Result<TextEncoding, NotText> {
    if sample.starts_with(&[0xEF, 0xBB, 0xBF]) {
        return Ok(TextEncoding::Utf8);
    }
    if sample.starts_with(&[0xFF, 0xFE]) {
        return Ok(TextEncoding::Utf16Le);
    }
    if sample.starts_with(&[0xFE, 0xFF]) {
        return Ok(TextEncoding::Utf16Be);
    }
    if let Some(format) = known_other_format(sample) {
        return Err(NotText {
            reason: format.to_owned(),
        });
    }
    if let Some(utf16) = utf16_without_byte_order_mark(sample) {
        return Ok(utf16);
    }
    let nul_count = sample.iter().filter(|&&byte| byte == 0).count();
    let control_byte_count = sample
        .iter()
        .filter(|&&byte| is_unexpected_control_byte(byte))
        .count();
    // A stray byte fails its row; a binary file has them everywhere.
    if nul_count * 100 > sample.len() || control_byte_count * 10 > sample.len() {
        return Err(NotText {
            reason: format!(
                "{} of its first {} bytes are NUL or control bytes (a binary file?)",
                control_byte_count,
                sample.len()
            ),
        });
    }
    if mostly_utf8(sample, whole_file) {
        return Ok(TextEncoding::Utf8);
    }
    let mut detector = chardetng::EncodingDetector::new();
    detector.feed(sample, whole_file);
    let guess = detector.guess(None, false);
    Ok(if guess == encoding_rs::WINDOWS_1250 {
        TextEncoding::Windows1250
    } else if guess == encoding_rs::ISO_8859_2 {
        TextEncoding::Iso8859_2
    } else {
        TextEncoding::Windows1252
    })
}

/// Files people upload by mistake, recognized by how they start.
fn known_other_format(sample: &[u8]) -> Option<&'static str> {
    const SIGNATURES: [(&[u8], &str); 6] = [
        (
            b"PK\x03\x04",
            "it is a ZIP archive, most likely an Excel (.xlsx) or OpenDocument (.ods) spreadsheet: save it as CSV",
        ),
        (
            b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1",
            "it is an Excel 97-2003 (.xls) workbook: save it as CSV",
        ),
        (b"%PDF", "it is a PDF document, not a CSV file"),
        (b"\x1F\x8B", "it is a gzip archive: unpack it first"),
        (b"{\\rtf", "it is a rich text (RTF) document, not a CSV file"),
        (b"<?xml", "it is an XML document (an Excel XML spreadsheet?): save it as CSV"),
    ];
    if let Some((_, format)) = SIGNATURES
        .iter()
        .find(|(signature, _)| sample.starts_with(signature))
    {
        return Some(format);
    }
    let text = sample
        .iter()
        .skip_while(|byte| byte.is_ascii_whitespace())
        .take(2)
        .copied()
        .collect::<Vec<u8>>();
    match text.as_slice() {
        [b'{', b'"' | b'\n' | b'\r' | b' '] | [b'[', b'{' | b'"' | b'[' | b'\n' | b'\r'] => {
            Some("it is JSON, not CSV: export the contacts as a CSV file")
        }
        _ if sample.len() >= 5 && sample[..5].eq_ignore_ascii_case(b"<html") => {
            Some("it is an HTML page, not a CSV file")
        }
        _ => None,
    }
}

/// UTF-16 text without a byte order mark: mostly ASCII, so one byte of each pair is NUL.
fn utf16_without_byte_order_mark(sample: &[u8]) -> Option<TextEncoding> {
    let pairs = sample.len() / 2;
    if pairs < 8 {
        return None;
    }
    let nul_at = |parity: usize| {
        sample
            .chunks_exact(2)
            .filter(|pair| pair[parity] == 0)
            .count()
    };
    let (even, odd) = (nul_at(0), nul_at(1));
    // Letters in one byte, NUL in the other, for nearly every pair.
    if odd * 10 >= pairs * 7 && even * 10 < pairs {
        Some(TextEncoding::Utf16Le)
    } else if even * 10 >= pairs * 7 && odd * 10 < pairs {
        Some(TextEncoding::Utf16Be)
    } else {
        None
    }
}

/// True when the non-ASCII characters of `sample` are, for the most part, valid UTF-8: a file
/// written as UTF-8 with a few stray bytes is UTF-8, while a single-byte encoding's letters are
/// almost never valid UTF-8 sequences.
fn mostly_utf8(sample: &[u8], whole_file: bool) -> bool {
    let (mut valid, mut invalid) = (0usize, 0usize);
    let mut rest = sample;
    loop {
        match std::str::from_utf8(rest) {
            Ok(text) => {
                valid += text.bytes().filter(|byte| !byte.is_ascii()).count();
                break;
            }
            Err(error) => {
                let (good, bad) = rest.split_at(error.valid_up_to());
                valid += good.iter().filter(|byte| !byte.is_ascii()).count();
                match error.error_len() {
                    Some(length) => {
                        invalid += 1;
                        rest = &bad[length..];
                    }
                    // The sample ends inside a character: only an error if it is all there is.
                    None => {
                        invalid += usize::from(whole_file);
                        break;
                    }
                }
            }
        }
    }
    // `valid` counts bytes (2 to 4 per character), `invalid` sequences: nine valid characters
    // of ten at the least.
    invalid == 0 || valid >= invalid * 2 * 9
}

/// Turns a file's bytes into UTF-8, block by block, whatever the split between blocks.
///
/// Use one decoder per file, like the CSV parser it feeds.
pub struct TextDecoder {
    /// None for UTF-8, which passes through untouched.
    decoder: Option<encoding_rs::Decoder>,
    encoding: TextEncoding,
    /// Set by the call with `last`; encoding_rs decoders must not be used after it.
    finished: bool,
}

impl TextEncoding {
    /// Every supported encoding, in the order they are listed to users.
    pub const ALL: [TextEncoding; 6] = [
        Self::Utf8,
        Self::Utf16Le,
        Self::Utf16Be,
        Self::Windows1250,
        Self::Iso8859_2,
        Self::Windows1252,
    ];

    /// The canonical name, as shown to users and sent over the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::Utf8 => "UTF-8",
            Self::Utf16Le => "UTF-16LE",
            Self::Utf16Be => "UTF-16BE",
            Self::Windows1250 => "windows-1250",
            Self::Iso8859_2 => "ISO-8859-2",
            Self::Windows1252 => "windows-1252",
        }
    }

    fn encoding_rs_encoding(self) -> &'static encoding_rs::Encoding {
        match self {
            Self::Utf8 => encoding_rs::UTF_8,
            Self::Utf16Le => encoding_rs::UTF_16LE,
            Self::Utf16Be => encoding_rs::UTF_16BE,
            Self::Windows1250 => encoding_rs::WINDOWS_1250,
            Self::Iso8859_2 => encoding_rs::ISO_8859_2,
            Self::Windows1252 => encoding_rs::WINDOWS_1252,
        }
    }
}

impl fmt::Display for TextEncoding {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter.write_str(self.name())
    }
}

impl FromStr for TextEncoding {
    type Err = String;

    /// Accepts the canonical names and the labels people commonly type ("utf8", "cp1250",
    /// "latin2", "latin1", ...), ignoring case.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let label = text.trim().to_ascii_lowercase();
        let encoding = match label.as_str() {
            "utf-8" | "utf8" => Self::Utf8,
            "utf-16le" | "utf16le" | "utf-16" | "utf16" | "ucs-2" | "unicode" => Self::Utf16Le,
            "utf-16be" | "utf16be" => Self::Utf16Be,
            "windows-1250" | "windows1250" | "cp1250" | "cp-1250" | "win1250" | "win-1250"
            | "x-cp1250" => Self::Windows1250,
            "iso-8859-2" | "iso8859-2" | "iso_8859-2" | "iso88592" | "latin2" | "latin-2"
            | "l2" => Self::Iso8859_2,
            "windows-1252" | "windows1252" | "cp1252" | "cp-1252" | "win1252" | "win-1252"
            | "x-cp1252" | "iso-8859-1" | "iso8859-1" | "iso_8859-1" | "iso88591" | "latin1"
            | "latin-1" | "l1" | "ascii" | "us-ascii" => Self::Windows1252,
            _ => {
                let supported: Vec<&str> =
                    Self::ALL.iter().map(|encoding| encoding.name()).collect();
                return Err(format!(
                    "unknown encoding \"{}\" (supported: {})",
                    text.trim(),
                    supported.join(", ")
                ));
            }
        };
        Ok(encoding)
    }
}

impl fmt::Display for NotText {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "the file is not text: {}", self.reason)
    }
}

impl std::error::Error for NotText {}

impl TextDecoder {
    pub fn new(encoding: TextEncoding) -> Self {
        let decoder = match encoding {
            TextEncoding::Utf8 => None,
            // A UTF-16 file is only recognized by its byte order mark, which is not text.
            TextEncoding::Utf16Le | TextEncoding::Utf16Be => Some(
                encoding
                    .encoding_rs_encoding()
                    .new_decoder_with_bom_removal(),
            ),
            TextEncoding::Windows1250 | TextEncoding::Iso8859_2 | TextEncoding::Windows1252 => {
                Some(
                    encoding
                        .encoding_rs_encoding()
                        .new_decoder_without_bom_handling(),
                )
            }
        };
        Self {
            decoder,
            encoding,
            finished: false,
        }
    }

    pub fn encoding(&self) -> TextEncoding {
        self.encoding
    }

    /// Appends the UTF-8 text of `input` to `output`; call with `last` true once at the end (the
    /// input may then be empty) so a character cut at the very end becomes U+FFFD.
    ///
    /// UTF-8 passes through untouched: the CSV parser reports invalid UTF-8 per record, naming
    /// the line. Other encodings never fail; bytes they cannot decode become U+FFFD.
    pub fn decode(&mut self, input: &[u8], last: bool, output: &mut Vec<u8>) {
        if self.finished {
            return;
        }
        self.finished = last;
        let Some(decoder) = self.decoder.as_mut() else {
            output.extend_from_slice(input);
            return;
        };
        let mut remaining_input = input;
        loop {
            // Room for the worst case, so one round normally decodes everything.
            let room = decoder
                .max_utf8_buffer_length(remaining_input.len())
                .unwrap_or(MAX_DECODE_ROUND_BYTES)
                .clamp(MIN_DECODE_ROUND_BYTES, MAX_DECODE_ROUND_BYTES);
            let start = output.len();
            output.resize(start + room, 0);
            let (result, bytes_read, bytes_written, _had_replacements) =
                decoder.decode_to_utf8(remaining_input, &mut output[start..], last);
            output.truncate(start + bytes_written);
            remaining_input = &remaining_input[bytes_read..];
            if result == encoding_rs::CoderResult::InputEmpty {
                return;
            }
        }
    }
}

impl fmt::Debug for TextDecoder {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("TextDecoder")
            .field("encoding", &self.encoding)
            .finish_non_exhaustive()
    }
}

/// encoding_rs needs room for at least one character plus a replacement at the end.
const MIN_DECODE_ROUND_BYTES: usize = 16;
/// Caps the zeroed room reserved per round when a block is huge.
const MAX_DECODE_ROUND_BYTES: usize = 1 << 20;

/// Control bytes that do not appear in text files; tab, CR, LF and form feed do.
fn is_unexpected_control_byte(byte: u8) -> bool {
    (byte < 0x20 && !matches!(byte, b'\t' | b'\r' | b'\n' | 0x0C)) || byte == 0x7F
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLISH_CSV: &str = "imię;nazwisko;miasto;ulica;uwagi\n\
        Zażółć;Gęślą;Łódź;ul. Piotrkowska 1;jaźń\n\
        Anna;Wiśniewska;Kraków;ul. Floriańska 3;źródło\n\
        Łucja;Kowalczyk;Gdańsk;ul. Długa 12;świeże\n\
        Małgorzata;Wójcik;Poznań;ul. Święty Marcin 5;ślub\n\
        Stanisław;Kamiński;Wrocław;ul. Świdnicka 8;żółw\n\
        Grzegorz;Lewandowski;Szczecin;al. Wojska Polskiego 7;źrebię\n\
        Józef;Zieliński;Białystok;ul. Lipowa 14;sąsiad\n\
        Agnieszka;Szymańska;Rzeszów;ul. Słowackiego 4;ślęczeć\n\
        Jędrzej;Woźniak;Kielce;ul. Sienkiewicza 9;błąd\n\
        Bożena;Dąbrowska;Toruń;ul. Szeroka 2;źdźbło\n";

    const GERMAN_AND_FRENCH_CSV: &str = "Vorname,Nachname,Stadt,Bemerkung\n\
        Jürgen,Müller,München,Größe über Maß\n\
        Käthe,Schäfer,Düsseldorf,Straße für Öffnungszeiten\n\
        François,Lefèvre,Besançon,très agréable à côté\n\
        Hélène,Dupré,Orléans,déjà été noël\n\
        Günther,Weiß,Köln,schöne Grüße\n";

    fn encode(text: &str, encoding: &'static encoding_rs::Encoding) -> Vec<u8> {
        let (bytes, _, had_unmappable) = encoding.encode(text);
        assert!(!had_unmappable, "{text:?} fits {}", encoding.name());
        bytes.into_owned()
    }

    fn utf16(text: &str, little_endian: bool) -> Vec<u8> {
        let mut bytes = if little_endian {
            vec![0xFF, 0xFE]
        } else {
            vec![0xFE, 0xFF]
        };
        for unit in text.encode_utf16() {
            let pair = if little_endian {
                unit.to_le_bytes()
            } else {
                unit.to_be_bytes()
            };
            bytes.extend_from_slice(&pair);
        }
        bytes
    }

    fn decode_in_blocks(encoding: TextEncoding, blocks: &[&[u8]]) -> Vec<u8> {
        let mut decoder = TextDecoder::new(encoding);
        let mut output = Vec::new();
        for block in blocks {
            decoder.decode(block, false, &mut output);
        }
        decoder.decode(&[], true, &mut output);
        output
    }

    /// The bytes are detected as `expected` and decode to `text`, whatever the block split.
    fn check(bytes: &[u8], expected: TextEncoding, text: &str) {
        assert_eq!(
            detect_encoding(bytes, true),
            Ok(expected),
            "detected for {text:?}"
        );
        let whole = decode_in_blocks(expected, &[bytes]);
        assert_eq!(String::from_utf8_lossy(&whole), text);
        for split_point in 0..=bytes.len() {
            let (first, second) = bytes.split_at(split_point);
            assert_eq!(
                decode_in_blocks(expected, &[first, second]),
                whole,
                "split at byte {split_point}"
            );
        }
        let single_bytes: Vec<&[u8]> = bytes.chunks(1).collect();
        assert_eq!(decode_in_blocks(expected, &single_bytes), whole);
    }

    fn check_not_text(bytes: &[u8]) {
        assert!(
            detect_encoding(bytes, false).is_err(),
            "{bytes:?} should not be text"
        );
    }

    #[test]
    fn polish_files_in_central_european_encodings_decode_letter_exact() {
        check(
            &encode(POLISH_CSV, encoding_rs::WINDOWS_1250),
            TextEncoding::Windows1250,
            POLISH_CSV,
        );
        check(
            &encode(POLISH_CSV, encoding_rs::ISO_8859_2),
            TextEncoding::Iso8859_2,
            POLISH_CSV,
        );
    }

    #[test]
    fn a_short_polish_sentence_is_read_letter_exact() {
        let text = "Zażółć gęślą jaźń, Łódź, Kraków, Gdańsk, Wiśniewska\n";
        check(
            &encode(text, encoding_rs::WINDOWS_1250),
            TextEncoding::Windows1250,
            text,
        );
        check(
            &encode(text, encoding_rs::ISO_8859_2),
            TextEncoding::Iso8859_2,
            text,
        );
    }

    #[test]
    fn utf16_files_with_a_byte_order_mark_lose_the_mark_and_keep_the_text() {
        let text = "Zażółć gęślą jaźń, Łódź, Kraków, Gdańsk, Wiśniewska\n";
        check(&utf16(text, true), TextEncoding::Utf16Le, text);
        check(&utf16(text, false), TextEncoding::Utf16Be, text);
    }

    #[test]
    fn western_european_text_is_windows_1252() {
        check(
            &encode(GERMAN_AND_FRENCH_CSV, encoding_rs::WINDOWS_1252),
            TextEncoding::Windows1252,
            GERMAN_AND_FRENCH_CSV,
        );
    }

    #[test]
    fn utf8_passes_through_untouched_with_or_without_a_byte_order_mark() {
        check(POLISH_CSV.as_bytes(), TextEncoding::Utf8, POLISH_CSV);
        let with_mark = format!("\u{FEFF}{POLISH_CSV}");
        check(with_mark.as_bytes(), TextEncoding::Utf8, &with_mark);
        check(
            b"email\nx@example.com\n",
            TextEncoding::Utf8,
            "email\nx@example.com\n",
        );
        check(b"", TextEncoding::Utf8, "");
        // Invalid UTF-8 is left for the CSV parser to report per record.
        assert_eq!(
            decode_in_blocks(TextEncoding::Utf8, &[b"Krak\xF3w"]),
            b"Krak\xF3w"
        );
    }

    #[test]
    fn input_after_the_last_block_is_ignored() {
        for encoding in TextEncoding::ALL {
            let mut decoder = TextDecoder::new(encoding);
            let mut output = Vec::new();
            decoder.decode(b"", true, &mut output);
            decoder.decode(b"more", true, &mut output);
            assert_eq!(output, b"", "{encoding}");
        }
    }

    #[test]
    fn a_utf8_character_cut_at_the_end_of_a_sample_is_still_utf8() {
        let bytes = "Łódź".as_bytes();
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(detect_encoding(cut, false), Ok(TextEncoding::Utf8));
        assert_ne!(detect_encoding(cut, true), Ok(TextEncoding::Utf8));
    }

    #[test]
    fn binary_files_are_not_text() {
        check_not_text(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x01\x00");
        check_not_text(b"\x01\x02\x03\x04abcdefgh\x05");
        assert_eq!(
            detect_encoding(b"a\x00\x00\x00b\x00\x00", true).map_err(|error| error.to_string()),
            Err(
                "the file is not text: 5 of its first 7 bytes are NUL or control bytes (a binary file?)"
                    .to_owned()
            )
        );
        // Tabs, form feeds and line breaks are text.
        assert_eq!(
            detect_encoding(b"a\tb\r\n\x0c\n", true),
            Ok(TextEncoding::Utf8)
        );
    }

    #[test]
    fn files_that_are_not_csv_are_named_for_what_they_are() {
        for (bytes, named) in [
            (&b"PK\x03\x04\x14\x00\x06\x00"[..], "spreadsheet"),
            (b"\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1\x00\x00", ".xls"),
            (b"%PDF-1.7\n", "PDF"),
            (b"[{\"email\": \"a@x.pl\"}]", "JSON"),
            (b"  {\"contacts\": []}", "JSON"),
            (b"[\n  {\"email\": 1}\n]", "JSON"),
            (b"<html><body>", "HTML"),
        ] {
            let reason = detect_encoding(bytes, true)
                .expect_err("not a CSV file")
                .to_string();
            assert!(reason.contains(named), "{reason}");
        }
        // A header that happens to start with a bracket is still a CSV file.
        assert_eq!(
            detect_encoding(b"[id],email\n1,a@x.pl\n", true),
            Ok(TextEncoding::Utf8)
        );
    }

    #[test]
    fn a_few_stray_bytes_in_a_text_file_only_fail_their_rows() {
        let mut text = POLISH_CSV.as_bytes().to_vec();
        text.extend_from_slice(b"x,\x00,y\n");
        assert_eq!(detect_encoding(&text, true), Ok(TextEncoding::Utf8));
        // UTF-8 with a stray 0xFF stays UTF-8: its letters keep their shape.
        let mut stray = POLISH_CSV.as_bytes().to_vec();
        stray.splice(40..40, [0xFF]);
        assert_eq!(detect_encoding(&stray, true), Ok(TextEncoding::Utf8));
        // While a single-byte file, whose letters are not UTF-8, is not mistaken for it.
        assert_eq!(
            detect_encoding(&encode(POLISH_CSV, encoding_rs::WINDOWS_1250), true),
            Ok(TextEncoding::Windows1250)
        );
    }

    #[test]
    fn utf16_without_a_byte_order_mark_is_recognized_by_its_nul_bytes() {
        let text = "email,imię\nanna@example.com,Łucja\n";
        let without_mark = |little_endian: bool| utf16(text, little_endian)[2..].to_vec();
        assert_eq!(
            detect_encoding(&without_mark(true), true),
            Ok(TextEncoding::Utf16Le)
        );
        assert_eq!(
            detect_encoding(&without_mark(false), true),
            Ok(TextEncoding::Utf16Be)
        );
        let decoded = decode_in_blocks(TextEncoding::Utf16Le, &[&without_mark(true)]);
        assert_eq!(String::from_utf8(decoded).expect("UTF-8"), text);
    }

    #[test]
    fn encoding_names_parse_case_insensitively_with_common_labels() {
        let table: &[(&str, Result<TextEncoding, ()>)] = &[
            ("UTF-8", Ok(TextEncoding::Utf8)),
            ("utf8", Ok(TextEncoding::Utf8)),
            ("utf-16le", Ok(TextEncoding::Utf16Le)),
            ("UTF-16BE", Ok(TextEncoding::Utf16Be)),
            ("cp1250", Ok(TextEncoding::Windows1250)),
            ("Win1250", Ok(TextEncoding::Windows1250)),
            (" windows-1250 ", Ok(TextEncoding::Windows1250)),
            ("latin2", Ok(TextEncoding::Iso8859_2)),
            ("ISO-8859-2", Ok(TextEncoding::Iso8859_2)),
            ("cp1252", Ok(TextEncoding::Windows1252)),
            ("latin1", Ok(TextEncoding::Windows1252)),
            ("koi8-r", Err(())),
        ];
        for (text, expected) in table {
            assert_eq!(
                text.parse::<TextEncoding>().map_err(|_| ()),
                *expected,
                "{text:?}"
            );
        }
        let error = "ebcdic".parse::<TextEncoding>().expect_err("unknown");
        assert_eq!(
            error,
            "unknown encoding \"ebcdic\" (supported: UTF-8, UTF-16LE, UTF-16BE, windows-1250, ISO-8859-2, windows-1252)"
        );
    }

    #[test]
    fn encodings_display_and_parse_by_their_canonical_names() {
        for encoding in TextEncoding::ALL {
            assert_eq!(encoding.to_string().parse(), Ok(encoding));
        }
    }
}
