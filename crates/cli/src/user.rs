//! `vltava user create|list|delete`: SCRAM users (KIP-554) through
//! AlterUserScramCredentials / DescribeUserScramCredentials, as Kafka's
//! `kafka-configs --entity-type users --alter --add-config
//! 'SCRAM-SHA-512=[password=...]'`. The password is salted and hashed here;
//! only the salted password travels.

use kafka_protocol::messages::{
    alter_user_scram_credentials_request::{ScramCredentialDeletion, ScramCredentialUpsertion},
    describe_user_scram_credentials_request::UserName,
    AlterUserScramCredentialsRequest, DescribeUserScramCredentialsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;
use vltava_security::sasl::scram::{self, ScramCredential, ScramMechanism};

use crate::client::{self, ClientArgs};
use crate::connection::{self, error_name, BrokerConnection};

#[derive(clap::Subcommand)]
pub enum UserCommand {
    /// Create a SCRAM user, or change its password.
    ///
    /// Examples:
    ///   vltava user create alice --password alice-secret
    ///   vltava user create bob --password s3cret --mechanism SCRAM-SHA-256 --iterations 8192
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Create(CreateArgs),
    /// List SCRAM users and their mechanisms.
    ///
    /// Examples:
    ///   vltava user list
    ///   vltava user list --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    List(ListArgs),
    /// Delete a SCRAM user's credentials (every mechanism, or one).
    ///
    /// Examples:
    ///   vltava user delete alice
    ///   vltava user delete bob --mechanism SCRAM-SHA-256
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Delete(DeleteArgs),
}

#[derive(clap::Args)]
pub struct CreateArgs {
    name: String,
    #[arg(long)]
    password: String,
    /// SCRAM-SHA-256 or SCRAM-SHA-512.
    #[arg(long, default_value = "SCRAM-SHA-512")]
    mechanism: String,
    /// PBKDF2 iterations (4096 to 16384).
    #[arg(long, default_value_t = 4096)]
    iterations: i32,
}

#[derive(clap::Args)]
pub struct ListArgs {
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(clap::Args)]
pub struct DeleteArgs {
    name: String,
    /// Only this mechanism's credential.
    #[arg(long)]
    mechanism: Option<String>,
}

pub fn run(args: &ClientArgs, cmd: &UserCommand) -> anyhow::Result<()> {
    match cmd {
        UserCommand::Create(a) => create(args, a),
        UserCommand::List(a) => list(args, a),
        UserCommand::Delete(a) => delete(args, a),
    }
}

fn mechanism(name: &str) -> anyhow::Result<ScramMechanism> {
    ScramMechanism::parse(name)
        .ok_or_else(|| anyhow::anyhow!("unknown mechanism {name}: SCRAM-SHA-256 or SCRAM-SHA-512"))
}

fn alter(conn: &mut BrokerConnection, request: AlterUserScramCredentialsRequest) -> anyhow::Result<()> {
    let (response, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    for r in &response.results {
        if r.error_code != 0 {
            return Err(anyhow::anyhow!(
                "{}: user {}: {}{}",
                conn.address(),
                r.user,
                error_name(r.error_code),
                r.error_message.as_ref().map(|m| format!(": {m}")).unwrap_or_default()
            ));
        }
    }
    Ok(())
}

fn create(args: &ClientArgs, a: &CreateArgs) -> anyhow::Result<()> {
    let m = mechanism(&a.mechanism)?;
    let salt = scram::random_salt();
    let salted = ScramCredential::salted_password(m, a.password.as_bytes(), &salt, a.iterations);
    let upsertion = ScramCredentialUpsertion::default()
        .with_name(StrBytes::from_string(a.name.clone()))
        .with_mechanism(m.code())
        .with_iterations(a.iterations)
        .with_salt(salt.into())
        .with_salted_password(salted.into());
    let mut conn = connection::connect_bootstrap(args)?;
    alter(&mut conn, AlterUserScramCredentialsRequest::default().with_upsertions(vec![upsertion]))?;
    println!("user {} has a {} credential", a.name, m.name());
    Ok(())
}

/// Every user's mechanisms and iterations (all users, or the one named).
/// A user's name and its credentials: (mechanism name, iterations).
type UserCredentials = (String, Vec<(String, i32)>);

fn describe(conn: &mut BrokerConnection, user: Option<&str>) -> anyhow::Result<Vec<UserCredentials>> {
    let users = user.map(|u| vec![UserName::default().with_name(StrBytes::from_string(u.to_string()))]);
    let (response, _) =
        conn.send(&DescribeUserScramCredentialsRequest::default().with_users(users)).map_err(|e| conn.error(e))?;
    if response.error_code != 0 {
        return Err(anyhow::anyhow!("{}: {}", conn.address(), error_name(response.error_code)));
    }
    let mut out = Vec::new();
    for r in response.results {
        if r.error_code != 0 {
            return Err(client::NotFound(format!(
                "user {}: {}{}",
                r.user,
                error_name(r.error_code),
                r.error_message.map(|m| format!(": {m}")).unwrap_or_default()
            ))
            .into());
        }
        let infos = r
            .credential_infos
            .iter()
            .map(|c| {
                let name = ScramMechanism::from_code(c.mechanism).map_or("UNKNOWN", |m| m.name());
                (name.to_string(), c.iterations)
            })
            .collect();
        out.push((r.user.to_string(), infos));
    }
    out.sort();
    Ok(out)
}

fn list(args: &ClientArgs, a: &ListArgs) -> anyhow::Result<()> {
    let mut conn = connection::connect_bootstrap(args)?;
    let users = describe(&mut conn, None)?;
    if a.json {
        let list: Vec<_> = users
            .iter()
            .map(|(name, infos)| {
                let creds: Vec<_> = infos.iter().map(|(m, i)| json!({"mechanism": m, "iterations": i})).collect();
                json!({"name": name, "credentials": creds})
            })
            .collect();
        println!("{}", json!({ "users": list }));
        return Ok(());
    }
    if users.is_empty() {
        println!("no SCRAM users");
    }
    for (name, infos) in users {
        let what: Vec<String> = infos.iter().map(|(m, i)| format!("{m}(iterations={i})")).collect();
        println!("{name}  {}", what.join(" "));
    }
    Ok(())
}

fn delete(args: &ClientArgs, a: &DeleteArgs) -> anyhow::Result<()> {
    let mut conn = connection::connect_bootstrap(args)?;
    let mechanisms: Vec<ScramMechanism> = match &a.mechanism {
        Some(m) => vec![mechanism(m)?],
        None => describe(&mut conn, Some(&a.name))?
            .into_iter()
            .flat_map(|(_, infos)| infos)
            .filter_map(|(m, _)| ScramMechanism::parse(&m))
            .collect(),
    };
    // one request per mechanism: Kafka refuses a user twice in one request
    for m in &mechanisms {
        let deletion = ScramCredentialDeletion::default()
            .with_name(StrBytes::from_string(a.name.clone()))
            .with_mechanism(m.code());
        alter(&mut conn, AlterUserScramCredentialsRequest::default().with_deletions(vec![deletion]))?;
    }
    println!("user {} deleted ({} credentials)", a.name, mechanisms.len());
    Ok(())
}
