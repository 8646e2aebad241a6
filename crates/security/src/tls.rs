//! TLS with rustls (the `ring` provider: no C build) configured from
//! [`SslSettings`]: the server side of a listener ([`TlsAcceptorSource`])
//! and the client side of inter-broker connections
//! ([`TlsConnectorSource`]).
//!
//! Both rebuild their configuration when the keystore or truststore file
//! changes (its bytes, checked at most every [`RELOAD_CHECK_INTERVAL`] when
//! a connection starts): a rotated certificate reaches new connections
//! without a restart, and connections already open keep theirs. A file
//! that no longer loads keeps the previous configuration, with a warning.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};

use crate::principal::{subject_dn, KafkaPrincipal, PrincipalMapper};
use crate::ssl_settings::{ClientAuth, SslSettings, StoreType};
use crate::SecurityError;

/// How often, at most, the key and trust store files are compared with
/// what the configuration was built from.
pub const RELOAD_CHECK_INTERVAL: Duration = Duration::from_secs(1);

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The server side of a TLS listener.
pub struct TlsAcceptorSource {
    config: Reloading<tokio_rustls::TlsAcceptor>,
    mapper: PrincipalMapper,
}

impl TlsAcceptorSource {
    /// Loads the keystore (and truststore); an error says what to fix.
    pub fn new(settings: SslSettings) -> Result<Self, SecurityError> {
        let mapper = PrincipalMapper::parse(&settings.principal_mapping_rules)?;
        let config = Reloading::new(settings, |s| Ok(tokio_rustls::TlsAcceptor::from(Arc::new(server_config(s)?))))?;
        Ok(Self { config, mapper })
    }

    /// The acceptor for a new connection (rebuilt if a store file changed).
    pub fn acceptor(&self) -> tokio_rustls::TlsAcceptor {
        self.config.current()
    }

    /// The principal of a connection whose handshake completed: the
    /// mapped subject of the client's certificate, `User:ANONYMOUS`
    /// without one. An error (no mapping rule applies) refuses the
    /// connection, as in Kafka.
    pub fn principal(&self, connection: &rustls::ServerConnection) -> Result<KafkaPrincipal, SecurityError> {
        match connection.peer_certificates().and_then(|chain| chain.first()) {
            None => Ok(KafkaPrincipal::anonymous()),
            Some(cert) => Ok(KafkaPrincipal::user(self.mapper.map(&subject_dn(cert)?)?)),
        }
    }
}

/// The client side of TLS connections to other brokers.
pub struct TlsConnectorSource {
    config: Reloading<tokio_rustls::TlsConnector>,
}

impl TlsConnectorSource {
    pub fn new(settings: SslSettings) -> Result<Self, SecurityError> {
        let config = Reloading::new(settings, |s| Ok(tokio_rustls::TlsConnector::from(Arc::new(client_config(s)?))))?;
        Ok(Self { config })
    }

    pub fn connector(&self) -> tokio_rustls::TlsConnector {
        self.config.current()
    }

    /// The name a server certificate is checked against, from a host
    /// name or IP address.
    pub fn server_name(host: &str) -> Result<ServerName<'static>, SecurityError> {
        ServerName::try_from(host.trim_start_matches('[').trim_end_matches(']').to_string())
            .map_err(|e| SecurityError::new(format!("{host} is not a host name TLS can check: {e}")))
    }
}

/// A value built from settings, rebuilt when the files it was built from
/// change.
struct Reloading<T: Clone> {
    settings: SslSettings,
    files: Vec<PathBuf>,
    build: fn(&SslSettings) -> Result<T, SecurityError>,
    state: Mutex<ReloadState<T>>,
}

struct ReloadState<T> {
    value: T,
    contents: Vec<Option<Vec<u8>>>,
    checked: Instant,
}

impl<T: Clone> Reloading<T> {
    fn new(settings: SslSettings, build: fn(&SslSettings) -> Result<T, SecurityError>) -> Result<Self, SecurityError> {
        let files = settings.watched_files();
        let contents = read_all(&files);
        let value = build(&settings)?;
        let state = Mutex::new(ReloadState { value, contents, checked: Instant::now() });
        Ok(Self { settings, files, build, state })
    }

    fn current(&self) -> T {
        let mut state = self.state.lock();
        if state.checked.elapsed() >= RELOAD_CHECK_INTERVAL && !self.files.is_empty() {
            state.checked = Instant::now();
            let contents = read_all(&self.files);
            if contents != state.contents {
                state.contents = contents;
                match (self.build)(&self.settings) {
                    Ok(value) => {
                        tracing::info!(files = ?self.files, "TLS key or trust store changed: new connections use it");
                        state.value = value;
                    }
                    Err(e) => {
                        tracing::warn!(files = ?self.files, error = %e, "TLS key or trust store changed but does not load: keeping the previous one")
                    }
                }
            }
        }
        state.value.clone()
    }
}

