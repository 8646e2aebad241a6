//! One listener's TLS settings with Kafka's `ssl.*` keys. The broker looks
//! each key up as `listener.name.<listener>.<key>` first, then `<key>`
//! (Kafka's per-listener overrides); this module only reads the values.

use std::path::PathBuf;

use rustls::SupportedProtocolVersion;

use crate::SecurityError;

/// `ssl.keystore.type` / `ssl.truststore.type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreType {
    Pem,
    Pkcs12,
}

/// `ssl.client.auth`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    None,
    Requested,
    Required,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SslSettings {
    pub keystore_type: StoreType,
    /// `ssl.keystore.location`: PEM (private key and certificate chain in
    /// one file) or PKCS12.
    pub keystore_location: Option<PathBuf>,
    /// `ssl.keystore.key` / `ssl.keystore.certificate.chain`: inline PEM.
    pub keystore_key: Option<String>,
    pub keystore_certificate_chain: Option<String>,
    /// `ssl.keystore.password` (PKCS12), `ssl.key.password`.
    pub keystore_password: Option<String>,
    pub key_password: Option<String>,
    pub truststore_type: StoreType,
    pub truststore_location: Option<PathBuf>,
    /// `ssl.truststore.certificates`: inline PEM.
    pub truststore_certificates: Option<String>,
    pub truststore_password: Option<String>,
    pub client_auth: ClientAuth,
    /// `ssl.enabled.protocols`: TLSv1.2 and/or TLSv1.3.
    pub enabled_protocols: Vec<&'static SupportedProtocolVersion>,
    /// `ssl.principal.mapping.rules`, as given.
    pub principal_mapping_rules: String,
    /// `ssl.endpoint.identification.algorithm`: `https` (the default)
    /// checks the server's name against its certificate; empty does not.
    pub endpoint_identification: bool,
}

