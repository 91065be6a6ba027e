//! The fault campaign (issue #16): two replicas of each service run as child processes, and
//! one or several of them are killed with SIGKILL at random moments of an import and started
//! again, over many runs. Every run is checked exactly against a row-by-row model written here
//! from the documented rules (not from the merge or validation code): the counters, every
//! contact field by field, the row errors, no doubled match key, and the import's events in
//! `sequence` order with one summary, last. Each run also measures how long the import took
//! from the fault to its summary and the longest time progress stood still after the fault.
//!
//! By default (every CI run) one short run of each scenario. On demand:
//! `CAMPAIGN_RUNS=N` runs each scenario N times (with larger files), `CAMPAIGN_SEED=S`
//! replays a campaign's random choices (printed at the start), `CAMPAIGN_SCENARIOS=mapper,chaos`
//! picks scenarios, `CAMPAIGN_ROWS` sets the file size and `CAMPAIGN_STALL_SECONDS` how long
//! an import may stand still before its run fails as stuck (default 60).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use contact_contract::{
    ConsumerRole, DuplicatePolicy, ExportedContact, ImportEvent, ImportEventKind, ImportId,
    ImportOptions, ImportState, ImportStatus, RowError,
};
use contact_import_client::Client;
use contact_tests::{Replicas, TestSystem};
use tokio::process::Child;
use tokio::sync::watch;

#[tokio::test]
async fn every_service_killed_at_random_moments_with_two_replicas_each_changes_nothing_in_the_result(
) {
    let settings = CampaignSettings::from_env();
    println!(
        "fault campaign: seed {} (replay with CAMPAIGN_SEED={}), {} run(s) of {} at {} rows, \
         stuck after {} s without progress",
        settings.seed,
        settings.seed,
        settings.runs,
        settings
            .scenarios
            .iter()
            .map(|scenario| scenario.name())
            .collect::<Vec<_>>()
            .join(", "),
        settings.rows,
        settings.stall_limit.as_secs(),
    );
    let baseline = run_once(&settings, None, 0).await;
    println!("{}", baseline.line());
    let mut runs = Vec::new();
    for &scenario in &settings.scenarios {
        for run in 0..settings.runs {
            let result = run_once(&settings, Some(scenario), run).await;
            println!("{}", result.line());
            runs.push(result);
        }
    }
    let table = report_table(&settings, &baseline, &runs);
    println!("{table}");
    let failures: Vec<String> = std::iter::once(&baseline)
        .chain(&runs)
        .filter(|run| !run.failures.is_empty())
        .map(RunResult::failure_report)
        .collect();
    assert!(
        failures.is_empty(),
        "{} of {} runs failed (seed {}):\n{table}\n{}",
        failures.len(),
        runs.len() + 1,
        settings.seed,
        failures.join("\n")
    );
}

/// How big and how long a campaign is, from the environment.
struct CampaignSettings {
    seed: u64,
    runs: usize,
    rows: usize,
    scenarios: Vec<Scenario>,
    stall_limit: Duration,
}

impl CampaignSettings {
    fn from_env() -> Self {
        let number = |name: &str| {
            std::env::var(name).ok().map(|text| {
                text.trim()
                    .parse::<u64>()
                    .unwrap_or_else(|_| panic!("{name} must be a number, not {text:?}"))
            })
        };
        let seed = number("CAMPAIGN_SEED").unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .expect("the clock is after 1970")
                .as_nanos() as u64
        });
        let runs = number("CAMPAIGN_RUNS").unwrap_or(1).max(1) as usize;
        // The short version keeps CI quick; the long one reads past ingest's window, so that
        // an ingest killed mid-file has rows left to read.
        let default_rows = if runs > 1 { 60_000 } else { 40_000 };
        let rows = number("CAMPAIGN_ROWS").unwrap_or(default_rows).max(100) as usize;
        let scenarios = match std::env::var("CAMPAIGN_SCENARIOS") {
            Ok(names) => names
                .split(',')
                .map(str::trim)
                .filter(|name| !name.is_empty())
                .map(|name| {
                    Scenario::ALL
                        .into_iter()
                        .find(|scenario| scenario.name() == name)
                        .unwrap_or_else(|| {
                            panic!(
                                "unknown scenario {name:?} in CAMPAIGN_SCENARIOS (known: {})",
                                Scenario::ALL.map(Scenario::name).join(", ")
                            )
                        })
                })
                .collect(),
            Err(_) => Scenario::ALL.to_vec(),
        };
        let stall_limit = Duration::from_secs(number("CAMPAIGN_STALL_SECONDS").unwrap_or(60));
        Self {
            seed,
            runs,
            rows,
            scenarios,
            stall_limit,
        }
    }

    /// The seed of one run: the same campaign seed replays the same files and strikes.
    fn run_seed(&self, scenario: Option<Scenario>, run: usize) -> u64 {
        let name = scenario.map_or("baseline", Scenario::name);
        let mut hash = self.seed ^ 0xcbf2_9ce4_8422_2325;
        for byte in name.bytes().chain((run as u64).to_le_bytes()) {
            hash = (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3);
        }
        hash
    }
}

/// What is killed in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scenario {
    /// The ingest replica reading the file.
    Ingest,
    Mapper,
    Writer,
    /// One ingest, one mapper and one writer, one after the other.
    OneOfEach,
    /// Three to six kills of any service at random moments.
    Chaos,
}

