//! How files are read: encodings (detected or forced), byte order marks, delimiters, the
//! preview and its suggested mapping, and auto-mapped imports.

use contact_contract::ImportOptions;
use contact_contract::TextEncoding;
use contact_tests::TestSystem;
use encoding_rs::{ISO_8859_2, WINDOWS_1250, WINDOWS_1252};

const POLISH: &str = "email;imie;nazwisko;miasto\n\
zofia@example.pl;Zofia;Wiśniewska;Łódź\n\
grzegorz@example.pl;Grzegorz;Brzęczyszczykiewicz;Chrząszczyżewoszyce\n\
zuzanna@example.pl;Źdźisława;Żółkiewska;Gdańsk\n\
jozef@example.pl;Józef;Ćwikła;Świętochłowice\n";

fn polish_options() -> ImportOptions {
    crate::options(
        contact_contract::DuplicatePolicy::Link,
        &["imie=first_name", "nazwisko=last_name", "miasto=city"],
    )
}

fn expected_polish() -> Vec<(String, String, String)> {
    POLISH
        .lines()
        .skip(1)
        .map(|line| {
            let fields: Vec<&str> = line.split(';').collect();
            (
                fields[1].to_string(),
                fields[2].to_string(),
                fields[3].to_string(),
            )
        })
        .collect()
}

#[tokio::test]
async fn polish_letters_come_out_exact_from_every_encoding_a_spreadsheet_writes() {
    let system = TestSystem::start().await;
    let mut files: Vec<(&str, Vec<u8>)> = vec![
        ("windows-1250", WINDOWS_1250.encode(POLISH).0.into_owned()),
        ("ISO-8859-2", ISO_8859_2.encode(POLISH).0.into_owned()),
        (
            "UTF-8 with BOM",
            [b"\xEF\xBB\xBF".as_slice(), POLISH.as_bytes()].concat(),
        ),
    ];
    let utf16le: Vec<u8> = POLISH.encode_utf16().flat_map(u16::to_le_bytes).collect();
    let utf16be: Vec<u8> = POLISH.encode_utf16().flat_map(u16::to_be_bytes).collect();
    files.push((
        "UTF-16LE with BOM",
        [[0xFF, 0xFE].as_slice(), &utf16le].concat(),
    ));
    files.push((
        "UTF-16BE with BOM",
        [[0xFE, 0xFF].as_slice(), &utf16be].concat(),
    ));
    for (position, (encoding, bytes)) in files.into_iter().enumerate() {
        let account = contact_contract::AccountId::new(format!("{}-{position}", system.account))
            .expect("valid");
        let client = system.client_for(&account).await;
        let path = system.file(&format!("{}.csv", encoding.replace(' ', "-")), &bytes);
        let summary = system.import_file(&client, &path, polish_options()).await;
        assert_eq!(
            (summary.created, summary.failed),
            (4, 0),
            "{encoding}: {summary:?}"
        );
        let mut names = Vec::new();
        client
            .export_contacts(|contact| names.push(contact))
            .await
            .expect("export");
        let read: Vec<(String, String, String)> = names
            .into_iter()
            .map(|contact| {
                (
                    contact.attributes["first_name"].clone(),
                    contact.attributes["last_name"].clone(),
                    contact.attributes["city"].clone(),
                )
            })
            .collect();
        assert_eq!(read, expected_polish(), "{encoding}");
    }
    system.stop().await;
}

#[tokio::test]
async fn a_forced_encoding_wins_over_detection() {
    let system = TestSystem::start().await;
    let text = "email,first_name,city\nfrancois@example.fr,François,Besançon\njurgen@example.de,Jürgen,Köln\n";
    let bytes = WINDOWS_1252.encode(text).0.into_owned();
    let forced = ImportOptions {
        encoding: Some("windows-1252".into()),
        ..ImportOptions::default()
    };
    let summary = system.import(&bytes, forced).await;
    assert_eq!(summary.created, 2, "{summary:?}");
    let contacts = system.contacts().await;
    assert_eq!(contacts[0].attributes["first_name"], "François");
    assert_eq!(contacts[1].attributes["city"], "Köln");
    system.stop().await;
}

#[tokio::test]
async fn every_delimiter_is_detected() {
    let system = TestSystem::start().await;
    for (name, delimiter) in [
        ("comma", ","),
        ("semicolon", ";"),
        ("tab", "\t"),
        ("pipe", "|"),
    ] {
        let company = if delimiter == "," {
            "\"Kwiaty, Ogrody\"".to_string()
        } else {
            "Kwiaty, Ogrody".to_string()
        };
        let file = format!(
            "email{d}company{d}city\n{name}1@example.com{d}{company}{d}Kraków\n{name}2@example.com{d}Acme{d}Gdańsk\n",
            d = delimiter
        );
        let summary = system.import(file, ImportOptions::default()).await;
        assert_eq!(
            (summary.created, summary.failed),
            (2, 0),
            "{name}: {summary:?}"
        );
    }
    let contacts = system.contacts().await;
    assert_eq!(contacts.len(), 8);
    assert!(
        contacts
            .iter()
            .filter(
                |contact| contact.attributes.get("company").map(String::as_str)
                    == Some("Kwiaty, Ogrody")
            )
            .count()
            == 4
    );
    system.stop().await;
}

