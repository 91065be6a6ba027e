//! What a benchmark run stands on: a database of its own, and the three services as child
//! processes of this build, whose peak memory and CPU time the kernel keeps.

use std::fmt;
use std::process::Stdio;
use std::time::Duration;

use anyhow::Context as _;
use sqlx::{Connection as _, PgConnection};
use tokio::process::{Child, Command};

/// A database created for one run and dropped after it.
pub struct FreshDatabase {
    name: String,
    server: String,
    pub url: String,
}

impl FreshDatabase {
    /// Creates it on the server of `database_url`, with the writer's schema.
    pub async fn create(database_url: &str) -> anyhow::Result<Self> {
        let (server, _) = database_url
            .rsplit_once('/')
            .context("DATABASE_URL has no database name")?;
        let name = format!("contact_import_bench_{}", super::unique());
        let mut admin = PgConnection::connect(&format!("{server}/postgres"))
            .await
            .with_context(|| format!("connecting to {server}"))?;
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut admin)
            .await?;
        let url = format!("{server}/{name}");
        let mut connection = PgConnection::connect(&url).await?;
        contact_writer::MIGRATOR.run(&mut connection).await?;
        Ok(Self {
            name,
            server: server.to_string(),
            url,
        })
    }

    /// Runs `work` on a database of its own, created for it and dropped after it, whatever
    /// `work` returned.
    pub async fn around<T, Work>(
        database_url: &str,
        work: impl FnOnce(String) -> Work,
    ) -> anyhow::Result<T>
    where
        Work: std::future::Future<Output = anyhow::Result<T>>,
    {
        let database = Self::create(database_url).await?;
        let result = work(database.url.clone()).await;
        database.drop().await?;
        result
    }

    pub async fn drop(self) -> anyhow::Result<()> {
        let mut admin = PgConnection::connect(&format!("{}/postgres", self.server)).await?;
        sqlx::query(&format!("DROP DATABASE {} WITH (FORCE)", self.name))
            .execute(&mut admin)
            .await?;
        Ok(())
    }
}

/// The highest resident set size each service reached, in MiB (several replicas: the largest).
pub struct PeakMemory(Vec<(String, f64)>);

impl fmt::Display for PeakMemory {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self
            .0
            .iter()
            .map(|(name, mib)| format!("{name} {mib:.0}"))
            .collect();
        formatter.write_str(&parts.join(", "))
    }
}

/// CPU seconds each service has used (several replicas: their sum), in start order.
#[derive(Debug, Clone, Default)]
pub struct ServiceCpu(pub Vec<(String, f64)>);

impl ServiceCpu {
    /// What each service used between `earlier` and `self`.
    pub fn since(&self, earlier: &ServiceCpu) -> ServiceCpu {
        ServiceCpu(
            self.0
                .iter()
                .map(|(name, seconds)| {
                    let before = earlier
                        .0
                        .iter()
                        .find(|(known, _)| known == name)
                        .map_or(0.0, |(_, before)| *before);
                    (name.clone(), seconds - before)
                })
                .collect(),
        )
    }
}

/// The three services as child processes, from the same build as this binary.
pub struct Services {
    children: Vec<(String, Child)>,
}

impl Services {
    pub fn start(
        nats_url: &str,
        database_url: &str,
        namespace: &str,
        mappers: usize,
        writers: usize,
        writer_concurrency: Option<usize>,
    ) -> anyhow::Result<Self> {
        let binaries = std::env::current_exe()?
            .parent()
            .context("the benchmark binary has no folder")?
            .to_path_buf();
        let mut children = Vec::new();
        for (name, replicas) in [
            ("contact-writer", writers),
            ("contact-mapper", mappers),
            ("contact-ingest", 1),
        ] {
            for _ in 0..replicas {
                let mut command = Command::new(binaries.join(name));
                if let Some(concurrency) = writer_concurrency {
                    command.env("WRITER_CONCURRENCY", concurrency.to_string());
                }
                let child = command
                    .env("NATS_URL", nats_url)
                    .env("DATABASE_URL", database_url)
                    .env("CONTACT_IMPORT_NAMESPACE", namespace)
                    .env("RUST_LOG", "warn")
                    .stdout(Stdio::null())
                    .kill_on_drop(true)
                    .spawn()
                    .with_context(|| {
                        format!("starting {name} (run `cargo build --release --workspace --bins` first)")
                    })?;
                children.push((name.to_string(), child));
            }
        }
        Ok(Self { children })
    }

    /// Reads each child's user and system time; call it while they run (a stopped child's
    /// `/proc` entry is gone once it is reaped).
    pub fn cpu_seconds(&self) -> ServiceCpu {
        let mut totals: Vec<(String, f64)> = Vec::new();
        for (name, child) in &self.children {
            let Some(pid) = child.id() else { continue };
            let seconds = crate::cpu::process_cpu_seconds(pid).unwrap_or(0.0);
            let short = name.trim_start_matches("contact-").to_string();
            match totals.iter_mut().find(|(known, _)| *known == short) {
                Some((_, total)) => *total += seconds,
                None => totals.push((short, seconds)),
            }
        }
        ServiceCpu(totals)
    }

    fn peak_memory(&self) -> PeakMemory {
        let mut peaks: Vec<(String, f64)> = Vec::new();
        for (name, child) in &self.children {
            let Some(pid) = child.id() else { continue };
            // Linux keeps the high-water mark of the resident set (`VmHWM`) for a process.
            let kib = std::fs::read_to_string(format!("/proc/{pid}/status"))
                .ok()
                .and_then(|status| {
                    status.lines().find_map(|line| {
                        line.strip_prefix("VmHWM:")?
                            .trim()
                            .trim_end_matches("kB")
                            .trim()
                            .parse::<f64>()
                            .ok()
                    })
                })
                .unwrap_or(0.0);
            let short = name.trim_start_matches("contact-").to_string();
            let mib = kib / 1024.0;
            match peaks.iter_mut().find(|(known, _)| *known == short) {
                Some((_, highest)) => *highest = highest.max(mib),
                None => peaks.push((short, mib)),
            }
        }
        PeakMemory(peaks)
    }

    /// Reads the peaks, then stops every service as an orchestrator would (SIGTERM, then
    /// SIGKILL after a grace period).
    pub async fn stop(mut self) -> PeakMemory {
        let memory = self.peak_memory();
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
        memory
    }
}