impl SslSettings {
    /// Reads the settings through `get(key)`, which gives the value of a
    /// Kafka `ssl.*` key (already resolved for the listener), if set.
    pub fn from_keys(get: impl Fn(&str) -> Option<String>) -> Result<Self, SecurityError> {
        let text = |key: &str| get(key).map(|v| v.trim().to_string()).filter(|v| !v.is_empty());
        let store_type = |key: &str| {
            match text(key).as_deref() {
            None => Ok(StoreType::Pem),
            Some(t) if t.eq_ignore_ascii_case("PEM") => Ok(StoreType::Pem),
            Some(t) if t.eq_ignore_ascii_case("PKCS12") => Ok(StoreType::Pkcs12),
            Some(t) if t.eq_ignore_ascii_case("JKS") => Err(SecurityError::new(format!(
                "{key}=JKS is not supported: convert the store to PKCS12 (keytool -importkeystore -deststoretype PKCS12) or PEM"
            ))),
            Some(t) => Err(SecurityError::new(format!("{key}={t}: expected PEM or PKCS12"))),
        }
        };
        let client_auth = match text("ssl.client.auth").as_deref() {
            None => ClientAuth::None,
            Some(v) if v.eq_ignore_ascii_case("none") => ClientAuth::None,
            Some(v) if v.eq_ignore_ascii_case("requested") => ClientAuth::Requested,
            Some(v) if v.eq_ignore_ascii_case("required") => ClientAuth::Required,
            Some(v) => {
                return Err(SecurityError::new(format!("ssl.client.auth={v}: expected none, requested or required")))
            }
        };
        let enabled_protocols = match text("ssl.enabled.protocols") {
            None => vec![&rustls::version::TLS13, &rustls::version::TLS12],
            Some(list) => {
                let mut versions = Vec::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    match name {
                        "TLSv1.3" => versions.push(&rustls::version::TLS13),
                        "TLSv1.2" => versions.push(&rustls::version::TLS12),
                        "TLSv1" | "TLSv1.1" | "SSLv3" => {
                            tracing::warn!(protocol = name, "ssl.enabled.protocols: insecure protocol ignored")
                        }
                        other => {
                            return Err(SecurityError::new(format!(
                                "ssl.enabled.protocols: unknown protocol {other} (expected TLSv1.2, TLSv1.3)"
                            )))
                        }
                    }
                }
                if versions.is_empty() {
                    return Err(SecurityError::new(format!("ssl.enabled.protocols={list}: enable TLSv1.2 or TLSv1.3")));
                }
                versions
            }
        };
        let endpoint_identification = match get("ssl.endpoint.identification.algorithm") {
            None => true,
            Some(v) if v.trim().is_empty() => false,
            Some(v) if v.trim().eq_ignore_ascii_case("https") => true,
            Some(v) => {
                return Err(SecurityError::new(format!(
                    "ssl.endpoint.identification.algorithm={v}: expected https or empty"
                )))
            }
        };
        let settings = Self {
            keystore_type: store_type("ssl.keystore.type")?,
            keystore_location: text("ssl.keystore.location").map(PathBuf::from),
            keystore_key: text("ssl.keystore.key"),
            keystore_certificate_chain: text("ssl.keystore.certificate.chain"),
            keystore_password: get("ssl.keystore.password"),
            key_password: get("ssl.key.password"),
            truststore_type: store_type("ssl.truststore.type")?,
            truststore_location: text("ssl.truststore.location").map(PathBuf::from),
            truststore_certificates: text("ssl.truststore.certificates"),
            truststore_password: get("ssl.truststore.password"),
            client_auth,
            enabled_protocols,
            principal_mapping_rules: text("ssl.principal.mapping.rules").unwrap_or_else(|| "DEFAULT".into()),
            endpoint_identification,
        };
        crate::PrincipalMapper::parse(&settings.principal_mapping_rules)?;
        if settings.keystore_location.is_some() && settings.keystore_key.is_some() {
            return Err(SecurityError::new("set either ssl.keystore.location or ssl.keystore.key, not both"));
        }
        if settings.keystore_key.is_some() != settings.keystore_certificate_chain.is_some() {
            return Err(SecurityError::new("ssl.keystore.key and ssl.keystore.certificate.chain go together"));
        }
        if settings.keystore_key.is_some() && settings.keystore_type != StoreType::Pem {
            return Err(SecurityError::new("inline ssl.keystore.key needs ssl.keystore.type=PEM"));
        }
        Ok(settings)
    }

    /// Whether a keystore (this side's certificate) is configured.
    pub fn has_keystore(&self) -> bool {
        self.keystore_location.is_some() || self.keystore_key.is_some()
    }

    /// Whether a truststore (the certificates to trust) is configured.
    pub fn has_truststore(&self) -> bool {
        self.truststore_location.is_some() || self.truststore_certificates.is_some()
    }

    /// The files whose change means the configuration must be rebuilt.
    pub fn watched_files(&self) -> Vec<PathBuf> {
        self.keystore_location.iter().chain(self.truststore_location.iter()).cloned().collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(pairs: &[(&str, &str)]) -> Result<SslSettings, SecurityError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        SslSettings::from_keys(|k| map.get(k).cloned())
    }

    #[test]
    fn defaults_are_kafkas() {
        let s = settings(&[]).unwrap();
        assert_eq!(
            (s.keystore_type, s.truststore_type, s.client_auth),
            (StoreType::Pem, StoreType::Pem, ClientAuth::None)
        );
        assert_eq!(s.enabled_protocols.len(), 2);
        assert!(s.endpoint_identification);
        assert_eq!(s.principal_mapping_rules, "DEFAULT");
    }

    #[test]
    fn values_are_checked() {
        let s = settings(&[
            ("ssl.keystore.type", "pkcs12"),
            ("ssl.client.auth", "required"),
            ("ssl.enabled.protocols", "TLSv1.3"),
            ("ssl.endpoint.identification.algorithm", ""),
        ])
        .unwrap();
        assert_eq!((s.keystore_type, s.client_auth), (StoreType::Pkcs12, ClientAuth::Required));
        assert_eq!(s.enabled_protocols.len(), 1);
        assert!(!s.endpoint_identification);
        assert!(settings(&[("ssl.keystore.type", "JKS")]).unwrap_err().0.contains("PKCS12"));
        assert!(settings(&[("ssl.client.auth", "maybe")]).is_err());
        assert!(settings(&[("ssl.enabled.protocols", "TLSv1.1")]).is_err());
        assert!(settings(&[("ssl.keystore.key", "k")]).unwrap_err().0.contains("certificate.chain"));
        assert!(settings(&[("ssl.principal.mapping.rules", "RULE:broken")]).is_err());
    }
}
