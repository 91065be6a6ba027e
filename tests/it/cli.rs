//! The contact-import CLI as scripts use it: its outputs, exit codes and messages.

use std::path::{Path, PathBuf};
use std::process::Output;

use contact_tests::{Replicas, TestSystem};

fn cli_binary() -> PathBuf {
    contact_tests::workspace_binary("contact-import")
}

pub async fn cli(system: &TestSystem, arguments: &[&str]) -> Output {
    cli_command(system, arguments)
        .output()
        .await
        .expect("the CLI runs")
}

/// The CLI as the test system's tenant, with `arguments`.
fn cli_command(system: &TestSystem, arguments: &[&str]) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(cli_binary());
    command
        .args([
            "--nats-url",
            &system.nats.url,
            "--account",
            system.account.as_str(),
        ])
        .args(arguments)
        .env("CONTACT_IMPORT_NAMESPACE", &system.namespace_name);
    command
}

/// Runs the CLI and fails the test if it fails.
pub async fn run_cli(system: &TestSystem, arguments: &[&str]) -> String {
    let output = cli(system, arguments).await;
    assert!(
        output.status.success(),
        "contact-import {arguments:?}: {}",
        stderr(&output)
    );
    stdout(&output)
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// The whole of standard output as exactly one JSON document (whitespace around it aside):
/// what `| jq` needs.
pub fn one_json_document(output: &Output) -> serde_json::Value {
    let text = stdout(output);
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("stdout is not one JSON document ({error}): {text:?}"))
}

#[tokio::test]
async fn import_follow_json_prints_only_the_summary_object_and_exits_zero() {
    let system = TestSystem::start().await;
    let file = system.file(
        "cli.csv",
        "E-mail,City\na@example.com,Kraków\nnot-an-email,Gdańsk\n",
    );
    let path = file.to_str().expect("utf-8 path");
    let output = cli(
        &system,
        &[
            "import",
            path,
            "--map",
            "E-mail=email",
            "--tag",
            "cli",
            "--follow",
            "--json",
        ],
    )
    .await;
    assert!(output.status.success(), "{}", stderr(&output));
    let summary = one_json_document(&output);
    let import_id = summary["import_id"].as_str().expect("the import id");
    assert!(!import_id.is_empty());
    assert_eq!(summary["account"], system.account.as_str());
    assert_eq!(summary["status"], "completed");
    for (field, value) in [
        ("rows_total", 2),
        ("created", 1),
        ("linked", 0),
        ("duplicated", 0),
        ("skipped", 0),
        ("failed", 1),
    ] {
        assert_eq!(summary[field], value, "{field}");
    }
    assert_eq!(summary["unmapped_columns"], serde_json::json!([]));
    assert!(summary.get("error").is_some());

    let errors_path = system.scratch_path("errors.csv");
    let errors = cli(
        &system,
        &[
            "errors",
            import_id,
            "-o",
            errors_path.to_str().expect("utf-8"),
        ],
    )
    .await;
    assert!(errors.status.success(), "{}", stderr(&errors));
    let written = std::fs::read_to_string(&errors_path).expect("errors file");
    assert_eq!(
        written,
        "\u{feff}E-mail,City,line,column,reason\nnot-an-email,Gdańsk,3,E-mail,E-mail: not a valid email address\n"
    );

    let export = cli(&system, &["contacts", "export", "--format", "jsonl"]).await;
    let contact: serde_json::Value =
        serde_json::from_str(stdout(&export).trim()).expect("one JSON line");
    assert_eq!(contact["attributes"]["email"], "a@example.com");
    assert_eq!(contact["tags"], serde_json::json!(["cli"]));
    assert!(
        contact["id"].is_i64()
            && contact.get("type").is_some()
            && contact.get("category").is_some()
    );
    system.stop().await;
}

