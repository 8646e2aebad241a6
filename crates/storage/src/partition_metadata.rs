//! `partition.metadata`: the id of the topic a partition directory belongs
//! to, in Kafka's format (`version: 0` and `topic_id: <base64url uuid>`
//! lines). A directory named like a partition of the current topic but
//! holding another id is a leftover of a topic deleted and re-created while
//! this node was away: its data must not be taken for the new topic's.

use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

use crate::atomic_file::write_atomically;
use crate::error::{IoContext, Result, StorageError};

pub const PARTITION_METADATA_FILE: &str = "partition.metadata";

/// The topic id recorded in `dir`, `None` when the file does not exist
/// (a directory written before the file was introduced).
pub fn read_topic_id(dir: &Path) -> Result<Option<[u8; 16]>> {
    let path = dir.join(PARTITION_METADATA_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).ctx(&path),
    };
    let corrupt = |reason: &str| StorageError::Corrupt { path: path.display().to_string(), reason: reason.into() };
    let mut version = None;
    let mut id = None;
    for line in text.lines() {
        match line.split_once(':').map(|(k, v)| (k.trim(), v.trim())) {
            Some(("version", v)) => version = Some(v),
            Some(("topic_id", v)) => id = Some(v),
            _ => {}
        }
    }
    if version != Some("0") {
        return Err(corrupt("unknown version"));
    }
    let bytes =
        URL_SAFE_NO_PAD.decode(id.ok_or_else(|| corrupt("no topic_id"))?).map_err(|_| corrupt("bad topic_id"))?;
    let id: [u8; 16] = bytes.try_into().map_err(|_| corrupt("topic_id is not 16 bytes"))?;
    Ok(Some(id))
}

/// Records `topic_id` in `dir` (durably).
pub fn write_topic_id(dir: &Path, topic_id: [u8; 16]) -> Result<()> {
    let text = format!("version: 0\ntopic_id: {}\n", URL_SAFE_NO_PAD.encode(topic_id));
    write_atomically(&dir.join(PARTITION_METADATA_FILE), text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kafka_format_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_topic_id(dir.path()).unwrap(), None);
        let id = *b"0123456789abcdef";
        write_topic_id(dir.path(), id).unwrap();
        let text = std::fs::read_to_string(dir.path().join(PARTITION_METADATA_FILE)).unwrap();
        assert_eq!(text, "version: 0\ntopic_id: MDEyMzQ1Njc4OWFiY2RlZg\n");
        assert_eq!(read_topic_id(dir.path()).unwrap(), Some(id));
        std::fs::write(dir.path().join(PARTITION_METADATA_FILE), "version: 0\ntopic_id: ???\n").unwrap();
        assert!(read_topic_id(dir.path()).is_err());
    }
}
