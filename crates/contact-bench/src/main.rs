//! contact-import-bench: imports generated contacts through the three services (run as child
//! processes from the same build, so their peak memory and CPU time can be read) and times
//! them against plain SQL on the same file. Every run gets a fresh database and a fresh
//! namespace, so nothing a run leaves behind (rows, statistics, cached plans) helps or hurts
//! the next.
//!
//! The file (`--file`) is the realistic one by default (thirteen columns, repeated emails, bad
//! values, custom attributes created through the API first) or the easy one of the first
//! benchmarks. Every import's counts are checked against what the generator knows.
//!
//! Scenarios (all by default):
//! - `sizes`: each `--rows` size through the pipeline, then through plain SQL into the
//!   project's own tables, then into a typed table; per-row time against the smallest size;
//!   CPU time per service and of the whole machine; rows read by sequential scans of the data
//!   tables.
//! - `writers`: one import of `--scale-rows` with one writer, then with two.
//! - `reimport`: the same file imported twice into one account, then a file of the same
//!   contacts with other values (every link changes its contact and keeps a before-image).
//! - `dry-run`: a dry run of `--scale-rows` against the real import of the same file.
//! - `tenants`: a large import in one account while small imports run in others.

mod cpu;
mod easy_file;
mod files;
mod plain_sql;
mod realistic_file;
mod services;
mod typed_table;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use clap::{Parser, ValueEnum};
use contact_contract::NatsSettings;
use contact_contract::{AccountId, ImportOptions, ImportState, ImportStatus, Namespace};
use contact_import_client::Client;
use sqlx::{Connection as _, PgConnection};

use cpu::MachineCpu;
use files::{ExpectedCounts, FileKind, GeneratedFile};
use services::{FreshDatabase, PeakMemory, ServiceCpu, Services};

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
    /// Which file every scenario imports.
    #[arg(long, value_enum, default_value = "realistic")]
    file: FileKind,
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

/// An import with the CPU time it cost: each service's, and the whole machine's.
struct Measured {
    timed: Timed,
    service_cpu: ServiceCpu,
    machine_cpu_seconds: f64,
}

/// The counts an import must report: the ones the generator knows, or for a second import of
/// the same contacts every valid row linked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Outcome {
    created: u64,
    linked: u64,
    failed: u64,
}

impl Outcome {
    /// Into an empty account.
    fn first_import(expected: &ExpectedCounts) -> Self {
        Self {
            created: expected.created,
            linked: expected.linked,
            failed: expected.failed,
        }
    }

    /// Into an account that holds every contact of the file already.
    fn again(expected: &ExpectedCounts) -> Self {
        Self {
            created: 0,
            linked: expected.valid_rows(),
            failed: expected.failed,
        }
    }

    fn ensure(&self, what: &str, summary: &ImportStatus) -> anyhow::Result<()> {
        let reported = Self {
            created: summary.created,
            linked: summary.linked,
            failed: summary.failed,
        };
        anyhow::ensure!(
            reported == *self && summary.duplicated == 0 && summary.skipped == 0,
            "{what}: the pipeline reported {reported:?} (duplicated {}, skipped {}), the generator expects {self:?}",
            summary.duplicated,
            summary.skipped
        );
        Ok(())
    }
}

