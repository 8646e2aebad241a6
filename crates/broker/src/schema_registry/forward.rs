//! Writes that reach a node other than the writer are forwarded to the
//! writer's registry, as Confluent's followers forward to their leader.
//! The writer is the leader of `_schemas` partition 0; its registry URL is
//! its `schema.registry.listeners`, asked of that broker with a
//! DescribeConfigs over the inter-broker listener (a `0.0.0.0` host
//! becomes the broker's advertised host). The forwarded request carries
//! `x-vltava-forwarded`, so that a node that lost the role meanwhile
//! answers 50003 rather than forward again.

use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, request::Parts, StatusCode};
use axum::response::{IntoResponse, Response};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::{ApiKey, DescribeConfigsRequest, DescribeConfigsResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use vltava_protocol::StrBytes;

use super::api::{ApiError, CONTENT_TYPE, FORWARDED_HEADER};
use super::SCHEMAS_TOPIC;
use crate::Broker;

/// The registry listener key other brokers are asked for.
pub const LISTENERS_KEY: &str = "schema.registry.listeners";
/// Connecting, sending and reading one forwarded request.
const FORWARD_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest forwarded answer read.
const ANSWER_BYTES_MAX: usize = 16 << 20;

/// The writer's registry base URL (`http://host:port`).
async fn writer_url(broker: &Broker) -> Result<String, ApiError> {
    let image = broker.controller.image();
    let leader = image.topic(SCHEMAS_TOPIC).and_then(|t| t.partition(0)).map_or(-1, |p| p.leader);
    let Some(b) = image.broker(leader).filter(|b| !b.fenced) else {
        return Err(ApiError::forward(format!(
            "the schema registry's writer (the leader of {SCHEMAS_TOPIC} partition 0) is not known; retry"
        )));
    };
    let addr = format!("{}:{}", b.host, b.port);
    let request = DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
        .with_resource_type(crate::handlers::describe_configs::RESOURCE_BROKER)
        .with_resource_name(StrBytes::from_string(leader.to_string()))
        .with_configuration_keys(Some(vec![StrBytes::from_static_str(LISTENERS_KEY)]))]);
    let client_id = format!("vltava-schema-registry-{}", broker.config.node_id);
    let response: std::io::Result<DescribeConfigsResponse> = async {
        let mut conn = crate::replication::KafkaConn::connect_to_broker(broker, &addr, client_id).await?;
        conn.call(ApiKey::DescribeConfigs, 4, &request, FORWARD_TIMEOUT).await
    }
    .await;
    let response =
        response.map_err(|e| ApiError::forward(format!("cannot reach the writer, broker {leader} at {addr}: {e}")))?;
    let value = response
        .results
        .iter()
        .flat_map(|r| r.configs.iter())
        .find(|c| c.name.as_str() == LISTENERS_KEY)
        .and_then(|c| c.value.as_ref())
        .map(|v| v.to_string())
        .unwrap_or_default();
    let Some(hostport) = value.trim().strip_prefix("http://") else {
        return Err(ApiError::forward(format!(
            "the writer, broker {leader}, serves no schema registry ({LISTENERS_KEY}={value:?})"
        )));
    };
    let (host, port) = hostport.rsplit_once(':').unwrap_or((hostport, "8081"));
    let host = if host == "0.0.0.0" || host == "[::]" { b.host.as_str() } else { host };
    Ok(format!("{host}:{port}"))
}

/// Sends the request to the writer and relays its answer.
pub async fn forward(broker: &Broker, parts: &Parts, body: Bytes) -> Result<Response, ApiError> {
    let target = writer_url(broker).await?;
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!(
        "{} {path} HTTP/1.1\r\nHost: {target}\r\nConnection: close\r\nContent-Type: {CONTENT_TYPE}\r\nContent-Length: {}\r\n{FORWARDED_HEADER}: {}\r\n",
        parts.method,
        body.len(),
        broker.config.node_id
    );
    if let Some(auth) = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        head.push_str(&format!("Authorization: {auth}\r\n"));
    }
    head.push_str("\r\n");
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(&target).await?;
        stream.write_all(head.as_bytes()).await?;
        stream.write_all(&body).await?;
        let mut answer = Vec::new();
        (&mut stream).take(ANSWER_BYTES_MAX as u64).read_to_end(&mut answer).await?;
        Ok::<_, std::io::Error>(answer)
    };
    let answer = tokio::time::timeout(FORWARD_TIMEOUT, exchange)
        .await
        .map_err(|_| ApiError::forward(format!("the writer at {target} did not answer in time")))?
        .map_err(|e| ApiError::forward(format!("forwarding to the writer at {target} failed: {e}")))?;
    let (status, body) = parse_answer(&answer)
        .ok_or_else(|| ApiError::forward(format!("the writer at {target} answered something unreadable")))?;
    Ok((status, [(header::CONTENT_TYPE, CONTENT_TYPE)], body).into_response())
}

/// An HTTP/1.1 answer with `Connection: close`: its status and body.
fn parse_answer(answer: &[u8]) -> Option<(StatusCode, Vec<u8>)> {
    let end = answer.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&answer[..end]).ok()?;
    let status = head.split_whitespace().nth(1)?.parse::<u16>().ok()?;
    let mut body = &answer[end + 4..];
    let mut chunked = false;
    for line in head.lines().skip(1) {
        let (name, value) = line.split_once(':')?;
        if name.eq_ignore_ascii_case("content-length") {
            body = body.get(..value.trim().parse::<usize>().ok()?)?;
        } else if name.eq_ignore_ascii_case("transfer-encoding") && value.trim().eq_ignore_ascii_case("chunked") {
            chunked = true;
        }
    }
    let body = if chunked { dechunk(body)? } else { body.to_vec() };
    Some((StatusCode::from_u16(status).ok()?, body))
}

fn dechunk(mut data: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = data.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&data[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        data = &data[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        out.extend_from_slice(data.get(..size)?);
        data = data.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_read() {
        let a = b"HTTP/1.1 409 Conflict\r\ncontent-length: 5\r\n\r\nhello";
        assert_eq!(parse_answer(a), Some((StatusCode::CONFLICT, b"hello".to_vec())));
        let c = b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_answer(c), Some((StatusCode::OK, b"abcde".to_vec())));
        assert_eq!(parse_answer(b"garbage"), None);
    }
}
