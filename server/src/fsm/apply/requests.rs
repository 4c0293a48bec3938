//! Remembering the results of identified writes, so a retry is answered instead of
//! applied twice, within bounds no client can push.
//!
//! - Only writes that took effect are remembered: a refused write changed nothing, so
//!   applying its retry is as if the first attempt never happened.
//! - Age is the leaders' entry clock at apply time, never the time a client wrote into its
//!   id: a client whose clock is behind keeps its protection, one whose clock is ahead
//!   cannot make records outlive the retention.
//! - At most `MAX_RECORDS` records in all and `MAX_PER_CALLER` per caller (its session, or
//!   for writes without one its identities), oldest evicted first; expired records are
//!   pruned, oldest first, by more than each write adds. So the tables stay bounded
//!   whatever the callers send. Below the total, a caller at its cap evicts only its own
//!   records; at the total, the oldest record of anyone's goes. The caps are sized so that
//!   neither is reached within the retention below about 8,000 identified writes a second
//!   in all, or 800 from one caller: a retry, which comes within its client's request
//!   timeout, finds its record.

use crate::error::GroveError;
use crate::fsm::acl::Caller;
use crate::fsm::command::{CommandResult, REQUEST_RETENTION_MS, RequestId};
use crate::storage::access::{StateTables, Table};
use crate::storage::write::WriteTables;

/// Most request results remembered.
pub const MAX_RECORDS: u64 = 1_000_000;
/// Most request results remembered for one caller.
pub const MAX_PER_CALLER: u64 = 100_000;
/// Expired records pruned at most per identified write (more than the one it adds), all
/// of an entry's at once before its writes run (`prune_for_entry`): one range scan per
/// entry, not per write.
const PRUNE_PER_WRITE: usize = 16;

/// Prunes expired records ahead of an entry with `identified` writes that carry a request id.
pub(super) fn prune_for_entry(t: &mut WriteTables<'_>, now: i64, identified: usize) -> Result<(), GroveError> {
    if identified == 0 {
        return Ok(());
    }
    prune_expired(t, now, PRUNE_PER_WRITE * identified)
}

/// The caller bucket a record counts against: the session, or for sessionless writes a
/// hash of the caller's identities (high bit set, so it never equals a session id).
fn bucket(caller: &Caller) -> u64 {
    if caller.session != 0 {
        return caller.session;
    }
    let mut h = crc32fast::Hasher::new();
    for (scheme, id) in &caller.ids {
        h.update(scheme.as_bytes());
        h.update(b":");
        h.update(id.as_bytes());
        h.update(b"\n");
    }
    (1 << 63) | u64::from(h.finalize())
}

fn age_key(stored_at: i64, id: RequestId) -> Vec<u8> {
    let mut k = (stored_at.max(0) as u64).to_be_bytes().to_vec();
    k.extend_from_slice(&id.to_be_bytes());
    k
}

fn caller_key(bucket: u64, stored_at: i64, id: RequestId) -> Vec<u8> {
    let mut k = bucket.to_be_bytes().to_vec();
    k.extend_from_slice(&age_key(stored_at, id));
    k
}

/// A remembered result: when and for whom it was stored, and the result.
fn encode(stored_at: i64, bucket: u64, result: &CommandResult) -> Result<Vec<u8>, GroveError> {
    let mut v = stored_at.to_le_bytes().to_vec();
    v.extend_from_slice(&bucket.to_le_bytes());
    v.extend_from_slice(&postcard::to_allocvec(result).map_err(GroveError::internal)?);
    Ok(v)
}

fn decode(raw: &[u8]) -> Result<(i64, u64, CommandResult), GroveError> {
    let corrupt = || GroveError::internal("corrupt request record");
    let stored_at = i64::from_le_bytes(raw.get(..8).ok_or_else(corrupt)?.try_into().map_err(|_| corrupt())?);
    let bucket = u64::from_le_bytes(raw.get(8..16).ok_or_else(corrupt)?.try_into().map_err(|_| corrupt())?);
    let result = postcard::from_bytes(&raw[16..]).map_err(|_| corrupt())?;
    Ok((stored_at, bucket, result))
}

