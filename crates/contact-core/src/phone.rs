//! Polish numbers as people write them, normalized without the general phone parser.
//!
//! Most phone cells of this product's files are Polish numbers of nine digits, written with
//! spaces, dashes, slashes or parentheses, with `+48` or `0048` or nothing in front. The general
//! parser spends a few microseconds on each (extracting the number, trying extensions and
//! national prefixes, then a dozen regular expressions of the numbering plan): the largest
//! cost of validating a row. Here such a cell is read in one pass, and whether its number is
//! valid is looked up by its first five digits: in the numbering plan the parser knows, the
//! validity of a nine-digit Polish number depends on nothing after them (a unit test checks
//! this for every five-digit prefix, so a new plan that breaks it fails the build's tests).
//! The answer for a prefix is the parser's own, asked once per process and kept.
//!
//! Anything else (another country, other lengths, letters, extensions) goes to the parser.

use std::sync::atomic::{AtomicU8, Ordering};

use crate::validate::PhoneRegion;

/// What the shortcut made of a cell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortcut {
    /// A valid Polish number, in E.164.
    Valid(String),
    /// A nine-digit Polish number the numbering plan has no place for.
    Invalid,
}

/// Reads `text` as a Polish number when it has one of the usual shapes; `None` when the
/// general parser must decide.
pub fn polish_number(text: &str, region: PhoneRegion) -> Option<Shortcut> {
    let (international, rest) = match text.strip_prefix('+') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    if international {
        // The parser misreads "+48" run into a number that separators cut later (it refuses
        // "+48601-234-567"): only the plain form, or a space or parenthesis after the code.
        let after_code = rest.strip_prefix("48")?;
        let plain = after_code.bytes().all(|byte| byte.is_ascii_digit());
        if !plain && !after_code.starts_with([' ', '(']) {
            return None;
        }
    }
    let mut digits = [0u8; 16];
    let mut count = 0;
    // At most one pair of parentheses, around digits (an area code): the parser refuses
    // others, and they are rare enough to leave to it.
    let (mut opened, mut closed) = (None, None);
    for byte in rest.bytes() {
        match byte {
            b'0'..=b'9' => {
                *digits.get_mut(count)? = byte;
                count += 1;
            }
            b' ' | b'-' | b'/' => {}
            b'(' if opened.is_none() => opened = Some(count),
            b')' if closed.is_none() && opened.is_some_and(|at| at < count) => closed = Some(count),
            _ => return None,
        }
    }
    if opened.is_some() != closed.is_some() {
        return None;
    }
    let digits = &digits[..count];
    let national = if international {
        digits.strip_prefix(b"48")?
    } else if region.0 != phonenumber::country::Id::PL {
        return None;
    } else if let Some(national) = digits.strip_prefix(b"0048") {
        national
    } else if digits.starts_with(b"48") {
        // The parser may take these two digits for the country code written without a plus.
        return None;
    } else {
        digits
    };
    if national.len() != NATIONAL_DIGITS || national[0] == b'0' {
        return None;
    }
    let national = std::str::from_utf8(national).expect("ASCII digits");
    if is_valid_polish_number(national) {
        Some(Shortcut::Valid(format!("+48{national}")))
    } else {
        Some(Shortcut::Invalid)
    }
}

/// Digits of a Polish national number.
const NATIONAL_DIGITS: usize = 9;

/// Digits that decide whether a nine-digit Polish number is valid.
const DECIDING_DIGITS: usize = 5;

const UNKNOWN: u8 = 0;
const VALID: u8 = 1;
const INVALID: u8 = 2;

/// The parser's answer for each five-digit prefix, once asked.
static VALIDITY_BY_PREFIX: [AtomicU8; 100_000] = [const { AtomicU8::new(UNKNOWN) }; 100_000];

/// `national`: nine ASCII digits, the first not zero.
fn is_valid_polish_number(national: &str) -> bool {
    let prefix: usize = national[..DECIDING_DIGITS]
        .parse()
        .expect("five ASCII digits");
    match VALIDITY_BY_PREFIX[prefix].load(Ordering::Relaxed) {
        VALID => true,
        INVALID => false,
        _ => {
            let valid = parser_says_valid(national);
            VALIDITY_BY_PREFIX[prefix]
                .store(if valid { VALID } else { INVALID }, Ordering::Relaxed);
            valid
        }
    }
}

