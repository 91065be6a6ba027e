//! contact-import-bench: imports generated contacts through the three services (run as child
//! processes from the same build, so their peak memory can be read) and times them against
//! the plain-SQL path on the same data and schema. Every run gets a fresh database and a
//! fresh namespace, so nothing a run leaves behind (rows, statistics, cached plans) helps or
//! hurts the next.
//!
//! Scenarios (all by default):
//! - `sizes`: each `--rows` size through the pipeline, then through plain SQL; per-row time
//!   against the smallest size; rows read by sequential scans of the data tables.
//! - `writers`: one import of `--scale-rows` with one writer, then with two.
//! - `reimport`: the same file imported twice into one account, then a file of the same
//!   contacts with other values (every link changes its contact and keeps a before-image).
//! - `dry-run`: a dry run of `--scale-rows` against the real import of the same file.
//! - `tenants`: a large import in one account while small imports run in others.

mod plain_sql;
mod services;

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use contact_contract::{AccountId, ImportOptions, ImportState, ImportStatus, Namespace};
use contact_import::Client;
use contact_runtime::NatsSettings;
use sqlx::{Connection as _, PgConnection};

use services::{FreshDatabase, PeakMemory, Services};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
enum Scenario {
    Sizes,
    Writers,
    Reimport,
    DryRun,
    Tenants,
}

#[derive(Debug, Parser)]
#[command(
    name = "contact-import-bench",
    version,
    about = "Throughput and memory of imports against plain SQL, each run on a fresh database"
)]
struct Settings {
    /// Which scenarios to run (comma-separated); all when not given.
    #[arg(long, value_enum, value_delimiter = ',')]
    scenarios: Vec<Scenario>,
    /// Sizes of the `sizes` scenario.
    #[arg(long, value_delimiter = ',', default_value = "100000,1000000")]
    rows: Vec<usize>,
    /// Runs of each size in `sizes`; the medians are reported.
    #[arg(long, default_value_t = 1)]
    repeat: usize,
    /// Size of the `writers`, `reimport` and `dry-run` scenarios.
    #[arg(long, default_value_t = 400_000)]
    scale_rows: usize,
    /// `tenants`: rows of the large import, and the number and rows of the small ones.
    #[arg(long, default_value_t = 300_000)]
    large_tenant_rows: usize,
    #[arg(long, default_value_t = 10)]
    small_tenants: usize,
    #[arg(long, default_value_t = 1000)]
    small_tenant_rows: usize,
    /// Replicas of the mapper (the writers vary in `writers` and are one elsewhere).
    #[arg(long, default_value_t = 1)]
    mappers: usize,
    #[arg(long, env = "NATS_URL", default_value = "nats://127.0.0.1:4222")]
    nats_url: String,
    /// The PostgreSQL server; each run creates (and drops) a database of its own on it.
    #[arg(
        long,
        env = "DATABASE_URL",
        default_value = "postgres://postgres@127.0.0.1:5432/contact_import"
    )]
    database_url: String,
    /// Where the generated files go.
    #[arg(long, default_value = "bench-data")]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut settings = Settings::parse();
    if settings.scenarios.is_empty() {
        settings.scenarios = Scenario::value_variants().to_vec();
    }
    settings.scenarios.sort();
    settings.scenarios.dedup();
    std::fs::create_dir_all(&settings.data_dir)?;
    let mut report = String::new();
    for scenario in settings.scenarios.clone() {
        let section = match scenario {
            Scenario::Sizes => sizes(&settings).await?,
            Scenario::Writers => writers(&settings).await?,
            Scenario::Reimport => reimport(&settings).await?,
            Scenario::DryRun => dry_run(&settings).await?,
            Scenario::Tenants => tenants(&settings).await?,
        };
        eprintln!("{section}");
        report.push_str(&section);
        report.push('\n');
    }
    println!("{report}");
    Ok(())
}

/// What one import through the pipeline took.
struct Timed {
    summary: ImportStatus,
    elapsed: Duration,
}

/// The pipeline on a fresh database and namespace: services, a client per account.
struct Run {
    database: FreshDatabase,
    services: Services,
    namespace: Namespace,
    nats_url: String,
}

impl Run {
    async fn start(settings: &Settings, writers: usize) -> anyhow::Result<Self> {
        Self::start_with(settings, writers, None).await
    }

    /// `writer_concurrency`: lane transactions per writer, when not the writer's default.
    async fn start_with(
        settings: &Settings,
        writers: usize,
        writer_concurrency: Option<usize>,
    ) -> anyhow::Result<Self> {
        let database = FreshDatabase::create(&settings.database_url).await?;
        let namespace = Namespace::new(&format!("bench{}", unique()))?;
        let services = Services::start(
            &settings.nats_url,
            &database.url,
            namespace.name(),
            settings.mappers,
            writers,
            writer_concurrency,
        )?;
        let run = Self {
            database,
            services,
            namespace,
            nats_url: settings.nats_url.clone(),
        };
        run.client("warm-up").await?.wait_for_writer().await?;
        Ok(run)
    }

