//! A disk for storage tests: it loses everything written since the last `sync_data` when it
//! "crashes" (as redb's own crash-consistency tests model power loss), and its `sync_data`
//! can be held, to stand for a flush that has not finished yet.

use std::sync::{Arc, Condvar, Mutex};

#[derive(Debug, Clone, Default)]
pub struct CrashDisk {
    images: Arc<Mutex<Images>>,
    held: Arc<(Mutex<bool>, Condvar)>,
}

#[derive(Debug, Default)]
struct Images {
    live: Vec<u8>,
    durable: Vec<u8>,
}

impl CrashDisk {
    /// The disk as a power cut now would leave it (not held).
    pub fn crash_image(&self) -> CrashDisk {
        let durable = self.images.lock().unwrap().durable.clone();
        CrashDisk { images: Arc::new(Mutex::new(Images { live: durable.clone(), durable })), ..Default::default() }
    }

    /// While held, `sync_data` waits.
    pub fn hold(&self, held: bool) {
        *self.held.0.lock().unwrap() = held;
        self.held.1.notify_all();
    }
}

impl redb::StorageBackend for CrashDisk {
    fn len(&self) -> std::io::Result<u64> {
        Ok(self.images.lock().unwrap().live.len() as u64)
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        let d = self.images.lock().unwrap();
        let (start, end) = (offset as usize, offset as usize + out.len());
        if end > d.live.len() {
            return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "read past the end"));
        }
        out.copy_from_slice(&d.live[start..end]);
        Ok(())
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.images.lock().unwrap().live.resize(len as usize, 0);
        Ok(())
    }
    fn sync_data(&self) -> std::io::Result<()> {
        let (held, released) = &*self.held;
        drop(released.wait_while(held.lock().unwrap(), |h| *h).unwrap());
        let mut d = self.images.lock().unwrap();
        d.durable = d.live.clone();
        Ok(())
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        let mut d = self.images.lock().unwrap();
        let end = offset as usize + data.len();
        if end > d.live.len() {
            d.live.resize(end, 0);
        }
        d.live[offset as usize..end].copy_from_slice(data);
        Ok(())
    }
}
