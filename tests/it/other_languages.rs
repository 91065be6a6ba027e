//! A client in another language, written from the contract alone: the Python example
//! (`examples/python`, on nats-py) imports a file as a tenant of the secure deployment, on the
//! tenant's own credentials, and follows it to its summary.

use std::path::{Path, PathBuf};

use contact_contract::{AccountId, ImportState, ImportStatus};
use contact_tests::{unique, SecureNats, TestSystem};
use contact_writer::AccountAdmission;

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("examples/python").is_dir())
        .expect("the workspace's root")
        .to_path_buf()
}

/// A Python with the example's requirements: a virtual environment under `target/`, made on
/// first use from PyPI (nats-py, nkeys).
async fn example_python(root: &Path) -> PathBuf {
    let venv = root.join("target/python-example");
    let python = venv.join("bin/python");
    let requirements = root.join("examples/python/requirements.txt");
    let ready = venv.join("requirements.installed");
    let wanted = std::fs::read_to_string(&requirements).expect("the requirements");
    if std::fs::read_to_string(&ready).ok().as_deref() == Some(wanted.as_str()) {
        return python;
    }
    let made = tokio::process::Command::new("python3")
        .args(["-m", "venv"])
        .arg(&venv)
        .status()
        .await
        .expect("python3 runs (deploy/ensure-infra.sh installs it with python3-venv)");
    assert!(
        made.success(),
        "python3 -m venv failed: is python3-venv installed?"
    );
    let installed = tokio::process::Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "-r",
        ])
        .arg(&requirements)
        .status()
        .await
        .expect("pip runs");
    assert!(
        installed.success(),
        "pip could not install {}",
        requirements.display()
    );
    std::fs::write(&ready, wanted).expect("recorded");
    python
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_python_example_imports_a_file_as_a_tenant_and_reads_its_summary() {
    let root = workspace_root();
    let python = example_python(&root).await;
    let tenant = AccountId::new(unique("py-")).expect("valid");
    let secure = SecureNats::start(std::slice::from_ref(&tenant)).await;
    let system = TestSystem::start_secure(&secure, tenant.clone(), AccountAdmission::Open).await;
    let file = system.file(
        "kontakty.csv",
        "email,city\nanna@example.com,Gdańsk\n+48 600 100 200,Hel\njan@example.com,Sopot\n",
    );
    let creds = contact_admin::Deployment::at(&secure.dir).tenant_creds(&tenant);
    let run = |account: &AccountId, timeout: &str| {
        let mut command = tokio::process::Command::new(&python);
        command
            .arg(root.join("examples/python/import_contacts.py"))
            .arg(&file)
            .args(["--nats", secure.deployment.url()])
            .args(["--namespace", secure.namespace.name()])
            .args(["--account", account.as_str()])
            .arg("--creds")
            .arg(&creds)
            .args(["--tag", "python", "--timeout", timeout]);
        command.output()
    };
    let output = run(&tenant, "60").await.expect("the example runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let summary: ImportStatus =
        serde_json::from_slice(&output.stdout).expect("one JSON object: the summary's status");
    assert_eq!(summary.status, ImportState::Completed, "{summary:?}");
    assert_eq!((summary.created, summary.failed), (2, 1), "{summary:?}");
    assert_eq!(summary.file_name.as_deref(), Some("kontakty.csv"));

    // What it imported is the tenant's, as the reference client sees it.
    let contacts = system.contacts().await;
    let mut emails: Vec<&str> = contacts
        .iter()
        .map(|contact| contact.attributes["email"].as_str())
        .collect();
    emails.sort();
    assert_eq!(emails, ["anna@example.com", "jan@example.com"]);
    assert!(contacts.iter().all(|contact| contact.tags == ["python"]));
    let status = system
        .client
        .status(&summary.import_id)
        .await
        .expect("status");
    assert_eq!(status.failed, 1);

    // The same seed cannot act as another account: NATS refuses, and the example says it
    // could not get through rather than waiting forever.
    let other = AccountId::new(unique("py-other-")).expect("valid");
    let refused = run(&other, "3").await.expect("the example runs");
    assert_eq!(
        refused.status.code(),
        Some(2),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(refused.stdout.is_empty());
}
