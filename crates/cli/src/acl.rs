//! `vltava acl create|list|delete`: ACL bindings through CreateAcls,
//! DescribeAcls and DeleteAcls, with the flags of Kafka's `kafka-acls.sh`
//! (`--allow-principal`, `--deny-principal`, `--allow-host`, `--deny-host`,
//! `--operation`, `--topic`, `--group`, `--cluster`, `--transactional-id`,
//! `--resource-pattern-type`). Sent through [`crate::connection`].

use kafka_protocol::messages::{
    create_acls_request, delete_acls_request, CreateAclsRequest, DeleteAclsRequest, DescribeAclsRequest,
};
use kafka_protocol::protocol::StrBytes;
use serde_json::json;
use vltava_metadata::{AclOperation, AclPermission, PatternType, ResourceType};

use crate::client::{self, ClientArgs};
use crate::connection;

#[derive(clap::Subcommand)]
pub enum AclCommand {
    /// Add ACLs: each principal (allowed or denied) gets each operation on
    /// each resource, from each host.
    ///
    /// Examples:
    ///   vltava acl create --allow-principal User:alice --operation read --operation describe --topic orders
    ///   vltava acl create --allow-principal User:alice --operation all --topic logs- --resource-pattern-type prefixed
    ///   vltava acl create --deny-principal User:bob --deny-host 10.0.0.9 --operation write --topic orders
    ///   vltava acl create --allow-principal User:app --operation read --group app-group
    ///   vltava acl create --allow-principal User:ops --operation alter --cluster
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Create(ChangeArgs),
    /// List ACLs, all or those the resource and principal options select
    /// (`--resource-pattern-type match`: every ACL that applies to the named
    /// resource).
    ///
    /// Examples:
    ///   vltava acl list
    ///   vltava acl list --topic orders --resource-pattern-type match
    ///   vltava acl list --principal User:alice --json
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    List(ListArgs),
    /// Remove the ACLs the options select (options left out match any value).
    ///
    /// Examples:
    ///   vltava acl delete --allow-principal User:alice --operation read --topic orders
    ///   vltava acl delete --topic orders
    ///   vltava acl delete --topic logs- --resource-pattern-type prefixed
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Delete(ChangeArgs),
}

#[derive(clap::Args, Default)]
pub struct ResourceArgs {
    /// A topic (repeatable); `*` is every topic.
    #[arg(long)]
    topic: Vec<String>,
    /// A consumer group (repeatable); `*` is every group.
    #[arg(long)]
    group: Vec<String>,
    /// The cluster.
    #[arg(long)]
    cluster: bool,
    /// A transactional id (repeatable); `*` is every one.
    #[arg(long)]
    transactional_id: Vec<String>,
    /// A delegation token id (repeatable).
    #[arg(long)]
    delegation_token: Vec<String>,
    /// A user principal, as a USER resource (repeatable).
    #[arg(long)]
    user_principal: Vec<String>,
    /// How resource names match: literal (the default of create and
    /// delete), prefixed, or for list and delete also match and any.
    #[arg(long, value_name = "TYPE")]
    resource_pattern_type: Option<String>,
}

impl ResourceArgs {
    fn resources(&self) -> Vec<(ResourceType, String)> {
        let mut out = Vec::new();
        out.extend(self.topic.iter().map(|n| (ResourceType::Topic, n.clone())));
        out.extend(self.group.iter().map(|n| (ResourceType::Group, n.clone())));
        if self.cluster {
            out.push((ResourceType::Cluster, "kafka-cluster".to_string()));
        }
        out.extend(self.transactional_id.iter().map(|n| (ResourceType::TransactionalId, n.clone())));
        out.extend(self.delegation_token.iter().map(|n| (ResourceType::DelegationToken, n.clone())));
        out.extend(self.user_principal.iter().map(|n| (ResourceType::User, n.clone())));
        out
    }

    fn pattern_type(&self, default: PatternType) -> anyhow::Result<PatternType> {
        match &self.resource_pattern_type {
            None => Ok(default),
            Some(t) => PatternType::parse(t).ok_or_else(|| {
                anyhow::anyhow!("--resource-pattern-type {t}: expected literal, prefixed, match or any")
            }),
        }
    }
}