impl Scenario {
    const ALL: [Self; 5] = [
        Self::Ingest,
        Self::Mapper,
        Self::Writer,
        Self::OneOfEach,
        Self::Chaos,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Ingest => "ingest",
            Self::Mapper => "mapper",
            Self::Writer => "writer",
            Self::OneOfEach => "each",
            Self::Chaos => "chaos",
        }
    }

    /// The strikes of one run, in order.
    fn plan(self, rows: usize, random: &mut Random) -> Vec<Strike> {
        let rows = rows as u64;
        // A strike waits for this many rows to be in, then for a random moment.
        let first_rows = |service: Service, random: &mut Random| match service {
            // Ingest reads at most INGEST_READ_AHEAD_ROWS ahead of the writers, and the
            // mappers keep up with it: strike while it still has rows to read, or early when
            // the whole file fits in its window.
            Service::Ingest | Service::Mapper if rows > INGEST_READ_AHEAD_ROWS + 1_000 => {
                random.between(rows / 50, (rows - INGEST_READ_AHEAD_ROWS) * 4 / 5)
            }
            Service::Ingest | Service::Mapper => 0,
            // The writers are the slowest part: busy to the end.
            Service::Writer => random.between(rows / 20, rows / 2),
        };
        let strike =
            |service: Service, after_rows: u64, delay_ms: u64, random: &mut Random| Strike {
                service,
                after_rows,
                delay: Duration::from_millis(delay_ms),
                restart_after: Duration::from_millis(random.between(0, 1_000)),
            };
        match self {
            Self::Ingest | Self::Mapper | Self::Writer => {
                let service = match self {
                    Self::Ingest => Service::Ingest,
                    Self::Mapper => Service::Mapper,
                    _ => Service::Writer,
                };
                let after_rows = first_rows(service, random);
                let delay_ms = if after_rows == 0 {
                    random.between(0, 400)
                } else {
                    random.between(0, 1_000)
                };
                vec![strike(service, after_rows, delay_ms, random)]
            }
            Self::OneOfEach => {
                // Ingest first, while it reads; mapper and writer after it in either order.
                let mut order = vec![Service::Ingest, Service::Mapper, Service::Writer];
                if random.chance(500) {
                    order.swap(1, 2);
                }
                let after_rows = first_rows(Service::Ingest, random);
                order
                    .into_iter()
                    .enumerate()
                    .map(|(position, service)| {
                        let (after_rows, delay_ms) = if position == 0 {
                            (after_rows, random.between(0, 400))
                        } else {
                            (0, random.between(0, 1_500))
                        };
                        strike(service, after_rows, delay_ms, random)
                    })
                    .collect()
            }
            Self::Chaos => {
                let count = random.between(3, 6);
                (0..count)
                    .map(|position| {
                        let service = *random.pick(&Service::ALL);
                        let (after_rows, delay_ms) = if position == 0 {
                            (first_rows(service, random), random.between(0, 400))
                        } else {
                            (0, random.between(100, 2_000))
                        };
                        strike(service, after_rows, delay_ms, random)
                    })
                    .collect()
            }
        }
    }
}

/// Rows ingest may publish ahead of what the writers applied (ingest's window).
const INGEST_READ_AHEAD_ROWS: u64 = 32_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Service {
    Ingest,
    Mapper,
    Writer,
}

impl Service {
    const ALL: [Self; 3] = [Self::Ingest, Self::Mapper, Self::Writer];

    fn binary(self) -> &'static str {
        match self {
            Self::Ingest => "contact-ingest",
            Self::Mapper => "contact-mapper",
            Self::Writer => "contact-writer",
        }
    }
}

/// One kill: once `after_rows` rows are in, wait `delay`, kill a replica of `service` with
/// SIGKILL, and start it again `restart_after` later.
#[derive(Debug, Clone, Copy)]
struct Strike {
    service: Service,
    after_rows: u64,
    delay: Duration,
    restart_after: Duration,
}

/// A kill as it happened.
#[derive(Debug, Clone)]
struct Kill {
    service: Service,
    replica: usize,
    at: Instant,
}

/// What one run found and measured.
struct RunResult {
    scenario: Option<Scenario>,
    run: usize,
    seed: u64,
    import_id: Option<ImportId>,
    kills: Vec<(Service, usize, Duration)>,
    /// From the start request to the summary.
    import_time: Option<Duration>,
    /// From the first kill to the summary.
    fault_to_done: Option<Duration>,
    /// The longest time without a change of progress, from the first kill (the start, for
    /// the baseline) to the summary.
    longest_stall: Option<Duration>,
    failures: Vec<String>,
    /// Status, consumers and service logs of a failed run.
    diagnostics: String,
}

impl RunResult {
    fn name(&self) -> String {
        match self.scenario {
            None => "baseline".to_string(),
            Some(scenario) => format!("{} #{}", scenario.name(), self.run + 1),
        }
    }

    fn line(&self) -> String {
        let kills = self
            .kills
            .iter()
            .map(|(service, replica, at)| {
                format!(
                    "{} {} at {:.1} s",
                    service.binary(),
                    replica,
                    at.as_secs_f64()
                )
            })
            .collect::<Vec<_>>()
            .join(", ");
        format!(
            "{:<10} {} import {} in {}, fault to done {}, longest stall {}; killed: {}{}",
            self.name(),
            if self.failures.is_empty() {
                "passed"
            } else {
                "FAILED"
            },
            self.import_id.as_ref().map_or("-", ImportId::as_str),
            seconds(self.import_time),
            seconds(self.fault_to_done),
            seconds(self.longest_stall),
            if kills.is_empty() { "none" } else { &kills },
            if self.failures.is_empty() {
                String::new()
            } else {
                format!(" ({})", self.failures.len())
            }
        )
    }

    fn failure_report(&self) -> String {
        format!(
            "--- {} (run seed {}):\n  {}\n{}",
            self.line(),
            self.seed,
            self.failures.join("\n  "),
            self.diagnostics
        )
    }
}

fn seconds(duration: Option<Duration>) -> String {
    duration.map_or("-".to_string(), |duration| {
        format!("{:.1} s", duration.as_secs_f64())
    })
}

