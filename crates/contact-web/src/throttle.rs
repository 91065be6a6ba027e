//! How many login attempts the page takes before it stops trying for a while: per user name,
//! so that nobody's password is guessed at, and per client address, so that one client
//! cannot try every name. An attempt counts from the moment it begins, before its password
//! is checked, so that attempts sent at once cannot slip past the count together; a login
//! that succeeds gives its attempt back. Kept by each replica in memory: with N replicas
//! behind a balancer a guesser gets at most N times the limit, still a handful an hour.
//!
//! Checking a password is slow on purpose and takes 19 MiB (argon2id), so only a few are
//! checked at once ([`HASHES_AT_ONCE`]): a crowd of logins waits its turn rather than
//! exhausting the replica's memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Attempts a user name takes within the window.
pub const PER_USER: u32 = 5;
/// Attempts one client address takes within the window (several people may share one).
pub const PER_ADDRESS: u32 = 30;
/// How long attempts count.
pub const WINDOW: Duration = Duration::from_secs(15 * 60);
/// Passwords checked at once by one replica.
pub const HASHES_AT_ONCE: usize = 4;
/// Past this many entries the expired ones are dropped; past [`MAX_ENTRIES`] even after that,
/// all are (a flood of names or addresses must not grow memory without bound).
const PRUNE_ABOVE: usize = 10_000;
const MAX_ENTRIES: usize = 100_000;

pub struct LoginThrottle {
    attempts: Mutex<HashMap<String, Attempts>>,
    /// A permit per password being checked.
    pub hashing: tokio::sync::Semaphore,
}

impl Default for LoginThrottle {
    fn default() -> Self {
        Self {
            attempts: Mutex::new(HashMap::new()),
            hashing: tokio::sync::Semaphore::new(HASHES_AT_ONCE),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Attempts {
    first: Instant,
    count: u32,
}

impl LoginThrottle {
    /// Counts an attempt of `user` from `address`, or says how long until one is taken.
    pub fn begin(&self, user: &str, address: &str, now: Instant) -> Result<(), Duration> {
        let mut attempts = self.attempts.lock().expect("never poisoned");
        let keys = [
            (user_key(user), PER_USER),
            (address_key(address), PER_ADDRESS),
        ];
        let wait = keys
            .iter()
            .filter_map(|(key, limit)| {
                let entry = attempts.get(key)?;
                let ends = entry.first + WINDOW;
                (entry.count >= *limit && now < ends).then(|| ends - now)
            })
            .max();
        if let Some(wait) = wait {
            return Err(wait);
        }
        if attempts.len() > PRUNE_ABOVE {
            attempts.retain(|_, entry| now < entry.first + WINDOW);
            if attempts.len() > MAX_ENTRIES {
                tracing::warn!(
                    entries = attempts.len(),
                    "login attempts forgotten: too many names or addresses tried"
                );
                attempts.clear();
            }
        }
        for (key, _) in keys {
            let entry = attempts.entry(key).or_insert(Attempts {
                first: now,
                count: 0,
            });
            if now >= entry.first + WINDOW {
                *entry = Attempts {
                    first: now,
                    count: 0,
                };
            }
            entry.count += 1;
        }
        Ok(())
    }

    /// `user` logged in: her name's attempts are forgotten, and her address gets this one
    /// back.
    pub fn succeeded(&self, user: &str, address: &str) {
        let mut attempts = self.attempts.lock().expect("never poisoned");
        attempts.remove(&user_key(user));
        if let Some(entry) = attempts.get_mut(&address_key(address)) {
            entry.count = entry.count.saturating_sub(1);
        }
    }
}

/// A name as the users file would hold it, and never longer than one could be: whatever is
/// typed, an entry stays small.
fn user_key(user: &str) -> String {
    let name: String = user.trim().to_lowercase().chars().take(64).collect();
    format!("user {name}")
}

fn address_key(address: &str) -> String {
    format!("address {address}")
}

/// The address attempts are counted by: an IPv4 address, or the /64 network of an IPv6 one
/// (one client holds a whole /64, and would otherwise get a new count with each address).
pub fn client_address(ip: std::net::IpAddr) -> String {
    match ip {
        std::net::IpAddr::V4(ip) => ip.to_string(),
        std::net::IpAddr::V6(ip) => match ip.to_ipv4_mapped() {
            Some(ip) => ip.to_string(),
            None => {
                let [a, b, c, d, ..] = ip.segments();
                format!("{a:x}:{b:x}:{c:x}:{d:x}::/64")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_is_held_back_after_its_attempts_until_the_window_ends() {
        let throttle = LoginThrottle::default();
        let start = Instant::now();
        for attempt in 0..PER_USER {
            assert_eq!(
                throttle.begin("anna", "10.0.0.1", start),
                Ok(()),
                "attempt {attempt}"
            );
        }
        assert_eq!(
            throttle.begin("Anna", "10.0.0.2", start),
            Err(WINDOW),
            "any case, any address"
        );
        let later = start + Duration::from_secs(60);
        assert_eq!(
            throttle.begin("anna", "10.0.0.1", later),
            Err(WINDOW - Duration::from_secs(60))
        );
        assert_eq!(
            throttle.begin("ewa", "10.0.0.2", later),
            Ok(()),
            "another name is not held"
        );
        assert_eq!(throttle.begin("anna", "10.0.0.1", start + WINDOW), Ok(()));
    }

    #[test]
    fn an_address_trying_many_names_is_held_back_too() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for index in 0..PER_ADDRESS {
            assert_eq!(
                throttle.begin(&format!("user{index}"), "10.0.0.9", now),
                Ok(())
            );
        }
        assert!(throttle.begin("someone-new", "10.0.0.9", now).is_err());
        assert_eq!(throttle.begin("someone-new", "10.0.0.8", now), Ok(()));
    }

    #[test]
    fn a_login_gives_its_attempts_back() {
        let throttle = LoginThrottle::default();
        let now = Instant::now();
        for _ in 0..PER_USER {
            throttle.begin("anna", "10.0.0.1", now).expect("taken");
        }
        throttle.succeeded("anna", "10.0.0.1");
        assert_eq!(throttle.begin("anna", "10.0.0.1", now), Ok(()));
        // The address counted five and got one back: 25 more before it is held.
        for index in 0..PER_ADDRESS - 5 {
            throttle
                .begin(&format!("x{index}"), "10.0.0.1", now)
                .expect("taken");
        }
        assert!(throttle.begin("y", "10.0.0.1", now).is_err());
    }

    #[test]
    fn a_long_name_is_counted_by_its_start_and_ipv6_clients_by_their_network() {
        assert_eq!(user_key(&"a".repeat(10_000)).len(), "user ".len() + 64);
        let one: std::net::IpAddr = "2001:db8:1:2:aaaa::1".parse().expect("ip");
        let other: std::net::IpAddr = "2001:db8:1:2:bbbb::9".parse().expect("ip");
        assert_eq!(client_address(one), client_address(other));
        let mapped: std::net::IpAddr = "::ffff:10.0.0.1".parse().expect("ip");
        assert_eq!(client_address(mapped), "10.0.0.1");
    }
}