#[derive(clap::Args)]
pub struct ChangeArgs {
    #[command(flatten)]
    resource: ResourceArgs,
    /// A principal allowed the operations (repeatable), e.g. User:alice.
    #[arg(long)]
    allow_principal: Vec<String>,
    /// A principal denied the operations (repeatable).
    #[arg(long)]
    deny_principal: Vec<String>,
    /// A host the allowed principals may connect from (repeatable; default *).
    #[arg(long)]
    allow_host: Vec<String>,
    /// A host the denied principals are denied from (repeatable; default *).
    #[arg(long)]
    deny_host: Vec<String>,
    /// An operation (repeatable): all, read, write, create, delete, alter,
    /// describe, cluster-action, describe-configs, alter-configs,
    /// idempotent-write, create-tokens, describe-tokens. Create's default
    /// is all; delete's is any.
    #[arg(long)]
    operation: Vec<String>,
}

#[derive(clap::Args)]
pub struct ListArgs {
    #[command(flatten)]
    resource: ResourceArgs,
    /// Only the ACLs of this principal.
    #[arg(long)]
    principal: Option<String>,
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ClientArgs, cmd: &AclCommand) -> anyhow::Result<()> {
    match cmd {
        AclCommand::Create(a) => create(args, a),
        AclCommand::List(a) => list(args, a),
        AclCommand::Delete(a) => delete(args, a),
    }
}

fn operations(given: &[String], default: AclOperation) -> anyhow::Result<Vec<AclOperation>> {
    if given.is_empty() {
        return Ok(vec![default]);
    }
    given
        .iter()
        .map(|o| AclOperation::parse(o).ok_or_else(|| anyhow::anyhow!("--operation {o}: not a Kafka ACL operation")))
        .collect()
}

/// `(permission, principal, host)` of each entry the options describe.
fn entries(a: &ChangeArgs) -> Vec<(AclPermission, String, String)> {
    let hosts = |given: &[String]| if given.is_empty() { vec!["*".to_string()] } else { given.to_vec() };
    let mut out = Vec::new();
    for (permission, principals, given_hosts) in [
        (AclPermission::Allow, &a.allow_principal, &a.allow_host),
        (AclPermission::Deny, &a.deny_principal, &a.deny_host),
    ] {
        for p in principals {
            for h in hosts(given_hosts) {
                out.push((permission, p.clone(), h));
            }
        }
    }
    out
}

fn text(s: &str) -> StrBytes {
    StrBytes::from_string(s.to_string())
}

fn describe_binding(rt: i8, name: &str, pt: i8, principal: &str, host: &str, op: i8, perm: i8) -> String {
    let name_of = |code: i8, f: fn(i8) -> Option<&'static str>| f(code).unwrap_or("UNKNOWN");
    format!(
        "{} {} ({}): {} {} {} from {}",
        name_of(rt, |c| ResourceType::from_code(c).map(|t| t.name())),
        name,
        name_of(pt, |c| PatternType::from_code(c).map(|t| t.name())),
        principal,
        name_of(perm, |c| AclPermission::from_code(c).map(|t| t.name())),
        name_of(op, |c| AclOperation::from_code(c).map(|t| t.name())),
        host
    )
}

