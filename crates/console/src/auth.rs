//! Who is using the console, and the guard in front of every route.
//!
//! - `console.authentication=none` (the default): every request acts as
//!   `User:ANONYMOUS` (with an authorizer on, it may do what ACLs allow
//!   that principal).
//! - `console.authentication=sasl`: a login with the broker's SASL users
//!   (PLAIN users of the SASL listeners, SCRAM users of the metadata log),
//!   checked as the schema registry checks them. A login makes a session: a
//!   random token in an `HttpOnly; SameSite=Strict` cookie, kept in memory
//!   on this node until `console.session.timeout.ms` without a request or a
//!   logout. Scripts may send HTTP basic credentials to `/api/v1` instead.
//!   Passwords never appear in URLs or logs.
//!
//! Cross-site requests: a state-changing request (not GET/HEAD) that
//! carries an `Origin` (every browser sends it) must come from the
//! console's own origin, so another site cannot drive a logged-in (or
//! unauthenticated) console through the user's browser.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Form, Query, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use base64::Engine;
use maud::html;
use parking_lot::Mutex;
use serde::Deserialize;
use vltava_broker::handlers::Session;
use vltava_security::KafkaPrincipal;

use crate::error::{ApiError, ConsoleError, PageError};
use crate::{Console, Ctx};

/// The session cookie's name.
pub const COOKIE: &str = "vltava_console";
/// Logins a node keeps at most (the oldest is dropped beyond).
const SESSIONS_MAX: usize = 10_000;

struct LoggedIn {
    user: String,
    last_used: Instant,
}

/// The logins of this node.
#[derive(Default)]
pub struct Sessions {
    by_token: Mutex<HashMap<String, LoggedIn>>,
}

impl Sessions {
    fn create(&self, user: &str) -> String {
        let token = format!("{}{}", uuid::Uuid::new_v4().simple(), uuid::Uuid::new_v4().simple());
        let mut sessions = self.by_token.lock();
        if sessions.len() >= SESSIONS_MAX {
            if let Some(oldest) = sessions.iter().min_by_key(|(_, s)| s.last_used).map(|(t, _)| t.clone()) {
                sessions.remove(&oldest);
            }
        }
        sessions.insert(token.clone(), LoggedIn { user: user.to_string(), last_used: Instant::now() });
        token
    }

    /// The user of a live session (and it is used now).
    fn user(&self, token: &str, timeout: Duration) -> Option<String> {
        let mut sessions = self.by_token.lock();
        let now = Instant::now();
        sessions.retain(|_, s| now.duration_since(s.last_used) < timeout);
        let s = sessions.get_mut(token)?;
        s.last_used = now;
        Some(s.user.clone())
    }

    fn remove(&self, token: &str) {
        self.by_token.lock().remove(token);
    }
}

fn cookie_token(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE)
        .map(|(_, v)| v.to_string())
}

fn basic_credentials(headers: &HeaderMap) -> Option<(String, String)> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let b64 = value.strip_prefix("Basic ").or_else(|| value.strip_prefix("basic "))?;
    let raw = base64::engine::general_purpose::STANDARD.decode(b64.trim()).ok()?;
    let (user, password) = String::from_utf8(raw).ok()?.split_once(':').map(|(u, p)| (u.to_string(), p.to_string()))?;
    Some((user, password))
}

/// Whether `user`/`password` are a SASL user's (PBKDF2 runs off the
/// runtime's workers).
async fn valid_login(console: &Console, user: String, password: String) -> bool {
    let Some(broker) = console.broker() else { return false };
    tokio::task::spawn_blocking(move || vltava_broker::schema_registry::auth::is_valid(&broker, &user, &password))
        .await
        .unwrap_or(false)
}

fn is_api(path: &str) -> bool {
    path.starts_with("/api/")
}

/// A state-changing request from another origin than the console's.
fn is_cross_site(method: &Method, headers: &HeaderMap) -> bool {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    let origin_host = origin.split_once("://").map(|(_, rest)| rest).unwrap_or(origin);
    origin == "null" || !origin_host.eq_ignore_ascii_case(host)
}

fn refuse(path: &str, e: ConsoleError) -> Response {
    if is_api(path) {
        ApiError(e).into_response()
    } else {
        PageError(e).into_response()
    }
}