#[tokio::test]
async fn a_wrong_mapping_or_policy_fails_at_once_with_a_message_naming_it() {
    let system = TestSystem::start().await;
    let path = system.file("wrong.csv", "mail,city\na@example.com,Kraków\n");
    let path = path.to_str().expect("utf-8 path");

    let unmapped = cli(&system, &["import", path]).await;
    assert_eq!(unmapped.status.code(), Some(2));
    assert!(
        stderr(&unmapped).contains("\"email\""),
        "{}",
        stderr(&unmapped)
    );

    let unknown = cli(&system, &["import", path, "--map", "mail=emial"]).await;
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("\"emial\""),
        "{}",
        stderr(&unknown)
    );

    let policy = cli(
        &system,
        &[
            "import",
            path,
            "--map",
            "mail=email",
            "--duplicates",
            "merge",
        ],
    )
    .await;
    assert!(!policy.status.success());
    assert!(stderr(&policy).contains("merge"), "{}", stderr(&policy));
    assert!(system.contacts().await.is_empty());
    system.stop().await;
}

#[tokio::test]
async fn an_unreachable_nats_is_named_in_one_line() {
    let output = tokio::process::Command::new(cli_binary())
        .args(["--nats-url", "nats://127.0.0.1:1", "attributes", "list"])
        .output()
        .await
        .expect("the CLI runs");
    assert!(!output.status.success());
    let message = stderr(&output);
    assert!(
        message.contains("cannot reach NATS at nats://127.0.0.1:1"),
        "{message}"
    );
    assert_eq!(message.trim().lines().count(), 1, "{message}");
}

#[tokio::test]
async fn attributes_can_be_added_and_flagged_from_the_cli() {
    let system = TestSystem::start().await;
    let added = cli(
        &system,
        &[
            "attributes",
            "add",
            "segment",
            "--type",
            "enum",
            "--values",
            "A,B",
            "--required",
        ],
    )
    .await;
    assert!(added.status.success(), "{}", stderr(&added));
    let set = cli(
        &system,
        &[
            "attributes",
            "set",
            "segment",
            "--required",
            "false",
            "--identifier",
            "true",
        ],
    )
    .await;
    assert!(set.status.success(), "{}", stderr(&set));
    let listed = cli(&system, &["attributes", "list", "--json"]).await;
    let attributes: serde_json::Value = serde_json::from_str(&stdout(&listed)).expect("JSON");
    let segment = attributes
        .as_array()
        .expect("an array")
        .iter()
        .find(|attribute| attribute["key"] == "segment")
        .expect("segment listed");
    assert_eq!(
        segment["attribute_type"],
        serde_json::json!({"type": "enum", "values": ["A", "B"]})
    );
    assert_eq!(
        (segment["required"].clone(), segment["identifier"].clone()),
        (false.into(), true.into())
    );
    system.stop().await;
}

#[tokio::test]
async fn preview_json_and_template_follow_the_documented_shape() {
    let system = TestSystem::start().await;
    let path = system.file("preview.csv", "Imię;Telefon;Coś\nAnna;501 234 567;x\n");
    let output = run_cli(
        &system,
        &["preview", path.to_str().expect("utf-8"), "--json"],
    )
    .await;
    let preview: serde_json::Value = serde_json::from_str(output.trim()).expect("one JSON object");
    assert_eq!(preview["encoding"], "UTF-8");
    assert_eq!(preview["delimiter"], ";");
    assert_eq!(
        preview["header"],
        serde_json::json!(["Imię", "Telefon", "Coś"])
    );
    assert_eq!(
        preview["rows"],
        serde_json::json!([["Anna", "501 234 567", "x"]])
    );
    let suggested = preview["suggested_mapping"].as_array().expect("an array");
    assert_eq!(suggested[0]["attribute"], "first_name");
    assert_eq!(suggested[1]["attribute"], "mobile");
    assert!(suggested[2]["attribute"].is_null());
    assert!(suggested[0]["confidence"]
        .as_f64()
        .is_some_and(|confidence| confidence > 0.0));
    assert!(suggested[0]["reason"].is_string());
    assert_eq!(preview["unmapped_required"], serde_json::json!(["email"]));

    let template_path = system.scratch_path("template.csv");
    run_cli(
        &system,
        &["template", "-o", template_path.to_str().expect("utf-8")],
    )
    .await;
    let template = std::fs::read_to_string(&template_path).expect("template written");
    assert!(
        template.starts_with("email,mobile,first_name,"),
        "{template}"
    );
    assert_eq!(template.lines().count(), 2);
    system.stop().await;
}

