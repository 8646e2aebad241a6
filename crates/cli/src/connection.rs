//! A connection to one broker that speaks Kafka requests itself, for the
//! requests librdkafka has no call for (DescribeLogDirs, DescribeQuorum, the
//! feature flags of ApiVersions).
//!
//! Blocking and plaintext: connect, ApiVersions first (retried at the
//! broker's highest ApiVersions version if it refuses ours), then each
//! request at the highest version both sides support, encoded with the
//! `kafka-protocol` crate in size-prefixed frames. Everything on a connection
//! finishes by one deadline (the CLI's `--timeout`), including the TCP
//! connect and every partial read.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use kafka_protocol::error::ResponseError;
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, ApiVersionsResponse, DescribeClusterRequest, MetadataRequest, RequestHeader,
    ResponseHeader,
};
use kafka_protocol::protocol::{Decodable, Encodable, Message, Request, StrBytes};

use crate::client::{self, ClientArgs};

/// The largest response accepted (Kafka's default `socket.request.max.bytes`).
const RESPONSE_BYTES_MAX: usize = 100 * 1024 * 1024;

/// Kafka's error code for a request version the broker does not implement.
const UNSUPPORTED_VERSION: i16 = 35;

/// The client id on every request.
const CLIENT_ID: &str = "vltava-cli";

/// Why a conversation with a broker failed.
#[derive(Debug)]
pub enum ConnectionError {
    /// Nothing listens there (or the name does not resolve).
    Unreachable(String),
    /// No complete answer before the deadline.
    TimedOut,
    /// The connection broke.
    Io(io::Error),
    /// The broker answered something this client cannot use.
    Protocol(String),
}

impl fmt::Display for ConnectionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConnectionError::Unreachable(why) => f.write_str(why),
            ConnectionError::TimedOut => f.write_str("no answer in time"),
            ConnectionError::Io(e) => write!(f, "{e}"),
            ConnectionError::Protocol(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ConnectionError {}

impl From<io::Error> for ConnectionError {
    fn from(e: io::Error) -> Self {
        match e.kind() {
            io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => ConnectionError::TimedOut,
            _ => ConnectionError::Io(e),
        }
    }
}

/// When a conversation must be over, and the `--timeout` that set it.
#[derive(Debug, Clone, Copy)]
pub struct Deadline {
    pub at: Instant,
    pub budget: Duration,
}

impl Deadline {
    pub fn after(budget: Duration) -> Self {
        Deadline { at: Instant::now() + budget, budget }
    }
}

/// A connection's byte stream: the socket, or TLS over it.
enum Stream {
    Plain(TcpStream),
    Tls(Box<rustls::StreamOwned<rustls::ClientConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(t) => &t.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(t) => t.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(t) => t.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(t) => t.flush(),
        }
    }
}

/// An open, version-negotiated connection to one broker.
pub struct BrokerConnection {
    stream: Stream,
    address: String,
    deadline: Deadline,
    correlation_id: i32,
    api_versions: ApiVersionsResponse,
    api_versions_version: i16,
}

impl BrokerConnection {
    /// Connects to `address` (HOST:PORT) and asks ApiVersions; the
    /// connection and every request on it must finish before `deadline`.
    #[cfg(test)]
    pub fn open(address: &str, deadline: Deadline) -> Result<Self, ConnectionError> {
        Self::open_with(address, deadline, None)
    }

    /// [`open`](Self::open), over TLS with `tls` when given.
    pub fn open_with(
        address: &str,
        deadline: Deadline,
        tls: Option<&Arc<rustls::ClientConfig>>,
    ) -> Result<Self, ConnectionError> {
        let socket = connect(address, deadline.at)?;
        socket.set_nodelay(true)?;
        let stream = match tls {
            None => Stream::Plain(socket),
            Some(config) => {
                let host = address.rsplit_once(':').map_or(address, |(h, _)| h).trim_matches(['[', ']']);
                let name = vltava_security::TlsConnectorSource::server_name(host)
                    .map_err(|e| ConnectionError::Unreachable(format!("{address}: {e}")))?;
                let tls = rustls::ClientConnection::new(config.clone(), name)
                    .map_err(|e| ConnectionError::Unreachable(format!("{address}: {e}")))?;
                Stream::Tls(Box::new(rustls::StreamOwned::new(tls, socket)))
            }
        };
        let mut conn = BrokerConnection {
            stream,
            address: address.to_string(),
            deadline,
            correlation_id: 0,
            api_versions: ApiVersionsResponse::default(),
            api_versions_version: 0,
        };
        conn.negotiate()?;
        Ok(conn)
    }

