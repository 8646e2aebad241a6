//! The checkpoint file of a task directory (`<task dir>/.checkpoint`): for
//! each changelog partition, the offset up to which the local stores hold
//! its records (the next offset to restore from). Kafka Streams' format, so
//! the files read the same:
//!
//! ```text
//! 0                      <- version
//! 2                      <- number of entries
//! app-counts-changelog 3 1042
//! app-other-changelog 3 77
//! ```
//!
//! Written atomically: a temp file (`.checkpoint.tmp`) written and fsynced,
//! renamed over the file, then the directory fsynced, so a crash leaves the
//! old file or the new one, never a torn one. Offsets are `>= 0`, or
//! [`OFFSET_UNKNOWN`] (Kafka's sentinel for a store whose position is not
//! known); other negative offsets are refused on write and skipped on read.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::{Result, StreamsError};

/// The file's name in a task directory.
pub const CHECKPOINT_FILE_NAME: &str = ".checkpoint";

/// Kafka's `OffsetCheckpoint.OFFSET_UNKNOWN`.
pub const OFFSET_UNKNOWN: i64 = -4;

const VERSION: u32 = 0;

/// Offsets by (topic, partition).
pub type Offsets = BTreeMap<(String, i32), i64>;

fn valid(offset: i64) -> bool {
    offset >= 0 || offset == OFFSET_UNKNOWN
}

/// One checkpoint file.
#[derive(Clone, Debug)]
pub struct OffsetCheckpoint {
    path: PathBuf,
}

impl OffsetCheckpoint {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        OffsetCheckpoint { path: path.into() }
    }

    /// `<dir>/.checkpoint`.
    pub fn in_dir(dir: &Path) -> Self {
        Self::new(dir.join(CHECKPOINT_FILE_NAME))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn bad(&self, reason: impl std::fmt::Display) -> StreamsError {
        StreamsError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "checkpoint file {}: {reason} (delete it: the task's stores are then restored from the changelogs' beginning)",
                self.path.display()
            ),
        ))
    }

    fn io(&self, what: &str, e: std::io::Error) -> StreamsError {
        StreamsError::Io(std::io::Error::new(e.kind(), format!("{what} {}: {e}", self.path.display())))
    }

    /// The offsets in the file; empty when there is no file.
    pub fn read(&self) -> Result<Offsets> {
        let text = match std::fs::read(&self.path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Offsets::new()),
            Err(e) => return Err(self.io("cannot read", e)),
        };
        let text = String::from_utf8(text).map_err(|_| self.bad("not UTF-8"))?;
        let mut lines = text.lines();
        let mut int_line = |what: &str| -> Result<i64> {
            let line = lines.next().ok_or_else(|| self.bad(format!("ended before the {what}")))?;
            line.trim().parse::<i64>().map_err(|_| self.bad(format!("the {what} {line:?} is not a number")))
        };
        let version = int_line("version")?;
        if version != i64::from(VERSION) {
            return Err(self.bad(format!("unknown version {version}")));
        }
        let mut expected = int_line("entry count")?;
        let mut out = Offsets::new();
        for line in lines {
            if line.trim().is_empty() {
                continue;
            }
            let pieces: Vec<&str> = line.split_whitespace().collect();
            let [topic, partition, offset] = pieces[..] else {
                return Err(self.bad(format!("malformed line {line:?}")));
            };
            let partition = partition.parse::<i32>().map_err(|_| self.bad(format!("malformed line {line:?}")))?;
            let offset = offset.parse::<i64>().map_err(|_| self.bad(format!("malformed line {line:?}")))?;
            if valid(offset) {
                out.insert((topic.to_string(), partition), offset);
            } else {
                tracing::warn!(file = %self.path.display(), topic, partition, offset, "invalid offset in a checkpoint file, skipped");
                expected -= 1;
            }
        }
        if out.len() as i64 != expected {
            return Err(self.bad(format!("{expected} entries expected, {} found", out.len())));
        }
        Ok(out)
    }

    /// Replaces the file with `offsets` (atomically). No offsets: the file
    /// is deleted (as Kafka does).
    pub fn write(&self, offsets: &Offsets) -> Result<()> {
        if offsets.is_empty() {
            return self.delete();
        }
        let mut text = format!("{VERSION}\n{}\n", offsets.len());
        for ((topic, partition), offset) in offsets {
            if !valid(*offset) {
                return Err(StreamsError::store(
                    topic,
                    format!("cannot checkpoint offset {offset} of partition {partition} (negative)"),
                ));
            }
            if topic.is_empty() || topic.contains(char::is_whitespace) {
                return Err(StreamsError::store(topic, "a topic name in a checkpoint cannot be empty or hold spaces"));
            }
            text.push_str(&format!("{topic} {partition} {offset}\n"));
        }
        let tmp = {
            let mut name = self.path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
            name.push(".tmp");
            self.path.with_file_name(name)
        };
        let write_tmp = || -> std::io::Result<()> {
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(text.as_bytes())?;
            f.sync_all()
        };
        write_tmp().map_err(|e| self.io("cannot write the temp file of", e))?;
        std::fs::rename(&tmp, &self.path).map_err(|e| self.io("cannot rename the temp file onto", e))?;
        self.sync_dir()
    }

    /// Deletes the file (missing is fine).
    pub fn delete(&self) -> Result<()> {
        match std::fs::remove_file(&self.path) {
            Ok(()) => self.sync_dir(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(self.io("cannot delete", e)),
        }
    }

    fn sync_dir(&self) -> Result<()> {
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        std::fs::File::open(dir).and_then(|d| d.sync_all()).map_err(|e| self.io("cannot sync the directory of", e))
    }
}

