//! A disk that forgets what was not synced, for the power-loss tests of the fault suite.
//!
//! With `GROVE_TEST_POWER_LOSS_DISK=1` in its environment, a real `groved` keeps its redb
//! files in memory and writes to the files only what redb syncs (`sync_data`): killed with
//! SIGKILL, it leaves them exactly as a power cut would leave a disk whose cache was lost,
//! every write since the last fsync gone. Acknowledged writes must survive that
//! (`server/tests/it/t97_fault_power_loss.rs`). Never for production: it holds the files in
//! memory.

use std::collections::BTreeSet;
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::Mutex;

/// The environment variable that turns it on.
pub const ENV: &str = "GROVE_TEST_POWER_LOSS_DISK";

const PAGE: u64 = 4096;

#[derive(Debug)]
pub struct PowerLossDisk {
    inner: Mutex<Disk>,
}

#[derive(Debug)]
struct Disk {
    file: File,
    /// What redb sees: the file as last synced, plus every write since.
    live: Vec<u8>,
    /// Pages written since the last sync.
    dirty: BTreeSet<u64>,
}

impl PowerLossDisk {
    pub fn open(path: &Path) -> std::io::Result<PowerLossDisk> {
        let mut file = OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path)?;
        let mut live = Vec::new();
        file.read_to_end(&mut live)?;
        Ok(PowerLossDisk { inner: Mutex::new(Disk { file, live, dirty: BTreeSet::new() }) })
    }
}

impl redb::StorageBackend for PowerLossDisk {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.inner.lock().unwrap().live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let d = self.inner.lock().unwrap();
        let (start, end) = (offset as usize, offset as usize + out.len());
        if end > d.live.len() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end"));
        }
        out.copy_from_slice(&d.live[start..end]);
        Ok(())
    }

    fn set_len(&self, len: u64) -> std::io::Result<()> {
        let mut d = self.inner.lock().unwrap();
        d.live.resize(len as usize, 0);
        d.dirty.retain(|p| p * PAGE < len);
        Ok(())
    }

    fn sync_data(&self) -> std::io::Result<()> {
        let mut d = self.inner.lock().unwrap();
        let Disk { file, live, dirty } = &mut *d;
        file.set_len(live.len() as u64)?;
        for page in std::mem::take(dirty) {
            let start = (page * PAGE) as usize;
            let end = (start + PAGE as usize).min(live.len());
            if start < end {
                file.seek(SeekFrom::Start(start as u64))?;
                file.write_all(&live[start..end])?;
            }
        }
        file.sync_data()
    }

    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut d = self.inner.lock().unwrap();
        let end = offset as usize + data.len();
        if end > d.live.len() {
            d.live.resize(end, 0);
        }
        d.live[offset as usize..end].copy_from_slice(data);
        if !data.is_empty() {
            let (first, last) = (offset / PAGE, (end as u64 - 1) / PAGE);
            d.dirty.extend(first..=last);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use redb::StorageBackend;

    use super::*;

    #[test]
    fn only_synced_writes_reach_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let disk = PowerLossDisk::open(&path).unwrap();
        disk.write(0, b"synced").unwrap();
        disk.sync_data().unwrap();
        disk.write(10_000, b"lost").unwrap();
        let mut out = [0u8; 4];
        disk.read(10_000, &mut out).unwrap();
        assert_eq!(&out, b"lost", "reads see unsynced writes");
        drop(disk); // the power goes
        let on_disk = std::fs::read(&path).unwrap();
        assert_eq!(&on_disk[..6], b"synced");
        assert_eq!(on_disk.len(), 6, "nothing past the last sync");
    }
}
