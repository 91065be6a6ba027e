//! The realistic file: thirteen columns shaped like a marketer's export from a shop or a CRM.
//!
//! About 5 % of the rows repeat an earlier row's email (in other case or with spaces around
//! it) and about 1 % hold one value the core refuses, spread over the columns: a phone number
//! or an invisible character in the email, a date that is no date, a segment outside the
//! enum, points that are not a whole number, a newsletter answer that is not yes or no, a
//! mobile too short to be one. Names, streets, companies and cities are Polish, diacritics
//! included; phones and birthdays come in the layouts people type and the core accepts.
//!
//! Deterministic: every row is drawn from a random stream seeded by its own index, so a row
//! (and whether it repeats or is bad) is the same at every file size and in every edition.

use std::io::Write;

use contact_contract::AttributeType;

use crate::files::{Column, ColumnKind, ExpectedCounts};

pub const COLUMNS: &[Column] = &[
    column("email", ColumnKind::Email),
    column("mobile", ColumnKind::Text),
    column("first_name", ColumnKind::Text),
    column("last_name", ColumnKind::Text),
    column("city", ColumnKind::Text),
    column("postal_code", ColumnKind::Text),
    column("street", ColumnKind::Text),
    column("birthday", ColumnKind::Date),
    column("segment", ColumnKind::Text),
    column("company", ColumnKind::Text),
    column("external_id", ColumnKind::Text),
    column("newsletter", ColumnKind::Boolean),
    column("loyalty_points", ColumnKind::Integer),
];

/// The allowed values of the `segment` enum attribute, spelled as the account defines them.
pub const SEGMENTS: &[&str] = &["VIP", "Stały klient", "Nowy", "Uśpiony", "Hurt"];

/// The custom attributes (key, label, type) the file's last columns fill; the others are
/// standard attributes every account has.
pub fn custom_attributes() -> Vec<(&'static str, &'static str, AttributeType)> {
    vec![
        (
            "segment",
            "Segment",
            AttributeType::Enum {
                values: SEGMENTS.iter().map(|value| (*value).to_owned()).collect(),
            },
        ),
        ("newsletter", "Newsletter consent", AttributeType::Boolean),
        ("loyalty_points", "Loyalty points", AttributeType::Integer),
    ]
}

/// One generated row, with what the generator meant by it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RealisticRow {
    /// The cells in [`COLUMNS`] order, as they go into the file.
    pub cells: Vec<String>,
    /// The contact the row is about: rows of one identity carry one email, and rows of two
    /// identities never share one.
    pub identity: usize,
    /// The column of the row's one bad value.
    pub bad_column: Option<usize>,
}

/// Writes the file and returns what the pipeline must report for it, computed row by row
/// from what the generator meant (not by asking the core).
pub fn write(out: &mut dyn Write, rows: usize, edition: usize) -> std::io::Result<ExpectedCounts> {
    let header: Vec<&str> = COLUMNS.iter().map(|column| column.name).collect();
    writeln!(out, "{}", header.join(","))?;
    let mut expected = ExpectedCounts {
        rows: rows as u64,
        ..ExpectedCounts::default()
    };
    // Identities are row indexes, so a flag per row says whether a valid row made its contact.
    let mut identity_has_contact = vec![false; rows];
    let mut line = String::new();
    for index in 0..rows {
        let row = row(index, edition);
        if row.bad_column.is_some() {
            expected.failed += 1;
        } else if identity_has_contact[row.identity] {
            expected.linked += 1;
        } else {
            identity_has_contact[row.identity] = true;
            expected.created += 1;
        }
        line.clear();
        for (cell_index, cell) in row.cells.iter().enumerate() {
            if cell_index > 0 {
                line.push(',');
            }
            push_csv_field(&mut line, cell);
        }
        line.push('\n');
        out.write_all(line.as_bytes())?;
    }
    Ok(expected)
}

