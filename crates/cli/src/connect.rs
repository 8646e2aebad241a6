//! `vltava connect` (run a Kafka Connect-compatible worker) and `vltava
//! connector list|create|status|delete|pause|resume|restart` (a client of a
//! worker's REST API, Kafka Connect's, so it works against Kafka's workers
//! too). Blocking HTTP with `ureq`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{anyhow, Context};
use serde_json::{json, Value};

use crate::client;

/// The longest one request may take (a worker may forward it to the leader).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(90);

#[derive(clap::Args)]
pub struct ConnectArgs {
    /// The worker's properties file (Kafka Connect's distributed-mode keys:
    /// bootstrap.servers, group.id, config/offset/status.storage.topic, listeners, ...).
    #[arg(long, value_name = "FILE")]
    config: PathBuf,
    /// A worker property over the file's, KEY=VALUE. Repeatable.
    #[arg(long, value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Runs a worker until SIGINT/SIGTERM.
pub fn run_worker(args: &ConnectArgs) -> anyhow::Result<()> {
    let mut props = vltava_connect::config::read_properties(&args.config)?;
    for kv in &args.set {
        let (k, v) = kv.split_once('=').with_context(|| format!("--set expects KEY=VALUE, got {kv:?}"))?;
        props.insert(k.trim().to_string(), v.trim().to_string());
    }
    let config =
        vltava_connect::WorkerConfig::from_props(props).map_err(|e| anyhow!("{}: {e}", args.config.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(vltava_connect::run(config))
}

#[derive(clap::Subcommand)]
pub enum ConnectorCommand {
    /// List the connectors (with their state).
    List(WorkerArgs),
    /// Create a connector, or update its config when it exists, from a
    /// properties file or a JSON file ({"name":..,"config":{..}} or the config alone).
    ///
    /// Examples:
    ///   vltava connector create --name lines file-source.properties
    ///   vltava connector create pg-sink.json --url http://worker2:8083
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Create(CreateArgs),
    /// Show a connector's and its tasks' states.
    #[command(after_help = client::EXIT_CODES_HELP)]
    Status(NameArgs),
    /// Delete a connector.
    #[command(after_help = client::EXIT_CODES_HELP)]
    Delete(NameArgs),
    /// Pause a connector's tasks.
    #[command(after_help = client::EXIT_CODES_HELP)]
    Pause(NameArgs),
    /// Resume a paused or stopped connector.
    #[command(after_help = client::EXIT_CODES_HELP)]
    Resume(NameArgs),
    /// Restart a connector and its tasks (failed ones only with --only-failed).
    #[command(after_help = client::EXIT_CODES_HELP)]
    Restart(RestartArgs),
}

#[derive(clap::Args)]
pub struct WorkerArgs {
    /// A worker's REST URL.
    #[arg(long, env = "VLTAVA_CONNECT_URL", default_value = "http://127.0.0.1:8083", value_name = "URL")]
    url: String,
    /// Print the worker's JSON answer instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct NameArgs {
    name: String,
    #[command(flatten)]
    worker: WorkerArgs,
}

#[derive(clap::Args)]
pub struct RestartArgs {
    name: String,
    /// Only the failed connector and tasks.
    #[arg(long)]
    only_failed: bool,
    #[command(flatten)]
    worker: WorkerArgs,
}

#[derive(clap::Args)]
pub struct CreateArgs {
    /// A .properties file or a .json file.
    file: PathBuf,
    /// The connector's name (default: the file's `name`).
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    worker: WorkerArgs,
}

pub fn run(cmd: &ConnectorCommand) -> anyhow::Result<()> {
    match cmd {
        ConnectorCommand::List(w) => {
            let answer = call(w, "GET", "/connectors?expand=status", None)?;
            if w.json {
                return print_json(&answer);
            }
            let mut names: Vec<(&String, &Value)> = answer.as_object().map(|o| o.iter().collect()).unwrap_or_default();
            names.sort_by_key(|(n, _)| n.as_str());
            for (name, v) in names {
                let status = &v["status"];
                println!(
                    "{name}\t{}\t{}\ttasks: {}",
                    status["type"].as_str().unwrap_or("?"),
                    status["connector"]["state"].as_str().unwrap_or("?"),
                    status["tasks"].as_array().map_or(0, Vec::len)
                );
            }
            Ok(())
        }
        ConnectorCommand::Create(a) => {
            let (file_name, config) = read_connector_file(&a.file)?;
            let name = a
                .name
                .clone()
                .or(file_name)
                .ok_or_else(|| anyhow!("{}: no connector name: give --name", a.file.display()))?;
            let answer = call(&a.worker, "PUT", &format!("/connectors/{}/config", segment(&name)), Some(&config))?;
            if a.worker.json {
                return print_json(&answer);
            }
            println!("connector {name}: {} tasks", answer["tasks"].as_array().map_or(0, Vec::len));
            Ok(())
        }
        ConnectorCommand::Status(a) => {
            let answer = call(&a.worker, "GET", &format!("/connectors/{}/status", segment(&a.name)), None)?;
            if a.worker.json {
                return print_json(&answer);
            }
            let c = &answer["connector"];
            println!(
                "{} ({}): {} on {}",
                a.name,
                answer["type"].as_str().unwrap_or("?"),
                c["state"].as_str().unwrap_or("?"),
                c["worker_id"].as_str().unwrap_or("?")
            );
            for t in answer["tasks"].as_array().into_iter().flatten() {
                println!(
                    "  task {}: {} on {}",
                    t["id"],
                    t["state"].as_str().unwrap_or("?"),
                    t["worker_id"].as_str().unwrap_or("?")
                );
                if let Some(trace) = t["trace"].as_str() {
                    println!("    {}", trace.lines().next().unwrap_or(""));
                }
            }
            Ok(())
        }
        ConnectorCommand::Delete(a) => {
            simple(&a.worker, "DELETE", &format!("/connectors/{}", segment(&a.name)), &a.name, "deleted")
        }
        ConnectorCommand::Pause(a) => {
            simple(&a.worker, "PUT", &format!("/connectors/{}/pause", segment(&a.name)), &a.name, "paused")
        }
        ConnectorCommand::Resume(a) => {
            simple(&a.worker, "PUT", &format!("/connectors/{}/resume", segment(&a.name)), &a.name, "resumed")
        }
        ConnectorCommand::Restart(a) => {
            let path =
                format!("/connectors/{}/restart?includeTasks=true&onlyFailed={}", segment(&a.name), a.only_failed);
            simple(&a.worker, "POST", &path, &a.name, "restarting")
        }
    }
}

fn simple(w: &WorkerArgs, method: &str, path: &str, name: &str, done: &str) -> anyhow::Result<()> {
    let answer = call(w, method, path, None)?;
    if w.json {
        return print_json(&answer);
    }
    println!("connector {name}: {done}");
    Ok(())
}

fn print_json(v: &Value) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(v)?);
    Ok(())
}

/// A connector file: properties (`name` among them) or JSON
/// (`{"name":..,"config":{..}}` or the config object alone).
fn read_connector_file(path: &PathBuf) -> anyhow::Result<(Option<String>, Value)> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let config: Value = if text.trim_start().starts_with('{') {
        let v: Value = serde_json::from_str(&text).with_context(|| format!("{}: not JSON", path.display()))?;
        v.get("config").cloned().unwrap_or(v)
    } else {
        json!(vltava_connect::config::parse_properties(&text))
    };
    let name = config.get("name").and_then(Value::as_str).map(str::to_string);
    Ok((name, config))
}

