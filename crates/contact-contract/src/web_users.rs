//! Who may log in to the import page, and as which account: the file `contact-import-admin
//! web-user` writes into the deployment's folder and every replica of `contact-web` reads.
//!
//! ```text
//! # contact-import web users: name, account, argon2id hash of the password
//! anna acme $argon2id$v=19$m=19456,t=2,p=1$...
//! ```
//!
//! One line a user, in name order. A user acts as exactly one account: the page connects to
//! NATS with that account's tenant credentials (`tenants/ACCOUNT.creds` beside this file),
//! so the server itself refuses whatever lies outside it. Passwords are kept only as argon2id
//! hashes (the `web-users` feature hashes and verifies them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::AccountId;

/// The file's name in the deployment's folder.
pub const FILE_NAME: &str = "web-users";
/// Where a tenant's credentials are in the deployment's folder.
pub const TENANTS_FOLDER: &str = "tenants";
/// A password shorter than this is refused when a user is added.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// The tenant credentials of `account` in the deployment's folder `dir`.
pub fn tenant_creds(dir: &Path, account: &AccountId) -> PathBuf {
    tenant_creds_in(&dir.join(TENANTS_FOLDER), account)
}

/// The tenant credentials of `account` in a folder of tenants' credentials (the deployment's
/// `tenants/`, or wherever they are mounted).
pub fn tenant_creds_in(tenants: &Path, account: &AccountId) -> PathBuf {
    tenants.join(format!("{account}.creds"))
}

/// One person who may log in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebUser {
    pub name: UserName,
    pub account: AccountId,
    /// The argon2id hash of the password, in the PHC string format.
    pub password_hash: String,
}

#[cfg(feature = "web-users")]
impl WebUser {
    /// A short mark of the password this user has now, for a session to carry: a session
    /// made before the password changed (or the user was removed and added again) no longer
    /// matches, and so ends. It tells nothing of the password (a digest of a salted hash).
    pub fn password_mark(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.password_hash.as_bytes());
        digest[..8]
            .iter()
            .map(|byte| format!("{byte:02x}"))
            .collect()
    }
}

/// A user's name: 1 to 64 of `a-z 0-9 . _ @ + -`, lower case (an email address fits), so
/// that it is one token on its line and one person whatever case she types.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UserName(String);

impl UserName {
    pub fn new(name: &str) -> Result<Self, String> {
        let name = name.trim().to_lowercase();
        let allowed = |c: char| c.is_ascii_alphanumeric() || "._@+-".contains(c);
        if name.is_empty() || name.chars().count() > 64 || !name.chars().all(allowed) {
            return Err(format!(
                "{name:?} is not a user name: use 1 to 64 letters, digits and . _ @ + -"
            ));
        }
        Ok(Self(name))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for UserName {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.write_str(&self.0)
    }
}

/// Every web user of a deployment, by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WebUsers {
    users: BTreeMap<UserName, WebUser>,
}

impl WebUsers {
    /// Reads the file's text; a line that is not a user is an error naming its line.
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut users = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let at = |problem: String| format!("line {}: {problem}", index + 1);
            let mut fields = line.split_whitespace();
            let (Some(name), Some(account), Some(password_hash), None) =
                (fields.next(), fields.next(), fields.next(), fields.next())
            else {
                return Err(at(
                    "expected a name, an account and a password hash".to_string()
                ));
            };
            if !password_hash.starts_with("$argon2id$") {
                return Err(at("the password hash is not an argon2id hash".to_string()));
            }
            let name = UserName::new(name).map_err(at)?;
            let account = AccountId::new(account).map_err(|error| at(error.to_string()))?;
            let user = WebUser {
                name: name.clone(),
                account,
                password_hash: password_hash.to_string(),
            };
            if users.insert(name.clone(), user).is_some() {
                return Err(at(format!("{name} is listed twice")));
            }
        }
        Ok(Self { users })
    }

    /// The file's text, as [`WebUsers::parse`] reads it.
    pub fn render(&self) -> String {
        let mut text = String::from(
            "# contact-import web users: name, account, argon2id hash of the password\n",
        );
        for user in self.users.values() {
            text.push_str(&format!(
                "{} {} {}\n",
                user.name, user.account, user.password_hash
            ));
        }
        text
    }

    pub fn get(&self, name: &UserName) -> Option<&WebUser> {
        self.users.get(name)
    }

    /// Adds the user, or replaces the one of that name (a new password, another account).
    pub fn insert(&mut self, user: WebUser) {
        self.users.insert(user.name.clone(), user);
    }

    pub fn remove(&mut self, name: &UserName) -> Option<WebUser> {
        self.users.remove(name)
    }

    /// Removes every user of `account`, returning how many there were.
    pub fn remove_account(&mut self, account: &AccountId) -> usize {
        let before = self.users.len();
        self.users.retain(|_, user| &user.account != account);
        before - self.users.len()
    }

    pub fn iter(&self) -> impl Iterator<Item = &WebUser> {
        self.users.values()
    }
}

