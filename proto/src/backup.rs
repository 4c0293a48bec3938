//! The backup file: what `grove snapshot save` writes and `groved --restore` reads.
//!
//! Layout: the magic line `GROVE-BACKUP 1\n`; the `SnapshotHeader` (protobuf, its length
//! first as a u32 LE); the snapshot data exactly as `Cluster.SaveSnapshot` streamed it;
//! the `SnapshotTrailer` (protobuf); the trailer's length as a u32 LE; and the closing
//! magic `GROVE-END\n`. The trailer goes last because the data's size and checksum are
//! known only once it has been streamed; its length sits at the very end so a reader
//! finds it from there. Both writer and reader live here, in the crate the CLI and the
//! server share, so the format cannot drift between them.

use std::io::{self, Read, Seek, SeekFrom, Write};

use prost::Message;

use crate::v1::{SnapshotHeader, SnapshotTrailer};

const MAGIC: &[u8] = b"GROVE-BACKUP 1\n";
const END: &[u8] = b"GROVE-END\n";
/// Largest header or trailer accepted: they hold a membership, not data.
const MAX_FRAME: u32 = 1 << 20;

fn bad(why: impl Into<String>) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, why.into())
}

/// Writes a backup file as its parts arrive, checking the data against the trailer.
pub struct BackupWriter<W: Write> {
    out: W,
    crc: crc32fast::Hasher,
    bytes: u64,
    header_crc32: u32,
}

impl<W: Write> BackupWriter<W> {
    pub fn new(mut out: W, header: &SnapshotHeader) -> io::Result<Self> {
        out.write_all(MAGIC)?;
        let raw = header.encode_to_vec();
        write_frame(&mut out, &raw)?;
        Ok(BackupWriter { out, crc: data_hasher(&raw), bytes: 0, header_crc32: crc32fast::hash(&raw) })
    }

    pub fn data(&mut self, chunk: &[u8]) -> io::Result<()> {
        self.crc.update(chunk);
        self.bytes += chunk.len() as u64;
        self.out.write_all(chunk)
    }

