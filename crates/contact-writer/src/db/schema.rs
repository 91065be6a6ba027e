//! Which of the writer's migrations a database holds, and applying them as a step of its own.
//!
//! In production the schema is brought up by `contact-writer migrate` before a rollout (a
//! Kubernetes Job), with timeouts of its own, and writers only check it as they start: a
//! heavy migration applied by every new writer under the service's 5 s lock timeout would
//! crash-loop them. A schema newer than the writer is fine (migrations only ever add, so the
//! replicas of the previous release keep running during a rollout); an older one, or one
//! whose migration differs from the writer's own, stops the writer with what to do.

use std::time::Duration;

use anyhow::Context as _;
use sqlx::migrate::Migrator;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions as _, PgConnection};

/// A migration as the database recorded it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    pub version: i64,
    pub checksum: Vec<u8>,
}

/// How a database's schema stands to the migrations this writer carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemaState {
    /// Every migration of the writer is applied (later ones may be too).
    Current,
    /// These migrations of the writer are not applied, by version and description.
    Behind { missing: Vec<(i64, String)> },
    /// The database applied this version from another text than the writer's.
    Altered { version: i64, description: String },
}

impl SchemaState {
    /// Compares the writer's migrations with what the database applied.
    pub fn of(migrator: &Migrator, applied: &[Applied]) -> Self {
        let mut missing = Vec::new();
        for migration in migrator
            .iter()
            .filter(|m| m.migration_type.is_up_migration())
        {
            match applied.iter().find(|a| a.version == migration.version) {
                None => missing.push((migration.version, migration.description.to_string())),
                Some(done) if done.checksum != migration.checksum.as_ref() => {
                    return Self::Altered {
                        version: migration.version,
                        description: migration.description.to_string(),
                    }
                }
                Some(_) => {}
            }
        }
        if missing.is_empty() {
            Self::Current
        } else {
            Self::Behind { missing }
        }
    }

    /// Why a writer cannot start on this schema, in words an operator acts on; none when it can.
    pub fn refusal(&self) -> Option<String> {
        match self {
            Self::Current => None,
            Self::Behind { missing } => {
                let names: Vec<String> = missing
                    .iter()
                    .map(|(version, description)| format!("{version} {description}"))
                    .collect();
                Some(format!(
                    "the database schema is older than this contact-writer: migrations {} are not \
                     applied; run `contact-writer migrate` first (or start with \
                     WRITER_MIGRATIONS=apply)",
                    names.join(", ")
                ))
            }
            Self::Altered {
                version,
                description,
            } => Some(format!(
                "the database applied migration {version} ({description}) from another text than \
                 this contact-writer's: the schema and the release do not belong together"
            )),
        }
    }
}

/// The migrations the database recorded as applied (none on a database never migrated).
pub async fn applied(connection: &mut PgConnection) -> sqlx::Result<Vec<Applied>> {
    let exists: bool = sqlx::query_scalar("SELECT to_regclass('_sqlx_migrations') IS NOT NULL")
        .fetch_one(&mut *connection)
        .await?;
    if !exists {
        return Ok(Vec::new());
    }
    let rows: Vec<(i64, Vec<u8>)> = sqlx::query_as(
        "SELECT version, checksum FROM _sqlx_migrations WHERE success ORDER BY version",
    )
    .fetch_all(connection)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(version, checksum)| Applied { version, checksum })
        .collect())
}

/// How long `migrate` lets one statement wait for a lock, and run.
#[derive(Debug, Clone, Copy)]
pub struct MigrateTimeouts {
    pub lock: Duration,
    pub statement: Duration,
}

/// Applies the migrations not yet applied, on one connection of its own, and returns the
/// versions it applied. Concurrent runs wait for each other (sqlx takes an advisory lock).
pub async fn migrate(
    migrator: &Migrator,
    database: PgConnectOptions,
    timeouts: MigrateTimeouts,
) -> anyhow::Result<Vec<i64>> {
    let millis = |duration: Duration| format!("{}ms", duration.as_millis());
    let mut connection = database
        .options([
            ("lock_timeout", millis(timeouts.lock)),
            ("statement_timeout", millis(timeouts.statement)),
        ])
        .connect()
        .await
        .context("connecting to PostgreSQL")?;
    let before = applied(&mut connection).await?;
    migrator
        .run(&mut connection)
        .await
        .context("applying the database migrations")?;
    let after = applied(&mut connection).await?;
    Ok(after
        .into_iter()
        .map(|migration| migration.version)
        .filter(|version| !before.iter().any(|done| done.version == *version))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_applied() -> Vec<Applied> {
        crate::MIGRATOR
            .iter()
            .map(|migration| Applied {
                version: migration.version,
                checksum: migration.checksum.to_vec(),
            })
            .collect()
    }

    #[test]
    fn every_migration_applied_is_current_even_with_later_ones_beside() {
        let mut applied = all_applied();
        assert_eq!(
            SchemaState::of(&crate::MIGRATOR, &applied),
            SchemaState::Current
        );
        applied.push(Applied {
            version: 99_999,
            checksum: vec![1, 2, 3],
        });
        assert_eq!(
            SchemaState::of(&crate::MIGRATOR, &applied),
            SchemaState::Current
        );
        assert_eq!(SchemaState::Current.refusal(), None);
    }

    #[test]
    fn a_missing_migration_is_named_with_what_to_run() {
        let mut applied = all_applied();
        let last = applied.pop().expect("the writer has migrations");
        let state = SchemaState::of(&crate::MIGRATOR, &applied);
        let SchemaState::Behind { missing } = &state else {
            panic!("expected behind, got {state:?}");
        };
        assert_eq!(missing.len(), 1);
        assert_eq!(missing[0].0, last.version);
        let refusal = state.refusal().expect("a refusal");
        assert!(refusal.contains(&last.version.to_string()), "{refusal}");
        assert!(refusal.contains("contact-writer migrate"), "{refusal}");
    }

    #[test]
    fn a_migration_applied_from_another_text_is_refused() {
        let mut applied = all_applied();
        applied[0].checksum = vec![0; 48];
        let state = SchemaState::of(&crate::MIGRATOR, &applied);
        assert!(
            matches!(state, SchemaState::Altered { version, .. } if version == applied[0].version)
        );
        assert!(state.refusal().expect("a refusal").contains("another text"));
    }
}
