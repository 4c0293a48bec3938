//! What commands share with the shell or one-shot run around them: the connection, the
//! shell's watches and history, a command's result, and zkCli's wording for errors.
//!
//! Both `cmd` (the commands) and `shell` use this module; it uses neither.

use std::time::Duration;

use grove_client::{Client, Error, TlsOptions};
use serde_json::{Value, json};

use crate::watches::Watches;

/// What a command needs from the shell it runs in.
pub struct Context {
    pub client: Option<Client>,
    /// The connect string `client` was dialled with, shown in the prompt.
    pub server: String,
    /// TLS settings and credentials, kept for `connect`.
    pub dial: Dial,
    /// The shell's watch stream; `None` in one-shot mode, where nothing would print events.
    pub watches: Option<Watches>,
    pub history: History,
    /// Requested for every session opened from now on.
    pub session_timeout: Duration,
}

impl Context {
    pub fn client(&self) -> Result<&Client, Error> {
        self.client.as_ref().ok_or_else(|| Error::Client("not connected: use connect host:port".into()))
    }

    /// Adds credentials to the client, and remembers them for later `connect`s.
    pub fn add_auth(&mut self, scheme: &str, auth: &str) -> Result<(), Error> {
        self.client()?.add_auth(scheme, auth)?;
        self.dial.auth.push(auth.to_string());
        Ok(())
    }

    /// The session, opened on first need (ephemerals need one).
    pub async fn session_client(&mut self) -> Result<&Client, Error> {
        let c = self.client()?;
        if c.session().is_none() {
            c.open_session(self.session_timeout).await?;
        }
        self.client()
    }

    /// Closes the current session (its ephemerals go) and opens a new one on `server` with
    /// the current session timeout; the shell's watches move to the new client. On failure
    /// the shell is left unconnected.
    pub async fn connect(&mut self, server: &str) -> Result<(), Error> {
        if let Some(old) = self.client.take() {
            let _ = old.close_session().await;
        }
        let client = dial(server, &self.dial)?;
        client.open_session(self.session_timeout).await?;
        self.server = server.to_string();
        if let Some(w) = &self.watches {
            w.reconnect(client.clone());
        }
        self.client = Some(client);
        Ok(())
    }
}

/// How to reach the servers: TLS settings and digest credentials (`user:password`).
#[derive(Debug, Clone, Default)]
pub struct Dial {
    pub tls: Option<TlsOptions>,
    pub auth: Vec<String>,
}

/// A client for `server` (a connect string), over TLS when settings are given, sending
/// the credentials with every request.
pub fn dial(server: &str, how: &Dial) -> Result<Client, Error> {
    let client = match &how.tls {
        Some(tls) => Client::builder(server).tls(tls.clone()).build()?,
        None => Client::connect(server)?,
    };
    for credential in &how.auth {
        client.add_auth("digest", credential)?;
    }
    Ok(client)
}

/// The shell's command lines, numbered from 0 in the order they ran. All are kept, so
/// `redo N` reaches any number `history` ever printed, not only the last few.
#[derive(Debug, Default)]
pub struct History {
    lines: Vec<String>,
}

impl History {
    /// Records a line; returns its number.
    pub fn push(&mut self, line: String) -> usize {
        self.lines.push(line);
        self.lines.len() - 1
    }

    /// Line number `n`.
    pub fn get(&self, n: usize) -> Option<&str> {
        self.lines.get(n).map(String::as_str)
    }

    /// The number the next line will get (the prompt shows it).
    pub fn next_number(&self) -> usize {
        self.lines.len()
    }

    /// The last `count` lines with their numbers, oldest first.
    pub fn last(&self, count: usize) -> impl Iterator<Item = (usize, &str)> {
        let from = self.lines.len().saturating_sub(count);
        self.lines[from..].iter().enumerate().map(move |(i, l)| (from + i, l.as_str()))
    }
}

/// A command's result: text for people, a JSON value for `--json`.
pub struct Output {
    pub text: Option<String>,
    pub json: Value,
}

impl Output {
    pub fn text(text: impl Into<String>, json: Value) -> Output {
        Output { text: Some(text.into()), json }
    }

    /// Nothing printed for people (zkCli prints nothing after `set`, `delete`, ...).
    pub fn silent(json: Value) -> Output {
        Output { text: None, json }
    }
}

/// zkCli's wording for an error.
pub fn error_text(e: &Error) -> String {
    match e {
        Error::NoNode { path } => format!("Node does not exist: {path}"),
        Error::NodeExists { path } => format!("Node already exists: {path}"),
        Error::BadVersion { path, .. } => format!("version No is not valid : {path}"),
        Error::NotEmpty { path } => format!("Node not empty: {path}"),
        Error::NoChildrenForEphemerals { path } => format!("Ephemerals cannot have children: {path}"),
        other => other.to_string(),
    }
}

pub fn error_json(e: &Error) -> Value {
    json!({"error": {"code": e.code().as_str_name(), "message": error_text(e)}})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_keeps_every_line_and_shows_the_last_ones() {
        let mut h = History::default();
        for i in 0..30 {
            assert_eq!(h.push(format!("get /n{i}")), i);
        }
        assert_eq!(h.next_number(), 30);
        assert_eq!(h.get(0), Some("get /n0"));
        assert_eq!(h.get(17), Some("get /n17"));
        assert_eq!(h.get(30), None);
        let shown: Vec<_> = h.last(11).collect();
        assert_eq!(shown.len(), 11);
        assert_eq!(shown[0], (19, "get /n19"));
        assert_eq!(shown[10], (29, "get /n29"));
        assert_eq!(History::default().last(11).count(), 0);
    }
}