/// Row `index` of the file in edition `edition` (0: the file itself; later editions change
/// every contact's names and city and nothing else).
pub fn row(index: usize, edition: usize) -> RealisticRow {
    let structure = RowStructure::of(index);
    let repeats_earlier_row = structure.repeated_row.is_some();
    let identity = identity_of(index);

    let mut person = RowRandom::new(IDENTITY_SEED, identity);
    let first_name_index = person.below(FIRST_NAMES.len());
    let last_name_index = person.below(LAST_NAMES.len());
    let domain = *person.pick(EMAIL_DOMAINS);
    let email_local_part = format!(
        "{}.{}{identity}",
        ascii_lower_case(FIRST_NAMES[first_name_index]),
        ascii_lower_case(LAST_NAMES[last_name_index])
    );

    let mut values = RowRandom::new(VALUES_SEED, index);
    let email = match (repeats_earlier_row, values.below(10)) {
        // A repeat is typed again by someone, or comes from another system: other case,
        // spaces around it.
        (true, 0..=3) => format!("{email_local_part}@{domain}").to_uppercase(),
        (true, 4..=6) => format!("  {email_local_part}@{domain} "),
        (_, 0..=1) => format!("{}@{domain}", capitalize_each_part(&email_local_part)),
        _ => format!("{email_local_part}@{domain}"),
    };
    let mobile = phone_number(&mut values);
    let city_index = values.below(CITIES.len());
    let postal_code = format!("{:02}-{:03}", values.below(100), values.below(1000));
    let street = match values.below(3) {
        0 => format!(
            "ul. {} {}/{}",
            values.pick(STREETS),
            1 + values.below(150),
            1 + values.below(40)
        ),
        _ => format!("ul. {} {}", values.pick(STREETS), 1 + values.below(150)),
    };
    let birthday = birthday(&mut values);
    let segment = match values.below(10) {
        0 => values.pick(SEGMENTS).to_lowercase(),
        _ => (*values.pick(SEGMENTS)).to_owned(),
    };
    let company = (*values.pick(COMPANIES)).to_owned();
    let newsletter = (*values.pick(NEWSLETTER_ANSWERS)).to_owned();
    let loyalty_points = values.below(5000).to_string();
    // Real exports leave cells empty; each column its own share (emails never: required).
    let mut cells = vec![
        email,
        blank_sometimes(&mut values, 100, mobile),
        FIRST_NAMES[(first_name_index + edition) % FIRST_NAMES.len()].to_owned(),
        LAST_NAMES[(last_name_index + edition) % LAST_NAMES.len()].to_owned(),
        CITIES[(city_index + edition) % CITIES.len()].to_owned(),
        blank_sometimes(&mut values, 50, postal_code),
        blank_sometimes(&mut values, 150, street),
        blank_sometimes(&mut values, 200, birthday),
        blank_sometimes(&mut values, 250, segment),
        blank_sometimes(&mut values, 300, company),
        format!("CRM-{identity:07}"),
        blank_sometimes(&mut values, 100, newsletter),
        blank_sometimes(&mut values, 200, loyalty_points),
    ];
    let bad_column = structure.bad_value.map(|bad_kind| {
        let (column_name, bad_value) = bad_kind.cell(&mut values, &email_local_part, domain);
        let column_index = COLUMNS
            .iter()
            .position(|column| column.name == column_name)
            .expect("every bad value names a column of COLUMNS");
        cells[column_index] = bad_value;
        column_index
    });
    RealisticRow {
        cells,
        identity,
        bad_column,
    }
}

/// The kinds of bad value the file holds, one per bad row.
#[derive(Debug, Clone, Copy)]
enum BadValue {
    PhoneNumberAsEmail,
    InvisibleCharacterInEmail,
    NoSuchDate,
    SegmentOutsideTheEnum,
    PointsNotAWholeNumber,
    NewsletterNeitherYesNorNo,
    MobileTooShort,
}

impl BadValue {
    const ALL: [BadValue; 7] = [
        Self::PhoneNumberAsEmail,
        Self::InvisibleCharacterInEmail,
        Self::NoSuchDate,
        Self::SegmentOutsideTheEnum,
        Self::PointsNotAWholeNumber,
        Self::NewsletterNeitherYesNorNo,
        Self::MobileTooShort,
    ];