/// Per scenario: runs, passed, runs whose import ended before the first strike, the longest
/// stall and fault-to-done times, beside the baseline's.
fn report_table(settings: &CampaignSettings, baseline: &RunResult, runs: &[RunResult]) -> String {
    let mut table = String::new();
    let _ = writeln!(
        table,
        "\nfault campaign, seed {}, {} rows per file, two replicas of each service",
        settings.seed, settings.rows
    );
    let _ = writeln!(
        table,
        "{:<9} {:>4} {:>6} {:>6} {:>13} {:>28}",
        "scenario", "runs", "passed", "missed", "longest stall", "fault to done min/median/max"
    );
    let _ = writeln!(
        table,
        "{:<9} {:>4} {:>6} {:>6} {:>13} {:>28}",
        "baseline",
        1,
        usize::from(baseline.failures.is_empty()),
        "-",
        seconds(baseline.longest_stall),
        format!("(import {})", seconds(baseline.import_time)),
    );
    for scenario in &settings.scenarios {
        let of_scenario: Vec<&RunResult> = runs
            .iter()
            .filter(|run| run.scenario == Some(*scenario))
            .collect();
        let passed = of_scenario
            .iter()
            .filter(|run| run.failures.is_empty())
            .count();
        let missed = of_scenario
            .iter()
            .filter(|run| run.kills.is_empty())
            .count();
        let longest_stall = of_scenario.iter().filter_map(|run| run.longest_stall).max();
        let mut fault_to_done: Vec<Duration> = of_scenario
            .iter()
            .filter_map(|run| run.fault_to_done)
            .collect();
        fault_to_done.sort();
        let spread = if fault_to_done.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{:.1} / {:.1} / {:.1} s",
                fault_to_done[0].as_secs_f64(),
                fault_to_done[fault_to_done.len() / 2].as_secs_f64(),
                fault_to_done[fault_to_done.len() - 1].as_secs_f64()
            )
        };
        let _ = writeln!(
            table,
            "{:<9} {:>4} {:>6} {:>6} {:>13} {:>28}",
            scenario.name(),
            of_scenario.len(),
            passed,
            missed,
            seconds(longest_stall),
            spread
        );
    }
    table
}

/// One run: a fresh namespace and account, two replicas of each service as child processes,
/// a generated file imported while the scenario's strikes happen, and the result checked
/// against the model. Never panics on what it checks: the campaign goes on and reports.
async fn run_once(
    settings: &CampaignSettings,
    scenario: Option<Scenario>,
    run: usize,
) -> RunResult {
    let seed = settings.run_seed(scenario, run);
    let mut random = Random::new(seed);
    let file = generate(settings.rows, &mut random);
    let expected = model(&file);
    let plan = scenario.map_or_else(Vec::new, |scenario| {
        scenario.plan(settings.rows, &mut random)
    });

    let system = TestSystem::start_with(Replicas {
        ingest: 0,
        mapper: 0,
        writer: 0,
    })
    .await;
    let path = system.file("campaign.csv", &file.text);
    let mut services = Services::start(&system);
    let mut result = RunResult {
        scenario,
        run,
        seed,
        import_id: None,
        kills: Vec::new(),
        import_time: None,
        fault_to_done: None,
        longest_stall: None,
        failures: Vec::new(),
        diagnostics: String::new(),
    };

    if let Err(error) = writers_answer(&system.client).await {
        result.failures.push(error);
    }
    let started = Instant::now();
    match system.client.start_import(&path, campaign_options()).await {
        Err(error) => result
            .failures
            .push(format!("starting the import: {error}")),
        Ok(import_id) => {
            result.import_id = Some(import_id.clone());
            let (done_sender, done) = watch::channel(false);
            let watching = async {
                let watched =
                    watch_until_ended(&system.client, &import_id, settings.stall_limit).await;
                let _ = done_sender.send(true);
                watched
            };
            let striking = strike(
                &mut services,
                &system.client,
                &import_id,
                &plan,
                done,
                &mut random,
            );
            let (watched, kills) = tokio::join!(watching, striking);
            result.kills = kills
                .iter()
                .map(|kill| (kill.service, kill.replica, kill.at - started))
                .collect();
            let fault = kills.first().map(|kill| kill.at);
            match &watched.ended {
                Some((ended_at, _)) => {
                    result.import_time = Some(*ended_at - started);
                    result.fault_to_done = fault.map(|fault| *ended_at - fault);
                    result.longest_stall =
                        Some(watched.longest_stall_since(fault.unwrap_or(started), *ended_at));
                    check(&system, &import_id, &expected, &mut result.failures).await;
                }
                None => {
                    result.longest_stall =
                        Some(watched.longest_stall_since(fault.unwrap_or(started), Instant::now()));
                    result.failures.push(watched.why_not_ended(settings));
                }
            }
        }
    }
    if !result.failures.is_empty() {
        result.diagnostics = diagnostics(&system, &services).await;
    }
    services.stop().await;
    system.stop().await;
    result
}

