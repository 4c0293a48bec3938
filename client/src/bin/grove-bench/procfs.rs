//! What the bench reads of the servers: their CPU time from /proc, and the Raft log's
//! fsync counters and write-stage histograms from admin ports.

pub fn cpu_ticks(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
        .map(|stat| {
            // Fields after the command name (which may contain spaces): utime is 14th, stime 15th.
            let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or("");
            let f: Vec<&str> = rest.split_whitespace().collect();
            f.get(11).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
                + f.get(12).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0)
        })
        .sum()
}

pub fn ticks_per_second() -> f64 {
    // CLK_TCK is 100 on every Linux this runs on.
    100.0
}

/// The body of an admin port's `/metrics`.
fn scrape(admin: &str) -> Option<String> {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin).ok()?;
    write!(s, "GET /metrics HTTP/1.1\r\nHost: {admin}\r\nConnection: close\r\n\r\n").ok()?;
    let mut body = String::new();
    s.read_to_string(&mut body).ok()?;
    Some(body)
}

pub fn log_figures(admin: &str) -> Option<(f64, f64)> {
    let body = scrape(admin)?;
    let value = |name: &str| {
        body.lines()
            .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
            .and_then(|l| l.split_whitespace().last())
            .and_then(|v| v.parse::<f64>().ok())
    };
    Some((value("grove_log_fsyncs_total")?, value("grove_log_entries_synced_total")?))
}

/// A server's write-stage histograms: stage -> (sum of seconds, count).
pub type Stages = std::collections::BTreeMap<String, (f64, f64)>;

pub fn stages(admin: &str) -> Option<Stages> {
    let body = scrape(admin)?;
    let mut out = Stages::new();
    for line in body.lines() {
        let (sum, rest) = if let Some(r) = line.strip_prefix("grove_write_stage_seconds_sum{") {
            (true, r)
        } else if let Some(r) = line.strip_prefix("grove_write_stage_seconds_count{") {
            (false, r)
        } else {
            continue;
        };
        let Some(stage) = rest.split("stage=\"").nth(1).and_then(|r| r.split('"').next()) else { continue };
        let Some(v) = line.split_whitespace().last().and_then(|v| v.parse::<f64>().ok()) else { continue };
        let e = out.entry(stage.to_string()).or_default();
        if sum {
            e.0 = v;
        } else {
            e.1 = v;
        }
    }
    Some(out)
}

/// The mean of each stage between two scrapes, in ms, in the order of an entry's life.
pub fn stage_means(before: &Stages, after: &Stages) -> Vec<(String, f64, f64)> {
    const ORDER: [&str; 7] = ["queued", "log_commit", "replicate", "follower_append", "raft", "apply", "answer"];
    let mut out = Vec::new();
    let mut names: Vec<&String> = after.keys().collect();
    names.sort_by_key(|n| ORDER.iter().position(|o| o == n).unwrap_or(ORDER.len()));
    for name in names {
        let (s1, c1) = after[name];
        let (s0, c0) = before.get(name).copied().unwrap_or_default();
        if c1 > c0 {
            out.push((name.clone(), (s1 - s0) * 1e3 / (c1 - c0), c1 - c0));
        }
    }
    out
}
