//! The console's static files, embedded in the binary at build time (no
//! CDN, works offline): `assets/*` of this crate, served at `/assets/NAME`.
//! uPlot (MIT, `assets/uPlot.LICENSE`) is vendored as its npm release's
//! minified files; nothing here needs Node to build.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

/// (name, content type, bytes). A page's own script or stylesheet is added
/// here and linked with [`url`].
const FILES: &[(&str, &str, &[u8])] = &[
    ("console.css", "text/css; charset=utf-8", include_bytes!("../assets/console.css")),
    ("console.js", "text/javascript; charset=utf-8", include_bytes!("../assets/console.js")),
    ("messages.js", "text/javascript; charset=utf-8", include_bytes!("../assets/messages.js")),
    ("messages.css", "text/css; charset=utf-8", include_bytes!("../assets/messages.css")),
    ("uPlot.iife.min.js", "text/javascript; charset=utf-8", include_bytes!("../assets/uPlot.iife.min.js")),
    ("uPlot.min.css", "text/css; charset=utf-8", include_bytes!("../assets/uPlot.min.css")),
    ("topics.css", "text/css; charset=utf-8", include_bytes!("../assets/topics.css")),
];

/// A fingerprint of all the files: part of their URLs, so a new build's
/// files are never mixed with a browser's cached old ones.
fn fingerprint() -> &'static str {
    static HASH: OnceLock<String> = OnceLock::new();
    HASH.get_or_init(|| {
        // FNV-1a over every file
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for (_, _, bytes) in FILES {
            for b in *bytes {
                h ^= u64::from(*b);
                h = h.wrapping_mul(0x0100_0000_01b3);
            }
        }
        format!("{h:016x}")
    })
}

/// The URL of asset `name`.
pub fn url(name: &str) -> String {
    format!("/assets/{name}?v={}", fingerprint())
}

/// `GET /assets/{name}`.
pub async fn serve(Path(name): Path<String>, headers: HeaderMap) -> Response {
    let Some((_, content_type, bytes)) = FILES.iter().find(|(n, _, _)| *n == name) else {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    };
    let etag = format!("\"{}\"", fingerprint());
    if headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()) == Some(etag.as_str()) {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    (
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CACHE_CONTROL, "public, max-age=86400".to_string()),
            (header::ETAG, etag),
        ],
        *bytes,
    )
        .into_response()
}
