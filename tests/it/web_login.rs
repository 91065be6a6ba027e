//! The import page in a secure deployment: a person logs in as a web user of the deployment's
//! folder and acts as her own account, over that tenant's credentials; another account's
//! imports do not exist for her, a wrong password is refused and then held back, a form from
//! another site is refused, and a user removed by the admin is logged out at her next request.
//! Spoken to over plain HTTP/1.1, as a browser would, on the real NATS and PostgreSQL.

use std::net::SocketAddr;

use clap::Parser as _;
use contact_contract::web_users::UserName;
use contact_contract::{AccountId, ImportOptions, ImportState};
use contact_tests::{unique, SecureNats, TestSystem};
use contact_writer::AccountAdmission;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(key, _)| key.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }

    /// The session cookie as the browser sends it back.
    fn session(&self) -> String {
        let set = self.header("set-cookie").expect("a cookie was set");
        set.split(';').next().expect("name=value").to_string()
    }
}

/// One request on a connection of its own, as a page of this site sends it.
async fn send(
    page: SocketAddr,
    method: &str,
    path: &str,
    cookie: Option<&str>,
    form: Option<&str>,
    site: &str,
) -> Reply {
    let mut stream = tokio::net::TcpStream::connect(page)
        .await
        .expect("the page listens");
    let mut request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {page}\r\nConnection: close\r\nSec-Fetch-Site: {site}\r\n"
    );
    if let Some(cookie) = cookie {
        request.push_str(&format!("Cookie: {cookie}\r\n"));
    }
    let body = form.unwrap_or("");
    if form.is_some() {
        request.push_str(&format!(
            "Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    request.push_str(body);
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request sent");
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.expect("reply read");
    let raw = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = raw.split_once("\r\n\r\n").expect("a head and a body");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|line| line.split_whitespace().nth(1))
        .and_then(|code| code.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|line| line.split_once(':'))
        .map(|(name, value)| (name.trim().to_string(), value.trim().to_string()))
        .collect();
    Reply {
        status,
        headers,
        body: body.to_string(),
    }
}

async fn get(page: SocketAddr, path: &str, cookie: Option<&str>) -> Reply {
    send(page, "GET", path, cookie, None, "same-origin").await
}

async fn log_in(page: SocketAddr, user: &str, password: &str) -> Reply {
    let form = format!(
        "user={user}&password={}&next=%2Fimports",
        password.replace(' ', "+")
    );
    send(page, "POST", "/login", None, Some(&form), "same-origin").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn web_users_see_their_own_account_only_and_leave_when_removed() {
    let acme = AccountId::new(unique("acme-")).expect("valid");
    let globex = AccountId::new(unique("globex-")).expect("valid");
    let secure = SecureNats::start(&[acme.clone(), globex.clone()]).await;
    let system = TestSystem::start_secure(&secure, acme.clone(), AccountAdmission::Open).await;
    let admin = contact_admin::Deployment::at(&secure.dir);
    let name = |name: &str| UserName::new(name).expect("valid");
    for (user, account) in [("anna", &acme), ("ewa", &acme), ("gosia", &globex)] {
        admin
            .add_web_user(&name(user), account, &format!("{user}'s long password"))
            .expect("web user added");
    }

    let file = "email,first_name\nola@example.com,Ola\n";
    let acme_import = system.import(file, ImportOptions::default()).await;
    let globex_client = system.client_for(&globex).await;
    let globex_file = system.file("globex.csv", file);
    let globex_import = system
        .import_file(&globex_client, &globex_file, ImportOptions::default())
        .await;
    assert_eq!(
        (acme_import.status, globex_import.status),
        (ImportState::Completed, ImportState::Completed)
    );
    let (acme_id, globex_id) = (acme_import.import_id, globex_import.import_id);

    let settings = contact_web::Settings::parse_from([
        "contact-web",
        "--nats-url",
        secure.deployment.url(),
        "--namespace",
        secure.namespace.name(),
        "--listen",
        "127.0.0.1:0",
        "--deployment-dir",
        secure.dir.to_str().expect("a UTF-8 path"),
        "--signing-key",
        "a signing key of at least thirty-two bytes",
    ]);
    let shutdown = contact_runtime::Shutdown::new();
    let application = contact_web::Application::build(settings, shutdown.clone())
        .await
        .expect("the page starts in login mode");
    let page = application.address().expect("an address");
    let serving = tokio::spawn(application.run_until_stopped());

    // Nothing but the login page without a session; it returns to the page asked for.
    let reply = get(page, &format!("/imports/{acme_id}"), None).await;
    assert_eq!(reply.status, 303);
    assert_eq!(
        reply.header("location"),
        Some(format!("/login?next=/imports/{acme_id}").as_str())
    );
    let reply = get(page, "/login", None).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains(r#"autocomplete="current-password""#));

    // A wrong password, an unknown name: the same words, and no session.
    for (user, password) in [("anna", "not her password"), ("nobody", "anything at all")] {
        let reply = log_in(page, user, password).await;
        assert_eq!(reply.status, 401, "{user}");
        assert!(reply
            .body
            .contains("The user name or the password is not right."));
        assert!(reply.header("set-cookie").is_none());
    }
    // An oversized name is just a wrong one; a form that is not one is refused, not a crash.
    let reply = log_in(page, &"a".repeat(100_000), "anything at all").await;
    assert_eq!(reply.status, 401);
    let reply = send(
        page,
        "POST",
        "/login",
        None,
        Some("user=%ZZ&password"),
        "same-origin",
    )
    .await;
    assert!((400..500).contains(&reply.status), "{}", reply.status);
    assert!(reply.header("set-cookie").is_none());
    // A login form sent from another site is not carried out.
    let reply = send(
        page,
        "POST",
        "/login",
        None,
        Some("user=anna&password=anna%27s+long+password"),
        "cross-site",
    )
    .await;
    assert_eq!(reply.status, 403);
    assert!(reply.header("set-cookie").is_none());

    // Anna sees her account's import, is named in the page, and nothing of globex exists.
    let reply = log_in(page, "Anna", "anna's long password").await;
    assert_eq!(
        (reply.status, reply.header("location")),
        (303, Some("/imports"))
    );
    let cookie = reply.header("set-cookie").expect("a session");
    for attribute in ["HttpOnly", "Secure", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    let anna = reply.session();
    let reply = get(page, "/imports", Some(&anna)).await;
    assert_eq!(reply.status, 200);
    assert!(reply.body.contains(acme_id.as_str()));
    assert!(!reply.body.contains(globex_id.as_str()));
    assert!(reply.body.contains("Signed in as <strong>anna</strong>"));
    for path in [
        format!("/imports/{globex_id}"),
        format!("/imports/{globex_id}/events"),
        format!("/imports/{globex_id}/failed-rows.csv"),
        format!("/contacts?import_id={globex_id}"),
    ] {
        let reply = get(page, &path, Some(&anna)).await;
        assert!(
            reply.status == 404 || (reply.status == 200 && !reply.body.contains("ola@example.com")),
            "{path}: {} {}",
            reply.status,
            reply.body
        );
    }
    assert_eq!(
        get(page, &format!("/imports/{acme_id}"), Some(&anna))
            .await
            .status,
        200
    );

    // Gosia, of globex, the other way round, on the same replica.
    let gosia = log_in(page, "gosia", "gosia's long password")
        .await
        .session();
    assert_eq!(
        get(page, &format!("/imports/{globex_id}"), Some(&gosia))
            .await
            .status,
        200
    );
    assert_eq!(
        get(page, &format!("/imports/{acme_id}"), Some(&gosia))
            .await
            .status,
        404
    );

    // Wrong passwords for one name hold that name back, even with the right one after.
    for _ in 0..5 {
        assert_eq!(
            log_in(page, "ewa", "a guess of some length").await.status,
            401
        );
    }
    let reply = log_in(page, "ewa", "ewa's long password").await;
    assert_eq!(reply.status, 429);
    assert!(
        reply.body.contains("Too many wrong passwords"),
        "{}",
        reply.body
    );
    // Another name from the same address still gets in.
    assert_eq!(
        log_in(page, "anna", "anna's long password").await.status,
        303
    );

    // Logging out ends the cookie; a user the admin removes is out at her next request.
    let reply = send(page, "POST", "/logout", Some(&gosia), None, "same-origin").await;
    assert!(reply
        .header("set-cookie")
        .is_some_and(|cookie| cookie.contains("Max-Age=0")));
    admin.remove_web_user(&name("anna")).expect("removed");
    let reply = get(page, "/imports", Some(&anna)).await;
    assert_eq!(
        (reply.status, reply.header("location")),
        (303, Some("/login?next=/imports"))
    );
    // And a tenant removed takes its web users with it.
    admin.remove_tenant(&globex).expect("tenant removed");
    assert_eq!(get(page, "/imports", Some(&gosia)).await.status, 303);

    shutdown.trigger();
    serving
        .await
        .expect("joined")
        .expect("the page stopped cleanly");
}
