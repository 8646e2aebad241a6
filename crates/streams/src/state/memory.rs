//! An in-memory byte store (a B-tree map): for stores built `in_memory()`
//! and for topologies run without a state directory.

use std::collections::BTreeMap;
use std::ops::Bound;

use super::ByteStore;
use crate::error::Result;

#[derive(Default)]
pub struct MemoryStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl ByteStore for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        Ok(self.map.get(key).cloned())
    }
    fn put(&mut self, key: &[u8], value: Option<&[u8]>) -> Result<()> {
        match value {
            Some(v) => {
                self.map.insert(key.to_vec(), v.to_vec());
            }
            None => {
                self.map.remove(key);
            }
        }
        Ok(())
    }
    fn range(&self, from: Bound<&[u8]>, to: Bound<&[u8]>) -> Result<Vec<(Vec<u8>, Vec<u8>)>> {
        // BTreeMap::range panics on start > end, and on equal bounds unless both are included
        let empty = match (from, to) {
            (Bound::Included(a), Bound::Included(b)) => a > b,
            (Bound::Included(a) | Bound::Excluded(a), Bound::Included(b) | Bound::Excluded(b)) => a >= b,
            _ => false,
        };
        if empty {
            return Ok(Vec::new());
        }
        Ok(self.map.range::<[u8], _>((from, to)).map(|(k, v)| (k.clone(), v.clone())).collect())
    }
    fn approximate_len(&self) -> u64 {
        self.map.len() as u64
    }
    fn flush(&mut self) -> Result<()> {
        Ok(())
    }
    fn persistent(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_inverted_ranges_are_empty_not_a_panic() {
        let mut m = MemoryStore::default();
        m.put(b"b", Some(b"1")).unwrap();
        let k: &[u8] = b"b";
        assert!(m.range(Bound::Excluded(k), Bound::Excluded(k)).unwrap().is_empty());
        assert!(m.range(Bound::Included(k), Bound::Excluded(k)).unwrap().is_empty());
        assert_eq!(m.range(Bound::Included(k), Bound::Included(k)).unwrap().len(), 1);
        assert!(m.range(Bound::Included(b"c".as_slice()), Bound::Included(b"a".as_slice())).unwrap().is_empty());
    }
}