/// The CLI's exit codes, as the README's table and `--help` give them.
mod exit_code {
    pub const SUCCESS: i32 = 0;
    pub const USAGE: i32 = 2;
    pub const IMPORT_NOT_COMPLETED: i32 = 3;
    pub const UNAVAILABLE: i32 = 4;
}

/// Runs the CLI in `dir`, so that a test can see which files it made there.
async fn cli_in(system: &TestSystem, dir: &Path, arguments: &[&str]) -> Output {
    cli_command(system, arguments)
        .current_dir(dir)
        .output()
        .await
        .expect("the CLI runs")
}

/// Runs the CLI, fails the test unless it succeeds, and returns its whole stdout parsed as
/// one JSON document.
async fn json_of(system: &TestSystem, arguments: &[&str]) -> serde_json::Value {
    let output = cli(system, arguments).await;
    assert_eq!(
        output.status.code(),
        Some(exit_code::SUCCESS),
        "contact-import {arguments:?}: {}",
        stderr(&output)
    );
    one_json_document(&output)
}

#[tokio::test]
async fn every_json_output_is_exactly_one_json_document() {
    // No ingest at first: an import started stays queued, so that it can be cancelled.
    let mut system = TestSystem::start_with(Replicas {
        ingest: 0,
        ..Replicas::default()
    })
    .await;
    let path = system.file(
        "json.csv",
        "email,city\nj1@example.com,Kraków\nj2@example.com,Gdańsk\n",
    );
    let path = path.to_str().expect("utf-8 path");

    let preview = json_of(&system, &["preview", path, "--json"]).await;
    assert_eq!(preview["header"], serde_json::json!(["email", "city"]));

    let queued = json_of(&system, &["import", path, "--json"]).await;
    assert_eq!(queued["status"], "queued");
    let queued_id = queued["import_id"]
        .as_str()
        .expect("an import id")
        .to_string();
    let status = json_of(&system, &["status", &queued_id, "--json"]).await;
    assert_eq!(status["import_id"], queued_id.as_str());
    let cancelled = json_of(&system, &["cancel", &queued_id, "--json"]).await;
    assert_eq!(cancelled["status"], "cancelled");

    system.start_ingest().await.expect("ingest starts");
    let summary = json_of(&system, &["import", path, "--follow", "--json"]).await;
    assert_eq!(summary["status"], "completed");
    assert_eq!(summary["created"], 2);
    let imported_id = summary["import_id"].as_str().expect("an import id");

    let attributes = json_of(&system, &["attributes", "list", "--json"]).await;
    assert!(attributes
        .as_array()
        .expect("an array")
        .iter()
        .any(|attribute| attribute["key"] == "email"));
    let imports = json_of(&system, &["imports", "list", "--json"]).await;
    assert_eq!(imports.as_array().expect("an array").len(), 2);

    let undone = json_of(&system, &["undo", imported_id, "--json"]).await;
    assert_eq!(undone["status"], "undone");
    assert_eq!(undone["contacts_removed"], 2);
    assert_eq!(undone["kept"], serde_json::json!([]));
    system.stop().await;
}

