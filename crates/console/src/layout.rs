//! The page shell every console page shares (navigation, the user, a skip
//! link), the error and login pages, and small formatting helpers.
//! Server-rendered with `maud` (escaped by default); `assets/console.js`
//! adds sorting, filtering, charts and live updates where JavaScript runs.

use axum::http::StatusCode;
use maud::{html, Markup, DOCTYPE};

use crate::Ctx;

/// The sections of the navigation: (path, label).
pub const NAV: &[(&str, &str)] = &[
    ("/", "Overview"),
    ("/topics", "Topics"),
    ("/catalog", "Catalog"),
    ("/groups", "Groups"),
    ("/brokers", "Brokers"),
    ("/schemas", "Schemas"),
    ("/acls", "ACLs"),
    ("/users", "Users"),
    ("/quotas", "Quotas"),
];

fn head(title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            title { (title) " · vltava" }
            link rel="stylesheet" href=(crate::assets::url("console.css"));
            link rel="stylesheet" href=(crate::assets::url("uPlot.min.css"));
            script src=(crate::assets::url("uPlot.iife.min.js")) defer {}
            script src=(crate::assets::url("console.js")) defer {}
        }
    }
}

/// A console page: `title` (the page's `h1` and the window title), the
/// navigation with `section` (a path of [`NAV`]) marked current, and `body`.
pub fn page(ctx: &Ctx, section: &str, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "vltava" }
                    nav aria-label="Sections" {
                        ul {
                            @for (path, label) in NAV {
                                li {
                                    @if *path == section {
                                        a href=(path) aria-current="page" { (label) }
                                    } @else {
                                        a href=(path) { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.who {
                        @if let Some(user) = &ctx.user {
                            span.user { (user) }
                            form method="post" action="/logout" {
                                button type="submit" { "Log out" }
                            }
                        } @else {
                            span.user title="console.authentication=none" { (ctx.session.principal.to_string()) }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    }
}

/// A page without navigation (login).
pub fn bare_page(title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            (head(title))
            body.bare {
                main #main {
                    h1 { "vltava · " (title) }
                    (body)
                }
            }
        }
    }
}

/// The page of an error: its status, what went wrong, a way back.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> Markup {
    bare_page(
        title,
        html! {
            p.error role="alert" { (message) }
            p.status { "HTTP " (status.as_u16()) }
            p { a href="/" { "Back to the overview" } }
        },
    )
}

/// `value` percent-encoded for a URL's path segment or query value.
pub fn url_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' | b'/' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// `bytes` for a person: `1.5 MiB`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["B", "KiB", "MiB", "GiB", "TiB", "PiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// A timestamp in milliseconds since the epoch as UTC
/// (`2026-11-30 17:05:03.120Z`); negative: `-`.
pub fn utc_millis(ms: i64) -> String {
    if ms < 0 {
        return "-".into();
    }
    let secs = ms.div_euclid(1000);
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    // civil from days (Howard Hinnant's algorithm)
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(utc_millis(0), "1970-01-01 00:00:00.000Z");
        assert_eq!(utc_millis(1_796_000_000_123), "2026-11-30 00:53:20.123Z");
        assert_eq!(utc_millis(-1), "-");
        assert_eq!(url_encode("a b/c?d=é"), "a%20b/c%3Fd%3D%C3%A9");
    }
}