/// The pipeline on a fresh database and namespace: services, a client per account.
struct Run {
    database: FreshDatabase,
    services: Services,
    namespace: Namespace,
    nats_url: String,
    file_kind: FileKind,
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
            file_kind: settings.file,
        };
        run.connect("warm-up").await?.wait_for_writer().await?;
        Ok(run)
    }

    /// A client of `account`, which gets the custom attributes the file needs, through the
    /// API as a marketer would create them before importing.
    async fn client(&self, account: &str) -> anyhow::Result<BenchClient> {
        let client = self.connect(account).await?;
        for attribute in self.file_kind.custom_attributes() {
            let key = attribute.key.clone();
            client
                .0
                .add_attribute(attribute)
                .await
                .with_context(|| format!("adding attribute {key} to account {account}"))?;
        }
        Ok(client)
    }

    async fn connect(&self, account: &str) -> anyhow::Result<BenchClient> {
        Ok(BenchClient(
            Client::connect(
                &NatsSettings::plain(&self.nats_url),
                self.namespace.clone(),
                AccountId::new(account)?,
            )
            .await?,
        ))
    }

    /// Imports with the CPU counters of the services and of the machine read just before the
    /// upload and just after the summary.
    async fn measured_import(
        &self,
        client: &BenchClient,
        file: &GeneratedFile,
    ) -> anyhow::Result<Measured> {
        let (services_before, machine_before) = (self.services.cpu_seconds(), MachineCpu::now()?);
        let timed = client.import(&file.path, ImportOptions::default()).await?;
        let (services_after, machine_after) = (self.services.cpu_seconds(), MachineCpu::now()?);
        Ok(Measured {
            timed,
            service_cpu: services_after.since(&services_before),
            machine_cpu_seconds: machine_after.busy_seconds_since(&machine_before),
        })
    }

    /// Rows that sequential scans of the contact tables read (the database is fresh, so these
    /// are the run's own): the total, and which tables when there were any.
    async fn rows_read_by_sequential_scans(&self) -> anyhow::Result<SequentialScans> {
        let mut connection = PgConnection::connect(&self.database.url).await?;
        // Statistics reach the views a moment after the transactions that made them.
        sqlx::query("SELECT pg_stat_force_next_flush()")
            .execute(&mut connection)
            .await
            .ok();
        let by_table: Vec<(String, i64)> = sqlx::query_as(
            "SELECT relname::text, COALESCE(seq_tup_read, 0)::bigint FROM pg_stat_user_tables
             WHERE relname IN ('contacts', 'contact_keys', 'dry_run_contacts', 'dry_run_keys')
               AND seq_tup_read > 0
             ORDER BY relname",
        )
        .fetch_all(&mut connection)
        .await?;
        Ok(SequentialScans(by_table))
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

/// Rows read by sequential scans, by table (only tables that had any).
#[derive(Debug, Clone, Default)]
struct SequentialScans(Vec<(String, i64)>);

impl SequentialScans {
    fn total(&self) -> i64 {
        self.0.iter().map(|(_, rows)| rows).sum()
    }

    /// The run with more of them, so a repeated size reports its worst.
    fn worse(self, other: SequentialScans) -> SequentialScans {
        if other.total() > self.total() {
            other
        } else {
            self
        }
    }
}

impl std::fmt::Display for SequentialScans {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(formatter, "{}", self.total())?;
        if !self.0.is_empty() {
            let tables: Vec<String> = self
                .0
                .iter()
                .map(|(table, rows)| format!("{table} {rows}"))
                .collect();
            write!(formatter, " ({})", tables.join(", "))?;
        }
        Ok(())
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

/// One size's runs, before the medians are taken.
#[derive(Default)]
struct SizeRuns {
    pipeline_seconds: Vec<f64>,
    plain_seconds: Vec<f64>,
    typed_seconds: Vec<f64>,
    machine_cpu_seconds: Vec<f64>,
    service_cpu_seconds: BTreeMap<String, Vec<f64>>,
    service_order: Vec<String>,
}

async fn sizes(settings: &Settings) -> anyhow::Result<String> {
    let repeat = settings.repeat.max(1);
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get());
    let mut lines = vec![
        format!(
            "### Sizes, {} file (one replica of each service; fresh database per run; median of {repeat})",
            settings.file.name()
        ),
        String::new(),
        "| rows | file MiB | pipeline s | rows/s | µs/row vs smallest | plain same tables s | pipeline / plain | typed table s | pipeline / typed | CPU s per service (µs/row) | machine CPU µs/row (busy) | rows read by seq scans | peak RSS MiB |".to_string(),
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---|".to_string(),
    ];
    let mut notes = Vec::new();
    let mut smallest_per_row: Option<f64> = None;
    for &rows in &settings.rows {
        let file = data_file(settings, rows)?;
        let mut runs = SizeRuns::default();
        let (mut scanned, mut memory) = (SequentialScans::default(), None);
        for run_number in 1..=repeat {
            eprintln!("== sizes: {rows} rows, run {run_number} of {repeat}");
            let run = Run::start(settings, 1).await?;
            let client = run.client("bench").await?;
            let measured = run.measured_import(&client, &file).await?;
            Outcome::first_import(&file.expected)
                .ensure(&format!("{rows} rows"), &measured.timed.summary)?;
            scanned = scanned.worse(run.rows_read_by_sequential_scans().await?);
            memory = Some(run.stop().await?);
            runs.pipeline_seconds
                .push(measured.timed.elapsed.as_secs_f64());
            runs.machine_cpu_seconds.push(measured.machine_cpu_seconds);
            for (service, seconds) in measured.service_cpu.0 {
                if !runs.service_order.contains(&service) {
                    runs.service_order.push(service.clone());
                }
                runs.service_cpu_seconds
                    .entry(service)
                    .or_default()
                    .push(seconds);
            }
            runs.plain_seconds.push(
                plain_sql::timed_on_fresh_database(&settings.database_url, &file)
                    .await?
                    .as_secs_f64(),
            );
            runs.typed_seconds.push(
                typed_table::timed_on_fresh_database(&settings.database_url, &file)
                    .await?
                    .as_secs_f64(),
            );
        }
        let pipeline = median(&mut runs.pipeline_seconds);
        let plain = median(&mut runs.plain_seconds);
        let typed = median(&mut runs.typed_seconds);
        let machine_cpu = median(&mut runs.machine_cpu_seconds);
        let per_row = pipeline * 1e6 / rows as f64;
        let growth = per_row / *smallest_per_row.get_or_insert(per_row);
        let service_cpu: Vec<String> = runs
            .service_order
            .iter()
            .map(|service| {
                let seconds = runs
                    .service_cpu_seconds
                    .get_mut(service)
                    .map_or(0.0, |values| median(values));
                format!(
                    "{service} {seconds:.1} ({:.1})",
                    seconds * 1e6 / rows as f64
                )
            })
            .collect();
        lines.push(format!(
            "| {rows} | {:.1} | {pipeline:.1} | {:.0} | {per_row:.1} ({growth:.2}x) | {plain:.1} | {:.2}x | {typed:.1} | {:.2}x | {} | {:.1} ({:.0} %) | {scanned} | {} |",
            file_mib(&file.path)?,
            rows as f64 / pipeline,
            pipeline / plain,
            pipeline / typed,
            service_cpu.join(", "),
            machine_cpu * 1e6 / rows as f64,
            100.0 * machine_cpu / (pipeline * cores as f64),
            memory.map(|memory| memory.to_string()).unwrap_or_default(),
        ));
        let expected = &file.expected;
        notes.push(format!(
            "{rows} rows: {} created, {} linked (repeated emails), {} failed (bad values), as the generator expects",
            expected.created, expected.linked, expected.failed
        ));
    }
    lines.push(String::new());
    lines.push(format!(
        "Counts checked: {}. Machine CPU counts every process on the {cores} cores during the pipeline's import (PostgreSQL, NATS, and whatever else runs there); busy is its share of their time.",
        notes.join("; ")
    ));
    Ok(lines.join("\n") + "\n")
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied().unwrap_or_default()
}

async fn writers(settings: &Settings) -> anyhow::Result<String> {
    let rows = settings.scale_rows;
    let file = data_file(settings, rows)?;
    let mut lines = vec![
        format!(
            "### One import of {rows} rows ({} file), one writer against two ({} mapper(s))",
            settings.file.name(),
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
            let timed = client.import(&file.path, ImportOptions::default()).await?;
            Outcome::first_import(&file.expected)
                .ensure(&format!("{writers} writer(s)"), &timed.summary)?;
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
    let first = client.import(&file.path, ImportOptions::default()).await?;
    Outcome::first_import(&file.expected).ensure("first import", &first.summary)?;
    let before = fingerprint(&run.database.url, "bench").await?;
    let again = client.import(&file.path, ImportOptions::default()).await?;
    Outcome::again(&file.expected).ensure("the same file again", &again.summary)?;
    let after = fingerprint(&run.database.url, "bench").await?;
    anyhow::ensure!(before == after, "the re-import changed data");
    // Every contact's name and city change: each link writes what an undo would restore.
    let edited = edition_file(settings, rows, 1)?;
    let changed = client
        .import(&edited.path, ImportOptions::default())
        .await?;
    Outcome::again(&edited.expected).ensure("the changed file", &changed.summary)?;
    let after_change = fingerprint(&run.database.url, "bench").await?;
    let memory = run.stop().await?;
    anyhow::ensure!(
        after_change != after,
        "the changing re-import did not change the contacts"
    );
    let line = |name: &str, timed: &Timed| {
        format!(
            "| {name} | {:.1} | {:.0} | {} | {} | {} | {:.2}x |",
            timed.elapsed.as_secs_f64(),
            rows as f64 / timed.elapsed.as_secs_f64(),
            timed.summary.created,
            timed.summary.linked,
            timed.summary.failed,
            timed.elapsed.as_secs_f64() / first.elapsed.as_secs_f64(),
        )
    };
    Ok(format!(
        "### Re-import of the same {rows} rows ({} file, link), then of the same contacts with other values\n\n\
         | import | seconds | rows/s | created | linked | failed | vs first |\n|---|---:|---:|---:|---:|---:|---:|\n\
         {}\n{}\n{}\n\npeak RSS MiB: {memory}\n",
        settings.file.name(),
        line("first", &first),
        line("again", &again),
        line("changed", &changed),
    ))
}

async fn dry_run(settings: &Settings) -> anyhow::Result<String> {
    let rows = settings.scale_rows;
    let file = data_file(settings, rows)?;
    let mut lines = vec![
        format!(
            "### Dry run of {rows} rows ({} file) against the real import (fresh database each)",
            settings.file.name()
        ),
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
                &file.path,
                ImportOptions {
                    dry_run: dry,
                    ..ImportOptions::default()
                },
            )
            .await?;
        run.stop().await?;
        // The dry run reports what the import would do: the same counts.
        Outcome::first_import(&file.expected)
            .ensure(if dry { "dry run" } else { "real import" }, &timed.summary)?;
        let ratio = real
            .as_ref()
            .map(|real| timed.elapsed.as_secs_f64() / real.elapsed.as_secs_f64())
            .unwrap_or(1.0);
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
    let small_clients = {
        let mut clients = Vec::new();
        for tenant in 0..settings.small_tenants {
            clients.push(run.client(&format!("small-{tenant}")).await?);
        }
        clients
    };
    let started = Instant::now();
    let large_id = large_client
        .0
        .start_import(&large.path, ImportOptions::default())
        .await?;
    // The small imports start once the large one is writing.
    let mut progressing = false;
    while !progressing {
        let status = large_client.0.status(&large_id).await;
        progressing = status.is_ok_and(|status| status.rows_total > 0);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut smalls = tokio::task::JoinSet::new();
    for client in small_clients {
        let small = small.clone();
        smalls.spawn(async move {
            let timed = client.import(&small.path, ImportOptions::default()).await?;
            Outcome::first_import(&small.expected).ensure("a small tenant", &timed.summary)?;
            anyhow::Ok(timed)
        });
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
    Outcome::first_import(&large.expected).ensure("the large tenant", &large_summary)?;
    let memory = run.stop().await?;
    small_seconds.sort_by(f64::total_cmp);
    Ok(format!(
        "### Tenants at once ({} file): {} rows in one account, {} imports of {} rows in {} others\n\n\
         | import | seconds |\n|---|---:|\n| large ({:?} when the small ones were done, then {:?}) | {large_seconds:.1} |\n\
         | small, fastest | {:.2} |\n| small, median | {:.2} |\n| small, slowest | {:.2} |\n\npeak RSS MiB: {memory}\n",
        settings.file.name(),
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

fn data_file(settings: &Settings, rows: usize) -> anyhow::Result<GeneratedFile> {
    edition_file(settings, rows, 0)
}

/// The file of `rows` contacts as edition `edition` has them (see [`files::generated_file`]).
fn edition_file(settings: &Settings, rows: usize, edition: usize) -> anyhow::Result<GeneratedFile> {
    files::generated_file(&settings.data_dir, settings.file, rows, edition)
}

fn file_mib(file: &Path) -> anyhow::Result<f64> {
    Ok(std::fs::metadata(file)?.len() as f64 / (1024.0 * 1024.0))
}

fn unique() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_nanos())
        .unwrap_or_default();
    format!("{:x}", nanos % 0xffff_ffff_ffff)
}
