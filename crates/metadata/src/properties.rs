//! `meta.properties`: the identity of a data directory (cluster id, node
//! id), written on first start, checked on every start after.

use std::fs;
use std::io::Write;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;

pub const META_PROPERTIES: &str = "meta.properties";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetaProperties {
    pub cluster_id: String,
    pub node_id: i32,
}

impl MetaProperties {
    /// Reads `meta.properties` from `dir`, or creates it with a new cluster id.
    pub fn load_or_create(dir: &Path, node_id: i32) -> std::io::Result<Self> {
        if let Some(props) = Self::load(dir, node_id)? {
            return Ok(props);
        }
        let props = Self { cluster_id: new_cluster_id(), node_id };
        props.write(dir)?;
        Ok(props)
    }

    /// Reads `meta.properties` from `dir`; `None` when there is none.
    pub fn load(dir: &Path, node_id: i32) -> std::io::Result<Option<Self>> {
        let path = dir.join(META_PROPERTIES);
        match fs::read_to_string(&path) {
            Ok(text) => {
                let get = |key: &str| {
                    text.lines()
                        .filter_map(|l| l.split_once('='))
                        .find(|(k, _)| k.trim() == key)
                        .map(|(_, v)| v.trim().to_string())
                };
                let cluster_id = get("cluster.id").unwrap_or_else(new_cluster_id);
                let node_id = get("node.id").and_then(|v| v.parse().ok()).unwrap_or(node_id);
                Ok(Some(Self { cluster_id, node_id }))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(std::io::Error::new(e.kind(), format!("{}: {e}", path.display()))),
        }
    }

    /// Writes `meta.properties` into `dir` (created if needed), durably.
    pub fn write(&self, dir: &Path) -> std::io::Result<()> {
        let path = dir.join(META_PROPERTIES);
        let io = |e: std::io::Error| std::io::Error::new(e.kind(), format!("{}: {e}", path.display()));
        fs::create_dir_all(dir).map_err(io)?;
        let text = format!("version=1\ncluster.id={}\nnode.id={}\n", self.cluster_id, self.node_id);
        let tmp = path.with_extension("tmp");
        let mut file = fs::File::create(&tmp).map_err(io)?;
        file.write_all(text.as_bytes()).and_then(|()| file.sync_all()).map_err(io)?;
        fs::rename(&tmp, &path).map_err(io)?;
        fs::File::open(dir).and_then(|d| d.sync_all()).map_err(io)
    }
}

/// A cluster id as Kafka makes them: a random UUID in URL-safe base64
/// without padding (22 characters).
fn new_cluster_id() -> String {
    URL_SAFE_NO_PAD.encode(uuid::Uuid::new_v4().as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn created_once_then_stable() {
        let dir = tempfile::tempdir().unwrap();
        let a = MetaProperties::load_or_create(dir.path(), 1).unwrap();
        assert_eq!(a.cluster_id.len(), 22);
        let b = MetaProperties::load_or_create(dir.path(), 1).unwrap();
        assert_eq!(a, b);
    }
}
