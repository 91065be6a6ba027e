//! contact-import-bench: generates N contacts, imports them through the three services (run
//! as child processes, so their peak memory can be read), and times the plain-SQL path (COPY
//! into a staging table, then INSERT … ON CONFLICT into the contacts table) on the same data
//! and schema in the same run.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::Parser;
use contact_contract::{AccountId, ImportOptions, ImportState, Namespace};
use contact_import::Client;
use sqlx::postgres::PgPoolOptions;
use sqlx::PgPool;
use tokio::process::{Child, Command};

#[derive(Debug, Parser)]
#[command(
    name = "contact-import-bench",
    about = "Throughput and memory of an import against plain SQL"
)]
struct Settings {
    /// Rows per run; several comma-separated sizes show whether memory grows with the file.
    #[arg(long, value_delimiter = ',', default_value = "100000")]
    rows: Vec<usize>,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/contact_import"
    )]
    database_url: String,
    /// Replicas of the mapper and of the writer.
    #[arg(long, default_value_t = 1)]
    replicas: usize,
    /// Where the generated files go.
    #[arg(long, default_value = "bench-data")]
    data_dir: PathBuf,
}

struct RunResult {
    rows: usize,
    file_bytes: u64,
    pipeline: Duration,
    plain_sql: Duration,
    peak_rss_kib: Vec<(String, u64)>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::parse();
    std::fs::create_dir_all(&settings.data_dir)?;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(&settings.database_url)
        .await
        .with_context(|| format!("connecting to {}", settings.database_url))?;
    let mut results = Vec::new();
    for &rows in &settings.rows {
        results.push(run(&settings, &pool, rows).await?);
    }
    println!();
    println!("| rows | file MiB | pipeline s | pipeline rows/s | plain SQL s | plain SQL rows/s | pipeline / plain | peak RSS KiB (ingest, mapper, writer) |");
    println!("|---:|---:|---:|---:|---:|---:|---:|---|");
    for result in &results {
        let per_second = |duration: Duration| result.rows as f64 / duration.as_secs_f64();
        let rss: Vec<String> = result
            .peak_rss_kib
            .iter()
            .map(|(name, kib)| format!("{name} {kib}"))
            .collect();
        println!(
            "| {} | {:.1} | {:.2} | {:.0} | {:.2} | {:.0} | {:.2}x | {} |",
            result.rows,
            result.file_bytes as f64 / (1024.0 * 1024.0),
            result.pipeline.as_secs_f64(),
            per_second(result.pipeline),
            result.plain_sql.as_secs_f64(),
            per_second(result.plain_sql),
            result.pipeline.as_secs_f64() / result.plain_sql.as_secs_f64(),
            rss.join(", ")
        );
    }
    Ok(())
}

async fn run(settings: &Settings, pool: &PgPool, rows: usize) -> anyhow::Result<RunResult> {
    let run_id = uuid_like();
    let file = settings.data_dir.join(format!("contacts-{rows}.csv"));
    if !file.exists() {
        generate(&file, rows)?;
    }
    let file_bytes = std::fs::metadata(&file)?.len();
    eprintln!(
        "== {rows} rows ({:.1} MiB)",
        file_bytes as f64 / (1024.0 * 1024.0)
    );

    let namespace_name = format!("bench{run_id}");
    let services = Services::start(settings, &namespace_name).await?;
    let namespace = Namespace::new(&namespace_name)?;
    let pipeline_account = AccountId::new(format!("bench-{run_id}"))?;
    let client = Client::connect(
        &settings.nats_url,
        namespace.clone(),
        pipeline_account.clone(),
    )
    .await?;
    wait_for_writer(&client).await?;

    let started = Instant::now();
    let import_id = client.start_import(&file, ImportOptions::default()).await?;
    let summary = client
        .follow(&import_id, Duration::from_secs(30), |_| {})
        .await
        .context("following the benchmark import")?;
    let pipeline = started.elapsed();
    anyhow::ensure!(
        summary.status == ImportState::Completed && summary.created == rows as u64,
        "the benchmark import did not create every row: {summary:?}"
    );
    eprintln!("pipeline: {:.2} s", pipeline.as_secs_f64());
    let peak_rss_kib = services.peak_rss_kib();
    services.stop().await;

    let plain_account = format!("plain-{run_id}");
    let plain_sql = plain_sql_path(pool, &plain_account, &file).await?;
    eprintln!("plain SQL: {:.2} s", plain_sql.as_secs_f64());

    for account in [pipeline_account.as_str(), plain_account.as_str()] {
        remove_account(pool, account).await?;
    }
    let jetstream = async_nats::jetstream::new(client.nats().clone());
    for stream in namespace.all_streams() {
        let _ = jetstream.delete_stream(&stream).await;
    }
    Ok(RunResult {
        rows,
        file_bytes,
        pipeline,
        plain_sql,
        peak_rss_kib,
    })
}

/// The file: unique emails (the plain path's ON CONFLICT cannot touch one row twice in a
/// statement), Polish mobiles, names, cities, companies and birthdays.
fn generate(path: &Path, rows: usize) -> anyhow::Result<()> {
    let cities = [
        "Kraków", "Warszawa", "Gdańsk", "Poznań", "Wrocław", "Łódź", "Szczecin", "Lublin",
    ];
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(
        out,
        "email,first_name,last_name,mobile,city,company,birthday"
    )?;
    for index in 0..rows {
        writeln!(
            out,
            "person{index}@example.com,Name{index},Surname{},5{:08},{},\"Company {}, Ltd\",19{:02}-{:02}-{:02}",
            index % 977,
            index % 100_000_000,
            cities[index % cities.len()],
            index % 1000,
            50 + index % 50,
            1 + index % 12,
            1 + index % 28
        )?;
    }
    out.flush()?;
    Ok(())
}