/// The general parser's verdict on a Polish national number (written with its country code,
/// so that the parser takes none of its digits for one).
fn parser_says_valid(national: &str) -> bool {
    phonenumber::parse(None, format!("+48{national}"))
        .is_ok_and(|number| phonenumber::is_valid(&number))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the general parser makes of a cell, written independently of the shortcut.
    fn parser(text: &str, region: PhoneRegion) -> Option<String> {
        let number = phonenumber::parse(Some(region.0), text).ok()?;
        phonenumber::is_valid(&number)
            .then(|| number.format().mode(phonenumber::Mode::E164).to_string())
    }

    /// A small deterministic generator (SplitMix64), so that failures replay.
    struct Numbers(u64);

    impl Numbers {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut mixed = self.0;
            mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            mixed ^ (mixed >> 31)
        }

        fn below(&mut self, bound: u64) -> u64 {
            self.next() % bound
        }
    }

    #[test]
    fn the_validity_of_a_nine_digit_polish_number_depends_on_its_first_five_digits_only() {
        let mut numbers = Numbers(7);
        for prefix in 10_000..100_000u64 {
            let suffixes = [0, 9999, numbers.below(10_000)];
            let verdicts: Vec<bool> = suffixes
                .iter()
                .map(|suffix| parser_says_valid(&format!("{prefix}{suffix:04}")))
                .collect();
            assert!(
                verdicts.iter().all(|&verdict| verdict == verdicts[0]),
                "prefix {prefix}: {verdicts:?} for suffixes {suffixes:?}"
            );
        }
    }

    #[test]
    fn the_shortcut_gives_what_the_parser_gives_for_every_shape_people_write() {
        let poland = PhoneRegion::default();
        let mut numbers = Numbers(2026);
        let mut shortcut_taken = 0;
        for _ in 0..20_000 {
            // Mostly plausible numbers, some with a zero in front or of other lengths.
            let length = [9, 9, 9, 9, 8, 10, 7][numbers.below(7) as usize];
            let first = if numbers.below(20) == 0 {
                0
            } else {
                1 + numbers.below(9)
            };
            let mut digits = first.to_string();
            while digits.len() < length {
                digits.push_str(&numbers.below(10).to_string());
            }
            let prefix =
                ["", "", "+48", "+48 ", "0048", "+49 ", "48", "+(48) "][numbers.below(8) as usize];
            let mut cell = prefix.to_string();
            if numbers.below(2) == 0 {
                // The groupings people use: 601 234 567, 601-234-567, (22) 123 45 67, ...
                let groups: &[usize] = match numbers.below(4) {
                    0 => &[3, 3, 3],
                    1 => &[2, 3, 2, 2],
                    2 => &[3, 2, 2, 2],
                    _ => &[digits.len()],
                };
                let separator = [" ", "-", "/"][numbers.below(3) as usize];
                let area_code = groups.len() == 4 && numbers.below(2) == 0;
                let mut rest = digits.as_str();
                for (group, &size) in groups.iter().enumerate() {
                    let (taken, left) = rest.split_at(size.min(rest.len()));
                    rest = left;
                    if group == 0 && area_code {
                        cell.push_str(&format!("({taken}) "));
                    } else {
                        if group > 0 && !(group == 1 && area_code) {
                            cell.push_str(separator);
                        }
                        cell.push_str(taken);
                    }
                }
                cell.push_str(rest);
            } else {
                // Anything goes: separators, dots and parentheses anywhere.
                for (position, digit) in digits.chars().enumerate() {
                    if position > 0 && numbers.below(4) == 0 {
                        cell.push([' ', '-', '.', '/', ' ', '(', ')'][numbers.below(7) as usize]);
                    }
                    cell.push(digit);
                }
            }
            let expected = parser(&cell, poland);
            match polish_number(&cell, poland) {
                Some(Shortcut::Valid(e164)) => {
                    shortcut_taken += 1;
                    assert_eq!(Some(e164), expected, "{cell:?}");
                }
                Some(Shortcut::Invalid) => {
                    shortcut_taken += 1;
                    assert_eq!(None, expected, "{cell:?}");
                }
                None => {}
            }
        }
        assert!(shortcut_taken > 3_000, "the shortcut took {shortcut_taken}");
    }

    #[test]
    fn other_countries_lengths_and_letters_are_left_to_the_parser() {
        let poland = PhoneRegion::default();
        let germany: PhoneRegion = "DE".parse().expect("a region");
        for (cell, region) in [
            ("+49 30 901820", poland),
            ("030 901820", germany),
            ("601234567", germany),
            ("0048601234567", germany),
            ("22 123 45 6", poland),
            ("601 234 567 ext. 12", poland),
            ("601234567x", poland),
            ("0601234567", poland),
            ("tel. 601 234 567", poland),
            ("", poland),
        ] {
            assert_eq!(polish_number(cell, region), None, "{cell:?}");
        }
        assert_eq!(
            polish_number("+48 601 234 567", germany),
            Some(Shortcut::Valid("+48601234567".to_string()))
        );
    }
}
