//! `--console`: what the web console on the admin port may do.

/// What the web console may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Console {
    Off,
    ReadOnly { reason: String },
    ReadWrite,
}

impl Console {
    /// The mode for a `--console` value, given where the admin port listens and whether an
    /// administrator (`--super-digest`) is configured.
    pub fn resolve(value: &str, admin_on_loopback: bool, super_digest: bool) -> Result<Console, String> {
        match value {
            "off" => Ok(Console::Off),
            "read-only" => Ok(Console::ReadOnly { reason: "the server runs with --console read-only".into() }),
            // Changes through a console anyone on the network can reach, on a cluster where
            // nobody configured an administrator, are one open port away from vandalism.
            "on" if !admin_on_loopback && !super_digest => Ok(Console::ReadOnly {
                reason: "the admin port is reachable from other hosts and no --super-digest is configured".into(),
            }),
            "on" => Ok(Console::ReadWrite),
            other => Err(format!("--console must be on, read-only or off, not {other:?}")),
        }
    }
}