    pub fn address(&self) -> &str {
        &self.address
    }

    /// A failure on this connection as a one-line error naming the broker.
    pub fn error(&self, err: ConnectionError) -> anyhow::Error {
        anyhow::anyhow!(failure_line(&self.address, &err, self.deadline.budget))
    }

    /// The broker's ApiVersions answer (APIs and, from v3, feature flags).
    pub fn api_versions(&self) -> &ApiVersionsResponse {
        &self.api_versions
    }

    /// The version ApiVersions was answered at.
    pub fn api_versions_version(&self) -> i16 {
        self.api_versions_version
    }

    /// The highest version of `R` both this client and the broker support.
    pub fn version_of<R: Request>(&self) -> Result<i16, ConnectionError> {
        let key = ApiKey::try_from(R::KEY).map_err(|_| ConnectionError::Protocol(format!("API key {}", R::KEY)))?;
        let theirs = self
            .api_versions
            .api_keys
            .iter()
            .find(|k| k.api_key == R::KEY)
            .ok_or_else(|| ConnectionError::Protocol(format!("the broker does not support {key:?}")))?;
        let max = theirs.max_version.min(R::VERSIONS.max);
        if max < theirs.min_version.max(R::VERSIONS.min) {
            return Err(ConnectionError::Protocol(format!(
                "the broker supports {key:?} v{}-{}, this client v{}-{}",
                theirs.min_version,
                theirs.max_version,
                R::VERSIONS.min,
                R::VERSIONS.max
            )));
        }
        Ok(max)
    }

    /// Authenticates with SASL (SaslHandshake v1, then SaslAuthenticate).
    pub fn authenticate(&mut self, mechanism: &str, user: &str, password: &str) -> Result<(), ConnectionError> {
        use kafka_protocol::messages::{SaslAuthenticateRequest, SaslHandshakeRequest};
        let (handshake, _) =
            self.send(&SaslHandshakeRequest::default().with_mechanism(StrBytes::from_string(mechanism.to_string())))?;
        if handshake.error_code != 0 {
            let offered: Vec<String> = handshake.mechanisms.iter().map(|m| m.to_string()).collect();
            return Err(ConnectionError::Protocol(format!(
                "SASL mechanism {mechanism}: {} (the broker offers {})",
                error_name(handshake.error_code),
                offered.join(", ")
            )));
        }
        let mut login = vltava_security::sasl::client::SaslLogin::start(mechanism, user, password)
            .map_err(|e| ConnectionError::Protocol(e.to_string()))?;
        let mut token = login.first_token().map_err(|e| ConnectionError::Protocol(e.to_string()))?;
        loop {
            // PLAIN's only token (or SCRAM's last) leaves nothing to check
            let last = login.is_done();
            let request = SaslAuthenticateRequest::default().with_auth_bytes(Bytes::from(token));
            let (answer, _) = self.send(&request)?;
            if answer.error_code != 0 {
                return Err(ConnectionError::Protocol(format!(
                    "{}: {}",
                    error_name(answer.error_code),
                    answer.error_message.map(|m| m.to_string()).unwrap_or_default()
                )));
            }
            if last {
                return Ok(());
            }
            match login.step(&answer.auth_bytes).map_err(|e| ConnectionError::Protocol(e.to_string()))? {
                Some(next) => token = next,
                None if login.is_done() => return Ok(()),
                None => return Err(ConnectionError::Protocol("the SASL exchange ended early".into())),
            }
        }
    }

    /// Sends `request` at the highest common version; returns the answer and that version.
    pub fn send<R: Request>(&mut self, request: &R) -> Result<(R::Response, i16), ConnectionError> {
        let version = self.version_of::<R>()?;
        let key = ApiKey::try_from(R::KEY).expect("checked by version_of");
        let mut body = self.exchange(key, version, request)?;
        let response = R::Response::decode(&mut body, version)
            .map_err(|e| ConnectionError::Protocol(format!("cannot decode the {key:?} v{version} answer: {e}")))?;
        Ok((response, version))
    }

