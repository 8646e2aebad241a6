//! The web console and topic portal (`vltava-console`), served by the
//! broker's admin listener (`admin.listeners`, default
//! `http://127.0.0.1:9644`): server-rendered pages for people and the JSON
//! API under `/api/v1` they are built on, for scripts.
//!
//! - [`auth`]: the guard in front of every route (login with the SASL users
//!   under `console.authentication=sasl`, cross-site writes refused) and
//!   the [`Ctx`] it gives handlers: the broker and the user's session.
//! - [`kafka`]: Kafka requests as the user, through the broker's own
//!   handlers (same ACLs and error codes as a Kafka client gets).
//! - [`layout`], [`assets`], [`error`]: the page shell, the embedded static
//!   files, errors as HTML pages or JSON bodies.
//! - [`history`]: in-memory time series for charts, filled by [`sample`].
//! - [`lag`]: committed offsets against end offsets, per group.
//! - one module per section: [`overview`] (`/`), [`brokers`], [`topics`],
//!   [`catalog`], [`messages`], [`groups`], [`security`] (ACLs, users,
//!   quotas), [`schemas`].

pub mod assets;
pub mod auth;
pub mod brokers;
pub mod catalog;
pub mod error;
pub mod groups;
pub mod history;
pub mod kafka;
pub mod lag;
pub mod layout;
pub mod messages;
pub mod overview;
pub mod schemas;
pub mod security;
pub mod topics;

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::Uri;
use axum::routing::{get, post};
use axum::{middleware, Router};
use vltava_broker::admin::AdminState;
use vltava_broker::handlers::Session;
use vltava_broker::Broker;

use crate::error::{ApiError, ConsoleError, PageError};

/// The console's state on this node.
pub struct Console {
    admin: Arc<AdminState>,
    pub sessions: auth::Sessions,
    pub history: history::History,
}

impl Console {
    /// The broker, once it is open.
    pub fn broker(&self) -> Option<Arc<Broker>> {
        self.admin.broker().cloned()
    }
}

/// What a console handler works with: the broker and who is asking (put in
/// the request by [`auth::guard`]; take it as a handler argument).
#[derive(Clone)]
pub struct Ctx {
    pub console: Arc<Console>,
    pub broker: Arc<Broker>,
    /// The user's session: principal (`User:NAME`, or `User:ANONYMOUS`
    /// without `console.authentication`), the browser's address.
    pub session: Session,
    /// The logged-in user's name under `console.authentication=sasl`.
    pub user: Option<String>,
}

impl<S: Send + Sync> FromRequestParts<S> for Ctx {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Ctx>()
            .cloned()
            .ok_or_else(|| ApiError(ConsoleError::internal("console route outside the guard")))
    }
}

/// Serves the console on every admin listener this process starts (call
/// before the broker starts).
pub fn install() {
    vltava_broker::admin::extend(Box::new(router));
}

/// Every console route, behind [`auth::guard`].
pub fn router(admin: Arc<AdminState>) -> Router {
    let console =
        Arc::new(Console { admin, sessions: auth::Sessions::default(), history: history::History::default() });
    tokio::spawn(sample(console.clone()));
    Router::new()
        .merge(overview::routes())
        .merge(brokers::routes())
        .merge(topics::routes())
        .merge(catalog::routes())
        .merge(messages::routes())
        .merge(groups::routes())
        .merge(security::routes())
        .merge(schemas::routes())
        .route("/login", get(auth::login_page).post(auth::login))
        .route("/logout", post(auth::logout))
        .route("/assets/{name}", get(assets::serve))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(console.clone(), auth::guard))
        .with_state(console)
}

/// The routes of one section, with the console's state.
pub type Routes = Router<Arc<Console>>;

async fn not_found(uri: Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    let e = ConsoleError::not_found(format!("nothing at {}", uri.path()));
    if uri.path().starts_with("/api/") {
        ApiError(e).into_response()
    } else {
        PageError(e).into_response()
    }
}

/// Every [`history::INTERVAL`] once the broker is open: the samples of the
/// charts (each section records its own series).
async fn sample(console: Arc<Console>) {
    let mut tick = tokio::time::interval(history::INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(broker) = console.broker() else { continue };
        if *broker.stopping.borrow() {
            return;
        }
        let now =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs() as i64).unwrap_or(0);
        overview::sample(&broker, &console.history, now);
        groups::sample(&broker, &console.history, now).await;
    }
}