    /// The column and the cell text.
    fn cell(
        self,
        values: &mut RowRandom,
        email_local_part: &str,
        domain: &str,
    ) -> (&'static str, String) {
        match self {
            Self::PhoneNumberAsEmail => ("email", phone_number(values)),
            // Copied from a web page: a zero-width space the person never saw.
            Self::InvisibleCharacterInEmail => {
                ("email", format!("{email_local_part}\u{200B}@{domain}"))
            }
            Self::NoSuchDate => {
                let year = 1950 + values.below(57);
                let bad_date = match values.below(3) {
                    0 => format!("31.02.{year}"),
                    1 => format!("{year}-13-{:02}", 1 + values.below(28)),
                    _ => format!(
                        "{:02}/{:02}/{year}",
                        1 + values.below(28),
                        1 + values.below(12)
                    ),
                };
                ("birthday", bad_date)
            }
            Self::SegmentOutsideTheEnum => ("segment", "Platynowy".to_owned()),
            Self::PointsNotAWholeNumber => (
                "loyalty_points",
                (*values.pick(&["12.5", "dużo", "1 200"])).to_owned(),
            ),
            Self::NewsletterNeitherYesNorNo => ("newsletter", "może".to_owned()),
            Self::MobileTooShort => (
                "mobile",
                format!("60{} {:03}", values.below(10), values.below(1000)),
            ),
        }
    }
}

const STRUCTURE_SEED: u64 = 0x5EED_0001;
const IDENTITY_SEED: u64 = 0x5EED_0002;
const VALUES_SEED: u64 = 0x5EED_0003;
const REPEAT_PER_THOUSAND: u64 = 50;
const BAD_PER_THOUSAND: u64 = 10;

const fn column(name: &'static str, kind: ColumnKind) -> Column {
    Column { name, kind }
}

/// What a row is, whatever its values: whether it repeats an earlier row, and whether it holds
/// a bad value. Drawn from a stream of its own so that values never shift it.
#[derive(Debug, Clone, Copy)]
struct RowStructure {
    /// The earlier row whose email this row repeats.
    repeated_row: Option<usize>,
    bad_value: Option<BadValue>,
}

impl RowStructure {
    fn of(index: usize) -> Self {
        let mut structure = RowRandom::new(STRUCTURE_SEED, index);
        // Every draw is made whatever the earlier ones gave, so none depends on another.
        let repeats = structure.chance_per_thousand(REPEAT_PER_THOUSAND);
        let repeated_row = structure.below(index.max(1));
        let is_bad = structure.chance_per_thousand(BAD_PER_THOUSAND);
        let bad_value = BadValue::ALL[structure.below(BadValue::ALL.len())];
        Self {
            repeated_row: (repeats && index > 0).then_some(repeated_row),
            bad_value: is_bad.then_some(bad_value),
        }
    }
}

/// The identity a row is about: its own index, or for a repeat that of the row it repeats.
/// Each step goes to a lower index, so the walk ends.
fn identity_of(index: usize) -> usize {
    let mut current = index;
    while let Some(repeated_row) = RowStructure::of(current).repeated_row {
        current = repeated_row;
    }
    current
}

/// A Polish mobile number (prefixes the numbering plan gives mobiles) in one of the layouts
/// people write.
fn phone_number(values: &mut RowRandom) -> String {
    const MOBILE_PREFIXES: &[&str] = &[
        "50", "51", "53", "57", "60", "66", "69", "72", "73", "78", "79", "88",
    ];
    let national = format!(
        "{}{:07}",
        values.pick(MOBILE_PREFIXES),
        values.below(10_000_000)
    );
    let (first, second, third) = (&national[0..3], &national[3..6], &national[6..9]);
    match values.below(5) {
        0 => format!("+48 {first} {second} {third}"),
        1 => format!("{first}-{second}-{third}"),
        2 => format!("0048{national}"),
        3 => format!("+48{national}"),
        _ => national,
    }
}

/// A real calendar date (days up to 28) as ISO, `DD.MM.YYYY` or `YYYYMMDD`.
fn birthday(values: &mut RowRandom) -> String {
    let year = 1950 + values.below(57);
    let month = 1 + values.below(12);
    let day = 1 + values.below(28);
    match values.below(20) {
        0..=9 => format!("{year}-{month:02}-{day:02}"),
        10..=16 => format!("{day:02}.{month:02}.{year}"),
        _ => format!("{year}{month:02}{day:02}"),
    }
}

fn blank_sometimes(values: &mut RowRandom, per_thousand: u64, value: String) -> String {
    if values.chance_per_thousand(per_thousand) {
        String::new()
    } else {
        value
    }
}

/// Emails are written without diacritics, as mail providers make people write them.
fn ascii_lower_case(text: &str) -> String {
    text.chars()
        .flat_map(char::to_lowercase)
        .map(|character| match character {
            'ą' => 'a',
            'ć' => 'c',
            'ę' => 'e',
            'ł' => 'l',
            'ń' => 'n',
            'ó' => 'o',
            'ś' => 's',
            'ź' | 'ż' => 'z',
            other => other,
        })
        .collect()
}