/// Reads `<dir>/.checkpoint` (empty when missing).
pub fn read(dir: &Path) -> Result<Offsets> {
    OffsetCheckpoint::in_dir(dir).read()
}

/// Writes `<dir>/.checkpoint` atomically (deletes it when `offsets` is empty).
pub fn write(dir: &Path, offsets: &Offsets) -> Result<()> {
    OffsetCheckpoint::in_dir(dir).write(offsets)
}

/// Deletes `<dir>/.checkpoint` (missing is fine).
pub fn delete(dir: &Path) -> Result<()> {
    OffsetCheckpoint::in_dir(dir).delete()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offsets(entries: &[(&str, i32, i64)]) -> Offsets {
        entries.iter().map(|(t, p, o)| ((t.to_string(), *p), *o)).collect()
    }

    #[test]
    fn writes_kafkas_format_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read(dir.path()).unwrap(), Offsets::new());
        let o = offsets(&[("app-counts-changelog", 3, 1042), ("app-other-changelog", 0, OFFSET_UNKNOWN)]);
        write(dir.path(), &o).unwrap();
        let text = std::fs::read_to_string(dir.path().join(".checkpoint")).unwrap();
        assert_eq!(text, "0\n2\napp-counts-changelog 3 1042\napp-other-changelog 0 -4\n");
        assert_eq!(read(dir.path()).unwrap(), o);
        assert!(!dir.path().join(".checkpoint.tmp").exists());
        // replaced atomically
        let o2 = offsets(&[("app-counts-changelog", 3, 2000)]);
        write(dir.path(), &o2).unwrap();
        assert_eq!(read(dir.path()).unwrap(), o2);
        // empty: the file goes
        write(dir.path(), &Offsets::new()).unwrap();
        assert!(!dir.path().join(".checkpoint").exists());
        delete(dir.path()).unwrap();
    }

    #[test]
    fn reads_files_java_wrote_and_refuses_bad_ones() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".checkpoint");
        // a file as Kafka Streams writes it, with an invalid offset it skips
        std::fs::write(&path, "0\n3\nwc-counts-changelog 0 17\nwc-counts-changelog  1\t5\nx 2 -1\n").unwrap();
        assert_eq!(
            read(dir.path()).unwrap(),
            offsets(&[("wc-counts-changelog", 0, 17), ("wc-counts-changelog", 1, 5)])
        );
        for bad in ["", "1\n0\n", "0\n2\nt 0 1\n", "0\nx\n", "0\n1\nt 0\n", "0\n1\nt zero 1\n", "0\n1\nt 0 1 2\n"] {
            std::fs::write(&path, bad).unwrap();
            let e = read(dir.path()).err().unwrap_or_else(|| panic!("{bad:?} must be refused"));
            assert!(e.to_string().contains(".checkpoint"), "{e}");
        }
        std::fs::write(&path, [0xff, 0xfe]).unwrap();
        assert!(read(dir.path()).is_err());
        // negative offsets are refused on write
        assert!(write(dir.path(), &offsets(&[("t", 0, -1)])).is_err());
        assert!(write(dir.path(), &offsets(&[("a topic", 0, 1)])).is_err());
    }
}
