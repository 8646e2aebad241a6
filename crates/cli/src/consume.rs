//! `vltava consume TOPIC`: prints records with a `--format` template
//! (`%k %v %p %o %t %h %T`, `\n`/`\t` escapes) or as JSON lines. Without
//! `--group` every partition is assigned directly (no group coordinator is
//! needed) from the beginning, the end, an offset or a timestamp; with
//! `--group` the consumer subscribes and commits as a group member.

use std::collections::HashSet;
use std::io::{self, BufWriter, IsTerminal, Write};
use std::time::Duration;

use anyhow::{anyhow, Context as _};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::{self, CliContext, ClientArgs};

/// How long one poll waits before output is flushed and signals are checked.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

#[derive(clap::Args)]
#[command(group(clap::ArgGroup::new("start").args(["from_beginning", "from_end", "offset", "from_timestamp"])))]
pub struct ConsumeArgs {
    /// Topic to read.
    topic: String,
    /// Start at the first retained record of each partition.
    #[arg(long)]
    from_beginning: bool,
    /// Start after the last record of each partition (the default without --group).
    #[arg(long)]
    from_end: bool,
    /// Start at this offset in each partition; a negative N starts N records before the end.
    #[arg(short = 'o', long, allow_negative_numbers = true)]
    offset: Option<i64>,
    /// Start at the first record whose timestamp is at or after MS (milliseconds since the epoch).
    #[arg(long, value_name = "MS")]
    from_timestamp: Option<i64>,
    /// Read only this partition. Repeatable.
    #[arg(short = 'p', long = "partition")]
    partitions: Vec<i32>,
    /// Stop after N records.
    #[arg(short = 'n', long = "count", value_name = "N")]
    count: Option<u64>,
    /// Stop when every partition has been read to its end.
    #[arg(short = 'e', long)]
    exit_at_end: bool,
    /// Consume as a member of this consumer group (subscribe, commit offsets).
    #[arg(short = 'g', long)]
    group: Option<String>,
    /// Output template: %k key, %v value, %p partition, %o offset, %t timestamp (ms),
    /// %h headers (k=v,...), %T topic, %% a percent sign; \n \t escapes.
    #[arg(short = 'F', long, default_value = r"%v\n", conflicts_with = "json")]
    format: String,
    /// One JSON object per record: topic, partition, offset, timestamp, key, value, headers.
    #[arg(long)]
    json: bool,
}

/// One piece of a parsed `--format` template.
#[derive(Debug, PartialEq)]
enum Token {
    Literal(Vec<u8>),
    Key,
    Value,
    Partition,
    Offset,
    Timestamp,
    Headers,
    Topic,
}

/// Parses a `--format` template once, so printing a record does no parsing.
fn parse_format(fmt: &str) -> anyhow::Result<Vec<Token>> {
    let text = client::unescape(fmt);
    let mut tokens = Vec::new();
    let mut literal = Vec::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '%' {
            let mut buf = [0u8; 4];
            literal.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            continue;
        }
        let token = match chars.next() {
            Some('k') => Token::Key,
            Some('v') => Token::Value,
            Some('p') => Token::Partition,
            Some('o') => Token::Offset,
            Some('t') => Token::Timestamp,
            Some('h') => Token::Headers,
            Some('T') => Token::Topic,
            Some('%') => {
                literal.push(b'%');
                continue;
            }
            Some(other) => return Err(anyhow!("unknown --format directive %{other} (use %k %v %p %o %t %h %T %%)")),
            None => return Err(anyhow!("--format ends with a lone %")),
        };
        if !literal.is_empty() {
            tokens.push(Token::Literal(std::mem::take(&mut literal)));
        }
        tokens.push(token);
    }
    if !literal.is_empty() {
        tokens.push(Token::Literal(literal));
    }
    Ok(tokens)
}

fn write_headers(out: &mut impl Write, msg: &BorrowedMessage<'_>) -> io::Result<()> {
    if let Some(headers) = msg.headers() {
        for (i, h) in headers.iter().enumerate() {
            if i > 0 {
                out.write_all(b",")?;
            }
            out.write_all(h.key.as_bytes())?;
            out.write_all(b"=")?;
            out.write_all(h.value.unwrap_or_default())?;
        }
    }
    Ok(())
}

fn write_formatted(out: &mut impl Write, tokens: &[Token], msg: &BorrowedMessage<'_>) -> io::Result<()> {
    for t in tokens {
        match t {
            Token::Literal(bytes) => out.write_all(bytes)?,
            Token::Key => out.write_all(msg.key().unwrap_or_default())?,
            Token::Value => out.write_all(msg.payload().unwrap_or_default())?,
            Token::Partition => write!(out, "{}", msg.partition())?,
            Token::Offset => write!(out, "{}", msg.offset())?,
            Token::Timestamp => write!(out, "{}", msg.timestamp().to_millis().unwrap_or(-1))?,
            Token::Headers => write_headers(out, msg)?,
            Token::Topic => out.write_all(msg.topic().as_bytes())?,
        }
    }
    Ok(())
}