/// Waits until a writer answers requests: the writers apply the migrations and create the
/// streams before they subscribe.
async fn writers_answer(client: &Client) -> Result<(), String> {
    let answering = async {
        loop {
            match client.imports(None, 1).await {
                Ok(_) => return,
                Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(60), answering)
        .await
        .map_err(|_| "no writer answered within 60 s of starting".to_string())
}

fn campaign_options() -> ImportOptions {
    ImportOptions {
        policy: DuplicatePolicy::Link,
        tags: [CAMPAIGN_TAG.to_string()].into(),
        contact_type: Some(CONTACT_TYPE.to_string()),
        category: Some(CATEGORY.to_string()),
        delimiter: Some(",".to_string()),
        ..ImportOptions::default()
    }
}

const CAMPAIGN_TAG: &str = "campaign";
const CONTACT_TYPE: &str = "customer";
const CATEGORY: &str = "newsletter";

/// Two replicas of each service as child processes of the test, each logging to its own file.
struct Services<'a> {
    system: &'a TestSystem,
    logs: PathBuf,
    replicas: Vec<ServiceReplica>,
}

struct ServiceReplica {
    service: Service,
    replica: usize,
    child: Child,
    log: PathBuf,
}

impl<'a> Services<'a> {
    const REPLICAS: usize = 2;

    fn start(system: &'a TestSystem) -> Self {
        let logs = system.scratch_path("logs");
        std::fs::create_dir_all(&logs).expect("the run's log folder");
        let mut services = Self {
            system,
            logs,
            replicas: Vec::new(),
        };
        // The writers first: they apply the migrations and create the streams.
        for service in [Service::Writer, Service::Mapper, Service::Ingest] {
            for replica in 1..=Self::REPLICAS {
                let log = services
                    .logs
                    .join(format!("{}-{replica}.log", service.binary()));
                let child = services.spawn(service, &log);
                services.replicas.push(ServiceReplica {
                    service,
                    replica,
                    child,
                    log,
                });
            }
        }
        services
    }

    fn spawn(&self, service: Service, log: &Path) -> Child {
        // Longer than any campaign's stall limit: the campaign, not the writers' watchdog,
        // reports an import that stopped moving.
        let env: &[(&str, &str)] = match service {
            Service::Writer => &[("IMPORT_STALL_SECONDS", "3600")],
            Service::Ingest | Service::Mapper => &[],
        };
        self.system.spawn_service(service.binary(), env, Some(log))
    }

    /// Kills a replica of `service` with SIGKILL: for ingest the one that used the most
    /// processor time (the one reading the file), otherwise one at random. Returns its index
    /// among `replicas`.
    async fn kill(&mut self, service: Service, random: &mut Random) -> usize {
        let candidates: Vec<usize> = (0..self.replicas.len())
            .filter(|&index| self.replicas[index].service == service)
            .collect();
        let index = match service {
            Service::Ingest => *candidates
                .iter()
                .max_by_key(|&&index| self.replicas[index].child.id().map_or(0, processor_ticks))
                .expect("two ingest replicas"),
            Service::Mapper | Service::Writer => *random.pick(&candidates),
        };
        let _ = self.replicas[index].child.kill().await;
        index
    }

    fn restart(&mut self, index: usize) {
        let replica = &self.replicas[index];
        let note = "\n--- killed with SIGKILL and started again ---\n";
        let _ = std::fs::OpenOptions::new()
            .append(true)
            .open(&replica.log)
            .and_then(|mut file| std::io::Write::write_all(&mut file, note.as_bytes()));
        let child = self.spawn(replica.service, &replica.log);
        self.replicas[index].child = child;
    }

    /// The last lines each replica logged.
    fn log_tails(&self) -> String {
        let mut tails = String::new();
        for replica in &self.replicas {
            let text = std::fs::read_to_string(&replica.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let _ = writeln!(
                tails,
                "  {}-{} log ({} lines):",
                replica.service.binary(),
                replica.replica,
                lines.len()
            );
            // The start says why a service would not run; the end, what it did last.
            let (head, tail) = if lines.len() > 12 {
                (&lines[..4], &lines[lines.len() - 8..])
            } else {
                (&lines[..], &lines[..0])
            };
            for line in head {
                let _ = writeln!(tails, "    {}", truncate(line, 300));
            }
            if !tail.is_empty() {
                let _ = writeln!(tails, "    …");
            }
            for line in tail {
                let _ = writeln!(tails, "    {}", truncate(line, 300));
            }
        }
        tails
    }

    async fn stop(mut self) {
        for replica in &mut self.replicas {
            let _ = replica.child.kill().await;
        }
    }
}

fn truncate(text: &str, characters: usize) -> String {
    match text.char_indices().nth(characters) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_string(),
    }
}

/// User plus system processor time of a process, in clock ticks (Linux `/proc`); 0 when
/// unknown.
fn processor_ticks(pid: u32) -> u64 {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return 0;
    };
    // After the command name in parentheses: state is field 3, utime 14 and stime 15.
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    let field = |index: usize| {
        fields
            .get(index)
            .and_then(|text| text.parse::<u64>().ok())
            .unwrap_or(0)
    };
    field(11) + field(12)
}

/// Carries out `plan` until the import ends (`done`), and says what it killed when.
async fn strike(
    services: &mut Services<'_>,
    client: &Client,
    import_id: &ImportId,
    plan: &[Strike],
    mut done: watch::Receiver<bool>,
    random: &mut Random,
) -> Vec<Kill> {
    let mut kills = Vec::new();
    for strike in plan {
        if strike.after_rows > 0 {
            tokio::select! {
                _ = rows_in(client, import_id, strike.after_rows) => {}
                _ = done.wait_for(|done| *done) => break,
            }
        }
        // The fault's moment, not a wait for a condition.
        tokio::select! {
            _ = tokio::time::sleep(strike.delay) => {}
            _ = done.wait_for(|done| *done) => break,
        }
        if *done.borrow() {
            break;
        }
        let index = services.kill(strike.service, random).await;
        kills.push(Kill {
            service: strike.service,
            replica: services.replicas[index].replica,
            at: Instant::now(),
        });
        tokio::time::sleep(strike.restart_after).await;
        services.restart(index);
    }
    kills
}

