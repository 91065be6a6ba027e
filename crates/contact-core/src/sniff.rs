//! Owns delimiter detection: which of the usual separators a CSV file uses.
//!
//! Excel writes ';' where the decimal separator is ',' (Poland, Germany, France), ',' elsewhere;
//! exports from other tools use tabs or pipes. Users should not have to know which they have.

/// The delimiters a file may use, in the order ties are broken.
pub const DELIMITERS: [u8; 4] = [b',', b';', b'\t', b'|'];

/// How many complete lines of the sample are looked at.
const LINES_SAMPLED: usize = 20;

/// Picks the delimiter from the start of a decoded CSV file.
///
/// The winner is the candidate whose count per line, outside quotes, is the same non-zero number
/// on the most of the first 20 complete lines (the header counts). A last line without a line
/// break may be cut, so it counts only when it is the only line. Ties go to the earlier candidate
/// in [`DELIMITERS`] (comma first); when no candidate appears at all, comma.
pub fn detect_delimiter(sample: &str) -> u8 {
    let line_counts = delimiter_counts_per_line(sample);
    let mut best_delimiter = b',';
    let mut best_line_count = 0;
    for (candidate_index, &candidate) in DELIMITERS.iter().enumerate() {
        let counts: Vec<usize> = line_counts
            .iter()
            .map(|per_candidate| per_candidate[candidate_index])
            .collect();
        let consistent_lines = most_common_nonzero_count_frequency(&counts);
        if consistent_lines > best_line_count {
            best_delimiter = candidate;
            best_line_count = consistent_lines;
        }
    }
    best_delimiter
}

/// The delimiter's name for messages and reports; "other" for a byte not in [`DELIMITERS`].
pub fn delimiter_name(delimiter: u8) -> &'static str {
    match delimiter {
        b',' => "comma",
        b';' => "semicolon",
        b'\t' => "tab",
        b'|' => "pipe",
        _ => "other",
    }
}

/// Parses a delimiter as a user writes it on the command line: the character itself (a literal
/// tab too) or its name, ignoring case.
pub fn parse_delimiter(text: &str) -> Result<u8, String> {
    if text == "\t" {
        return Ok(b'\t');
    }
    match text.trim().to_ascii_lowercase().as_str() {
        "," | "comma" => Ok(b','),
        ";" | "semicolon" => Ok(b';'),
        "tab" | "\\t" => Ok(b'\t'),
        "|" | "pipe" => Ok(b'|'),
        _ => Err(format!(
            "unknown delimiter \"{}\" (expected one of: \",\" \";\" \"|\" tab, or comma, semicolon, tab, pipe)",
            text.trim()
        )),
    }
}

/// Per line (a record may span physical lines inside quotes), how often each of
/// [`DELIMITERS`] occurs outside quotes.
fn delimiter_counts_per_line(sample: &str) -> Vec<[usize; DELIMITERS.len()]> {
    let mut complete_lines = Vec::new();
    let mut current_counts = [0usize; DELIMITERS.len()];
    let mut current_line_has_text = false;
    let mut inside_quotes = false;
    let mut previous_character: Option<char> = None;
    let mut characters = sample.chars().peekable();
    while let Some(character) = characters.next() {
        if complete_lines.len() == LINES_SAMPLED {
            break;
        }
        if inside_quotes {
            if character == '"' {
                if characters.peek() == Some(&'"') {
                    characters.next();
                } else {
                    inside_quotes = false;
                }
            }
        } else if character == '\n' || character == '\r' {
            if current_line_has_text {
                complete_lines.push(current_counts);
            }
            current_counts = [0; DELIMITERS.len()];
            current_line_has_text = false;
        } else {
            current_line_has_text = true;
            if character == '"' && starts_field(previous_character) {
                inside_quotes = true;
            } else if let Some(candidate_index) = DELIMITERS
                .iter()
                .position(|&candidate| u32::from(candidate) == u32::from(character))
            {
                current_counts[candidate_index] += 1;
            }
        }
        previous_character = Some(character);
    }
    if complete_lines.is_empty() && current_line_has_text && !inside_quotes {
        complete_lines.push(current_counts);
    }
    complete_lines
}

/// A quote opens a quoted field only at the start of a field: at the start of a line or right
/// after a delimiter (or a space after one, as some tools write).
fn starts_field(previous_character: Option<char>) -> bool {
    match previous_character {
        None => true,
        Some(character) => {
            matches!(character, '\n' | '\r' | ' ')
                || DELIMITERS
                    .iter()
                    .any(|&candidate| u32::from(candidate) == u32::from(character))
        }
    }
}

/// How many lines share the most common non-zero count.
fn most_common_nonzero_count_frequency(counts: &[usize]) -> usize {
    let mut best_frequency = 0;
    for &count in counts.iter().filter(|&&count| count > 0) {
        let frequency = counts.iter().filter(|&&other| other == count).count();
        best_frequency = best_frequency.max(frequency);
    }
    best_frequency
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(sample: &str, expected: u8) {
        assert_eq!(
            delimiter_name(detect_delimiter(sample)),
            delimiter_name(expected),
            "sample {sample:?}"
        );
    }

    #[test]
    fn each_delimiter_is_found() {
        check("email,name\na@example.com,Anna\n", b',');
        check("email;name\na@example.com;Anna\n", b';');
        check("email\tname\na@example.com\tAnna\n", b'\t');
        check("email|name\na@example.com|Anna\n", b'|');
        check("email;name;city", b';');
    }

    #[test]
    fn semicolon_files_with_commas_inside_values_are_semicolon_files() {
        check(
            "name;amount;note\nJan;12,5;\"a, b\"\nAnna;7,25;x\nEwa;3;\"c, d, e\"\n",
            b';',
        );
        check("kwota;opis\n12,5;raz, dwa\n1,5;trzy\n", b';');
    }

    #[test]
    fn quoted_fields_with_line_breaks_and_other_delimiters_do_not_confuse_it() {
        check(
            "name,note,city\r\nJan,\"line one;\nline two|x;y\",Kraków\r\nAnna,\"a;b\",Łódź\r\n",
            b',',
        );
        check(
            "name;note\n\"Jan\";\"he said \"\"a,b,c\"\"\nand left\"\nAnna;\"x,y\"\n",
            b';',
        );
    }

    #[test]
    fn a_single_column_file_is_comma() {
        check("email\na@example.com\nb@example.com\n", b',');
        check("", b',');
        check("\n\n", b',');
    }

    #[test]
    fn a_cut_last_line_does_not_count() {
        check("a;b\nc;d\ne,f,g,h", b';');
    }

    #[test]
    fn delimiters_parse_from_characters_and_names() {
        let table: &[(&str, Result<u8, ()>)] = &[
            (",", Ok(b',')),
            (";", Ok(b';')),
            ("\t", Ok(b'\t')),
            ("tab", Ok(b'\t')),
            ("TAB", Ok(b'\t')),
            ("|", Ok(b'|')),
            ("Comma", Ok(b',')),
            ("semicolon", Ok(b';')),
            ("pipe", Ok(b'|')),
            (":", Err(())),
            ("", Err(())),
        ];
        for (text, expected) in table {
            assert_eq!(parse_delimiter(text).map_err(|_| ()), *expected, "{text:?}");
        }
        for delimiter in DELIMITERS {
            assert_eq!(parse_delimiter(delimiter_name(delimiter)), Ok(delimiter));
        }
    }
}