    /// ApiVersions at this client's highest version; at the broker's highest
    /// if it refuses that one (it then answers in v0, listing its range).
    fn negotiate(&mut self) -> Result<(), ConnectionError> {
        let ours = ApiVersionsRequest::VERSIONS.max;
        let mut version = ours;
        let mut answer = self.ask_api_versions(version)?;
        if answer.error_code == UNSUPPORTED_VERSION {
            let theirs = answer.api_keys.iter().find(|k| k.api_key == ApiKey::ApiVersions as i16);
            version = theirs.map_or(0, |k| k.max_version.min(ours));
            if version >= ours {
                return Err(ConnectionError::Protocol(format!(
                    "the broker refuses ApiVersions v{ours} but claims to support it"
                )));
            }
            answer = self.ask_api_versions(version)?;
        }
        if answer.error_code != 0 {
            return Err(ConnectionError::Protocol(format!(
                "the broker answered ApiVersions with {}",
                error_name(answer.error_code)
            )));
        }
        self.api_versions = answer;
        self.api_versions_version = version;
        Ok(())
    }

    fn ask_api_versions(&mut self, version: i16) -> Result<ApiVersionsResponse, ConnectionError> {
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        let body = self.exchange(ApiKey::ApiVersions, version, &request)?;
        // A broker that does not know this version answers in v0.
        let decoded = ApiVersionsResponse::decode(&mut body.clone(), version);
        match decoded {
            Ok(answer) if answer.error_code != UNSUPPORTED_VERSION => Ok(answer),
            _ => ApiVersionsResponse::decode(&mut body.clone(), 0)
                .map_err(|e| ConnectionError::Protocol(format!("cannot decode the ApiVersions answer: {e}"))),
        }
    }

    /// Writes one request frame and reads its answer; returns the body after
    /// the response header.
    fn exchange(&mut self, key: ApiKey, version: i16, request: &impl Encodable) -> Result<Bytes, ConnectionError> {
        self.correlation_id = self.correlation_id.wrapping_add(1);
        let header = RequestHeader::default()
            .with_request_api_key(key as i16)
            .with_request_api_version(version)
            .with_correlation_id(self.correlation_id)
            .with_client_id(Some(StrBytes::from_static_str(CLIENT_ID)));
        let encode_error = |e| ConnectionError::Protocol(format!("cannot encode {key:?} v{version}: {e}"));
        let mut frame = BytesMut::new();
        frame.extend_from_slice(&[0; 4]);
        header.encode(&mut frame, key.request_header_version(version)).map_err(encode_error)?;
        request.encode(&mut frame, version).map_err(encode_error)?;
        let length = u32::try_from(frame.len() - 4).expect("a request is far below 4 GiB");
        frame[..4].copy_from_slice(&length.to_be_bytes());
        self.write_all(&frame)?;

        let mut prefix = [0u8; 4];
        self.read_exact(&mut prefix)?;
        let length = u32::from_be_bytes(prefix) as usize;
        if length > RESPONSE_BYTES_MAX {
            return Err(ConnectionError::Protocol(format!(
                "the broker sent a {length}-byte frame (at most {RESPONSE_BYTES_MAX} accepted)"
            )));
        }
        let mut body = vec![0u8; length];
        self.read_exact(&mut body)?;
        let mut body = Bytes::from(body);
        let header = ResponseHeader::decode(&mut body, key.response_header_version(version))
            .map_err(|e| ConnectionError::Protocol(format!("cannot decode the {key:?} response header: {e}")))?;
        if header.correlation_id != self.correlation_id {
            return Err(ConnectionError::Protocol(format!(
                "the broker answered correlation id {} to request {}",
                header.correlation_id, self.correlation_id
            )));
        }
        Ok(body)
    }

    fn remaining(&self) -> Result<Duration, ConnectionError> {
        let left = self.deadline.at.saturating_duration_since(Instant::now());
        if left.is_zero() {
            Err(ConnectionError::TimedOut)
        } else {
            Ok(left)
        }
    }

