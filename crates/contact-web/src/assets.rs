//! The page's stylesheet and script, compiled into the binary and served under a version
//! taken from their content: a new release gets new addresses, so they can be cached forever.

use std::sync::LazyLock;

use sha2::{Digest as _, Sha256};

const STYLESHEET: &str = include_str!("../assets/app.css");
const SCRIPT: &str = include_str!("../assets/app.js");

/// The first hex digits of the assets' SHA-256.
pub static VERSION: LazyLock<String> = LazyLock::new(|| {
    let digest = Sha256::new()
        .chain_update(STYLESHEET)
        .chain_update(SCRIPT)
        .finalize();
    digest[..6]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
});

/// The address of one asset.
pub fn address(name: &str) -> String {
    format!("/assets/{}/{name}", *VERSION)
}

/// An asset's content and type, by its name.
pub fn find(name: &str) -> Option<(&'static str, &'static str)> {
    match name {
        "app.css" => Some((STYLESHEET, "text/css; charset=utf-8")),
        "app.js" => Some((SCRIPT, "text/javascript; charset=utf-8")),
        _ => None,
    }
}