#[tokio::test]
async fn exit_codes_tell_a_failed_import_from_an_unreachable_system_and_a_usage_error() {
    let system = TestSystem::start().await;
    let path = system.file("codes.csv", "email\ncode@example.com\n");
    let path = path.to_str().expect("utf-8 path");

    // The import is started, and the pipeline fails it: a tag over the 100-character limit.
    let long_tag = "t".repeat(101);
    for json in [false, true] {
        let mut arguments = vec!["import", path, "--tag", &long_tag, "--follow"];
        if json {
            arguments.push("--json");
        }
        let failed = cli(&system, &arguments).await;
        assert_eq!(
            failed.status.code(),
            Some(exit_code::IMPORT_NOT_COMPLETED),
            "{}",
            stderr(&failed)
        );
        if json {
            assert_eq!(one_json_document(&failed)["status"], "failed");
        } else {
            assert!(stderr(&failed).contains("failed: "), "{}", stderr(&failed));
        }
    }

    // Usage and input: clap's refusal, a name that is no import id, nothing to change.
    for arguments in [
        vec!["import"],
        vec!["import", path, "--duplicates", "merge"],
        vec!["status", "not an id"],
        vec!["attributes", "set", "email"],
        vec!["status", "no-such-import"],
    ] {
        let refused = cli(&system, &arguments).await;
        assert_eq!(
            refused.status.code(),
            Some(exit_code::USAGE),
            "{arguments:?}: {}",
            stderr(&refused)
        );
        assert!(refused.stdout.is_empty(), "{arguments:?}");
    }

    // Nothing listens on the port: NATS is unreachable.
    let unreachable = tokio::process::Command::new(cli_binary())
        .args(["--nats-url", "nats://127.0.0.1:1", "status", "x", "--json"])
        .output()
        .await
        .expect("the CLI runs");
    assert_eq!(
        unreachable.status.code(),
        Some(exit_code::UNAVAILABLE),
        "{}",
        stderr(&unreachable)
    );
    assert!(unreachable.stdout.is_empty());

    // NATS answers, but no contact-writer serves this namespace: no reply.
    let unanswered = tokio::process::Command::new(cli_binary())
        .args(["--nats-url", &system.nats.url, "attributes", "list"])
        .env("CONTACT_IMPORT_NAMESPACE", contact_tests::unique("nobody"))
        .output()
        .await
        .expect("the CLI runs");
    assert_eq!(
        unanswered.status.code(),
        Some(exit_code::UNAVAILABLE),
        "{}",
        stderr(&unanswered)
    );
    assert!(
        stderr(&unanswered).contains("no contact-writer is answering"),
        "{}",
        stderr(&unanswered)
    );
    system.stop().await;
}

#[tokio::test]
async fn a_dash_as_output_writes_to_stdout_and_no_file_named_dash() {
    let system = TestSystem::start().await;
    let path = system.file(
        "dash.csv",
        "email,city\nd@example.com,Kraków\nnope,Gdańsk\n",
    );
    let summary: serde_json::Value = serde_json::from_str(
        run_cli(
            &system,
            &[
                "import",
                path.to_str().expect("utf-8"),
                "--follow",
                "--json",
            ],
        )
        .await
        .trim(),
    )
    .expect("the summary");
    let import_id = summary["import_id"].as_str().expect("an import id");
    let dir = system.scratch_path("cwd");
    std::fs::create_dir_all(&dir).expect("a working directory");

    let template = cli_in(&system, &dir, &["template", "-o", "-"]).await;
    assert!(template.status.success(), "{}", stderr(&template));
    assert!(
        stdout(&template).starts_with("email,mobile,first_name,"),
        "{}",
        stdout(&template)
    );

    // On stdout the error file has no byte order mark: it goes to another program.
    let errors = cli_in(&system, &dir, &["errors", import_id, "-o", "-"]).await;
    assert!(errors.status.success(), "{}", stderr(&errors));
    assert_eq!(
        stdout(&errors),
        "email,city,line,column,reason\nnope,Gdańsk,3,email,email: not a valid email address\n"
    );

    for format in ["jsonl", "csv"] {
        let export = cli_in(
            &system,
            &dir,
            &["contacts", "export", "--format", format, "-o", "-"],
        )
        .await;
        assert!(export.status.success(), "{}", stderr(&export));
        assert!(stdout(&export).contains("d@example.com"), "{format}");
    }

    let made: Vec<_> = std::fs::read_dir(&dir)
        .expect("the working directory")
        .map(|entry| entry.expect("an entry").file_name())
        .collect();
    assert!(made.is_empty(), "files made: {made:?}");
    system.stop().await;
}