    async fn client(&self, account: &str) -> anyhow::Result<BenchClient> {
        Ok(BenchClient(
            Client::connect(
                &NatsSettings::plain(&self.nats_url),
                self.namespace.clone(),
                AccountId::new(account)?,
            )
            .await?,
        ))
    }

    /// Rows that sequential scans of the contact tables read (the database is fresh, so these
    /// are the run's own).
    async fn rows_read_by_sequential_scans(&self) -> anyhow::Result<i64> {
        let mut connection = PgConnection::connect(&self.database.url).await?;
        // Statistics reach the views a moment after the transactions that made them.
        sqlx::query("SELECT pg_stat_force_next_flush()")
            .execute(&mut connection)
            .await
            .ok();
        let rows: i64 = sqlx::query_scalar(
            "SELECT COALESCE(sum(seq_tup_read), 0)::bigint FROM pg_stat_user_tables
             WHERE relname IN ('contacts', 'contact_keys', 'dry_run_contacts', 'dry_run_keys')",
        )
        .fetch_one(&mut connection)
        .await?;
        Ok(rows)
    }

    async fn stop(self) -> anyhow::Result<PeakMemory> {
        let memory = self.services.stop().await;
        if let Ok(client) = async_nats::connect(&self.nats_url).await {
            let jetstream = async_nats::jetstream::new(client);
            let _ = contact_contract::remove_namespace(&jetstream, &self.namespace).await;
        }
        self.database.drop().await?;
        Ok(memory)
    }
}

struct BenchClient(Client);