fn text(bytes: Option<&[u8]>) -> serde_json::Value {
    match bytes {
        Some(b) => serde_json::Value::String(String::from_utf8_lossy(b).into_owned()),
        None => serde_json::Value::Null,
    }
}

fn write_json(out: &mut impl Write, msg: &BorrowedMessage<'_>) -> io::Result<()> {
    let mut headers = serde_json::Map::new();
    if let Some(hs) = msg.headers() {
        for h in hs.iter() {
            headers.insert(h.key.to_string(), text(h.value));
        }
    }
    let obj = serde_json::json!({
        "topic": msg.topic(),
        "partition": msg.partition(),
        "offset": msg.offset(),
        "timestamp": msg.timestamp().to_millis(),
        "key": text(msg.key()),
        "value": text(msg.payload()),
        "headers": headers,
    });
    serde_json::to_writer(&mut *out, &obj).map_err(io::Error::other)?;
    out.write_all(b"\n")
}

/// Where each assigned partition starts, without a group.
fn start_offsets(
    consumer: &BaseConsumer<CliContext>,
    args: &ClientArgs,
    a: &ConsumeArgs,
    partitions: &[i32],
) -> anyhow::Result<TopicPartitionList> {
    let mut tpl = TopicPartitionList::with_capacity(partitions.len());
    for &p in partitions {
        let offset = match (a.from_beginning, a.offset, a.from_timestamp) {
            (true, _, _) => Offset::Beginning,
            (_, Some(n), _) if n >= 0 => Offset::Offset(n),
            (_, Some(n), _) => Offset::OffsetTail(n.unsigned_abs() as i64),
            (_, _, Some(ts)) => Offset::Offset(ts),
            _ => Offset::End,
        };
        tpl.add_partition_offset(&a.topic, p, offset).context("bad start offset")?;
    }
    if a.from_timestamp.is_some() {
        let found = consumer
            .offsets_for_times(tpl, args.timeout())
            .map_err(|e| anyhow!("cannot look up offsets by timestamp: {}", client::describe_kafka_error(&e)))?;
        // A partition with no record at or after the timestamp starts at its end.
        let mut fixed = TopicPartitionList::with_capacity(partitions.len());
        for el in found.elements() {
            let offset = match el.offset() {
                Offset::Offset(o) if o >= 0 => Offset::Offset(o),
                _ => Offset::End,
            };
            fixed.add_partition_offset(el.topic(), el.partition(), offset).context("bad start offset")?;
        }
        return Ok(fixed);
    }
    Ok(tpl)
}

/// Writes to stdout; a closed pipe (`| head`) ends the command quietly.
struct Output {
    out: BufWriter<io::Stdout>,
    flush_each: bool,
}

impl Output {
    /// `Ok(false)` when the reader went away.
    fn finish_record(&mut self, written: io::Result<()>) -> anyhow::Result<bool> {
        let result = written.and_then(|()| if self.flush_each { self.out.flush() } else { Ok(()) });
        match result {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(false),
            Err(e) => Err(e).context("cannot write to stdout"),
        }
    }

    fn flush(&mut self) -> anyhow::Result<bool> {
        let flushed = self.out.flush();
        self.finish_record(flushed)
    }

    /// Flush while idle; also notices a reader that went away while there
    /// was nothing to write (a pipe whose other end closed reports POLLERR).
    fn idle(&mut self) -> anyhow::Result<bool> {
        if !self.flush()? {
            return Ok(false);
        }
        let mut fd = libc::pollfd { fd: libc::STDOUT_FILENO, events: 0, revents: 0 };
        // SAFETY: one valid pollfd, zero timeout.
        let ready = unsafe { libc::poll(&mut fd, 1, 0) };
        Ok(!(ready > 0 && fd.revents & libc::POLLERR != 0))
    }
}

