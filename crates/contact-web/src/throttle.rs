//! How many wrong passwords the login takes before it stops trying for a while: per user
//! name, so that nobody's password is guessed at, and per client address, so that one
//! client cannot try every name. Kept by each replica in memory: with N replicas behind a
//! balancer a guesser gets at most N times the limit, still a handful an hour.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Failures a user name takes within the window.
pub const PER_USER: u32 = 5;
/// Failures one client address takes within the window (several people may share one).
pub const PER_ADDRESS: u32 = 30;
/// How long failures count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Past this many entries, the expired ones are dropped, so that memory stays bounded
/// whatever names are tried.
const PRUNE_ABOVE: usize = 10_000;

#[derive(Default)]
pub struct LoginThrottle {
    failures: Mutex<HashMap<String, Failures>>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    first: Instant,
    count: u32,
}

impl LoginThrottle {
    /// How long until `user` from `address` may try again; `None` when she may now.
    pub fn wait(&self, user: &str, address: &str, now: Instant) -> Option<Duration> {
        let failures = self.failures.lock().expect("never poisoned");
        [
            (user_key(user), PER_USER),
            (address_key(address), PER_ADDRESS),
        ]
        .into_iter()
        .filter_map(|(key, limit)| {
            let entry = failures.get(&key)?;
            let ends = entry.first + WINDOW;
            (entry.count >= limit && now < ends).then(|| ends - now)
        })
        .max()
    }

    /// A wrong password for `user` from `address`.
    pub fn failed(&self, user: &str, address: &str, now: Instant) {
        let mut failures = self.failures.lock().expect("never poisoned");
        if failures.len() > PRUNE_ABOVE {
            failures.retain(|_, entry| now < entry.first + WINDOW);
        }
        for key in [user_key(user), address_key(address)] {
            let entry = failures.entry(key).or_insert(Failures {
                first: now,
                count: 0,
            });
            if now >= entry.first + WINDOW {
                *entry = Failures {
                    first: now,
                    count: 0,
                };
            }
            entry.count += 1;
        }
    }

    /// `user` logged in: her name's failures are forgotten (her address's still count).
    pub fn succeeded(&self, user: &str) {
        self.failures
            .lock()
            .expect("never poisoned")
            .remove(&user_key(user));
    }
}

fn user_key(user: &str) -> String {
    format!("user {}", user.trim().to_lowercase())
}

fn address_key(address: &str) -> String {
    format!("address {address}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_held_back_after_its_failures_until_the_window_ends() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for attempt in 0..PER_USER {
            assert_eq!(
                throttle.wait("anna", "10.0.0.1", start),
                None,
                "attempt {attempt}"
            );
            throttle.failed("anna", "10.0.0.1", start);
        }
        assert_eq!(
            throttle.wait("Anna", "10.0.0.2", start),
            Some(WINDOW),
            "any case, any address"
        );
        let later = start + Duration::from_secs(60);
        assert_eq!(
            throttle.wait("anna", "10.0.0.1", later),
            Some(WINDOW - Duration::from_secs(60))
        );
        assert_eq!(
            throttle.wait("ewa", "10.0.0.2", later),
            None,
            "another name is not held"
        );
        assert_eq!(throttle.wait("anna", "10.0.0.1", start + WINDOW), None);
    }

    #[test]
    fn an_address_trying_many_names_is_held_back_too() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for index in 0..PER_ADDRESS {
            throttle.failed(&format!("user{index}"), "10.0.0.9", now);
        }
        assert!(throttle.wait("someone-new", "10.0.0.9", now).is_some());
        assert_eq!(throttle.wait("someone-new", "10.0.0.8", now), None);
    }

    #[test]
    fn a_login_forgets_the_names_failures() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..PER_USER - 1 {
            throttle.failed("anna", "10.0.0.1", now);
        }
        throttle.succeeded("anna");
        throttle.failed("anna", "10.0.0.1", now);
        assert_eq!(throttle.wait("anna", "10.0.0.1", now), None);
    }
}