impl BenchClient {
    async fn wait_for_writer(&self) -> anyhow::Result<()> {
        for _ in 0..240 {
            if self.0.attributes().await.is_ok() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        anyhow::bail!("contact-writer did not answer within a minute")
    }

    async fn import(&self, file: &Path, options: ImportOptions) -> anyhow::Result<Timed> {
        let started = Instant::now();
        let import_id = self.0.start_import(file, options).await?;
        let summary = self
            .0
            .follow(&import_id, Duration::from_secs(30), |_| {})
            .await
            .context("following an import")?;
        let elapsed = started.elapsed();
        anyhow::ensure!(
            summary.status == ImportState::Completed,
            "the import did not complete: {summary:?}"
        );
        Ok(Timed { summary, elapsed })
    }
}

async fn sizes(settings: &Settings) -> anyhow::Result<String> {
    let repeat = settings.repeat.max(1);
    let mut lines = vec![
        format!("### Sizes (one replica of each service; fresh database per run; median of {repeat})"),
        String::new(),
        "| rows | file MiB | pipeline s | rows/s | µs/row vs smallest | plain SQL s | pipeline / plain | rows read by seq scans | peak RSS MiB |".to_string(),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---|".to_string(),
    ];
    let mut smallest_per_row: Option<f64> = None;
    for &rows in &settings.rows {
        let file = data_file(settings, rows)?;
        let (mut pipeline, mut plain) = (Vec::new(), Vec::new());
        let (mut scanned, mut memory) = (0, None);
        for run_number in 1..=repeat {
            eprintln!("== sizes: {rows} rows, run {run_number} of {repeat}");
            let run = Run::start(settings, 1).await?;
            let timed = run
                .client("bench")
                .await?
                .import(&file, ImportOptions::default())
                .await?;
            anyhow::ensure!(
                timed.summary.created == rows as u64,
                "not every row was created: {:?}",
                timed.summary
            );
            scanned = scanned.max(run.rows_read_by_sequential_scans().await?);
            memory = Some(run.stop().await?);
            pipeline.push(timed.elapsed.as_secs_f64());
            plain.push(
                plain_sql::timed_on_fresh_database(&settings.database_url, &file)
                    .await?
                    .as_secs_f64(),
            );
        }
        let (pipeline, plain) = (median(&mut pipeline), median(&mut plain));
        let per_row = pipeline * 1e6 / rows as f64;
        let growth = per_row / *smallest_per_row.get_or_insert(per_row);
        lines.push(format!(
            "| {rows} | {:.1} | {pipeline:.1} | {:.0} | {per_row:.1} ({growth:.2}x) | {plain:.1} | {:.2}x | {scanned} | {} |",
            file_mib(&file)?,
            rows as f64 / pipeline,
            pipeline / plain,
            memory.map(|memory| memory.to_string()).unwrap_or_default(),
        ));
    }
    Ok(lines.join("\n") + "\n")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

async fn writers(settings: &Settings) -> anyhow::Result<String> {
    let rows = settings.scale_rows;
    let file = data_file(settings, rows)?;
    let mut lines = vec![
        format!(
            "### One import of {rows} rows, one writer against two ({} mapper(s))",
            settings.mappers
        ),
        String::new(),
        "| lane transactions per writer | writers | seconds | rows/s | speed-up | contacts | peak RSS MiB |".to_string(),
        "|---|---:|---:|---:|---:|---:|---|".to_string(),
    ];
    let mut reference: Option<BTreeMap<String, String>> = None;
    for concurrency in [None, Some(1)] {
        let mut one_writer: Option<f64> = None;
        for writers in [1, 2] {
            eprintln!("== writers: {writers} (concurrency {concurrency:?})");
            let run = Run::start_with(settings, writers, concurrency).await?;
            let client = run.client("bench").await?;
            let timed = client.import(&file, ImportOptions::default()).await?;
            let fingerprint = fingerprint(&run.database.url, "bench").await?;
            let memory = run.stop().await?;
            let seconds = timed.elapsed.as_secs_f64();
            let speed_up = one_writer.map_or(1.0, |one| one / seconds);
            let same = reference.as_ref().is_none_or(|first| *first == fingerprint);
            anyhow::ensure!(same, "two writers stored other data than one");
            lines.push(format!(
                "| {} | {writers} | {seconds:.1} | {:.0} | {speed_up:.2}x | {} | {memory} |",
                concurrency.map_or("default".to_string(), |n| n.to_string()),
                rows as f64 / seconds,
                if reference.is_none() {
                    "reference"
                } else {
                    "identical"
                }
            ));
            one_writer.get_or_insert(seconds);
            reference.get_or_insert(fingerprint);
        }
    }
    Ok(lines.join("\n") + "\n")
}

async fn reimport(settings: &Settings) -> anyhow::Result<String> {
    let rows = settings.scale_rows;
    let file = data_file(settings, rows)?;
    eprintln!("== reimport: {rows} rows twice");
    let run = Run::start(settings, 1).await?;
    let client = run.client("bench").await?;
    let first = client.import(&file, ImportOptions::default()).await?;
    let before = fingerprint(&run.database.url, "bench").await?;
    let again = client.import(&file, ImportOptions::default()).await?;
    let after = fingerprint(&run.database.url, "bench").await?;
    anyhow::ensure!(
        again.summary.linked == rows as u64 && before == after,
        "the re-import changed data: {:?}",
        again.summary
    );
    // Every contact's name and city change: each link writes what an undo would restore.
    let edited = edition_file(settings, rows, 1)?;
    let changed = client.import(&edited, ImportOptions::default()).await?;
    let after_change = fingerprint(&run.database.url, "bench").await?;
    let memory = run.stop().await?;
    anyhow::ensure!(
        changed.summary.linked == rows as u64 && after_change != after,
        "the changing re-import did not link and change every row: {:?}",
        changed.summary
    );
    let line = |name: &str, timed: &Timed| {
        format!(
            "| {name} | {:.1} | {:.0} | {} | {:.2}x |",
            timed.elapsed.as_secs_f64(),
            rows as f64 / timed.elapsed.as_secs_f64(),
            timed.summary.linked,
            timed.elapsed.as_secs_f64() / first.elapsed.as_secs_f64(),
        )
    };
    Ok(format!(
        "### Re-import of the same {rows} rows (link), then of the same contacts with other values\n\n\
         | import | seconds | rows/s | linked | vs first |\n|---|---:|---:|---:|---:|\n\
         {}\n{}\n{}\n\npeak RSS MiB: {memory}\n",
        line("first", &first),
        line("again", &again),
        line("changed", &changed),
    ))
}

async fn dry_run(settings: &Settings) -> anyhow::Result<String> {
    let rows = settings.scale_rows;
    let file = data_file(settings, rows)?;
    let mut lines = vec![
        format!("### Dry run of {rows} rows against the real import (fresh database each)"),
        String::new(),
        "| import | seconds | rows/s | created | vs real |".to_string(),
        "|---|---:|---:|---:|---:|".to_string(),
    ];
    let mut real: Option<Timed> = None;
    for dry in [false, true] {
        eprintln!("== dry run: {dry}");
        let run = Run::start(settings, 1).await?;
        let timed = run
            .client("bench")
            .await?
            .import(
                &file,
                ImportOptions {
                    dry_run: dry,
                    ..ImportOptions::default()
                },
            )
            .await?;
        run.stop().await?;
        let ratio = real
            .as_ref()
            .map(|real| timed.elapsed.as_secs_f64() / real.elapsed.as_secs_f64())
            .unwrap_or(1.0);
        if let Some(real) = &real {
            anyhow::ensure!(
                real.summary.created == timed.summary.created,
                "the dry run reports other counts than the import"
            );
        }
        lines.push(format!(
            "| {} | {:.1} | {:.0} | {} | {ratio:.2}x |",
            if dry { "dry run" } else { "real" },
            timed.elapsed.as_secs_f64(),
            rows as f64 / timed.elapsed.as_secs_f64(),
            timed.summary.created
        ));
        real.get_or_insert(timed);
    }
    Ok(lines.join("\n") + "\n")
}

async fn tenants(settings: &Settings) -> anyhow::Result<String> {
    let large = data_file(settings, settings.large_tenant_rows)?;
    let small = data_file(settings, settings.small_tenant_rows)?;
    eprintln!("== tenants");
    let run = Run::start(settings, 1).await?;
    let large_client = run.client("large").await?;
    let started = Instant::now();
    let large_id = large_client
        .0
        .start_import(&large, ImportOptions::default())
        .await?;
    // The small imports start once the large one is writing.
    let mut progressing = false;
    while !progressing {
        let status = large_client.0.status(&large_id).await;
        progressing = status.is_ok_and(|status| status.rows_total > 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut smalls = tokio::task::JoinSet::new();
    for tenant in 0..settings.small_tenants {
        let client = run.client(&format!("small-{tenant}")).await?;
        let small = small.clone();
        smalls.spawn(async move { client.import(&small, ImportOptions::default()).await });
    }
    let mut small_seconds = Vec::new();
    while let Some(done) = smalls.join_next().await {
        small_seconds.push(done??.elapsed.as_secs_f64());
    }
    let large_running_after_smalls = large_client.0.status(&large_id).await?.status;
    let large_summary = large_client
        .0
        .follow(&large_id, Duration::from_secs(30), |_| {})
        .await?;
    let large_seconds = started.elapsed().as_secs_f64();
    let memory = run.stop().await?;
    small_seconds.sort_by(f64::total_cmp);
    Ok(format!(
        "### Tenants at once: {} rows in one account, {} imports of {} rows in {} others\n\n\
         | import | seconds |\n|---|---:|\n| large ({:?} when the small ones were done, then {:?}) | {large_seconds:.1} |\n\
         | small, fastest | {:.2} |\n| small, median | {:.2} |\n| small, slowest | {:.2} |\n\npeak RSS MiB: {memory}\n",
        settings.large_tenant_rows,
        settings.small_tenants,
        settings.small_tenant_rows,
        settings.small_tenants,
        large_running_after_smalls,
        large_summary.status,
        small_seconds.first().copied().unwrap_or_default(),
        small_seconds.get(small_seconds.len() / 2).copied().unwrap_or_default(),
        small_seconds.last().copied().unwrap_or_default(),
    ))
}

/// Every contact of the account as text, for comparing what two runs stored.
async fn fingerprint(
    database_url: &str,
    account: &str,
) -> anyhow::Result<BTreeMap<String, String>> {
    let mut connection = PgConnection::connect(database_url).await?;
    let rows: Vec<(String, String)> = sqlx::query_as(
        "SELECT attributes ->> 'email', attributes::text || coalesce(contact_type, '') || array_to_string(tags, ',')
         FROM contacts WHERE account_id = $1",
    )
    .bind(account)
    .fetch_all(&mut connection)
    .await?;
    Ok(rows.into_iter().collect())
}

fn data_file(settings: &Settings, rows: usize) -> anyhow::Result<PathBuf> {
    edition_file(settings, rows, 0)
}

/// The file of `rows` contacts as edition `edition` has them: the same emails, and from
/// edition 1 on other names and cities (what a re-import that changes every contact reads).
fn edition_file(settings: &Settings, rows: usize, edition: usize) -> anyhow::Result<PathBuf> {
    let name = match edition {
        0 => format!("contacts-{rows}.csv"),
        _ => format!("contacts-{rows}-edition{edition}.csv"),
    };
    let file = settings.data_dir.join(name);
    if !file.exists() {
        generate(&file, rows, edition)?;
    }
    Ok(file)
}

fn file_mib(file: &Path) -> anyhow::Result<f64> {
    Ok(std::fs::metadata(file)?.len() as f64 / (1024.0 * 1024.0))
}

/// The file: unique emails (the plain path's ON CONFLICT cannot touch one row twice in a
/// statement), Polish mobiles, names, cities, companies and birthdays.
fn generate(path: &Path, rows: usize, edition: usize) -> anyhow::Result<()> {
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
            "person{index}@example.com,Name{index}{},Surname{},5{:08},{},\"Company {}, Ltd\",19{:02}-{:02}-{:02}",
            ["", "b", "c"][edition % 3],
            index % 977,
            index % 100_000_000,
            cities[(index + edition) % cities.len()],
            index % 1000,
            50 + index % 50,
            1 + index % 12,
            1 + index % 28
        )?;
    }
    out.flush()?;
    Ok(())
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{:x}", nanos % 0xffff_ffff_ffff)
}