fn read_all(files: &[PathBuf]) -> Vec<Option<Vec<u8>>> {
    files.iter().map(|f| std::fs::read(f).ok()).collect()
}

fn server_config(s: &SslSettings) -> Result<ServerConfig, SecurityError> {
    let (chain, key) = keystore(s)?
        .ok_or_else(|| SecurityError::new("an SSL listener needs ssl.keystore.location (or ssl.keystore.key)"))?;
    let builder = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&s.enabled_protocols)
        .map_err(|e| SecurityError::new(format!("ssl.enabled.protocols: {e}")))?;
    let builder = match s.client_auth {
        ClientAuth::None => builder.with_no_client_auth(),
        auth => {
            let roots = truststore(s)?.ok_or_else(|| {
                SecurityError::new(
                    "ssl.client.auth=requested/required needs ssl.truststore.location to check client certificates",
                )
            })?;
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider());
            let verifier = if auth == ClientAuth::Requested { verifier.allow_unauthenticated() } else { verifier };
            let verifier = verifier.build().map_err(|e| SecurityError::new(format!("ssl.truststore: {e}")))?;
            builder.with_client_cert_verifier(verifier)
        }
    };
    builder.with_single_cert(chain, key).map_err(|e| SecurityError::new(format!("ssl.keystore: {e}")))
}

/// A rustls client configuration from `ssl.*` settings (truststore,
/// optional keystore for mutual TLS, endpoint identification), for
/// clients that are not on the tokio runtime (the command-line tools).
pub fn client_tls_config(s: &SslSettings) -> Result<Arc<ClientConfig>, SecurityError> {
    client_config(s).map(Arc::new)
}

fn client_config(s: &SslSettings) -> Result<ClientConfig, SecurityError> {
    let roots = Arc::new(truststore(s)?.ok_or_else(|| {
        SecurityError::new("connecting to an SSL listener needs ssl.truststore.location (the CA that signed it)")
    })?);
    let inner = WebPkiServerVerifier::builder_with_provider(roots, provider())
        .build()
        .map_err(|e| SecurityError::new(format!("ssl.truststore: {e}")))?;
    let verifier: Arc<dyn ServerCertVerifier> =
        if s.endpoint_identification { inner } else { Arc::new(AnyServerName { inner }) };
    let builder = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&s.enabled_protocols)
        .map_err(|e| SecurityError::new(format!("ssl.enabled.protocols: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match keystore(s)? {
        Some((chain, key)) => {
            builder.with_client_auth_cert(chain, key).map_err(|e| SecurityError::new(format!("ssl.keystore: {e}")))
        }
        None => Ok(builder.with_no_client_auth()),
    }
}

/// `ssl.endpoint.identification.algorithm=` (empty): the chain is checked
/// against the truststore, the server's name is not.
#[derive(Debug)]
struct AnyServerName {
    inner: Arc<WebPkiServerVerifier>,
}

impl ServerCertVerifier for AnyServerName {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        match self.inner.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now) {
            Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

type KeyPair = (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>);

fn read_file(key: &str, path: &Path) -> Result<Vec<u8>, SecurityError> {
    std::fs::read(path).map_err(|e| SecurityError::new(format!("{key}={}: {e}", path.display())))
}

/// This side's certificate chain and private key, if a keystore is set.
fn keystore(s: &SslSettings) -> Result<Option<KeyPair>, SecurityError> {
    if let (Some(key), Some(chain)) = (&s.keystore_key, &s.keystore_certificate_chain) {
        let (key, chain) = (inline_pem(key), inline_pem(chain));
        return pem_key_pair("ssl.keystore.key", key.as_bytes(), chain.as_bytes()).map(Some);
    }
    let Some(path) = &s.keystore_location else { return Ok(None) };
    let bytes = read_file("ssl.keystore.location", path)?;
    let what = |e: String| SecurityError::new(format!("ssl.keystore.location={}: {e}", path.display()));
    match s.keystore_type {
        StoreType::Pem => pem_key_pair("ssl.keystore.location", &bytes, &bytes).map(Some),
        StoreType::Pkcs12 => {
            let password = s.keystore_password.as_deref().unwrap_or("");
            let store = p12_keystore::KeyStore::from_pkcs12(&bytes, password, p12_keystore::Pkcs12ImportPolicy::Strict)
                .or_else(|e| match s.key_password.as_deref() {
                    Some(key_password) if key_password != password => p12_keystore::KeyStore::from_pkcs12(
                        &bytes,
                        key_password,
                        p12_keystore::Pkcs12ImportPolicy::Strict,
                    ),
                    _ => Err(e),
                })
                .map_err(|e| what(format!("not a PKCS12 keystore for ssl.keystore.password: {e}")))?;
            let (_, chain) =
                store.private_key_chain().ok_or_else(|| what("no private key entry with its certificate".into()))?;
            let certs = chain.certs().iter().map(|c| CertificateDer::from(c.as_der().to_vec())).collect();
            let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec()));
            Ok(Some((certs, key)))
        }
    }
}

