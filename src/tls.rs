//! TLS for Reactor's HTTP clients (ClickHouse, the schema registry), through
//! the system's OpenSSL: the system's CA certificates, plus those of an
//! optional PEM bundle (`<section>.tls.ca_file`) for a private CA. Kafka's
//! TLS is librdkafka's own, set up from `[kafka.tls]` in
//! [`crate::kafka::consumer::security_properties`].

use std::path::{Path, PathBuf};

/// Why a TLS client could not be set up.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TlsError {
    /// The CA file could not be read.
    #[error("cannot read the CA file {path:?}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CA file holds no PEM certificate, or a broken one.
    #[error("{path:?} is not a PEM file of CA certificates (\"-----BEGIN CERTIFICATE-----\" blocks): {reason}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What the parser said.
        reason: String,
    },
    /// OpenSSL refused the configuration.
    #[error("cannot set up TLS: {0}")]
    Setup(String),
}

/// The certificates of the PEM bundle `ca_file`, parsed by `parse` (each TLS
/// stack has its own certificate type); an error if there are none.
fn ca_certificates<T, E: std::fmt::Display>(
    ca_file: &str,
    parse: impl FnOnce(&[u8]) -> Result<Vec<T>, E>,
) -> Result<Vec<T>, TlsError> {
    let pem = std::fs::read(ca_file).map_err(|source| TlsError::Read {
        path: ca_file.into(),
        source,
    })?;
    let parse_error = |reason: String| TlsError::Parse {
        path: Path::new(ca_file).into(),
        reason,
    };
    let certificates = parse(&pem).map_err(|e| parse_error(e.to_string()))?;
    if certificates.is_empty() {
        return Err(parse_error("no certificate found".into()));
    }
    Ok(certificates)
}

/// A TLS connector trusting the system's CAs and those in `ca_file` (none
/// when empty), for hyper-based clients.
pub fn connector(ca_file: &str) -> Result<native_tls::TlsConnector, TlsError> {
    let mut builder = native_tls::TlsConnector::builder();
    if !ca_file.is_empty() {
        for certificate in ca_certificates(ca_file, native_tls::Certificate::stack_from_pem)? {
            builder.add_root_certificate(certificate);
        }
    }
    builder.build().map_err(|e| TlsError::Setup(e.to_string()))
}

/// A reqwest client builder trusting the system's CAs and those in `ca_file`
/// (none when empty).
pub fn reqwest_builder(ca_file: &str) -> Result<reqwest::ClientBuilder, TlsError> {
    let mut builder = reqwest::Client::builder();
    if !ca_file.is_empty() {
        for certificate in ca_certificates(ca_file, reqwest::Certificate::from_pem_bundle)? {
            builder = builder.add_root_certificate(certificate);
        }
    }
    Ok(builder)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_ca_file_means_the_system_roots() {
        assert!(connector("").is_ok());
        assert!(reqwest_builder("").is_ok());
    }

    #[test]
    fn a_file_without_certificates_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let path = path.to_str().unwrap();
        let err = connector(path).unwrap_err().to_string();
        assert!(
            err.contains("is not a PEM file of CA certificates"),
            "{err}"
        );
        let err = reqwest_builder(path).unwrap_err().to_string();
        assert!(
            err.contains("is not a PEM file of CA certificates"),
            "{err}"
        );
        let err = connector("/nonexistent/ca.pem").unwrap_err().to_string();
        assert!(err.starts_with("cannot read the CA file"), "{err}");
    }
}