/// The remembered result of request `id`, if any.
pub(super) fn recall(t: &WriteTables<'_>, id: RequestId) -> Result<Option<CommandResult>, GroveError> {
    Ok(t.get(Table::Requests, &id.to_be_bytes(), decode)?.map(|(_, _, r)| r))
}

fn count(t: &WriteTables<'_>, bucket: u64) -> Result<u64, GroveError> {
    Ok(t.get(Table::RequestsByCaller, &bucket.to_be_bytes(), |raw| {
        raw.try_into().map(u64::from_le_bytes).map_err(|_| GroveError::internal("corrupt request count"))
    })?
    .unwrap_or(0))
}

fn set_count(t: &mut WriteTables<'_>, bucket: u64, n: u64) -> Result<(), GroveError> {
    let value = n.to_le_bytes();
    t.put(Table::RequestsByCaller, &bucket.to_be_bytes(), (n > 0).then_some(&value[..]))
}

/// Forgets one record, from every index.
fn forget(t: &mut WriteTables<'_>, id: RequestId) -> Result<(), GroveError> {
    let Some((stored_at, bucket, _)) = t.get(Table::Requests, &id.to_be_bytes(), decode)? else { return Ok(()) };
    t.put(Table::Requests, &id.to_be_bytes(), None)?;
    t.put(Table::RequestsByAge, &age_key(stored_at, id), None)?;
    t.put(Table::RequestsByCaller, &caller_key(bucket, stored_at, id), None)?;
    let n = count(t, bucket)?;
    set_count(t, bucket, n.saturating_sub(1))
}

fn id_of(key: &[u8]) -> Result<RequestId, GroveError> {
    let tail = key.len().checked_sub(16).ok_or_else(|| GroveError::internal("corrupt request index key"))?;
    Ok(RequestId::from_be_bytes(key[tail..].try_into().map_err(|_| GroveError::internal("corrupt request index"))?))
}

/// Remembers the result of a write that took effect, at entry time `now`, within the
/// bounds (see the module's comment).
pub(super) fn remember(
    t: &mut WriteTables<'_>,
    id: RequestId,
    caller: &Caller,
    now: i64,
    result: &CommandResult,
) -> Result<(), GroveError> {
    let b = bucket(caller);
    let start = b.to_be_bytes();
    // Read once: only an eviction below changes it (and then it is read again).
    let mut n = count(t, b)?;
    if n >= MAX_PER_CALLER {
        // The bucket's own oldest: its count key sorts first, its records right after.
        let mut first = start.to_vec();
        first.push(0);
        let end = (b.checked_add(1).map(|n| n.to_be_bytes().to_vec())).unwrap_or_else(|| vec![0xff; 9]);
        if let Some(k) = t.keys_in(Table::RequestsByCaller, &first, &end, 1)?.pop() {
            forget(t, id_of(&k)?)?;
            n = count(t, b)?;
        }
    }
    if t.request_records()? >= MAX_RECORDS
        && let Some(k) = t.keys_in(Table::RequestsByAge, &[], &[0xff; 25], 1)?.pop()
    {
        forget(t, id_of(&k)?)?;
        n = count(t, b)?;
    }
    t.put(Table::Requests, &id.to_be_bytes(), Some(&encode(now, b, result)?))?;
    t.put(Table::RequestsByAge, &age_key(now, id), Some(&[]))?;
    t.put(Table::RequestsByCaller, &caller_key(b, now, id), Some(&[]))?;
    set_count(t, b, n + 1)
}

/// Forgets records older than the retention, oldest first, at most `limit`.
pub(super) fn prune_expired(t: &mut WriteTables<'_>, now: i64, limit: usize) -> Result<(), GroveError> {
    let horizon = (now - REQUEST_RETENTION_MS).max(0) as u64;
    for k in t.keys_in(Table::RequestsByAge, &[], &horizon.to_be_bytes(), limit)? {
        forget(t, id_of(&k)?)?;
    }
    Ok(())
}
