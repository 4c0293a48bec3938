//! A live session's stored form.

use crate::error::GroveError;

/// A live session as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionRecord {
    pub timeout_ms: i64,
    pub secret: [u8; 16],
}

impl SessionRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(24);
        out.extend_from_slice(&self.timeout_ms.to_le_bytes());
        out.extend_from_slice(&self.secret);
        out
    }

    pub fn decode(raw: &[u8]) -> Result<SessionRecord, GroveError> {
        if raw.len() != 24 {
            return Err(GroveError::internal("corrupt session record"));
        }
        let mut secret = [0u8; 16];
        secret.copy_from_slice(&raw[8..24]);
        Ok(SessionRecord { timeout_ms: i64::from_le_bytes(raw[..8].try_into().unwrap()), secret })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_records_round_trip_and_reject_garbage() {
        let rec = SessionRecord { timeout_ms: 12_000, secret: [3; 16] };
        assert_eq!(SessionRecord::decode(&rec.encode()).unwrap(), rec);
        assert!(SessionRecord::decode(&[1, 2, 3]).is_err());
    }
}