#[cfg(feature = "web-users")]
pub use passwords::{hash_password, new_password, verify_password};

#[cfg(feature = "web-users")]
mod passwords {
    use argon2::password_hash::rand_core::{OsRng, RngCore as _};
    use argon2::password_hash::SaltString;
    use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _};
    use argon2::Argon2;
    use base64::Engine as _;

    /// The password's argon2id hash with a fresh salt, with the parameters OWASP recommends
    /// (19 MiB, 2 passes, 1 lane), slow on purpose, so a stolen file is slow to guess at.
    pub fn hash_password(password: &str) -> Result<String, String> {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default()
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|error| format!("hashing the password: {error}"))
    }

    /// True when `password` is the one `hash` was made from. The comparison is the
    /// library's, in constant time.
    pub fn verify_password(hash: &str, password: &str) -> bool {
        PasswordHash::new(hash).is_ok_and(|hash| {
            Argon2::default()
                .verify_password(password.as_bytes(), &hash)
                .is_ok()
        })
    }

    /// A new password of 20 characters from the operating system's generator (120 bits).
    pub fn new_password() -> String {
        let mut bytes = [0u8; 15];
        OsRng.fill_bytes(&mut bytes);
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, account: &str) -> WebUser {
        WebUser {
            name: UserName::new(name).expect("a valid name"),
            account: AccountId::new(account).expect("a valid account"),
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${name}"),
        }
    }

    #[test]
    fn the_file_reads_back_what_was_written() {
        let mut users = WebUsers::default();
        users.insert(user("zofia@acme.pl", "acme"));
        users.insert(user("anna", "globex"));
        let text = users.render();
        // Name order, one line each after the heading.
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert!(lines[0].starts_with("anna globex $argon2id$"));
        assert!(lines[1].starts_with("zofia@acme.pl acme $argon2id$"));
        assert_eq!(WebUsers::parse(&text), Ok(users));
    }

    #[test]
    fn names_are_one_lower_case_token() {
        assert_eq!(
            UserName::new(" Anna@Acme.PL ").map(|name| name.0),
            Ok("anna@acme.pl".to_string())
        );
        for bad in ["", "anna kowalska", "anna\tx", "a:b", &"a".repeat(65)] {
            assert!(UserName::new(bad).is_err(), "{bad:?} was taken");
        }
    }

    #[test]
    fn a_bad_line_is_named() {
        let error = WebUsers::parse("# heading\nanna acme\n").expect_err("two fields");
        assert!(error.starts_with("line 2:"), "{error}");
        let error = WebUsers::parse("anna acme plaintext\n").expect_err("not a hash");
        assert!(error.contains("argon2id"), "{error}");
        let twice = format!(
            "{}{}",
            WebUsers::parse("")
                .map(|users| users.render())
                .unwrap_or_default(),
            "anna acme $argon2id$x\nANNA globex $argon2id$y\n"
        );
        let error = WebUsers::parse(&twice).expect_err("listed twice");
        assert!(error.contains("twice"), "{error}");
    }

    #[test]
    fn removing_an_account_removes_its_users_only() {
        let mut users = WebUsers::default();
        users.insert(user("anna", "acme"));
        users.insert(user("ewa", "acme"));
        users.insert(user("jan", "globex"));
        assert_eq!(
            users.remove_account(&AccountId::new("acme").expect("valid")),
            2
        );
        let left: Vec<&str> = users.iter().map(|user| user.name.as_str()).collect();
        assert_eq!(left, ["jan"]);
    }

    #[cfg(feature = "web-users")]
    #[test]
    fn the_password_mark_changes_with_the_password() {
        let before = user("anna", "acme");
        let mut after = before.clone();
        after.password_hash.push('x');
        assert_eq!(before.password_mark(), before.clone().password_mark());
        assert_ne!(before.password_mark(), after.password_mark());
    }

    #[cfg(feature = "web-users")]
    #[test]
    fn a_hashed_password_verifies_and_another_does_not() {
        let hash = hash_password("correct horse battery").expect("hashes");
        assert!(hash.starts_with("$argon2id$"));
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batterY"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert_ne!(
            hash,
            hash_password("correct horse battery").expect("hashes")
        );
        assert_eq!(new_password().len(), 20);
        assert_ne!(new_password(), new_password());
    }
}