/// In front of every console route except `/assets/*` and `/login`: the
/// broker must be open and the console enabled, cross-site writes are
/// refused, the user is found (or sent to `/login`), and a [`Ctx`] is put in
/// the request's extensions for the handlers.
pub async fn guard(State(console): State<Arc<Console>>, mut req: Request, next: Next) -> Response {
    let path = req.uri().path().to_string();
    if path.starts_with("/assets/") {
        return next.run(req).await;
    }
    let Some(broker) = console.broker() else {
        return refuse(&path, ConsoleError::unavailable("the broker is starting (recovering its logs)"));
    };
    if !broker.config.console_enabled {
        return refuse(&path, ConsoleError::not_found("the console is disabled (console.enabled=false)"));
    }
    if is_cross_site(req.method(), req.headers()) {
        return refuse(&path, ConsoleError::forbidden("cross-site request refused"));
    }
    if path == "/login" {
        return next.run(req).await;
    }
    let user = if broker.config.console_sasl_auth {
        let timeout = Duration::from_millis(broker.config.console_session_timeout_ms);
        let from_cookie = cookie_token(req.headers()).and_then(|t| console.sessions.user(&t, timeout));
        let user = match from_cookie {
            Some(user) => Some(user),
            None => match basic_credentials(req.headers()).filter(|_| is_api(&path)) {
                Some((user, password)) => valid_login(&console, user.clone(), password).await.then_some(user),
                None => None,
            },
        };
        match user {
            Some(user) => Some(user),
            None if is_api(&path) => {
                let mut response =
                    ApiError(ConsoleError::new(StatusCode::UNAUTHORIZED, "log in first")).into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Basic realm=\"vltava console\""),
                );
                return response;
            }
            None => {
                let next_path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                return Redirect::to(&format!("/login?next={}", crate::layout::url_encode(next_path))).into_response();
            }
        }
    } else {
        None
    };
    let peer = req
        .extensions()
        .get::<ConnectInfo<vltava_broker::admin::PeerAddr>>()
        .map(|c| c.0 .0)
        .unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 0)));
    let principal = match &user {
        Some(name) => KafkaPrincipal::user(name),
        None => KafkaPrincipal::anonymous(),
    };
    let listener = broker.config.listeners.first().map(|l| l.name.as_str()).unwrap_or("PLAINTEXT");
    let session = Session {
        peer,
        client_id: crate::kafka::CLIENT_ID.to_string(),
        listener: Arc::from(listener),
        principal: Arc::new(principal),
    };
    req.extensions_mut().insert(Ctx { console: console.clone(), broker, session, user });
    next.run(req).await
}

#[derive(Deserialize)]
pub struct LoginQuery {
    next: Option<String>,
    failed: Option<String>,
}

#[derive(Deserialize)]
pub struct LoginForm {
    username: String,
    password: String,
    next: Option<String>,
}

/// Only a path of this site (no `//host`, no scheme) is followed after a login.
fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n) if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') => n.to_string(),
        _ => "/".to_string(),
    }
}

/// `GET /login`: the login form.
pub async fn login_page(State(console): State<Arc<Console>>, Query(q): Query<LoginQuery>) -> Response {
    let sasl = console.broker().is_some_and(|b| b.config.console_sasl_auth);
    let next = safe_next(q.next.as_deref());
    let body = html! {
        @if !sasl {
            p { "This console needs no login (" code { "console.authentication=none" } ")." }
            p { a href=(next) { "Continue" } }
        } @else {
            form.login method="post" action="/login" {
                @if q.failed.is_some() {
                    p.error role="alert" { "Wrong user name or password." }
                }
                input type="hidden" name="next" value=(next);
                label for="username" { "User" }
                input #username name="username" autocomplete="username" required autofocus;
                label for="password" { "Password" }
                input #password name="password" type="password" autocomplete="current-password" required;
                button type="submit" { "Log in" }
            }
        }
    };
    crate::layout::bare_page("Log in", body).into_response()
}

/// `POST /login`: checks the user and sets the session cookie.
pub async fn login(State(console): State<Arc<Console>>, Form(form): Form<LoginForm>) -> Response {
    let next = safe_next(form.next.as_deref());
    if !valid_login(&console, form.username.clone(), form.password).await {
        tracing::info!(user = %form.username, "console login failed");
        return Redirect::to(&format!("/login?failed=1&next={}", crate::layout::url_encode(&next))).into_response();
    }
    let token = console.sessions.create(&form.username);
    let cookie = format!("{COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict");
    ([(header::SET_COOKIE, cookie)], Redirect::to(&next)).into_response()
}

/// `POST /logout`: ends the session.
pub async fn logout(State(console): State<Arc<Console>>, headers: HeaderMap) -> Response {
    if let Some(token) = cookie_token(&headers) {
        console.sessions.remove(&token);
    }
    let cookie = format!("{COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    ([(header::SET_COOKIE, cookie)], Redirect::to("/login")).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_same_origin_writes_pass() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, "127.0.0.1:9644".parse().unwrap());
        assert!(!is_cross_site(&Method::POST, &h), "curl sends no Origin");
        h.insert(header::ORIGIN, "http://127.0.0.1:9644".parse().unwrap());
        assert!(!is_cross_site(&Method::POST, &h));
        h.insert(header::ORIGIN, "http://evil.example".parse().unwrap());
        assert!(is_cross_site(&Method::POST, &h));
        assert!(!is_cross_site(&Method::GET, &h));
        h.insert(header::ORIGIN, "null".parse().unwrap());
        assert!(is_cross_site(&Method::DELETE, &h));
    }

    #[test]
    fn a_login_follows_only_local_paths() {
        assert_eq!(safe_next(Some("/topics?x=1")), "/topics?x=1");
        assert_eq!(safe_next(Some("//evil.example/")), "/");
        assert_eq!(safe_next(Some("https://evil.example/")), "/");
        assert_eq!(safe_next(None), "/");
    }

    #[test]
    fn sessions_expire_when_idle() {
        let s = Sessions::default();
        let t = s.create("alice");
        assert_eq!(s.user(&t, Duration::from_secs(60)).as_deref(), Some("alice"));
        assert_eq!(s.user(&t, Duration::ZERO), None);
        assert_eq!(s.user("nope", Duration::from_secs(60)), None);
    }
}