    /// Ends the file with the server's trailer, refusing it (and so the backup) when the
    /// data received is not what the server sent.
    pub fn finish(mut self, trailer: &SnapshotTrailer) -> io::Result<W> {
        let crc = self.crc.clone().finalize();
        if trailer.header_crc32 != self.header_crc32 {
            return Err(bad("the header received is not the one the server sent (its checksum differs)"));
        }
        if trailer.bytes != self.bytes || trailer.crc32 != crc {
            return Err(bad(format!(
                "the data received ({} bytes, crc32 {crc:08x}) is not what the server sent ({} bytes, crc32 {:08x})",
                self.bytes, trailer.bytes, trailer.crc32
            )));
        }
        let raw = trailer.encode_to_vec();
        self.out.write_all(&raw)?;
        self.out.write_all(&(raw.len() as u32).to_le_bytes())?;
        self.out.write_all(END)?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// The data's checksum starts from the encoded header: the data is a snapshot that ends with
/// its own CRC-32, and a CRC-32 over a message followed by its own CRC-32 is the same
/// constant for every message, which would make every backup's checksum equal.
pub fn data_hasher(header_raw: &[u8]) -> crc32fast::Hasher {
    let mut h = crc32fast::Hasher::new();
    h.update(header_raw);
    h
}

fn write_frame(out: &mut impl Write, raw: &[u8]) -> io::Result<()> {
    out.write_all(&(raw.len() as u32).to_le_bytes())?;
    out.write_all(raw)
}

/// A backup file opened for reading: its header and trailer, and where its data lies.
pub struct Backup<R> {
    pub header: SnapshotHeader,
    pub trailer: SnapshotTrailer,
    input: R,
    data_start: u64,
    header_raw: Vec<u8>,
}

impl<R: Read + Seek> Backup<R> {
    /// Reads the header and the trailer; the data is checked by `verify` or as it is read.
    pub fn open(mut input: R) -> io::Result<Self> {
        let mut magic = vec![0u8; MAGIC.len()];
        input.read_exact(&mut magic).map_err(|_| bad("not a Grove backup (too short)"))?;
        if magic != MAGIC {
            return Err(bad("not a Grove backup file (no GROVE-BACKUP 1 line at its start)"));
        }
        let header_len = read_u32(&mut input)?;
        if header_len > MAX_FRAME {
            return Err(bad(format!("backup header of {header_len} bytes: the file is corrupt")));
        }
        let mut raw = vec![0u8; header_len as usize];
        input.read_exact(&mut raw).map_err(|_| bad("the backup ends inside its header"))?;
        let header_crc32 = crc32fast::hash(&raw);
        let header = SnapshotHeader::decode(&raw[..]).map_err(|e| bad(format!("backup header: {e}")))?;
        let header_raw = raw;
        let data_start = (MAGIC.len() + 4) as u64 + u64::from(header_len);

        let total = input.seek(SeekFrom::End(0))?;
        let tail = (END.len() + 4) as u64;
        if total < data_start + tail {
            return Err(bad("the backup is truncated (no trailer): was `grove snapshot save` interrupted?"));
        }
        input.seek(SeekFrom::End(-(tail as i64)))?;
        let trailer_len = read_u32(&mut input)?;
        let mut end = vec![0u8; END.len()];
        input.read_exact(&mut end)?;
        if end != END || trailer_len > MAX_FRAME || u64::from(trailer_len) + tail > total - data_start {
            return Err(bad("the backup is truncated (no trailer): was `grove snapshot save` interrupted?"));
        }
        input.seek(SeekFrom::End(-((tail + u64::from(trailer_len)) as i64)))?;
        let mut raw = vec![0u8; trailer_len as usize];
        input.read_exact(&mut raw)?;
        let trailer = SnapshotTrailer::decode(&raw[..]).map_err(|e| bad(format!("backup trailer: {e}")))?;
        if trailer.header_crc32 != header_crc32 {
            return Err(bad("the backup's header does not match its checksum: the file is corrupt"));
        }
        if trailer.bytes == 0 {
            return Err(bad("the backup holds no data"));
        }
        let expected = data_start.checked_add(trailer.bytes).and_then(|n| n.checked_add(u64::from(trailer_len) + tail));
        if expected != Some(total) {
            return Err(bad(format!(
                "the backup's trailer announces {} bytes of data, the file holds {}",
                trailer.bytes,
                total - data_start - u64::from(trailer_len) - tail
            )));
        }
        Ok(Backup { header, trailer, input, data_start, header_raw })
    }

    /// Reads the whole data and compares its checksum with the trailer's.
    pub fn verify(&mut self) -> io::Result<()> {
        let mut data = self.data()?;
        io::copy(&mut data, &mut io::sink())?;
        Ok(())
    }

    /// The data, failing at its end if it does not match the trailer's checksum.
    pub fn data(&mut self) -> io::Result<impl Read + '_> {
        self.input.seek(SeekFrom::Start(self.data_start))?;
        let (bytes, crc32) = (self.trailer.bytes, self.trailer.crc32);
        Ok(Checked {
            inner: (&mut self.input).take(bytes),
            crc: data_hasher(&self.header_raw),
            expected: crc32,
            left: bytes,
        })
    }
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b).map_err(|_| bad("the backup is truncated"))?;
    Ok(u32::from_le_bytes(b))
}

struct Checked<R> {
    inner: R,
    crc: crc32fast::Hasher,
    expected: u32,
    left: u64,
}