#[tokio::test]
async fn every_binary_tells_its_version_and_the_cli_its_exit_codes_and_completions() {
    let version = env!("CARGO_PKG_VERSION");
    for binary in [
        "contact-import",
        "contact-ingest",
        "contact-mapper",
        "contact-writer",
        "contact-import-admin",
        "contact-import-bench",
    ] {
        let output = tokio::process::Command::new(contact_tests::workspace_binary(binary))
            .arg("--version")
            .output()
            .await
            .expect("the binary runs");
        assert!(output.status.success(), "{binary}: {}", stderr(&output));
        assert_eq!(stdout(&output).trim(), format!("{binary} {version}"));
    }

    let help = tokio::process::Command::new(cli_binary())
        .arg("--help")
        .output()
        .await
        .expect("the CLI runs");
    let help = stdout(&help);
    for code in ["0", "1", "2", "3", "4"] {
        assert!(help.contains(&format!("\n  {code}  ")), "{help}");
    }

    for (shell, expected) in [
        ("bash", "complete -F"),
        ("zsh", "#compdef contact-import"),
        ("fish", "complete -c contact-import"),
    ] {
        // No NATS is needed for it: the port is closed.
        let output = tokio::process::Command::new(cli_binary())
            .args(["--nats-url", "nats://127.0.0.1:1", "completions", shell])
            .output()
            .await
            .expect("the CLI runs");
        assert!(output.status.success(), "{shell}: {}", stderr(&output));
        let script = stdout(&output);
        assert!(script.contains(expected), "{shell}: {script}");
        assert!(
            script.contains("undo"),
            "{shell}: every command is completed"
        );
    }
}

