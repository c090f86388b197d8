//! The dashboard page at `GET /` and its assets, embedded in the binary: no CDN, nothing to
//! install, works offline. The page holds no data of its own; it reads the JSON API with the
//! same token rules as any client, so the page and its assets are served without a token.
//!
//! Every answer carries a Content-Security-Policy that allows only this server's own scripts,
//! styles and API, and forbids framing: a foreign page can neither embed nor drive it (the API
//! refuses cross-origin calls besides, see [`crate::http`]).

use axum::extract::Path;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::api::error;

/// The page's policy: its own origin only, no inline script, no framing, no plugins.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self' data:; connect-src 'self'; font-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// (name, content type, bytes) of every asset under `/assets/`.
const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/app.js"),
    ),
    (
        "app.css",
        "text/css; charset=utf-8",
        include_bytes!("../web/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../web/favicon.svg"),
    ),
    (
        "uPlot.iife.min.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../web/vendor/uplot/uPlot.iife.min.js"),
    ),
    (
        "uPlot.min.css",
        "text/css; charset=utf-8",
        include_bytes!("../web/vendor/uplot/uPlot.min.css"),
    ),
];

const INDEX: &[u8] = include_bytes!("../web/index.html");

/// `GET /`: the page.
pub async fn index() -> Response {
    page_response("text/html; charset=utf-8", INDEX)
}

/// `GET /assets/{name}`: a script or style of the page.
pub async fn asset(Path(name): Path<String>) -> Response {
    match ASSETS.iter().find(|(n, _, _)| *n == name) {
        Some((_, content_type, bytes)) => page_response(content_type, bytes),
        None => error(StatusCode::NOT_FOUND, format!("no asset named {name:?}")),
    }
}

fn page_response(content_type: &'static str, bytes: &'static [u8]) -> Response {
    let mut response = (StatusCode::OK, bytes).into_response();
    let h = response.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // The assets change with the binary: revalidate rather than keep an old page.
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_asset_the_page_names_is_embedded() {
        let page = std::str::from_utf8(INDEX).unwrap();
        for (name, _, bytes) in ASSETS {
            assert!(!bytes.is_empty(), "{name} is empty");
        }
        for part in page.split("/assets/").skip(1) {
            let name = part.split('"').next().unwrap();
            assert!(
                ASSETS.iter().any(|(n, _, _)| *n == name),
                "the page names {name}, not embedded"
            );
        }
        assert!(
            !page.contains("<script>") && !page.contains(" style="),
            "inline code breaks the policy"
        );
    }
}