/// What an engineer would write by hand on the same tables: COPY the file into a staging
/// table, then one INSERT … ON CONFLICT into contacts (through a unique index on the email of
/// this account) and one INSERT of the match keys. No per-value validation or normalization
/// beyond lower-casing emails.
async fn plain_sql_path(pool: &PgPool, account: &str, file: &Path) -> anyhow::Result<Duration> {
    let index_name = format!("bench_email_{}", account.replace('-', "_"));
    let mut connection = pool.acquire().await?;
    sqlx::query("INSERT INTO accounts (account_id) VALUES ($1) ON CONFLICT DO NOTHING")
        .bind(account)
        .execute(&mut *connection)
        .await?;
    sqlx::query(&format!(
        "CREATE UNIQUE INDEX {index_name} ON contacts ((attributes ->> 'email')) WHERE account_id = '{account}'"
    ))
    .execute(&mut *connection)
    .await?;
    let started = Instant::now();
    sqlx::query(
        "CREATE TEMPORARY TABLE staging (email text, first_name text, last_name text, mobile text,
             city text, company text, birthday text)",
    )
    .execute(&mut *connection)
    .await?;
    let mut copy = connection
        .copy_in_raw("COPY staging FROM STDIN (FORMAT csv, HEADER true)")
        .await?;
    copy.read_from(tokio::fs::File::open(file).await?).await?;
    copy.finish().await?;
    sqlx::query(&format!(
        "WITH upserted AS (
             INSERT INTO contacts (account_id, attributes)
             SELECT '{account}', jsonb_strip_nulls(jsonb_build_object(
                 'email', lower(trim(email)), 'first_name', first_name, 'last_name', last_name,
                 'mobile', '+48' || mobile, 'city', city, 'company', company, 'birthday', birthday))
             FROM staging
             ON CONFLICT ((attributes ->> 'email')) WHERE account_id = '{account}'
             DO UPDATE SET attributes = contacts.attributes || EXCLUDED.attributes, updated_at = now()
             RETURNING contact_id, attributes ->> 'email' AS email)
         INSERT INTO contact_keys (account_id, attribute, value, contact_id)
         SELECT '{account}', 'email', email, contact_id FROM upserted"
    ))
    .execute(&mut *connection)
    .await?;
    let elapsed = started.elapsed();
    sqlx::query("DROP TABLE staging")
        .execute(&mut *connection)
        .await?;
    sqlx::query(&format!("DROP INDEX {index_name}"))
        .execute(&mut *connection)
        .await?;
    Ok(elapsed)
}

async fn remove_account(pool: &PgPool, account: &str) -> anyhow::Result<()> {
    for table in ["row_errors", "pending_chunks", "contact_keys"] {
        sqlx::query(&format!("DELETE FROM {table} WHERE account_id = $1"))
            .bind(account)
            .execute(pool)
            .await?;
    }
    sqlx::query("DELETE FROM accounts WHERE account_id = $1")
        .bind(account)
        .execute(pool)
        .await?;
    Ok(())
}

async fn wait_for_writer(client: &Client) -> anyhow::Result<()> {
    for _ in 0..120 {
        if client.attributes().await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    anyhow::bail!("contact-writer did not answer within a minute")
}

fn uuid_like() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{:x}", nanos % 0xffff_ffff_ffff)
}

/// The three services as child processes, from the same build as this binary.
struct Services {
    children: Vec<(String, Child)>,
}

impl Services {
    async fn start(settings: &Settings, namespace: &str) -> anyhow::Result<Self> {
        let binaries = std::env::current_exe()?
            .parent()
            .context("the benchmark binary has no folder")?
            .to_path_buf();
        let mut children = Vec::new();
        let plan = [
            ("contact-writer", settings.replicas),
            ("contact-mapper", settings.replicas),
            ("contact-ingest", 1),
        ];
        for (name, replicas) in plan {
            for _ in 0..replicas {
                let child = Command::new(binaries.join(name))
                    .env("NATS_URL", &settings.nats_url)
                    .env("DATABASE_URL", &settings.database_url)
                    .env("CONTACT_IMPORT_NAMESPACE", namespace)
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| format!("starting {name} (run `cargo build --release --workspace --bins` first)"))?;
                children.push((name.to_string(), child));
            }
        }
        Ok(Self { children })
    }

    /// The highest resident set size each service reached (Linux `VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> Vec<(String, u64)> {
        let mut peaks: Vec<(String, u64)> = Vec::new();
        for (name, child) in &self.children {
            let Some(pid) = child.id() else { continue };
            let peak = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|status| {
                    status
                        .lines()
                        .find_map(|line| line.strip_prefix("VmHWM:"))
                        .and_then(|value| {
                            value
                                .trim()
                                .trim_end_matches("kB")
                                .trim()
                                .parse::<u64>()
                                .ok()
                        })
                })
                .unwrap_or(0);
            let short = name.trim_start_matches("contact-").to_string();
            match peaks.iter_mut().find(|(known, _)| *known == short) {
                Some((_, highest)) => *highest = (*highest).max(peak),
                None => peaks.push((short, peak)),
            }
        }
        peaks
    }

    async fn stop(mut self) {
        for (_, child) in &self.children {
            if let Some(pid) = child.id() {
                let _ = Command::new("kill")
                    .arg("-TERM")
                    .arg(pid.to_string())
                    .status()
                    .await;
            }
        }
        for (_, child) in &mut self.children {
            if tokio::time::timeout(Duration::from_secs(15), child.wait())
                .await
                .is_err()
            {
                let _ = child.kill().await;
            }
        }
    }
}