    fn write_all(&mut self, mut buf: &[u8]) -> Result<(), ConnectionError> {
        while !buf.is_empty() {
            self.stream.socket().set_write_timeout(Some(self.remaining()?))?;
            match self.stream.write(buf) {
                Ok(0) => return Err(ConnectionError::Io(io::ErrorKind::WriteZero.into())),
                Ok(n) => buf = &buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }

    fn read_exact(&mut self, mut buf: &mut [u8]) -> Result<(), ConnectionError> {
        while !buf.is_empty() {
            self.stream.socket().set_read_timeout(Some(self.remaining()?))?;
            match self.stream.read(buf) {
                Ok(0) => {
                    return Err(ConnectionError::Io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the broker closed the connection",
                    )))
                }
                Ok(n) => buf = &mut buf[n..],
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// A TCP connection to the first address of `address` that accepts one.
fn connect(address: &str, deadline: Instant) -> Result<TcpStream, ConnectionError> {
    let resolved: Vec<SocketAddr> =
        address.to_socket_addrs().map_err(|e| ConnectionError::Unreachable(format!("{address}: {e}")))?.collect();
    let mut last = ConnectionError::Unreachable(format!("{address}: the name has no address"));
    for sa in resolved {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(ConnectionError::TimedOut);
        }
        match TcpStream::connect_timeout(&sa, left) {
            Ok(stream) => return Ok(stream),
            Err(e) if e.kind() == io::ErrorKind::ConnectionRefused => {
                last = ConnectionError::Unreachable(client::refused_reason(address))
            }
            Err(e) => last = e.into(),
        }
    }
    Err(last)
}

/// How a command's connections are secured, from its client properties
/// (`--command-config`, `-X`): TLS for SSL and SASL_SSL, a SASL login for
/// SASL_PLAINTEXT and SASL_SSL.
#[derive(Clone, Default)]
pub struct Security {
    tls: Option<Arc<rustls::ClientConfig>>,
    login: Option<(String, String, String)>,
}

impl Security {
    pub fn of(args: &ClientArgs) -> anyhow::Result<Self> {
        Ok(Security { tls: tls_config(args)?, login: sasl_login(args)? })
    }
}

impl BrokerConnection {
    /// [`open`](Self::open) with `security`: TLS, then the SASL login.
    pub fn open_secured(address: &str, deadline: Deadline, security: &Security) -> Result<Self, ConnectionError> {
        let mut conn = Self::open_with(address, deadline, security.tls.as_ref())?;
        if let Some((mechanism, user, password)) = &security.login {
            conn.authenticate(mechanism, user, password)?;
        }
        Ok(conn)
    }
}

/// A connection to the first bootstrap broker (`--brokers`) that answers,
/// within `--timeout`; else the one-line error the other commands give.
pub fn connect_bootstrap(args: &ClientArgs) -> anyhow::Result<BrokerConnection> {
    let security = Security::of(args)?;
    let mut conn = connect_first(args, security.tls.as_ref())?;
    if let Some((mechanism, user, password)) = &security.login {
        conn.authenticate(mechanism, user, password).map_err(|e| conn.error(e))?;
    }
    Ok(conn)
}

fn connect_first(args: &ClientArgs, tls: Option<&Arc<rustls::ClientConfig>>) -> anyhow::Result<BrokerConnection> {
    let started = Instant::now();
    let deadline = Deadline::after(args.timeout());
    let mut unreachable = Vec::new();
    for address in client::bootstrap_addresses(&args.brokers) {
        match BrokerConnection::open_with(&address, deadline, tls) {
            Ok(conn) => return Ok(conn),
            Err(ConnectionError::Unreachable(why)) => unreachable.push(why),
            // No time left for the others.
            Err(ConnectionError::TimedOut) => {
                return Err(anyhow::anyhow!(
                    "cannot reach the cluster at {} (no answer within {:.1}s): {address}: no answer",
                    args.brokers,
                    started.elapsed().as_secs_f64()
                ))
            }
            Err(e) => return Err(anyhow::anyhow!("cannot reach the cluster at {}: {address}: {e}", args.brokers)),
        }
    }
    if unreachable.is_empty() {
        return Err(anyhow::anyhow!("no bootstrap broker given (--brokers)"));
    }
    unreachable.dedup();
    Err(anyhow::anyhow!("cannot reach the cluster at {}: {}", args.brokers, unreachable.join("; ")))
}

/// One broker's failure in one line: `{address}: {why}`, naming `timeout`
/// when it did not answer in time.
pub fn failure_line(address: &str, err: &ConnectionError, timeout: Duration) -> String {
    match err {
        ConnectionError::TimedOut => format!("{address}: no answer within {:.1}s", timeout.as_secs_f64()),
        // Already names the address.
        ConnectionError::Unreachable(why) => why.clone(),
        other => format!("{address}: {other}"),
    }
}

/// This client speaks PLAINTEXT and SASL_PLAINTEXT (PLAIN, SCRAM): refuse
/// `security.protocol=ssl` and the like rather than fail obscurely.
/// The TLS configuration of the client properties when
/// `security.protocol` is SSL or SASL_SSL: librdkafka's keys
/// (`ssl.ca.location`, `ssl.certificate.location` + `ssl.key.location`,
/// `ssl.endpoint.identification.algorithm`) or the Java client's
/// (`ssl.truststore.*`, `ssl.keystore.*`).
fn tls_config(args: &ClientArgs) -> anyhow::Result<Option<Arc<rustls::ClientConfig>>> {
    let protocol = args.client_property("security.protocol")?.unwrap_or_default().to_ascii_lowercase();
    match protocol.as_str() {
        "" | "plaintext" | "sasl_plaintext" => return Ok(None),
        "ssl" | "sasl_ssl" => {}
        other => return Err(anyhow::anyhow!("security.protocol={other} is not one of Kafka's")),
    }
    let props = args.client_properties()?;
    let get = |key: &str| props.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.clone());
    let read = |key: &str| -> anyhow::Result<Option<String>> {
        get(key)
            .map(|path| std::fs::read_to_string(&path).map_err(|e| anyhow::anyhow!("{key}={path}: {e}")))
            .transpose()
    };
    let (cert, key) = (read("ssl.certificate.location")?, read("ssl.key.location")?);
    let settings = vltava_security::SslSettings::from_keys(|k| match k {
        "ssl.truststore.location" => get(k).or_else(|| get("ssl.ca.location")),
        "ssl.keystore.certificate.chain" => get(k).or_else(|| cert.clone()),
        "ssl.keystore.key" => get(k).or_else(|| key.clone()),
        // librdkafka's "none" turns it off, as Java's empty value
        "ssl.endpoint.identification.algorithm" => {
            get(k).map(|v| if v.eq_ignore_ascii_case("none") { String::new() } else { v })
        }
        _ => get(k),
    })
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    let config = vltava_security::tls::client_tls_config(&settings).map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(Some(config))
}

/// The SASL login of the client properties (`security.protocol=SASL_PLAINTEXT`,
/// `sasl.mechanism`, `sasl.username`/`sasl.password` or a `sasl.jaas.config`
/// with `username`/`password`), if they ask for one.
fn sasl_login(args: &ClientArgs) -> anyhow::Result<Option<(String, String, String)>> {
    let protocol = args.client_property("security.protocol")?.unwrap_or_default();
    if !protocol.eq_ignore_ascii_case("sasl_plaintext") && !protocol.eq_ignore_ascii_case("sasl_ssl") {
        return Ok(None);
    }
    let mechanism = match args.client_property("sasl.mechanism")? {
        Some(m) => m,
        None => args.client_property("sasl.mechanisms")?.unwrap_or_else(|| "GSSAPI".into()),
    }
    .to_ascii_uppercase();
    let (mut user, mut password) = (args.client_property("sasl.username")?, args.client_property("sasl.password")?);
    if let Some(jaas) = args.client_property("sasl.jaas.config")? {
        let module =
            vltava_security::sasl::jaas::parse_one(&jaas).map_err(|e| anyhow::anyhow!("sasl.jaas.config: {e}"))?;
        if let Some((u, p)) = module.login() {
            user = user.or(Some(u));
            password = password.or(Some(p));
        }
    }
    match (user, password) {
        (Some(u), Some(p)) => Ok(Some((mechanism, u, p))),
        _ => Err(anyhow::anyhow!(
            "security.protocol={protocol} needs sasl.username and sasl.password (or sasl.jaas.config)"
        )),
    }
}

/// A broker of the cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerAddress {
    pub id: i32,
    pub host: String,
    pub port: i32,
    /// Fenced by the controller (shut down, silent, or its log dir failed).
    pub fenced: bool,
}

impl BrokerAddress {
    pub fn address(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// The cluster's brokers by id, fenced ones included (DescribeCluster v2,
/// as Kafka's admin asks with `includeFencedBrokers`: a broker whose log dir
/// failed is fenced, and is the one to ask); Metadata's live brokers from a
/// broker without DescribeCluster v2.
pub fn brokers(conn: &mut BrokerConnection) -> anyhow::Result<Vec<BrokerAddress>> {
    let mut brokers: Vec<BrokerAddress> = if conn.version_of::<DescribeClusterRequest>().is_ok_and(|v| v >= 2) {
        let request = DescribeClusterRequest::default().with_include_fenced_brokers(true);
        let (answer, _) = conn.send(&request).map_err(|e| conn.error(e))?;
        if answer.error_code != 0 {
            return Err(anyhow::anyhow!("{}: DescribeCluster: {}", conn.address(), error_name(answer.error_code)));
        }
        answer
            .brokers
            .iter()
            .map(|b| BrokerAddress {
                id: b.broker_id.0,
                host: b.host.as_str().to_string(),
                port: b.port,
                fenced: b.is_fenced,
            })
            .collect()
    } else {
        let request = MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(Some(Vec::new()));
        let (answer, _) = conn.send(&request).map_err(|e| conn.error(e))?;
        answer
            .brokers
            .iter()
            .map(|b| BrokerAddress { id: b.node_id.0, host: b.host.as_str().to_string(), port: b.port, fenced: false })
            .collect()
    };
    brokers.sort_by_key(|b| b.id);
    Ok(brokers)
}

/// The partitions of some topics, and the topics that do not exist.
pub struct TopicPartitions {
    pub partitions: Vec<(String, Vec<i32>)>,
    pub missing: Vec<String>,
}

/// The partitions of `topics` from Metadata, never creating a topic.
pub fn topic_partitions(conn: &mut BrokerConnection, topics: &[String]) -> anyhow::Result<TopicPartitions> {
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::TopicName;
    let request = MetadataRequest::default().with_allow_auto_topic_creation(false).with_topics(Some(
        topics
            .iter()
            .map(|t| MetadataRequestTopic::default().with_name(Some(TopicName(StrBytes::from_string(t.clone())))))
            .collect(),
    ));
    let (answer, _) = conn.send(&request).map_err(|e| conn.error(e))?;
    let mut partitions = Vec::new();
    let mut missing = Vec::new();
    for name in topics {
        let found = answer.topics.iter().find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == name));
        match found {
            Some(t) if t.error_code == 0 => {
                let mut ids: Vec<i32> = t.partitions.iter().map(|p| p.partition_index).collect();
                ids.sort_unstable();
                partitions.push((name.clone(), ids));
            }
            Some(t) if t.error_code != ResponseError::UnknownTopicOrPartition.code() => {
                return Err(anyhow::anyhow!("topic {name:?}: {}", error_name(t.error_code)))
            }
            _ => missing.push(name.clone()),
        }
    }
    Ok(TopicPartitions { partitions, missing })
}

/// A broker's refusal as one error: `address: ERROR_NAME: message`.
pub fn refused(address: &str, code: i16, message: Option<&str>) -> anyhow::Error {
    anyhow::anyhow!("{address}: {}{}", error_name(code), message.map(|m| format!(": {m}")).unwrap_or_default())
}

/// Kafka's name of an error code, e.g. `KAFKA_STORAGE_ERROR` for 56.
pub fn error_name(code: i16) -> String {
    vltava_protocol::error_name(code)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_names_are_kafkas() {
        assert_eq!(error_name(56), "KAFKA_STORAGE_ERROR");
        assert_eq!(error_name(3), "UNKNOWN_TOPIC_OR_PARTITION");
        assert_eq!(error_name(-1), "UNKNOWN_SERVER_ERROR");
        assert_eq!(error_name(0), "NONE");
        assert_eq!(error_name(9999), "error code 9999");
    }

    #[test]
    fn a_silent_listener_times_out_at_the_deadline() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let budget = Duration::from_millis(300);
        let started = Instant::now();
        let result = BrokerConnection::open(&address, Deadline::after(budget));
        assert!(matches!(result, Err(ConnectionError::TimedOut)), "{:?}", result.err());
        assert!(started.elapsed() >= budget, "gave up after {:?}", started.elapsed());
        let line = failure_line(&address, &ConnectionError::TimedOut, budget);
        assert_eq!(line, format!("{address}: no answer within 0.3s"));
    }

    #[test]
    fn a_closed_port_is_unreachable() {
        // Port 1 is privileged and unused on test machines.
        let result = BrokerConnection::open("127.0.0.1:1", Deadline::after(Duration::from_secs(5)));
        match result {
            Err(ConnectionError::Unreachable(why)) => assert!(why.contains("connection refused"), "{why}"),
            other => panic!("expected Unreachable, got {:?}", other.err()),
        }
    }
}