#[tokio::test]
async fn preview_reads_a_polish_spreadsheet_export_and_suggests_the_mapping() {
    let system = TestSystem::start().await;
    let text = "Adres e-mail;Imię;Nazwisko;Telefon;Miasto;Kod pocztowy;Uwagi\n\
anna@example.pl;Anna;Kowalska;501 234 567;Kraków;30-001;stała klientka\n\
jan@example.pl;Jan;Nowak;602 345 678;Łódź;90-001;\n";
    let path = system.file("polski.csv", &WINDOWS_1250.encode(text).0);
    let preview = system
        .client
        .preview(&path, &ImportOptions::default())
        .await
        .expect("preview");
    assert_eq!(preview.encoding, TextEncoding::Windows1250);
    assert_eq!(preview.delimiter, ";");
    assert_eq!(
        preview.header,
        [
            "Adres e-mail",
            "Imię",
            "Nazwisko",
            "Telefon",
            "Miasto",
            "Kod pocztowy",
            "Uwagi"
        ]
    );
    assert_eq!(preview.rows[1][4], "Łódź");
    let suggested: Vec<Option<&str>> = preview
        .suggested_mapping
        .iter()
        .map(|suggestion| suggestion.attribute.as_deref())
        .collect();
    assert_eq!(
        suggested,
        [
            Some("email"),
            Some("first_name"),
            Some("last_name"),
            Some("mobile"),
            Some("city"),
            Some("postal_code"),
            None
        ]
    );
    assert!(preview.unmapped_required.is_empty());
    system.stop().await;
}

#[tokio::test]
async fn columns_are_mapped_from_their_values_when_the_header_says_nothing() {
    let system = TestSystem::start().await;
    let file = "kontakt,nr,x\nanna@example.pl,501234567,a\njan@example.pl,602 345 678,b\nola@example.pl,+48 503 456 789,c\n";
    let path = system.file("values.csv", file);
    let preview = system
        .client
        .preview(&path, &ImportOptions::default())
        .await
        .expect("preview");
    assert_eq!(
        preview.suggested_mapping[0].attribute.as_deref(),
        Some("email")
    );
    assert_eq!(
        preview.suggested_mapping[1].attribute.as_deref(),
        Some("mobile")
    );
    assert_eq!(preview.suggested_mapping[2].attribute, None);

    let options =
        contact_import_client::preflight(&system.client, &path, ImportOptions::default(), true)
            .await
            .expect("auto-mapped");
    let summary = system.import_file(&system.client, &path, options).await;
    assert_eq!((summary.created, summary.failed), (3, 0), "{summary:?}");
    assert_eq!(summary.unmapped_columns, ["x"]);
    assert_eq!(
        system.contacts().await[2].attributes["mobile"],
        "+48503456789"
    );
    system.stop().await;
}

#[tokio::test]
async fn english_headers_from_a_crm_export_are_auto_mapped_and_explicit_maps_win() {
    let system = TestSystem::start().await;
    let file = "E-mail Address,First Name,Last Name,Mobile Phone,Company Name,ZIP,Town\n\
a@example.com,Ann,Lee,501234567,Acme,00-001,Opole\n";
    let path = system.file("crm.csv", file);
    let explicit = crate::options(contact_contract::DuplicatePolicy::Link, &["Town=street"]);
    let options = contact_import_client::preflight(&system.client, &path, explicit, true)
        .await
        .expect("auto-mapped");
    let summary = system.import_file(&system.client, &path, options).await;
    assert_eq!((summary.created, summary.failed), (1, 0), "{summary:?}");
    let contact = &system.contacts().await[0];
    for (attribute, value) in [
        ("email", "a@example.com"),
        ("first_name", "Ann"),
        ("last_name", "Lee"),
        ("mobile", "+48501234567"),
        ("company", "Acme"),
        ("postal_code", "00-001"),
        ("street", "Opole"),
    ] {
        assert_eq!(
            contact.attributes.get(attribute).map(String::as_str),
            Some(value),
            "{attribute}"
        );
    }
    system.stop().await;
}

#[tokio::test]
async fn a_binary_file_is_refused_by_the_preview_too() {
    let system = TestSystem::start().await;
    let path = system.file(
        "image.png",
        [
            0x89, b'P', b'N', b'G', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 0x0d,
        ],
    );
    let refused =
        contact_import_client::preflight(&system.client, &path, ImportOptions::default(), false)
            .await;
    match refused {
        Err(contact_import_client::PreflightError::Refused(reason)) => {
            assert!(reason.contains("not text"), "{reason}")
        }
        other => panic!("expected a refusal, got {other:?}"),
    }
    system.stop().await;
}