pub fn run(args: &ClientArgs, a: &ConsumeArgs) -> anyhow::Result<()> {
    let tokens = parse_format(&a.format)?;
    if a.group.is_some() && (a.offset.is_some() || a.from_timestamp.is_some() || !a.partitions.is_empty()) {
        return Err(anyhow!(
            "--offset, --from-timestamp and --partition need manual assignment: drop --group \
             (or move the group with `vltava group reset-offsets`)"
        ));
    }
    let eof = if a.exit_at_end { "true" } else { "false" };
    let config = match &a.group {
        Some(group) => args.config(&[
            ("group.id", group.as_str()),
            ("enable.auto.commit", "true"),
            ("auto.offset.reset", if a.from_beginning { "earliest" } else { "latest" }),
            ("enable.partition.eof", eof),
            ("allow.auto.create.topics", "false"),
        ])?,
        None => args.config(&[
            ("group.id", client::MANUAL_ASSIGNMENT_GROUP),
            ("enable.auto.commit", "false"),
            ("enable.auto.offset.store", "false"),
            ("auto.offset.reset", "earliest"),
            ("enable.partition.eof", eof),
            ("allow.auto.create.topics", "false"),
        ])?,
    };
    let consumer: BaseConsumer<CliContext> = client::create(&config, CliContext::new(args.verbose))?;
    let md = client::fetch_metadata(consumer.client(), &consumer.context().sink, args, Some(&a.topic))?;
    let all_partitions = client::topic_partitions(&md, &a.topic)?;
    drop(md);

    let mut assigned = all_partitions.len();
    if a.group.is_some() {
        consumer
            .subscribe(&[&a.topic])
            .map_err(|e| anyhow!("cannot subscribe: {}", client::describe_kafka_error(&e)))?;
    } else {
        let partitions: Vec<i32> = if a.partitions.is_empty() {
            all_partitions
        } else {
            for p in &a.partitions {
                if !all_partitions.contains(p) {
                    return Err(client::NotFound(format!(
                        "topic {:?} has no partition {p} (it has {})",
                        a.topic,
                        all_partitions.len()
                    ))
                    .into());
                }
            }
            a.partitions.clone()
        };
        assigned = partitions.len();
        let tpl = start_offsets(&consumer, args, a, &partitions)?;
        consumer.assign(&tpl).map_err(|e| anyhow!("cannot assign partitions: {}", client::describe_kafka_error(&e)))?;
    }

    client::catch_stop_signals();
    let stdout = io::stdout();
    let mut out = Output { flush_each: stdout.is_terminal(), out: BufWriter::with_capacity(1 << 16, stdout) };
    let mut at_end: HashSet<i32> = HashSet::new();
    let mut seen: u64 = 0;
    if a.count == Some(0) {
        return Ok(());
    }
    while !client::stop_requested() {
        let msg = match consumer.poll(POLL_INTERVAL) {
            None => {
                if !out.idle()? {
                    return Ok(());
                }
                continue;
            }
            Some(Ok(msg)) => msg,
            Some(Err(KafkaError::PartitionEOF(p))) => {
                at_end.insert(p);
                if a.exit_at_end {
                    if a.group.is_some() {
                        assigned = consumer.assignment().map(|t| t.count()).unwrap_or(0);
                    }
                    if assigned > 0 && at_end.len() >= assigned {
                        break;
                    }
                }
                continue;
            }
            Some(Err(e)) => {
                let code = e.rdkafka_error_code();
                if matches!(
                    code,
                    Some(RDKafkaErrorCode::UnknownTopicOrPartition)
                        | Some(RDKafkaErrorCode::UnknownTopic)
                        | Some(RDKafkaErrorCode::TopicAuthorizationFailed)
                        | Some(RDKafkaErrorCode::GroupAuthorizationFailed)
                ) {
                    return Err(anyhow!("consume {:?}: {}", a.topic, client::describe_kafka_error(&e)));
                }
                if args.verbose {
                    eprintln!("consumer error (retrying): {}", client::describe_kafka_error(&e));
                }
                continue;
            }
        };
        at_end.remove(&msg.partition());
        let written =
            if a.json { write_json(&mut out.out, &msg) } else { write_formatted(&mut out.out, &tokens, &msg) };
        if !out.finish_record(written)? {
            return Ok(());
        }
        seen += 1;
        if a.count.is_some_and(|n| seen >= n) {
            break;
        }
    }
    out.flush()?;
    if a.group.is_some() {
        // Commit what was printed before leaving the group.
        let _ = consumer.commit_consumer_state(rdkafka::consumer::CommitMode::Sync);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_template_is_tokenized() {
        let t = parse_format(r"%k=%v@%p/%o %t [%h] %T 100%%\n").unwrap();
        assert_eq!(
            t,
            vec![
                Token::Key,
                Token::Literal(b"=".to_vec()),
                Token::Value,
                Token::Literal(b"@".to_vec()),
                Token::Partition,
                Token::Literal(b"/".to_vec()),
                Token::Offset,
                Token::Literal(b" ".to_vec()),
                Token::Timestamp,
                Token::Literal(b" [".to_vec()),
                Token::Headers,
                Token::Literal(b"] ".to_vec()),
                Token::Topic,
                Token::Literal(b" 100%\n".to_vec()),
            ]
        );
        assert!(parse_format("%x").is_err());
        assert!(parse_format("50%").is_err());
        assert_eq!(parse_format(r"%v\n").unwrap(), vec![Token::Value, Token::Literal(b"\n".to_vec())]);
    }
}