/// One REST call; an error status becomes an error with Connect's
/// `error_code` and `message` (404: not found, exit 3).
fn call(w: &WorkerArgs, method: &str, path: &str, body: Option<&Value>) -> anyhow::Result<Value> {
    let agent: ureq::Agent =
        ureq::Agent::config_builder().http_status_as_error(false).timeout_global(Some(REQUEST_TIMEOUT)).build().into();
    let url = format!("{}{path}", w.url.trim_end_matches('/'));
    let sent = match method {
        "PUT" | "POST" => {
            let body = body.map(Value::to_string).unwrap_or_default();
            let request = if method == "PUT" { agent.put(&url) } else { agent.post(&url) };
            request.header("Content-Type", "application/json").header("Accept", "application/json").send(body)
        }
        "DELETE" => agent.delete(&url).header("Accept", "application/json").call(),
        _ => agent.get(&url).header("Accept", "application/json").call(),
    };
    let mut response = sent.with_context(|| format!("{method} {url}"))?;
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().with_context(|| format!("{method} {url}: reading the answer"))?;
    let value: Value =
        if text.trim().is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap_or(Value::String(text)) };
    if (200..300).contains(&status) {
        return Ok(value);
    }
    let message = value.get("message").and_then(Value::as_str).map(str::to_string).unwrap_or_else(|| value.to_string());
    let error = format!("{method} {url}: HTTP {status}: {message}");
    if status == 404 {
        return Err(client::NotFound(error).into());
    }
    Err(anyhow!(error))
}

/// A path segment, percent-encoded.
fn segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
