//! Owns how an import's rows are spread over lanes, so that several writers can apply one
//! import at once and still give exactly the result of applying the file row by row.
//!
//! When rows are matched on a single attribute, two rows can only affect each other through
//! an equal match key. Rows are therefore split by a hash of that key into [`LANES`] lanes;
//! each lane is applied in file order, the lanes independently of each other. A row without a
//! match value affects no other row and may go to any lane. When rows are matched on several
//! attributes, one row can tie keys of different lanes together, so such an import runs in a
//! single lane.
//!
//! The hash is FNV-1a, fixed here rather than taken from the standard library, whose hasher
//! may change between releases: mappers and writers of different builds must agree on it, and
//! so must concurrent imports of one account, which lock a key's lane before writing it.

use crate::merge::{match_keys, MatchKey};
use crate::validate::ValidRecord;

/// Lanes of an import that matches on one attribute. Also the number of lane locks of an
/// account: a lane of any import locks the same lane number for the same key.
pub const LANES: u32 = 4;

/// How many lanes an import matching on `match_on` is applied in.
pub fn lane_count(match_on: &[String]) -> u32 {
    if match_on.len() == 1 {
        LANES
    } else {
        1
    }
}

/// The lane of a match key, out of [`LANES`].
pub fn key_lane(key: &MatchKey) -> u32 {
    let mut hash = Fnv1a::new();
    hash.write(key.attribute.as_bytes());
    hash.write(&[0]);
    hash.write(key.value.as_bytes());
    (hash.finish() % u64::from(LANES)) as u32
}

/// The lane of a valid row of an import with `lanes` lanes (see [`lane_count`]).
pub fn row_lane(record: &ValidRecord, match_on: &[String], lanes: u32) -> u32 {
    if lanes <= 1 {
        return 0;
    }
    match match_keys(&record.values, match_on).first() {
        Some(key) => key_lane(key) % lanes,
        // Touches no other row: spread such rows evenly.
        None => (record.line % u64::from(lanes)) as u32,
    }
}

struct Fnv1a(u64);

impl Fnv1a {
    fn new() -> Self {
        Self(0xcbf2_9ce4_8422_2325)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &byte in bytes {
            self.0 ^= u64::from(byte);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn record(line: u64, pairs: &[(&str, &str)]) -> ValidRecord {
        ValidRecord {
            line,
            values: pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect::<BTreeMap<_, _>>(),
        }
    }

    fn email() -> Vec<String> {
        vec!["email".to_string()]
    }

    #[test]
    fn the_hash_is_fnv_1a_so_every_build_agrees() {
        // Published FNV-1a 64 test vectors.
        let hash = |text: &str| {
            let mut hash = Fnv1a::new();
            hash.write(text.as_bytes());
            hash.finish()
        };
        assert_eq!(hash(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(hash("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(hash("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn rows_with_equal_match_keys_share_a_lane() {
        let lanes = lane_count(&email());
        assert_eq!(lanes, LANES);
        let first = record(2, &[("email", "a@x.pl"), ("city", "A")]);
        let again = record(900, &[("email", "a@x.pl")]);
        assert_eq!(
            row_lane(&first, &email(), lanes),
            row_lane(&again, &email(), lanes)
        );
    }

    #[test]
    fn keys_spread_over_every_lane() {
        let mut seen = [0u32; LANES as usize];
        for index in 0..8000 {
            let row = record(
                index + 2,
                &[("email", &format!("person{index}@example.com"))],
            );
            seen[row_lane(&row, &email(), LANES) as usize] += 1;
        }
        let fair = 8000 / LANES;
        for (lane, count) in seen.iter().enumerate() {
            assert!(
                (fair * 8 / 10..fair * 12 / 10).contains(count),
                "lane {lane} got {count} of 8000"
            );
        }
    }

    #[test]
    fn several_match_attributes_make_one_lane() {
        let match_on = vec!["email".to_string(), "mobile".to_string()];
        assert_eq!(lane_count(&match_on), 1);
        let row = record(7, &[("email", "a@x.pl"), ("mobile", "+48501234567")]);
        assert_eq!(row_lane(&row, &match_on, 1), 0);
    }

    #[test]
    fn rows_without_a_match_value_are_spread_by_line() {
        let lanes: Vec<u32> = (2..10)
            .map(|line| row_lane(&record(line, &[("city", "Kielce")]), &email(), 8))
            .collect();
        assert_eq!(lanes, vec![2, 3, 4, 5, 6, 7, 0, 1]);
    }
}