/// Returns once `rows` rows of the import are in (or it ended; the watcher tells which).
async fn rows_in(client: &Client, import_id: &ImportId, rows: u64) {
    loop {
        if let Ok(status) = client.status(import_id).await {
            if rows_done(&status) >= rows || status.status.is_terminal() {
                return;
            }
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn rows_done(status: &ImportStatus) -> u64 {
    status.created + status.linked + status.duplicated + status.skipped + status.failed
}

fn counters(status: &ImportStatus) -> [u64; 6] {
    [
        status.rows_total,
        status.created,
        status.linked,
        status.duplicated,
        status.skipped,
        status.failed,
    ]
}

/// What polling the import's status saw.
struct Watched {
    /// When the status was first seen terminal, and that status.
    ended: Option<(Instant, ImportStatus)>,
    /// Every moment progress was seen to change.
    changes: Vec<Instant>,
    last_status: Option<ImportStatus>,
    /// Why it stopped watching without an end.
    gave_up: Option<String>,
    status_errors: usize,
    last_status_error: Option<String>,
}

impl Watched {
    /// The longest time between two changes of progress from `from` to `until`.
    fn longest_stall_since(&self, from: Instant, until: Instant) -> Duration {
        let mut longest = Duration::ZERO;
        let mut previous = from;
        for &change in self.changes.iter().filter(|&&change| change > from) {
            longest = longest.max(change - previous);
            previous = change;
        }
        longest.max(until.saturating_duration_since(previous))
    }

    fn why_not_ended(&self, settings: &CampaignSettings) -> String {
        let status = self.last_status.as_ref().map_or_else(
            || "no status answered".to_string(),
            |status| {
                format!(
                    "status {}, waiting for {:?}, rows in {} of {:?} (counters {:?}), bytes {} of \
                     {:?}, error {:?}",
                    status.status.as_str(),
                    status.waiting_for,
                    rows_done(status),
                    status.rows_in_file,
                    counters(status),
                    status.bytes_done,
                    status.bytes_total,
                    status.error,
                )
            },
        );
        format!(
            "the import did not end: {} (limit {} s without progress); last {status}; {} status \
             call(s) failed, the last: {:?}",
            self.gave_up.as_deref().unwrap_or("gave up"),
            settings.stall_limit.as_secs(),
            self.status_errors,
            self.last_status_error,
        )
    }
}

/// Polls the import's status until it ends, or until nothing moved for `stall_limit`: a stuck
/// import fails its run instead of hanging the campaign.
async fn watch_until_ended(
    client: &Client,
    import_id: &ImportId,
    stall_limit: Duration,
) -> Watched {
    let mut watched = Watched {
        ended: None,
        changes: Vec::new(),
        last_status: None,
        gave_up: None,
        status_errors: 0,
        last_status_error: None,
    };
    let mut last_progress = None;
    let mut last_change = Instant::now();
    loop {
        match tokio::time::timeout(Duration::from_secs(5), client.status(import_id)).await {
            Ok(Ok(status)) => {
                let progress = (
                    status.status,
                    counters(&status),
                    status.bytes_done,
                    status.rows_in_file,
                );
                if last_progress != Some(progress) {
                    last_progress = Some(progress);
                    last_change = Instant::now();
                    watched.changes.push(last_change);
                }
                if status.status.is_terminal() {
                    watched.ended = Some((Instant::now(), status));
                    return watched;
                }
                watched.last_status = Some(status);
            }
            Ok(Err(error)) => {
                watched.status_errors += 1;
                watched.last_status_error = Some(error.to_string());
            }
            Err(_) => {
                watched.status_errors += 1;
                watched.last_status_error = Some("no answer within 5 s".to_string());
            }
        }
        if last_change.elapsed() >= stall_limit {
            watched.gave_up = Some(format!(
                "stuck: no progress for {} s",
                last_change.elapsed().as_secs()
            ));
            return watched;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Status, consumers and the services' last log lines, for a failed run.
async fn diagnostics(system: &TestSystem, services: &Services<'_>) -> String {
    let mut text = String::new();
    let jetstream = async_nats::jetstream::new(system.client.nats().clone());
    for role in [
        ConsumerRole::Ingest,
        ConsumerRole::Mapper,
        ConsumerRole::Writer,
    ] {
        let info = match role.consumer(&jetstream, &system.namespace).await {
            Ok(mut consumer) => match consumer.info().await {
                Ok(info) => format!(
                    "pending {}, waiting for an ack {}, redelivered {}",
                    info.num_pending, info.num_ack_pending, info.num_redelivered
                ),
                Err(error) => format!("no info: {error}"),
            },
            Err(error) => format!("no consumer: {error}"),
        };
        let _ = writeln!(text, "  consumer {role:?}: {info}");
    }
    text.push_str(&services.log_tails());
    text
}

/// Checks the ended import against the model: counters, contacts field by field, row errors,
/// match keys, events. Each mismatch is one entry of `failures`.
async fn check(
    system: &TestSystem,
    import_id: &ImportId,
    expected: &Expected,
    failures: &mut Vec<String>,
) {
    // The summary event comes after the commit that ends the import.
    let following = system
        .client
        .follow(import_id, Duration::from_secs(5), |_| {});
    let summary = match tokio::time::timeout(Duration::from_secs(60), following).await {
        Ok(Ok(summary)) => summary,
        Ok(Err(error)) => {
            failures.push(format!("following the import to its summary: {error}"));
            return;
        }
        Err(_) => {
            failures.push("no summary event within 60 s of the import's end".to_string());
            return;
        }
    };
    if summary.status != ImportState::Completed {
        failures.push(format!(
            "the import ended {} ({:?}), not completed",
            summary.status.as_str(),
            summary.error
        ));
    }
    if counters(&summary) != expected.counters {
        failures.push(format!(
            "counters [rows_total, created, linked, duplicated, skipped, failed] are {:?}, the \
             model says {:?}",
            counters(&summary),
            expected.counters
        ));
    }
    if summary.rows_in_file != Some(expected.counters[0]) {
        failures.push(format!(
            "rows_in_file is {:?}, the file has {}",
            summary.rows_in_file, expected.counters[0]
        ));
    }
    if summary.unmapped_columns != ["note"] {
        failures.push(format!(
            "unmapped columns {:?}, expected [\"note\"]",
            summary.unmapped_columns
        ));
    }
    check_contacts(&system.client, expected, failures).await;
    check_row_errors(&system.client, import_id, expected, failures).await;
    check_match_keys(system, expected, failures).await;
    match system.stored_events(import_id).await {
        Ok(events) => check_events(&events, &summary, failures),
        Err(error) => failures.push(format!("reading the events stream: {error:#}")),
    }
}

async fn check_contacts(client: &Client, expected: &Expected, failures: &mut Vec<String>) {
    let mut exported: Vec<ExportedContact> = Vec::new();
    if let Err(error) = client
        .export_contacts(|contact| exported.push(contact))
        .await
    {
        failures.push(format!("exporting the contacts: {error}"));
        return;
    }
    if exported.len() != expected.contacts.len() {
        failures.push(format!(
            "{} contacts exported, the model has {}",
            exported.len(),
            expected.contacts.len()
        ));
    }
    let mut by_email: HashMap<&str, Vec<&ExportedContact>> = HashMap::new();
    for contact in &exported {
        let email = contact.attributes.get("email").map_or("", String::as_str);
        by_email.entry(email).or_default().push(contact);
    }
    let mut differences = Vec::new();
    // Ids follow the file: the contact created on line L has id `first + L`.
    let mut id_offsets = BTreeSet::new();
    let tags = vec![CAMPAIGN_TAG.to_string()];
    for contact in &expected.contacts {
        let email = contact.attributes["email"].as_str();
        let Some(found) = by_email.get(email) else {
            differences.push(format!("{email} (line {}) missing", contact.line));
            continue;
        };
        if found.len() > 1 {
            differences.push(format!("{email} exported {} times", found.len()));
        }
        let actual = found[0];
        id_offsets.insert(actual.id - contact.line as i64);
        if actual.attributes != contact.attributes {
            differences.push(format!(
                "{email}: attributes {:?}, the model has {:?}",
                actual.attributes, contact.attributes
            ));
        }
        if actual.contact_type.as_deref() != Some(CONTACT_TYPE)
            || actual.category.as_deref() != Some(CATEGORY)
            || actual.tags != tags
        {
            differences.push(format!(
                "{email}: type {:?}, category {:?}, tags {:?}",
                actual.contact_type, actual.category, actual.tags
            ));
        }
    }
    let modelled: BTreeSet<&str> = expected
        .contacts
        .iter()
        .map(|contact| contact.attributes["email"].as_str())
        .collect();
    for email in by_email.keys().filter(|email| !modelled.contains(*email)) {
        differences.push(format!("{email} exported but not in the model"));
    }
    if id_offsets.len() > 1 {
        differences.push(format!(
            "contact ids do not follow the file's lines: {} different offsets id - line",
            id_offsets.len()
        ));
    }
    if !differences.is_empty() {
        failures.push(format!(
            "{} contact difference(s), the first: {}",
            differences.len(),
            differences
                .iter()
                .take(5)
                .map(|difference| truncate(difference, 400))
                .collect::<Vec<_>>()
                .join("; ")
        ));
    }
}

async fn check_row_errors(
    client: &Client,
    import_id: &ImportId,
    expected: &Expected,
    failures: &mut Vec<String>,
) {
    let mut errors: Vec<RowError> = Vec::new();
    if let Err(error) = client.errors(import_id, |error| errors.push(error)).await {
        failures.push(format!("reading the row errors: {error}"));
        return;
    }
    let mut actual: Vec<(u64, Option<String>)> = errors
        .iter()
        .map(|error| (error.line, error.column.clone()))
        .collect();
    actual.sort();
    if actual != expected.errors {
        let missing: Vec<_> = expected
            .errors
            .iter()
            .filter(|error| !actual.contains(error))
            .take(5)
            .collect();
        let unexpected: Vec<_> = actual
            .iter()
            .filter(|error| !expected.errors.contains(error))
            .take(5)
            .collect();
        failures.push(format!(
            "{} row errors (line, column), the model has {}; missing {missing:?}, unexpected \
             {unexpected:?}",
            actual.len(),
            expected.errors.len()
        ));
    }
    if let Some(error) = errors.iter().find(|error| error.reason.trim().is_empty()) {
        failures.push(format!("a row error without a reason: {error:?}"));
    }
}

/// Under `link` every email belongs to one contact: no key is held twice, and every contact
/// has its one key.
async fn check_match_keys(system: &TestSystem, expected: &Expected, failures: &mut Vec<String>) {
    let doubled: Result<Vec<(String, String, i64)>, _> = sqlx::query_as(
        "SELECT attribute, value, count(*) FROM contact_keys WHERE account_id = $1 \
         GROUP BY attribute, value HAVING count(*) > 1 ORDER BY attribute, value LIMIT 5",
    )
    .bind(system.account.as_str())
    .fetch_all(&system.pool)
    .await;
    match doubled {
        Ok(doubled) if doubled.is_empty() => {}
        Ok(doubled) => failures.push(format!("doubled match keys: {doubled:?}")),
        Err(error) => failures.push(format!("reading contact_keys: {error}")),
    }
    let keys: Result<i64, _> =
        sqlx::query_scalar("SELECT count(*) FROM contact_keys WHERE account_id = $1")
            .bind(system.account.as_str())
            .fetch_one(&system.pool)
            .await;
    match keys {
        Ok(keys) if keys == expected.contacts.len() as i64 => {}
        Ok(keys) => failures.push(format!(
            "{keys} match keys stored for {} contacts",
            expected.contacts.len()
        )),
        Err(error) => failures.push(format!("counting contact_keys: {error}")),
    }
}

/// In `sequence` order the events' counters never go back, equal sequences say the same, and
/// exactly one summary comes last, saying what the summary said.
fn check_events(events: &[ImportEvent], summary: &ImportStatus, failures: &mut Vec<String>) {
    let summaries: Vec<&ImportEvent> = events
        .iter()
        .filter(|event| event.kind == ImportEventKind::Summary)
        .collect();
    if summaries.len() != 1 {
        failures.push(format!(
            "{} summary events among {} events",
            summaries.len(),
            events.len()
        ));
        return;
    }
    let last = summaries[0];
    if let Some(outranking) = events
        .iter()
        .find(|event| event.kind != ImportEventKind::Summary && event.sequence >= last.sequence)
    {
        failures.push(format!(
            "a {:?} event has sequence {}, not below the summary's {}",
            outranking.kind, outranking.sequence, last.sequence
        ));
    }
    if counters(&last.import) != counters(summary) {
        failures.push(format!(
            "the summary event says {:?}, the summary {:?}",
            counters(&last.import),
            counters(summary)
        ));
    }
    let mut ordered: Vec<&ImportEvent> = events.iter().collect();
    ordered.sort_by_key(|event| event.sequence);
    for pair in ordered.windows(2) {
        let (before, after) = (&pair[0].import, &pair[1].import);
        let went_back = counters(after)[1..]
            .iter()
            .zip(&counters(before)[1..])
            .any(|(after, before)| after < before);
        let same_sequence_differs =
            pair[0].sequence == pair[1].sequence && counters(after)[1..] != counters(before)[1..];
        if went_back || same_sequence_differs {
            failures.push(format!(
                "events out of step: sequence {} ({:?}) says {:?}, sequence {} ({:?}) says {:?}",
                pair[0].sequence,
                pair[0].kind,
                counters(before),
                pair[1].sequence,
                pair[1].kind,
                counters(after)
            ));
            break;
        }
    }
}

// ----- The file and the model -----

/// The columns of every generated file; `note` is mapped to nothing.
const HEADER: [&str; 7] = [
    "email",
    "first_name",
    "last_name",
    "city",
    "company",
    "birthday",
    "note",
];

const FIRST_NAMES: [&str; 8] = [
    "Zażółć",
    "Łucja",
    "Jörg",
    "Ève",
    "Søren",
    "Ðorđe",
    "Agnieszka",
    "Małgorzata",
];
const LAST_NAMES: [&str; 6] = [
    "Gęślą",
    "Jaźń",
    "Kowalski",
    "Müller",
    "Brzęczyszczykiewicz",
    "Nuñez",
];
/// Some need quoting: a comma, a double quote.
const CITIES: [&str; 7] = [
    "Łódź",
    "Kraków",
    "Gdańsk, Oliwa",
    "Zürich",
    "São Paulo",
    "Bielsko-Biała",
    "Wrocław \"Stare Miasto\"",
];

/// A generated file: its text and each record's cells as written, the record of index i on
/// line i + 2 (no cell spans lines).
struct GeneratedFile {
    text: String,
    records: Vec<Vec<String>>,
}

/// `rows` records: about 30 % repeat an earlier person's email (some in other case, with
/// spaces), cells left empty (a link keeps the value), dates in three layouts, and bad rows:
/// invalid and empty emails, impossible dates, a field too many.
fn generate(rows: usize, random: &mut Random) -> GeneratedFile {
    let mut text = HEADER.join(",");
    text.push('\n');
    let mut records = Vec::with_capacity(rows);
    let mut persons: u64 = 0;
    for index in 0..rows {
        let repeat = persons > 0 && random.chance(300);
        let person = if repeat {
            random.below(persons)
        } else {
            persons += 1;
            persons - 1
        };
        let email = match random.below(1_000) {
            0..=7 => format!("p{person}.example.com"),
            8..=11 => String::new(),
            12..=80 if repeat => format!(" P{person}@Example.COM "),
            _ => format!("p{person}@example.com"),
        };
        let first_name = if random.chance(150) {
            String::new()
        } else {
            random.pick(&FIRST_NAMES).to_string()
        };
        let last_name = if random.chance(100) {
            String::new()
        } else {
            format!("{} {index}", random.pick(&LAST_NAMES))
        };
        let city = if random.chance(200) {
            String::new()
        } else {
            random.pick(&CITIES).to_string()
        };
        let company = if random.chance(400) {
            String::new()
        } else {
            format!("Spółka {}", random.below(40))
        };
        let birthday = match random.below(1_000) {
            0..=9 => "not a date".to_string(),
            10..=14 => format!("31.02.{}", random.between(1950, 2005)),
            15..=160 => String::new(),
            _ => {
                let (year, month, day) = (
                    random.between(1950, 2005),
                    random.between(1, 12),
                    random.between(1, 28),
                );
                match random.below(3) {
                    0 => format!("{year}-{month:02}-{day:02}"),
                    1 => format!("{day:02}.{month:02}.{year}"),
                    _ => format!("{year}{month:02}{day:02}"),
                }
            }
        };
        let mut cells = vec![
            email,
            first_name,
            last_name,
            city,
            company,
            birthday,
            format!("uwaga {index}"),
        ];
        if random.chance(3) {
            cells.push("one too many".to_string());
        }
        let line: Vec<String> = cells.iter().map(|cell| csv_field(cell)).collect();
        text.push_str(&line.join(","));
        text.push('\n');
        records.push(cells);
    }
    GeneratedFile { text, records }
}

fn csv_field(cell: &str) -> String {
    if cell.contains([',', '"']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell.to_string()
    }
}

/// What the import must end with.
struct Expected {
    /// rows_total, created, linked, duplicated, skipped, failed.
    counters: [u64; 6],
    /// Oldest first.
    contacts: Vec<ModelContact>,
    /// (line, column), sorted.
    errors: Vec<(u64, Option<String>)>,
}

struct ModelContact {
    /// The line of the row that created it.
    line: u64,
    attributes: BTreeMap<String, String>,
}

/// The documented rules, row by row in file order, for the column types generated: a row with
/// another number of fields than the header fails as a whole (no column); cells are trimmed;
/// an email is lower-cased and must have a local part, `@` and a domain with a dot, and may
/// not be empty (required); a date is `YYYY-MM-DD`, `DD.MM.YYYY` or `YYYYMMDD` of a real
/// day and becomes `YYYY-MM-DD`; text is kept; empty cells set nothing. A failing row has one
/// error per bad cell and changes nothing. Under `link` the first valid row of an email
/// creates its contact, and each later one overwrites the contact's values with its non-empty
/// cells, keeping the rest; type, category and tags are the import's.
fn model(file: &GeneratedFile) -> Expected {
    let mut contacts: Vec<ModelContact> = Vec::new();
    let mut by_email: HashMap<String, usize> = HashMap::new();
    let mut errors = Vec::new();
    let (mut created, mut linked, mut failed) = (0, 0, 0);
    for (index, cells) in file.records.iter().enumerate() {
        let line = index as u64 + 2;
        if cells.len() != HEADER.len() {
            errors.push((line, None));
            failed += 1;
            continue;
        }
        let mut values = BTreeMap::new();
        let mut row_errors = Vec::new();
        for (column, cell) in HEADER.iter().zip(cells) {
            let cell = cell.trim();
            let value = match *column {
                "note" => continue,
                "email" if cell.is_empty() => Err(()),
                "email" => model_email(cell).ok_or(()),
                _ if cell.is_empty() => continue,
                "birthday" => model_date(cell).ok_or(()),
                _ => Ok(cell.to_string()),
            };
            match value {
                Ok(value) => {
                    values.insert(column.to_string(), value);
                }
                Err(()) => row_errors.push((line, Some(column.to_string()))),
            }
        }
        if !row_errors.is_empty() {
            errors.extend(row_errors);
            failed += 1;
            continue;
        }
        let email = values["email"].clone();
        match by_email.get(&email) {
            Some(&position) => {
                contacts[position].attributes.extend(values);
                linked += 1;
            }
            None => {
                by_email.insert(email, contacts.len());
                contacts.push(ModelContact {
                    line,
                    attributes: values,
                });
                created += 1;
            }
        }
    }
    errors.sort();
    Expected {
        counters: [file.records.len() as u64, created, linked, 0, 0, failed],
        contacts,
        errors,
    }
}

fn model_email(cell: &str) -> Option<String> {
    let (local, domain) = cell.split_once('@')?;
    let plain = !local.is_empty() && domain.contains('.') && !domain.contains('@');
    plain.then(|| cell.to_lowercase())
}

fn model_date(cell: &str) -> Option<String> {
    let number = |text: &str| -> Option<u32> {
        text.bytes()
            .all(|byte| byte.is_ascii_digit())
            .then(|| text.parse().ok())
            .flatten()
    };
    let (year, month, day) = match cell.len() {
        10 if cell.as_bytes()[4] == b'-' && cell.as_bytes()[7] == b'-' => (
            number(&cell[0..4])?,
            number(&cell[5..7])?,
            number(&cell[8..10])?,
        ),
        10 if cell.as_bytes()[2] == b'.' && cell.as_bytes()[5] == b'.' => (
            number(&cell[6..10])?,
            number(&cell[3..5])?,
            number(&cell[0..2])?,
        ),
        8 => (
            number(&cell[0..4])?,
            number(&cell[4..6])?,
            number(&cell[6..8])?,
        ),
        _ => return None,
    };
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    (1..=days)
        .contains(&day)
        .then(|| format!("{year:04}-{month:02}-{day:02}"))
}

/// SplitMix64: small, seeded, the same on every machine.
struct Random(u64);

impl Random {
    fn new(seed: u64) -> Self {
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut mixed = self.0;
        mixed = (mixed ^ (mixed >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        mixed = (mixed ^ (mixed >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        mixed ^ (mixed >> 31)
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound.max(1)
    }

    /// Inclusive.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.below(high.saturating_sub(low) + 1)
    }

    fn chance(&mut self, per_thousand: u64) -> bool {
        self.below(1_000) < per_thousand
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }
}

#[test]
fn the_model_follows_the_documented_rules_on_a_small_file() {
    let records = [
        vec![
            "p1@example.com",
            "Łucja",
            "A",
            "Łódź",
            "",
            "1990-05-17",
            "n",
        ],
        vec![
            " P1@Example.COM ",
            "",
            "B",
            "",
            "Spółka 1",
            "17.05.1991",
            "n",
        ],
        vec!["p2.example.com", "X", "", "", "", "not a date", "n"],
        vec!["", "X", "", "", "", "19900230", "n"],
        vec!["p2@example.com", "Ève", "", "", "", "", "n", "extra"],
        vec![
            "p2@example.com",
            "Ève",
            "",
            "Gdańsk, Oliwa",
            "",
            "20000229",
            "n",
        ],
    ];
    let file = GeneratedFile {
        text: String::new(),
        records: records
            .iter()
            .map(|cells| cells.iter().map(|cell| cell.to_string()).collect())
            .collect(),
    };
    let expected = model(&file);
    assert_eq!(expected.counters, [6, 2, 1, 0, 0, 3]);
    let contact = |line: u64, pairs: &[(&str, &str)]| {
        (
            line,
            pairs
                .iter()
                .map(|(key, value)| (key.to_string(), value.to_string()))
                .collect::<BTreeMap<_, _>>(),
        )
    };
    assert_eq!(
        expected
            .contacts
            .iter()
            .map(|contact| (contact.line, contact.attributes.clone()))
            .collect::<Vec<_>>(),
        vec![
            contact(
                2,
                &[
                    ("email", "p1@example.com"),
                    ("first_name", "Łucja"),
                    ("last_name", "B"),
                    ("city", "Łódź"),
                    ("company", "Spółka 1"),
                    ("birthday", "1991-05-17"),
                ]
            ),
            contact(
                7,
                &[
                    ("email", "p2@example.com"),
                    ("first_name", "Ève"),
                    ("city", "Gdańsk, Oliwa"),
                    ("birthday", "2000-02-29"),
                ]
            ),
        ]
    );
    let column = |name: &str| Some(name.to_string());
    assert_eq!(
        expected.errors,
        vec![
            (4, column("birthday")),
            (4, column("email")),
            (5, column("birthday")),
            (5, column("email")),
            (6, None),
        ]
    );
}
