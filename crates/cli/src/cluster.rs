//! `vltava cluster info`: the brokers from Metadata, the controller and the
//! cluster id.

use serde_json::json;

use rdkafka::consumer::Consumer;

use crate::client::{self, ClientArgs};

#[derive(clap::Subcommand)]
pub enum ClusterCommand {
    /// Show the brokers, the controller and the cluster id.
    ///
    /// Examples:
    ///   vltava cluster info
    ///   vltava cluster info --json
    ///   vltava --brokers kafka1:9092 cluster info
    #[command(verbatim_doc_comment)]
    #[command(after_help = client::EXIT_CODES_HELP)]
    Info(InfoArgs),
}

#[derive(clap::Args)]
pub struct InfoArgs {
    /// One JSON object on stdout.
    #[arg(long)]
    json: bool,
}

pub fn run(args: &ClientArgs, cmd: &ClusterCommand) -> anyhow::Result<()> {
    match cmd {
        ClusterCommand::Info(a) => info(args, a),
    }
}

fn info(args: &ClientArgs, a: &InfoArgs) -> anyhow::Result<()> {
    let consumer = args.metadata_consumer()?;
    let client = consumer.client();
    let md = client::fetch_metadata(client, &client.context().sink, args, None)?;
    let cluster_id = client.fetch_cluster_id(args.timeout());
    let timeout_ms = i32::try_from(args.timeout().as_millis()).unwrap_or(i32::MAX);
    // SAFETY: a valid client handle; librdkafka returns -1 when unknown.
    let controller = unsafe { rdkafka::bindings::rd_kafka_controllerid(client.native_ptr(), timeout_ms) };
    let controller = (controller >= 0).then_some(controller);
    let mut brokers: Vec<_> = md.brokers().iter().map(|b| (b.id(), b.host().to_string(), b.port())).collect();
    brokers.sort();
    let topics = md.topics().iter().filter(|t| t.error().is_none()).count();
    if a.json {
        let list: Vec<_> = brokers
            .iter()
            .map(
                |(id, host, port)| json!({"id": id, "host": host, "port": port, "controller": Some(*id) == controller}),
            )
            .collect();
        println!(
            "{}",
            json!({"cluster_id": cluster_id, "controller_id": controller, "brokers": list, "topics": topics})
        );
        return Ok(());
    }
    println!("cluster id:  {}", cluster_id.as_deref().unwrap_or("n/a"));
    println!("controller:  {}", controller.map_or_else(|| "n/a".to_string(), |c| c.to_string()));
    println!("topics:      {topics}");
    println!("brokers:     {}", brokers.len());
    println!();
    println!("{:>4}  {:<30}  CONTROLLER", "ID", "ADDRESS");
    for (id, host, port) in &brokers {
        let mark = if Some(*id) == controller { "yes" } else { "" };
        println!("{id:>4}  {:<30}  {mark}", format!("{host}:{port}"));
    }
    Ok(())
}
