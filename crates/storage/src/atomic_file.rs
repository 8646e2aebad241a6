//! Replacing a small file all at once (indexes, checkpoints, snapshots):
//! write a temporary file next to it, fsync it, rename it over the old one,
//! and fsync the directory so the rename itself survives a power loss.

use std::fs::{self, File};
use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Suffix of the temporary file; `Log::open` removes leftovers.
pub const TMP_SUFFIX: &str = "tmp-write";

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(TMP_SUFFIX);
    let mut f = File::create(&tmp).ctx(&tmp)?;
    f.write_all(bytes).ctx(&tmp)?;
    f.sync_all().ctx(&tmp)?;
    fs::rename(&tmp, path).ctx(path)?;
    sync_dir(path.parent().unwrap_or(Path::new(".")))
}

/// Replaces `path` with `bytes` through a rename, without fsync: for files
/// that only save work (a torn or lost one is rebuilt), written where an
/// fsync would stall others.
pub fn replace(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(TMP_SUFFIX);
    let mut f = File::create(&tmp).ctx(&tmp)?;
    f.write_all(bytes).ctx(&tmp)?;
    fs::rename(&tmp, path).ctx(path)
}

/// Fsyncs a directory: new, renamed and removed entries become durable.
pub fn sync_dir(dir: &Path) -> Result<()> {
    File::open(dir).and_then(|d| d.sync_all()).ctx(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("checkpoint");
        write_atomically(&path, b"first version, longer").unwrap();
        write_atomically(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert!(!path.with_extension(TMP_SUFFIX).exists());
    }
}
