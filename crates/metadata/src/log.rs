//! The local metadata log: one line per atomic batch of records,
//! `CRC32C-hex SPACE JSON-array NEWLINE`, fsynced before the change is
//! visible. Replay stops at the first torn or corrupt line and cuts the file
//! there, so a crash mid-append loses only the unacknowledged batch.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::image::MetadataImage;
use crate::record::MetadataRecord;

const LOG_FILE: &str = "metadata.log";

#[derive(Debug, thiserror::Error)]
pub enum MetadataError {
    #[error("metadata log I/O on {path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("metadata record encoding: {0}")]
    Encode(#[from] serde_json::Error),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> MetadataError + '_ {
    move |source| MetadataError::Io { path: path.display().to_string(), source }
}

#[derive(Debug)]
pub struct MetadataLog {
    path: PathBuf,
    file: File,
}

impl MetadataLog {
    /// Opens the log in `dir`, replays it and returns the resulting image.
    pub fn open(dir: &Path) -> Result<(Self, MetadataImage), MetadataError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(LOG_FILE);
        let text = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut image = MetadataImage::default();
        let mut good_end = 0usize;
        for line in text.split_inclusive(|&b| b == b'\n') {
            match parse_line(line) {
                Some(records) => {
                    image = image.apply(&records);
                    good_end += line.len();
                }
                None => break,
            }
        }
        let file = OpenOptions::new().create(true).append(true).open(&path).map_err(io_err(&path))?;
        if good_end < text.len() {
            tracing::warn!(path = %path.display(), dropped_bytes = text.len() - good_end, "truncating torn tail of metadata log");
            file.set_len(good_end as u64).map_err(io_err(&path))?;
            file.sync_all().map_err(io_err(&path))?;
        }
        Ok((Self { path, file }, image))
    }

    /// Appends `records` as one atomic batch and fsyncs.
    pub fn append(&mut self, records: &[MetadataRecord]) -> Result<(), MetadataError> {
        let json = serde_json::to_string(records)?;
        let line = format!("{:08x} {json}\n", crc32c::crc32c(json.as_bytes()));
        self.file.write_all(line.as_bytes()).map_err(io_err(&self.path))?;
        self.file.sync_data().map_err(io_err(&self.path))?;
        Ok(())
    }
}

fn parse_line(line: &[u8]) -> Option<Vec<MetadataRecord>> {
    let line = line.strip_suffix(b"\n")?;
    let (crc, json) = (line.get(..8)?, line.get(9..)?);
    let crc = u32::from_str_radix(std::str::from_utf8(crc).ok()?, 16).ok()?;
    if crc32c::crc32c(json) != crc {
        return None;
    }
    serde_json::from_slice(json).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use uuid::Uuid;

    #[test]
    fn replay_and_torn_tail() {
        let dir = tempfile::tempdir().unwrap();
        let id = Uuid::new_v4();
        {
            let (mut log, img) = MetadataLog::open(dir.path()).unwrap();
            assert_eq!(img.topic_count(), 0);
            log.append(&[MetadataRecord::Topic { name: "a".into(), topic_id: id }]).unwrap();
            log.append(&[MetadataRecord::Topic { name: "b".into(), topic_id: Uuid::new_v4() }]).unwrap();
        }
        let path = dir.path().join(LOG_FILE);
        let len = fs::metadata(&path).unwrap().len();
        let f = OpenOptions::new().write(true).open(&path).unwrap();
        f.set_len(len - 5).unwrap();
        let (mut log, img) = MetadataLog::open(dir.path()).unwrap();
        assert!(img.topic("a").is_some());
        assert!(img.topic("b").is_none(), "torn batch is dropped whole");
        log.append(&[MetadataRecord::RemoveTopic { topic_id: id }]).unwrap();
        let (_, img) = MetadataLog::open(dir.path()).unwrap();
        assert_eq!(img.topic_count(), 0);
    }
}
