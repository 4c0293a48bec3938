//! Test certificates: CAs and leaf certificates written as PEM files (rcgen).

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};

pub struct Ca {
    issuer: CertifiedIssuer<'static, KeyPair>,
    pub pem: PathBuf,
}

/// A certificate and its key, as files.
#[derive(Clone)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Ca {
    /// A self-signed CA whose certificate is written to `dir/<name>-ca.pem`.
    pub fn new(dir: &Path, name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, format!("{name} CA"));
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let pem = dir.join(format!("{name}-ca.pem"));
        std::fs::write(&pem, issuer.pem()).unwrap();
        Ca { issuer, pem }
    }

    /// A certificate for `cn`, valid for the loopback names, written to `dir/<file>.{crt,key}`.
    pub fn leaf(&self, dir: &Path, file: &str, cn: &str) -> Leaf {
        let mut params = CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        params.distinguished_name.push(DnType::OrganizationName, "Grove Tests");
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let leaf = Leaf { cert: dir.join(format!("{file}.crt")), key: dir.join(format!("{file}.key")) };
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        leaf
    }
}

impl Leaf {
    /// Overwrites `self`'s files with `other`'s (a certificate rotation).
    pub fn replace_with(&self, other: &Leaf) {
        // Key first, then certificate: the reloader may see a mismatched pair in between
        // and must keep the old one until both are in place.
        std::fs::copy(&other.key, &self.key).unwrap();
        std::fs::copy(&other.cert, &self.cert).unwrap();
    }
}
