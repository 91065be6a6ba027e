//! What every answer carries and every write must show: the page is never framed, runs no
//! script but its own, and takes a form (an upload, an import, a cancel, an undo) only from
//! its own pages.
//!
//! Cross-site request forgery is refused from the browser's own account of where a request
//! comes from: `Sec-Fetch-Site` (every current browser sends it), else `Origin`, which must
//! name the host the request was sent to. A request with neither is not from a browser's
//! form on another site (browsers send `Origin` on every cross-site POST), so it passes: the
//! CLI and scripts do not use these pages anyway.

use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::PageError;

pub async fn same_origin_writes(request: Request, next: Next) -> Response {
    if is_write(request.method()) && !from_own_pages(request.headers()) {
        tracing::warn!(path = %request.uri().path(), "refused a write from another site");
        let refusal = PageError::BadInput(
            "This form was sent from another site, so it was not carried out.".to_string(),
        );
        let mut response = refusal.into_response();
        *response.status_mut() = StatusCode::FORBIDDEN;
        return response;
    }
    next.run(request).await
}

fn is_write(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// True unless the browser says the request comes from another site.
pub fn from_own_pages(headers: &HeaderMap) -> bool {
    if let Some(site) = headers.get("sec-fetch-site") {
        // "none": typed in the address bar or a bookmark.
        return matches!(site.as_bytes(), b"same-origin" | b"none");
    }
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, rest)| rest);
    matches!((origin_host, host), (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host))
}

pub async fn security_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    let set = |headers: &mut HeaderMap, name: &'static str, value: &'static str| {
        headers.insert(name, HeaderValue::from_static(value));
    };
    set(
        headers,
        "content-security-policy",
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    );
    set(headers, "x-content-type-options", "nosniff");
    // A draft's address carries its token: it must not leave in a Referer.
    set(headers, "referrer-policy", "no-referrer");
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, HeaderValue::from_static(value));
        }
        headers
    }

    #[test]
    fn the_browsers_fetch_metadata_decides_first() {
        assert!(from_own_pages(&headers(&[(
            "sec-fetch-site",
            "same-origin"
        )])));
        assert!(from_own_pages(&headers(&[("sec-fetch-site", "none")])));
        assert!(!from_own_pages(&headers(&[(
            "sec-fetch-site",
            "cross-site"
        )])));
        assert!(!from_own_pages(&headers(&[(
            "sec-fetch-site",
            "same-site"
        )])));
        // A matching Origin does not overrule the browser's own account.
        assert!(!from_own_pages(&headers(&[
            ("sec-fetch-site", "cross-site"),
            ("origin", "http://web:8080"),
            ("host", "web:8080"),
        ])));
    }

    #[test]
    fn without_fetch_metadata_the_origin_must_be_the_host() {
        assert!(from_own_pages(&headers(&[
            ("origin", "http://web:8080"),
            ("host", "web:8080")
        ])));
        assert!(!from_own_pages(&headers(&[
            ("origin", "https://evil.example"),
            ("host", "web:8080")
        ])));
        assert!(!from_own_pages(&headers(&[
            ("origin", "null"),
            ("host", "web:8080")
        ])));
        assert!(from_own_pages(&headers(&[("host", "web:8080")])));
    }
}