impl<R: Read> Read for Checked<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.crc.update(&buf[..n]);
        self.left -= n as u64;
        if n == 0 && self.left > 0 {
            return Err(bad("the backup's data ends early"));
        }
        if self.left == 0 && n > 0 {
            let crc = self.crc.clone().finalize();
            if crc != self.expected {
                return Err(bad(format!(
                    "the backup's data has crc32 {crc:08x}, its trailer says {:08x}: the file is corrupt",
                    self.expected
                )));
            }
        }
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use super::*;

    fn file(data: &[u8]) -> Vec<u8> {
        let header = SnapshotHeader { zxid: 42, term: 3, cluster_id: 7, ..Default::default() };
        let mut w = BackupWriter::new(Vec::new(), &header).unwrap();
        for chunk in data.chunks(3) {
            w.data(chunk).unwrap();
        }
        let mut crc = data_hasher(&header.encode_to_vec());
        crc.update(data);
        let header_crc32 = crc32fast::hash(&header.encode_to_vec());
        w.finish(&SnapshotTrailer { bytes: data.len() as u64, crc32: crc.finalize(), nodes: 1, header_crc32 }).unwrap()
    }

    #[test]
    fn a_backup_reads_back_with_its_header_trailer_and_data() {
        let raw = file(b"some snapshot bytes");
        let mut b = Backup::open(Cursor::new(raw)).unwrap();
        assert_eq!((b.header.zxid, b.header.term, b.header.cluster_id), (42, 3, 7));
        assert_eq!(b.trailer.bytes, 19);
        let mut data = Vec::new();
        b.data().unwrap().read_to_end(&mut data).unwrap();
        assert_eq!(data, b"some snapshot bytes");
        b.verify().unwrap();
    }

    #[test]
    fn a_writer_refuses_data_that_differs_from_the_trailer() {
        let header = SnapshotHeader::default();
        let mut w = BackupWriter::new(Vec::new(), &header).unwrap();
        w.data(b"abc").unwrap();
        let header_crc32 = crc32fast::hash(&header.encode_to_vec());
        let err = w.finish(&SnapshotTrailer { bytes: 4, crc32: 0, nodes: 0, header_crc32 }).unwrap_err();
        assert!(err.to_string().contains("not what the server sent"), "{err}");
    }

    #[test]
    fn corrupt_truncated_and_foreign_files_are_refused_with_a_reason() {
        let raw = file(b"some snapshot bytes");
        let mut flipped = raw.clone();
        let at = MAGIC.len() + 8 + 2;
        flipped[at + 10] ^= 0xff;
        let mut b = Backup::open(Cursor::new(flipped)).unwrap();
        assert!(b.verify().unwrap_err().to_string().contains("corrupt"));

        let cut = raw[..raw.len() - 5].to_vec();
        let err = Backup::open(Cursor::new(cut)).err().unwrap();
        assert!(err.to_string().contains("truncated"), "{err}");

        let err = Backup::open(Cursor::new(b"GROVESNAP\x01 not a backup".to_vec())).err().unwrap();
        assert!(err.to_string().contains("not a Grove backup"), "{err}");

        // A flipped bit in the header (its zxid) is caught too.
        let mut header_flipped = raw.clone();
        header_flipped[MAGIC.len() + 5] ^= 0x01;
        let err = Backup::open(Cursor::new(header_flipped)).err().unwrap();
        assert!(err.to_string().contains("header"), "{err}");

        // A hostile trailer announcing u64::MAX bytes is refused, not an overflow.
        let header = SnapshotHeader::default();
        let mut w = BackupWriter::new(Vec::new(), &header).unwrap();
        w.data(b"x").unwrap();
        let mut forged = w
            .finish(&SnapshotTrailer {
                bytes: 1,
                crc32: crc32fast::hash(b"x"), // an empty header encodes to nothing
                nodes: 0,
                header_crc32: crc32fast::hash(&header.encode_to_vec()),
            })
            .unwrap();
        let at = forged.len() - END.len() - 4;
        let trailer_len = u32::from_le_bytes(forged[at..at + 4].try_into().unwrap()) as usize;
        let mut t = SnapshotTrailer::decode(&forged[at - trailer_len..at]).unwrap();
        t.bytes = u64::MAX;
        let raw_t = t.encode_to_vec();
        forged.truncate(at - trailer_len);
        forged.extend_from_slice(&raw_t);
        forged.extend_from_slice(&(raw_t.len() as u32).to_le_bytes());
        forged.extend_from_slice(END);
        assert!(Backup::open(Cursor::new(forged)).is_err());
    }
}