#[tokio::test]
async fn values_mapped_with_map_value_are_imported_as_allowed_values_and_a_wrong_map_is_refused() {
    let system = TestSystem::start().await;
    run_cli(
        &system,
        &[
            "attributes",
            "add",
            "gender",
            "--type",
            "enum",
            "--values",
            "F,M",
        ],
    )
    .await;
    run_cli(
        &system,
        &["attributes", "add", "newsletter", "--type", "boolean"],
    )
    .await;
    let path = system.file(
        "plec.csv",
        "email;gender;newsletter;city\n\
         ewa@example.pl;K;ja;Łódź\n\
         adam@example.pl;m;nein;Gdańsk\n\
         iza@example.pl;kobieta;tak;Kraków\n\
         olek@example.pl;x;nie;Poznań\n",
    );
    let path = path.to_str().expect("utf-8 path");

    // The preview lists the values to map, each once, with what the maps given read them as.
    let preview = json_of(
        &system,
        &["preview", path, "--map-value", "gender:k=F", "--json"],
    )
    .await;
    let unfit = preview["unfit_columns"].as_array().expect("an array");
    let gender = unfit
        .iter()
        .find(|column| column["attribute"] == "gender")
        .expect("gender listed");
    assert_eq!(gender["allowed"], serde_json::json!(["F", "M"]));
    let listed: Vec<(String, Option<String>)> = gender["values"]
        .as_array()
        .expect("values")
        .iter()
        .map(|value| {
            (
                value["value"].as_str().expect("value").to_owned(),
                value["mapped_to"].as_str().map(str::to_owned),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            ("K".to_owned(), Some("F".to_owned())),
            ("kobieta".to_owned(), None),
            ("x".to_owned(), None)
        ]
    );

    // A map onto a value the attribute does not allow is refused before anything is sent.
    let refused = cli(
        &system,
        &["import", path, "--map-value", "gender:x=Q", "--follow"],
    )
    .await;
    assert_eq!(refused.status.code(), Some(exit_code::USAGE));
    assert!(
        stderr(&refused).contains("\"x\" cannot be read as \"Q\" for \"gender\": not one of: F, M"),
        "{}",
        stderr(&refused)
    );

    let summary = json_of(
        &system,
        &[
            "import",
            path,
            "--map",
            "city=",
            "--map-value",
            "gender:K=F",
            "--map-value",
            "gender:Kobieta=f",
            "--map-value",
            "newsletter:ja=yes",
            "--map-value",
            "newsletter:nein=false",
            "--follow",
            "--json",
        ],
    )
    .await;
    assert_eq!(
        (summary["created"].clone(), summary["failed"].clone()),
        (3.into(), 1.into())
    );
    assert_eq!(summary["unmapped_columns"], serde_json::json!(["city"]));
    let export = run_cli(&system, &["contacts", "export", "--format", "jsonl"]).await;
    let mut stored: Vec<(String, String, String, bool)> = export
        .lines()
        .map(|line| {
            let contact: serde_json::Value = serde_json::from_str(line).expect("JSON line");
            let attribute =
                |key: &str| contact["attributes"][key].as_str().unwrap_or("").to_owned();
            (
                attribute("email"),
                attribute("gender"),
                attribute("newsletter"),
                contact["attributes"].get("city").is_some(),
            )
        })
        .collect();
    stored.sort();
    assert_eq!(
        stored,
        [
            ("adam@example.pl".into(), "M".into(), "false".into(), false),
            ("ewa@example.pl".into(), "F".into(), "true".into(), false),
            ("iza@example.pl".into(), "F".into(), "true".into(), false),
        ]
    );
    system.stop().await;
}

#[tokio::test]
async fn a_file_with_the_columns_of_an_earlier_import_is_previewed_with_its_mapping() {
    let system = TestSystem::start().await;
    run_cli(
        &system,
        &[
            "attributes",
            "add",
            "gender",
            "--type",
            "enum",
            "--values",
            "F,M",
        ],
    )
    .await;
    let march = system.file(
        "march.csv",
        "email;płeć;city\newa@example.pl;K;Łódź\nadam@example.pl;M;Gdańsk\n",
    );
    let march = march.to_str().expect("utf-8 path");
    let summary = json_of(
        &system,
        &[
            "import",
            march,
            "--map",
            "płeć=gender",
            "--map",
            "city=",
            "--map-value",
            "gender:K=F",
            "--follow",
            "--json",
        ],
    )
    .await;
    assert_eq!(summary["created"], 2, "{summary}");

    // April's file has the same columns in another order, and values March did not.
    let april = system.file(
        "april.csv",
        "city;email;płeć\nOpole;iza@example.pl;k\nToruń;olek@example.pl;x\n",
    );
    let april = april.to_str().expect("utf-8 path");
    let preview = json_of(&system, &["preview", april, "--json"]).await;
    let remembered = &preview["remembered"];
    assert_eq!(remembered["import_id"], summary["import_id"], "{preview}");
    assert_eq!(remembered["file_name"], "march.csv");
    let mut mappings: Vec<(String, String)> = remembered["mappings"]
        .as_array()
        .expect("mappings")
        .iter()
        .map(|mapping| {
            let text = |key: &str| mapping[key].as_str().expect("a string").to_owned();
            (text("column"), text("attribute"))
        })
        .collect();
    mappings.sort();
    assert_eq!(
        mappings,
        [
            ("city".into(), "".into()),
            ("email".into(), "email".into()),
            ("płeć".into(), "gender".into()),
        ]
    );
    assert_eq!(
        remembered["value_mappings"],
        serde_json::json!([{"attribute": "gender", "value": "k", "allowed": "F"}])
    );

    // The text preview gives the options that repeat it; given, they import April as March.
    let text = run_cli(&system, &["preview", april]).await;
    let options_line = text
        .lines()
        .skip_while(|line| !line.contains("had these columns; its mapping, as options:"))
        .nth(1)
        .expect("the options line")
        .trim()
        .to_owned();
    let words = shell_words(&options_line);
    let mut arguments = vec!["import", april];
    arguments.extend(words.iter().map(String::as_str));
    arguments.extend(["--follow", "--json"]);
    let summary = json_of(&system, &arguments).await;
    assert_eq!(
        (summary["created"].clone(), summary["failed"].clone()),
        (1.into(), 1.into()),
        "iza's k reads as F, olek's x fails: {summary}"
    );
    assert_eq!(summary["unmapped_columns"], serde_json::json!(["city"]));
    system.stop().await;
}

/// The words of a line of single-quoted shell words, as a POSIX shell splits them.
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let (mut word, mut in_word, mut quoted) = (String::new(), false, false);
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' => {
                quoted = !quoted;
                in_word = true;
            }
            '\\' if !quoted => {
                word.extend(chars.next());
                in_word = true;
            }
            ' ' if !quoted => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                }
                in_word = false;
            }
            c => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}
