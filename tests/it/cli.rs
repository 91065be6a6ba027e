//! The contact-import CLI as scripts use it: its outputs, exit codes and messages.

use std::path::PathBuf;
use std::process::Output;

use contact_tests::TestSystem;

fn cli_binary() -> PathBuf {
    contact_tests::workspace_binary("contact-import")
}

pub async fn cli(system: &TestSystem, arguments: &[&str]) -> Output {
    tokio::process::Command::new(cli_binary())
        .args([
            "--nats-url",
            &system.nats.url,
            "--account",
            system.account.as_str(),
        ])
        .args(arguments)
        .env("CONTACT_IMPORT_NAMESPACE", &system.namespace_name)
        .output()
        .await
        .expect("the CLI runs")
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

#[tokio::test]
async fn import_follow_json_ends_with_the_summary_object_and_exit_zero() {
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
    let text = stdout(&output);
    let lines: Vec<&str> = text.lines().collect();
    let import_id = lines.first().expect("the import id first");
    let summary: serde_json::Value =
        serde_json::from_str(lines.last().expect("a last line")).expect("JSON");
    assert_eq!(summary["import_id"], *import_id);
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