/// `anna.nowak12` → `Anna.Nowak12`.
fn capitalize_each_part(local_part: &str) -> String {
    local_part
        .split('.')
        .map(|part| {
            let mut characters = part.chars();
            characters
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + characters.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join(".")
}

/// Quotes a field when CSV needs it (a delimiter, a quote, a line break) or when it has spaces
/// at its ends, which some readers would otherwise drop.
fn push_csv_field(line: &mut String, field: &str) {
    let needs_quotes =
        field.contains([',', '"', '\n', '\r']) || field.starts_with(' ') || field.ends_with(' ');
    if needs_quotes {
        line.push('"');
        line.push_str(&field.replace('"', "\"\""));
        line.push('"');
    } else {
        line.push_str(field);
    }
}

/// A random stream for one row: SplitMix64 (small, fast, and good enough to shape test data)
/// seeded from the row's index, so rows can be drawn in any order.
struct RowRandom {
    state: u64,
}

impl RowRandom {
    fn new(seed: u64, index: usize) -> Self {
        let mut seeding = Self {
            state: seed ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03),
        };
        Self {
            state: seeding.next(),
        }
    }

    fn next(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut mixed = self.state;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        mixed ^ (mixed >> 31)
    }

    /// A number in `0..bound` (the modulo bias is far below what matters here).
    fn below(&mut self, bound: usize) -> usize {
        (self.next() % bound as u64) as usize
    }

    fn chance_per_thousand(&mut self, per_thousand: u64) -> bool {
        self.next() % 1000 < per_thousand
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const FIRST_NAMES: &[&str] = &[
    "Łukasz",
    "Michał",
    "Paweł",
    "Wojciech",
    "Józef",
    "Grzegorz",
    "Błażej",
    "Zdzisław",
    "Jędrzej",
    "Mikołaj",
    "Anna",
    "Małgorzata",
    "Agnieszka",
    "Katarzyna",
    "Elżbieta",
    "Barbara",
    "Żaneta",
    "Jolanta",
    "Bożena",
    "Urszula",
    "Grażyna",
    "Ewa",
];

const LAST_NAMES: &[&str] = &[
    "Kowalski",
    "Nowak",
    "Wiśniewski",
    "Wójcik",
    "Kowalczyk",
    "Kamiński",
    "Lewandowski",
    "Zieliński",
    "Szymański",
    "Woźniak",
    "Dąbrowski",
    "Kozłowski",
    "Jankowski",
    "Mazur",
    "Kwiatkowski",
    "Krawczyk",
    "Piotrowski",
    "Grabowski",
    "Pawłowski",
    "Michalski",
    "Król",
    "Wieczorek",
    "Jabłoński",
    "Wróbel",
    "Górski",
    "Żak",
    "Łuczak",
    "Ślusarczyk",
    "Gęsiak",
    "Kaźmierczak",
];

const CITIES: &[&str] = &[
    "Łódź",
    "Gdańsk",
    "Kraków",
    "Warszawa",
    "Poznań",
    "Wrocław",
    "Szczecin",
    "Białystok",
    "Toruń",
    "Rzeszów",
    "Częstochowa",
    "Bielsko-Biała",
    "Zielona Góra",
    "Świnoujście",
    "Gorzów Wielkopolski",
    "Ełk",
    "Żyrardów",
];

const STREETS: &[&str] = &[
    "Piotrkowska",
    "Świętokrzyska",
    "Długa",
    "Żeromskiego",
    "Mickiewicza",
    "Kościuszki",
    "Słowackiego",
    "Źródlana",
    "Wąska",
    "Zażółć Gęślą",
];

const COMPANIES: &[&str] = &[
    "Zażółć Gęślą Jaźń S.A.",
    "Kowalski i Syn, sp. j.",
    "Piekarnia Łódzka",
    "Hurtownia Żbik sp. z o.o.",
    "Biuro Rachunkowe \"Księga\"",
    "Gdańskie Stocznie",
    "Ślusarstwo Wójcik",
];

const EMAIL_DOMAINS: &[&str] = &[
    "gmail.com",
    "wp.pl",
    "onet.pl",
    "o2.pl",
    "interia.pl",
    "poczta.fm",
    "firma.com.pl",
];

const NEWSLETTER_ANSWERS: &[&str] = &[
    "tak", "nie", "TAK", "Nie", "1", "0", "true", "false", "yes", "no",
];

#[cfg(test)]
mod tests {
    use super::*;
    use contact_core::mapping::AttributeType as CoreType;
    use contact_core::validate::{normalize_value, PhoneRegion};

    /// The type the core gives each column: standard attributes as the core defines them,
    /// the custom ones as the benchmark creates them.
    fn core_type(column_name: &str) -> CoreType {
        let standard = contact_core::mapping::standard_attributes();
        if let Some(attribute) = standard
            .iter()
            .find(|attribute| attribute.key == column_name)
        {
            return attribute.attribute_type.clone();
        }
        match column_name {
            "segment" => CoreType::Enum {
                values: SEGMENTS.iter().map(|value| (*value).to_owned()).collect(),
            },
            "newsletter" => CoreType::Boolean,
            "loyalty_points" => CoreType::Integer,
            other => panic!("column {other} has no attribute"),
        }
    }

    #[test]
    fn the_core_refuses_exactly_the_cells_the_generator_meant_to_be_bad() {
        let types: Vec<CoreType> = COLUMNS
            .iter()
            .map(|column| core_type(column.name))
            .collect();
        let mut bad_rows_by_column = vec![0; COLUMNS.len()];
        for index in 0..50_000 {
            let row = row(index, 0);
            for (column_index, cell) in row.cells.iter().enumerate() {
                let outcome = normalize_value(&types[column_index], cell, PhoneRegion::default());
                let meant_bad = row.bad_column == Some(column_index);
                assert_eq!(
                    outcome.is_err(),
                    meant_bad,
                    "row {index} column {} cell {cell:?}: {outcome:?}",
                    COLUMNS[column_index].name
                );
            }
            if let Some(column_index) = row.bad_column {
                bad_rows_by_column[column_index] += 1;
            }
        }
        let columns_with_bad_values = bad_rows_by_column
            .iter()
            .filter(|&&count| count > 0)
            .count();
        assert_eq!(columns_with_bad_values, 6, "{bad_rows_by_column:?}");
    }

    #[test]
    fn rows_of_one_identity_share_one_normalized_email_and_identities_never_share_one() {
        let mut email_of_identity = std::collections::HashMap::new();
        let mut identity_of_email = std::collections::HashMap::new();
        for index in 0..50_000 {
            let row = row(index, 0);
            if row.bad_column == Some(0) {
                continue;
            }
            let normalized =
                normalize_value(&CoreType::Email, &row.cells[0], PhoneRegion::default())
                    .expect("a good email")
                    .expect("emails are never empty");
            let known = email_of_identity
                .entry(row.identity)
                .or_insert_with(|| normalized.clone());
            assert_eq!(*known, normalized, "row {index}");
            let holder = identity_of_email.entry(normalized).or_insert(row.identity);
            assert_eq!(*holder, row.identity, "row {index}");
        }
    }

    #[test]
    fn about_five_percent_of_rows_link_and_one_percent_fail() {
        let expected = write(&mut std::io::sink(), 100_000, 0).expect("writing to nothing");
        assert_eq!(
            expected.created + expected.linked + expected.failed,
            100_000
        );
        assert!((4000..6000).contains(&expected.linked), "{expected:?}");
        assert!((700..1300).contains(&expected.failed), "{expected:?}");
    }

    #[test]
    fn a_later_edition_changes_names_and_city_and_keeps_emails_and_bad_cells() {
        for index in 0..2000 {
            let (first, later) = (row(index, 0), row(index, 1));
            assert_eq!(first.identity, later.identity);
            assert_eq!(first.bad_column, later.bad_column);
            assert_eq!(first.cells[0], later.cells[0]);
            for changed_column in [2, 3, 4] {
                assert_ne!(first.cells[changed_column], later.cells[changed_column]);
            }
        }
    }

    #[test]
    fn the_file_is_the_same_at_every_run() {
        let mut first = Vec::new();
        let mut second = Vec::new();
        write(&mut first, 3000, 0).expect("writing to memory");
        write(&mut second, 3000, 0).expect("writing to memory");
        assert_eq!(first, second);
        let text = String::from_utf8(first).expect("UTF-8");
        assert!(text.starts_with("email,mobile,first_name,last_name,city,postal_code,street,birthday,segment,company,external_id,newsletter,loyalty_points\n"));
        assert!(text.contains("Łódź") && text.contains("Zażółć"));
    }
}
