//! Opening a redb file: the one place that decides page cache and integrity checks.

use std::path::Path;

use redb::Database;

/// Opens (or creates) a redb database file with a page cache of `cache_bytes`.
pub fn open_database(path: &Path, cache_bytes: usize) -> anyhow::Result<Database> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    // Every page's checksum is verified at open, not only after a crash: a file damaged or
    // altered behind redb's back is refused with an error here, instead of being served.
    let mut builder = redb::Builder::new();
    builder.set_cache_size(cache_bytes).set_check_integrity_on_open(true);
    let opened = if std::env::var(super::power_loss::ENV).is_ok_and(|v| v == "1") {
        tracing::warn!(
            "{}: {} is set, unsynced writes are lost when the process dies (tests only)",
            path.display(),
            super::power_loss::ENV
        );
        let disk = super::power_loss::PowerLossDisk::open(path)?;
        builder.create_with_backend(disk)
    } else {
        builder.create(path)
    };
    let db = opened.map_err(|e| match e {
        redb::DatabaseError::Storage(redb::StorageError::Corrupted(why)) => anyhow::anyhow!(
            "{} is corrupted ({why}): refusing to start. In an ensemble, replace this member: remove it \
                 (grove member remove ID), empty its data directory, start it with --join and add it back \
                 (grove member add); it copies a snapshot from the leader (docs/operations.md, \"Replacing a \
                 member\"). A standalone server is restored from a backup",
            path.display()
        ),
        e => anyhow::anyhow!("opening {}: {e}", path.display()),
    })?;
    Ok(db)
}
