//! The server's certificate authority: created on first start, it signs the
//! server's own certificate and each agent's client certificate from the
//! agent's CSR (the agent's private key never leaves its host).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, CertificateSigningRequestParams, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair, KeyUsagePurpose, PublicKeyData,
};

#[derive(Debug, thiserror::Error)]
pub enum PkiError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error("certificate: {0}")]
    Cert(#[from] rcgen::Error),
    #[error("the system random number generator failed")]
    Random,
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> PkiError + '_ {
    move |source| PkiError::Io { path: path.to_path_buf(), source }
}

/// The CA and the server's own certificate, as PEM.
pub struct Pki {
    pub ca_pem: String,
    ca_key_pem: String,
    pub server_cert_pem: String,
    pub server_key_pem: String,
}

/// File names in the data directory.
pub const CA_CERT: &str = "ca.pem";
const CA_KEY: &str = "ca.key";
const SERVER_CERT: &str = "server.pem";
const SERVER_KEY: &str = "server.key";

/// Writes a file with a mode, atomically (temp file, fsync, rename).
pub fn write_secret(path: &Path, text: &str, mode: u32) -> Result<(), PkiError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let tmp = path.with_extension("tmp");
    let mut f =
        std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(mode).open(&tmp).map_err(io(&tmp))?;
    f.write_all(text.as_bytes()).and_then(|()| f.sync_all()).map_err(io(&tmp))?;
    std::fs::rename(&tmp, path).map_err(io(path))
}

impl Pki {
    /// Loads the CA and server certificate from `dir`, creating whatever is
    /// missing. `names` are the server certificate's subject alternative names.
    pub fn load_or_create(dir: &Path, names: &[String]) -> Result<Pki, PkiError> {
        let read = |n: &str| std::fs::read_to_string(dir.join(n)).ok();
        let (ca_pem, ca_key_pem) = match (read(CA_CERT), read(CA_KEY)) {
            (Some(c), Some(k)) => (c, k),
            _ => {
                let key = KeyPair::generate()?;
                let mut p = CertificateParams::new(Vec::<String>::new())?;
                p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
                p.distinguished_name = dn("tend CA");
                p.key_usages =
                    vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
                p.not_after = rcgen::date_time_ymd(2046, 1, 1);
                let cert = p.self_signed(&key)?;
                let (c, k) = (cert.pem(), key.serialize_pem());
                write_secret(&dir.join(CA_KEY), &k, 0o600)?;
                write_secret(&dir.join(CA_CERT), &c, 0o644)?;
                (c, k)
            }
        };
        let mut pki = Pki { ca_pem, ca_key_pem, server_cert_pem: String::new(), server_key_pem: String::new() };
        match (read(SERVER_CERT), read(SERVER_KEY)) {
            (Some(c), Some(k)) => {
                pki.server_cert_pem = c;
                pki.server_key_pem = k;
            }
            _ => {
                let key = KeyPair::generate()?;
                let mut p = CertificateParams::new(names.to_vec())?;
                p.distinguished_name = dn("tend-server");
                p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
                p.not_after = rcgen::date_time_ymd(2036, 1, 1);
                let cert = p.signed_by(&key, &pki.issuer()?)?;
                pki.server_cert_pem = cert.pem();
                pki.server_key_pem = key.serialize_pem();
                write_secret(&dir.join(SERVER_KEY), &pki.server_key_pem, 0o600)?;
                write_secret(&dir.join(SERVER_CERT), &pki.server_cert_pem, 0o644)?;
            }
        }
        Ok(pki)
    }

    fn issuer(&self) -> Result<Issuer<'static, KeyPair>, PkiError> {
        let key = KeyPair::from_pem(&self.ca_key_pem)?;
        Ok(Issuer::from_ca_cert_pem(&self.ca_pem, key)?)
    }

    /// Signs an agent's CSR as a client certificate whose subject is the node
    /// id. Returns the certificate PEM and the SHA-256 of the CSR's public key.
    pub fn sign_agent(&self, csr_pem: &str, node_id: &str) -> Result<(String, String), PkiError> {
        let mut csr = CertificateSigningRequestParams::from_pem(csr_pem)?;
        let key_fp = sha256_hex(csr.public_key.der_bytes());
        let mut p = CertificateParams::new(Vec::<String>::new())?;
        p.distinguished_name = dn(node_id);
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.not_after = rcgen::date_time_ymd(2036, 1, 1);
        csr.params = p;
        let cert = csr.signed_by(&self.issuer()?)?;
        Ok((cert.pem(), key_fp))
    }
}

fn dn(cn: &str) -> DistinguishedName {
    let mut d = DistinguishedName::new();
    d.push(DnType::CommonName, cn);
    d
}

/// Lower-case hex SHA-256.
pub fn sha256_hex(bytes: &[u8]) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// `n` random bytes as hex, from the system's CSPRNG.
pub fn random_hex(n: usize) -> Result<String, PkiError> {
    use aws_lc_rs::rand::SecureRandom;
    let mut buf = vec![0u8; n];
    aws_lc_rs::rand::SystemRandom::new().fill(&mut buf).map_err(|_| PkiError::Random)?;
    Ok(buf.iter().map(|b| format!("{b:02x}")).collect())
}
