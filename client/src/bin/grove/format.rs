//! zkCli's output formats: the 11-line stat, Java-style dates, child lists; and the output
//! several commands share (members, quotas, paths).

use grove_client::proto::{Member, MemberRole};
use grove_client::{Quota, Stat};
use serde_json::{Value, json};

use crate::context::Output;

const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// Milliseconds since the epoch as Java's `Date.toString()` in UTC:
/// `Wed Nov 25 00:51:43 UTC 2026`.
pub fn java_date(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m, s) = (rem / 3600, (rem % 3600) / 60, rem % 60);
    // Howard Hinnant's civil-from-days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + if month <= 2 { 1 } else { 0 };
    let weekday = DAYS[days.rem_euclid(7) as usize];
    format!("{weekday} {} {d:02} {h:02}:{m:02}:{s:02} UTC {year}", MONTHS[(month - 1) as usize])
}

/// The stat block zkCli prints, one field per line.
pub fn stat(s: &Stat) -> String {
    format!(
        "cZxid = 0x{:x}\nctime = {}\nmZxid = 0x{:x}\nmtime = {}\npZxid = 0x{:x}\ncversion = {}\ndataVersion = {}\n\
         aclVersion = {}\nephemeralOwner = 0x{:x}\ndataLength = {}\nnumChildren = {}",
        s.czxid,
        java_date(s.ctime),
        s.mzxid,
        java_date(s.mtime),
        s.pzxid,
        s.cversion,
        s.version,
        s.aversion,
        s.ephemeral_owner,
        s.data_length,
        s.num_children
    )
}

pub fn stat_json(s: &Stat) -> Value {
    json!({
        "czxid": s.czxid,
        "mzxid": s.mzxid,
        "pzxid": s.pzxid,
        "ctime": s.ctime,
        "mtime": s.mtime,
        "version": s.version,
        "cversion": s.cversion,
        "aversion": s.aversion,
        "ephemeralOwner": s.ephemeral_owner,
        "dataLength": s.data_length,
        "numChildren": s.num_children,
        "mode": grove_client::CreateMode::try_from(s.mode).map(|m| m.as_str_name()).unwrap_or("UNKNOWN"),
        "ttlMs": s.ttl_ms,
    })
}

/// `[a, b, c]`, as zkCli prints lists.
pub fn list(items: &[String]) -> String {
    format!("[{}]", items.join(", "))
}

/// Node data for JSON: text when it is UTF-8, hex otherwise.
pub fn data_json(data: &[u8]) -> (&'static str, Value) {
    match std::str::from_utf8(data) {
        Ok(s) => ("data", json!(s)),
        Err(_) => ("dataHex", json!(data.iter().map(|b| format!("{b:02x}")).collect::<String>())),
    }
}

/// The path of `parent`'s child `name`.
pub fn join(parent: &str, name: &str) -> String {
    if parent == "/" { format!("/{name}") } else { format!("{parent}/{name}") }
}

pub fn quota_json(q: &Quota) -> Value {
    json!({
        "count_soft": q.count_soft,
        "bytes_soft": q.bytes_soft,
        "count_hard": q.count_hard,
        "bytes_hard": q.bytes_hard,
        "count": q.count,
        "bytes": q.bytes,
    })
}

/// One line per member: `id role peer=... client=... [leader]`.
pub fn members(members: &[Member]) -> Output {
    let text = members
        .iter()
        .map(|m| {
            let leader = if m.is_leader { " leader" } else { "" };
            format!("{} {} peer={} client={}{leader}", m.id, role(m), m.peer_address, m.client_address)
        })
        .collect::<Vec<_>>()
        .join("\n");
    Output::text(text, json!({"members": members.iter().map(member_json).collect::<Vec<_>>()}))
}

/// `voter` or `observer`.
pub fn role(m: &Member) -> &'static str {
    if m.role == MemberRole::Voter as i32 { "voter" } else { "observer" }
}

pub fn member_json(m: &Member) -> Value {
    json!({
        "id": m.id,
        "role": role(m),
        "peer_address": m.peer_address,
        "client_address": m.client_address,
        "is_leader": m.is_leader,
        "matched_index": m.matched_index,
        "lag": m.lag,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_match_java() {
        assert_eq!(java_date(0), "Thu Jan 01 00:00:00 UTC 1970");
        // 2026-11-25T00:51:43Z, a Wednesday.
        assert_eq!(java_date(1_795_567_903_000), "Wed Nov 25 00:51:43 UTC 2026");
        assert_eq!(java_date(951_782_400_000), "Tue Feb 29 00:00:00 UTC 2000");
    }

    #[test]
    fn stat_has_zookeepers_eleven_lines() {
        let s = Stat { czxid: 3, mzxid: 11, pzxid: 3, version: 1, data_length: 5, ..Default::default() };
        let text = stat(&s);
        let lines: Vec<_> = text.lines().collect();
        assert_eq!(lines.len(), 11);
        assert_eq!(lines[0], "cZxid = 0x3");
        assert_eq!(lines[2], "mZxid = 0xb");
        assert_eq!(lines[6], "dataVersion = 1");
        assert_eq!(lines[8], "ephemeralOwner = 0x0");
        assert_eq!(lines[9], "dataLength = 5");
    }
}
