//! A web user's session: who she is and which account she acts as, signed into a cookie with
//! the replicas' shared key, so that any replica serves her next request and none keeps
//! sessions of its own. A session ends when it expires, when she logs out, and at her next
//! request once her password changes or she is removed (it carries a mark of the password
//! she logged in with, checked against the users file every time). Logging out removes the
//! cookie from her browser; a copy taken of it before lasts until it expires, as nothing is
//! kept on the server to revoke it by (a removal or a new password ends it at once).

use axum::http::{header, HeaderMap, HeaderValue};
use contact_contract::web_users::{UserName, WebUser, WebUsers};
use contact_contract::AccountId;
use serde::{Deserialize, Serialize};

use crate::signing::SigningKey;

/// The cookie's name.
/// The cookie's name; `__Host-` makes browsers keep it only as this host set it (Secure,
/// Path=/, no Domain), so that no sibling subdomain can plant a session of its own.
pub const COOKIE: &str = "__Host-ci_session";
/// How long a session lasts from its login: a working day.
pub const LIFETIME_SECONDS: i64 = 12 * 60 * 60;
const PURPOSE: &str = "session";

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    #[serde(rename = "u")]
    user: String,
    #[serde(rename = "a")]
    account: String,
    /// Seconds since the epoch after which the session is over.
    #[serde(rename = "e")]
    expires: i64,
    /// [`WebUser::password_mark`] at login.
    #[serde(rename = "p")]
    password_mark: String,
}

impl Session {
    /// The session of `user`, logged in at `now` (seconds since the epoch).
    pub fn start(user: &WebUser, now: i64) -> Self {
        Self {
            user: user.name.to_string(),
            account: user.account.to_string(),
            expires: now + LIFETIME_SECONDS,
            password_mark: user.password_mark(),
        }
    }

    pub fn user(&self) -> &str {
        &self.user
    }

    /// The `Set-Cookie` value that keeps the session in the browser: sent back only to this
    /// site over HTTPS (or localhost), never to scripts, never with another site's request.
    pub fn cookie(&self, key: &SigningKey) -> HeaderValue {
        let payload = serde_json::to_vec(self).expect("a session always encodes");
        let token = key.seal(PURPOSE, &payload);
        HeaderValue::from_str(&format!(
            "{COOKIE}={token}; Path=/; Max-Age={LIFETIME_SECONDS}; HttpOnly; Secure; SameSite=Strict"
        ))
        .expect("base64url and ASCII attributes")
    }

    /// The `Set-Cookie` value that ends the session in the browser.
    pub fn ended_cookie() -> HeaderValue {
        HeaderValue::from_static(
            "__Host-ci_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Strict",
        )
    }

    /// The session the request's cookie holds, if this deployment signed it and it has not
    /// expired at `now`.
    pub fn from_headers(key: &SigningKey, headers: &HeaderMap, now: i64) -> Option<Self> {
        let token = headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|value| value.to_str().ok())
            .flat_map(|value| value.split(';'))
            .filter_map(|pair| pair.trim().split_once('='))
            .find_map(|(name, value)| (name == COOKIE).then_some(value))?;
        let payload = key.open(PURPOSE, token).ok()?;
        let session: Self = serde_json::from_slice(&payload).ok()?;
        (now < session.expires).then_some(session)
    }

    /// The account the session acts as, while its user is still in `users` with that
    /// account and the password she logged in with; `None` ends the session.
    pub fn account_in(&self, users: &WebUsers) -> Option<AccountId> {
        let user = users.get(&UserName::new(&self.user).ok()?)?;
        (user.account.as_str() == self.account && user.password_mark() == self.password_mark)
            .then(|| user.account.clone())
    }
}

/// Seconds since the epoch, now.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(name: &str, account: &str, hash: &str) -> WebUser {
        WebUser {
            name: UserName::new(name).expect("valid"),
            account: AccountId::new(account).expect("valid"),
            password_hash: format!("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA${hash}"),
        }
    }

    fn users(list: &[WebUser]) -> WebUsers {
        let mut users = WebUsers::default();
        for user in list {
            users.insert(user.clone());
        }
        users
    }

    fn key(fill: u8) -> SigningKey {
        SigningKey::new(vec![fill; 32]).expect("long enough")
    }

    /// The request a browser sends back with the cookie `Set-Cookie` gave it.
    fn request_with(set_cookie: &HeaderValue, other_cookies: &str) -> HeaderMap {
        let pair = set_cookie
            .to_str()
            .expect("ascii")
            .split(';')
            .next()
            .expect("name=value")
            .to_string();
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{other_cookies}{pair}")).expect("ascii"),
        );
        headers
    }

    #[test]
    fn the_cookie_is_kept_from_scripts_and_other_sites() {
        let cookie = Session::start(&user("anna", "acme", "h1"), 1_000).cookie(&key(1));
        let cookie = cookie.to_str().expect("ascii");
        for attribute in ["HttpOnly", "Secure", "SameSite=Strict", "Path=/"] {
            assert!(cookie.contains(attribute), "{cookie} lacks {attribute}");
        }
        assert!(Session::ended_cookie()
            .to_str()
            .expect("ascii")
            .contains("Max-Age=0"));
    }

    #[test]
    fn a_session_comes_back_from_its_cookie_until_it_expires() {
        let anna = user("anna", "acme", "h1");
        let session = Session::start(&anna, 1_000);
        let headers = request_with(&session.cookie(&key(1)), "theme=dark; ");
        assert_eq!(
            Session::from_headers(&key(1), &headers, 1_001),
            Some(session.clone())
        );
        assert_eq!(
            Session::from_headers(&key(1), &headers, 1_000 + LIFETIME_SECONDS),
            None,
            "expired"
        );
        assert_eq!(
            Session::from_headers(&key(2), &headers, 1_001),
            None,
            "other key"
        );
        assert_eq!(
            Session::from_headers(&key(1), &HeaderMap::new(), 1_001),
            None
        );
    }

    #[test]
    fn a_session_acts_as_its_users_account_while_she_and_her_password_stay() {
        let anna = user("anna", "acme", "h1");
        let session = Session::start(&anna, 1_000);
        let acme = AccountId::new("acme").expect("valid");
        assert_eq!(
            session.account_in(&users(std::slice::from_ref(&anna))),
            Some(acme)
        );
        // Removed, given a new password, or moved to another account: the session ends.
        assert_eq!(session.account_in(&users(&[])), None);
        assert_eq!(
            session.account_in(&users(&[user("anna", "acme", "h2")])),
            None
        );
        assert_eq!(
            session.account_in(&users(&[user("anna", "globex", "h1")])),
            None
        );
    }

    #[test]
    fn a_changed_session_is_refused() {
        let session = Session::start(&user("anna", "acme", "h1"), 1_000);
        let forged = Session {
            account: "globex".to_string(),
            ..session.clone()
        };
        // The forged session's payload with the real session's signature.
        let real = session.cookie(&key(1));
        let real = real.to_str().expect("ascii");
        let signature = real.split(['.', ';']).nth(1).expect("signature");
        let payload = serde_json::to_vec(&forged).expect("encodes");
        let token = format!(
            "{}.{signature}",
            base64::Engine::encode(&base64::engine::general_purpose::URL_SAFE_NO_PAD, payload)
        );
        let mut headers = HeaderMap::new();
        headers.insert(
            header::COOKIE,
            HeaderValue::from_str(&format!("{COOKIE}={token}")).expect("ascii"),
        );
        assert_eq!(Session::from_headers(&key(1), &headers, 1_001), None);
    }
}
