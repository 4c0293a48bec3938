//! `--console`: what the web console on the admin port may do.

/// What the web console may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    Off { reason: String },
    ReadOnly { reason: String },
    ReadWrite,
}

impl Console {
    /// The mode for a `--console` value, given whether the admin port listens on loopback
    /// and whether the client port requires client certificates.
    pub fn resolve(value: &str, admin_on_loopback: bool, client_certs_required: bool) -> Result<Console, String> {
        match value {
            "off" => Ok(Console::Off { reason: "--console off".into() }),
            "read-only" => Ok(Console::ReadOnly { reason: "the server runs with --console read-only".into() }),
            "on" => Ok(Console::ReadWrite),
            "auto" if admin_on_loopback => Ok(Console::ReadWrite),
            // The admin port is plain HTTP: where the client port admits only verified
            // certificates, serving the tree on it would go around that rule.
            "auto" if client_certs_required => Ok(Console::Off {
                reason: "the client port requires client certificates and the admin port is reachable from other \
                         hosts without them (--console on to serve it anyway)"
                    .into(),
            }),
            // Changes through a console anyone on the network can reach are one open port
            // away from vandalism of every node whose ACL is open (most are, as in ZooKeeper).
            "auto" => Ok(Console::ReadOnly {
                reason: "the admin port is reachable from other hosts (--console on to allow changes)".into(),
            }),
            other => Err(format!("--console must be auto, on, read-only or off, not {other:?}")),
        }
    }
}