fn create(args: &ClientArgs, a: &ChangeArgs) -> anyhow::Result<()> {
    let resources = a.resource.resources();
    if resources.is_empty() {
        return Err(anyhow::anyhow!("name a resource: --topic, --group, --cluster, --transactional-id, ..."));
    }
    let who = entries(a);
    if who.is_empty() {
        return Err(anyhow::anyhow!("name a principal: --allow-principal or --deny-principal"));
    }
    let pattern = a.resource.pattern_type(PatternType::Literal)?;
    let ops = operations(&a.operation, AclOperation::All)?;
    let mut creations = Vec::new();
    for (rt, name) in &resources {
        for (permission, principal, host) in &who {
            for op in &ops {
                creations.push(
                    create_acls_request::AclCreation::default()
                        .with_resource_type(rt.code())
                        .with_resource_name(text(name))
                        .with_resource_pattern_type(pattern.code())
                        .with_principal(text(principal))
                        .with_host(text(host))
                        .with_operation(op.code())
                        .with_permission_type(permission.code()),
                );
            }
        }
    }
    let mut conn = connection::connect_bootstrap(args)?;
    let request = CreateAclsRequest::default().with_creations(creations.clone());
    let (response, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    for (c, r) in creations.iter().zip(&response.results) {
        if r.error_code != 0 {
            return Err(connection::refused(conn.address(), r.error_code, r.error_message.as_deref()));
        }
        println!(
            "created {}",
            describe_binding(
                c.resource_type,
                &c.resource_name,
                c.resource_pattern_type,
                &c.principal,
                &c.host,
                c.operation,
                c.permission_type
            )
        );
    }
    Ok(())
}

fn list(args: &ClientArgs, a: &ListArgs) -> anyhow::Result<()> {
    let resources = a.resource.resources();
    let pattern = a.resource.pattern_type(PatternType::Any)?;
    let filters: Vec<(ResourceType, Option<String>)> = if resources.is_empty() {
        vec![(ResourceType::Any, None)]
    } else {
        resources.into_iter().map(|(t, n)| (t, Some(n))).collect()
    };
    let mut conn = connection::connect_bootstrap(args)?;
    let mut rows = Vec::new();
    for (rt, name) in filters {
        let request = DescribeAclsRequest::default()
            .with_resource_type_filter(rt.code())
            .with_resource_name_filter(name.as_deref().map(text))
            .with_pattern_type_filter(pattern.code())
            .with_principal_filter(a.principal.as_deref().map(text))
            .with_host_filter(None)
            .with_operation(AclOperation::Any.code())
            .with_permission_type(AclPermission::Any.code());
        let (response, _) = conn.send(&request).map_err(|e| conn.error(e))?;
        if response.error_code != 0 {
            return Err(connection::refused(conn.address(), response.error_code, response.error_message.as_deref()));
        }
        for r in response.resources {
            for acl in r.acls {
                rows.push((
                    r.resource_type,
                    r.resource_name.to_string(),
                    r.pattern_type,
                    acl.principal.to_string(),
                    acl.host.to_string(),
                    acl.operation,
                    acl.permission_type,
                ));
            }
        }
    }
    rows.sort();
    rows.dedup();
    if a.json {
        let name_or = |s: Option<&'static str>| s.unwrap_or("UNKNOWN");
        let list: Vec<_> = rows
            .iter()
            .map(|(rt, name, pt, principal, host, op, perm)| {
                json!({
                    "resource_type": name_or(ResourceType::from_code(*rt).map(|t| t.name())),
                    "resource_name": name,
                    "pattern_type": name_or(PatternType::from_code(*pt).map(|t| t.name())),
                    "principal": principal,
                    "host": host,
                    "operation": name_or(AclOperation::from_code(*op).map(|t| t.name())),
                    "permission_type": name_or(AclPermission::from_code(*perm).map(|t| t.name())),
                })
            })
            .collect();
        println!("{}", json!({ "acls": list }));
        return Ok(());
    }
    if rows.is_empty() {
        println!("no ACLs");
    }
    for (rt, name, pt, principal, host, op, perm) in rows {
        println!("{}", describe_binding(rt, &name, pt, &principal, &host, op, perm));
    }
    Ok(())
}

fn delete(args: &ClientArgs, a: &ChangeArgs) -> anyhow::Result<()> {
    let resources = a.resource.resources();
    if resources.is_empty() {
        return Err(anyhow::anyhow!("name a resource: --topic, --group, --cluster, --transactional-id, ..."));
    }
    let pattern = a.resource.pattern_type(PatternType::Literal)?;
    let ops = operations(&a.operation, AclOperation::Any)?;
    // no principal: any principal and host
    let who: Vec<(AclPermission, Option<String>, Option<String>)> = if entries(a).is_empty() {
        vec![(AclPermission::Any, None, None)]
    } else {
        let any_host = a.allow_host.is_empty() && a.deny_host.is_empty();
        entries(a).into_iter().map(|(perm, p, h)| (perm, Some(p), (!any_host).then_some(h))).collect()
    };
    let mut filters = Vec::new();
    for (rt, name) in &resources {
        for (permission, principal, host) in &who {
            for op in &ops {
                filters.push(
                    delete_acls_request::DeleteAclsFilter::default()
                        .with_resource_type_filter(rt.code())
                        .with_resource_name_filter(Some(text(name)))
                        .with_pattern_type_filter(pattern.code())
                        .with_principal_filter(principal.as_deref().map(text))
                        .with_host_filter(host.as_deref().map(text))
                        .with_operation(op.code())
                        .with_permission_type(permission.code()),
                );
            }
        }
    }
    let mut conn = connection::connect_bootstrap(args)?;
    let request = DeleteAclsRequest::default().with_filters(filters);
    let (response, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    let mut deleted = 0;
    for r in &response.filter_results {
        if r.error_code != 0 {
            return Err(connection::refused(conn.address(), r.error_code, r.error_message.as_deref()));
        }
        for m in &r.matching_acls {
            deleted += 1;
            println!(
                "deleted {}",
                describe_binding(
                    m.resource_type,
                    &m.resource_name,
                    m.pattern_type,
                    &m.principal,
                    &m.host,
                    m.operation,
                    m.permission_type
                )
            );
        }
    }
    if deleted == 0 {
        println!("no matching ACLs");
    }
    Ok(())
}