fn pem_key_pair(key_name: &str, key_pem: &[u8], chain_pem: &[u8]) -> Result<KeyPair, SecurityError> {
    let err = |e: String| SecurityError::new(format!("{key_name}: {e}"));
    let certs = CertificateDer::pem_slice_iter(chain_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| err(format!("unreadable PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(err("no PEM certificate (-----BEGIN CERTIFICATE-----)".into()));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        let encrypted = String::from_utf8_lossy(key_pem).contains("ENCRYPTED PRIVATE KEY");
        err(if encrypted {
            "the private key is encrypted: store it unencrypted (PEM) or use ssl.keystore.type=PKCS12".into()
        } else {
            format!("no PEM private key: {e}")
        })
    })?;
    Ok((certs, key))
}

/// The certificates to trust, if a truststore is set.
fn truststore(s: &SslSettings) -> Result<Option<RootCertStore>, SecurityError> {
    let (key, certs) = if let Some(pem) = &s.truststore_certificates {
        ("ssl.truststore.certificates", pem_certs("ssl.truststore.certificates", inline_pem(pem).as_bytes())?)
    } else if let Some(path) = &s.truststore_location {
        let bytes = read_file("ssl.truststore.location", path)?;
        let certs = match s.truststore_type {
            StoreType::Pem => pem_certs("ssl.truststore.location", &bytes)?,
            StoreType::Pkcs12 => {
                let password = s.truststore_password.as_deref().unwrap_or("");
                let archive = p12_keystore::Pkcs12Archive::from_pkcs12(&bytes, password).map_err(|e| {
                    SecurityError::new(format!(
                        "ssl.truststore.location={}: not a PKCS12 truststore for ssl.truststore.password: {e}",
                        path.display()
                    ))
                })?;
                archive.certs.iter().map(|c| CertificateDer::from(c.cert.as_der().to_vec())).collect()
            }
        };
        ("ssl.truststore.location", certs)
    } else {
        return Ok(None);
    };
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots.add(cert).map_err(|e| SecurityError::new(format!("{key}: {e}")))?;
    }
    if roots.is_empty() {
        return Err(SecurityError::new(format!("{key}: no certificate")));
    }
    Ok(Some(roots))
}

/// An inline PEM value as written in a properties file, where Java's line
/// continuations have joined its lines: each `-----BEGIN ...-----` block
/// rewritten with its base64 body on lines of 64 characters.
fn inline_pem(value: &str) -> String {
    static BLOCK: std::sync::OnceLock<regex::Regex> = std::sync::OnceLock::new();
    let block = BLOCK.get_or_init(|| {
        regex::Regex::new(r"(?s)-----BEGIN ([A-Z0-9 ]+)-----(.*?)-----END ([A-Z0-9 ]+)-----").expect("valid")
    });
    let mut out = String::with_capacity(value.len() + value.len() / 64 + 64);
    for m in block.captures_iter(value) {
        let body: String = m[2].chars().filter(|c| !c.is_whitespace()).collect();
        out.push_str(&format!("-----BEGIN {}-----\n", &m[1]));
        for line in body.as_bytes().chunks(64) {
            out.push_str(&String::from_utf8_lossy(line));
            out.push('\n');
        }
        out.push_str(&format!("-----END {}-----\n", &m[3]));
    }
    out
}

fn pem_certs(key: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, SecurityError> {
    CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| SecurityError::new(format!("{key}: unreadable PEM certificate: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inline_pem_joined_by_line_continuations_is_rewrapped() {
        let body = "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0NTY3ODk=";
        let one_line = format!("-----BEGIN CERTIFICATE-----{body}-----END CERTIFICATE----- -----BEGIN CERTIFICATE----- {body} -----END CERTIFICATE-----");
        let pem = inline_pem(&one_line);
        assert!(pem.lines().all(|l| l.len() <= 64 || l.starts_with("-----")), "{pem}");
        let certs = pem_certs("k", pem.as_bytes()).unwrap();
        assert_eq!(certs.len(), 2);
        assert_eq!(certs[0].as_ref(), b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789");
        // a PEM value with its own line breaks comes out the same
        assert_eq!(inline_pem(&pem), pem);
    }
}
