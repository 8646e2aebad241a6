//! AlterReplicaLogDirs: a replica moves to another log directory of this
//! broker while it keeps serving. Its files are copied into a
//! `<topic>-<partition>.<id>-future` directory of the target, round after
//! round (a segment file grows only at its end, so a round copies what was
//! appended since the last); then, with appends held for the last round
//! only, the log is closed, the rest copied and fsynced, the future
//! directory renamed into place and opened, and the old directory deleted.
//! A truncation or a cleaner swap during the copy (bytes rewritten in
//! place) makes it start over. A restart during a move deletes the
//! unfinished future directory: the replica stays where it was.

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use anyhow::Context;
use vltava_storage::{atomic_file, Log, LogDir, Recovery};

use crate::partition::Partition;
use crate::replica_manager::partition_dir;

/// Suffix of a directory a replica is being copied into.
pub const FUTURE_SUFFIX: &str = "-future";
/// Rounds copied without holding appends, at most.
const ROUNDS_MAX: usize = 8;
/// A round that copied less than this ends the rounds without the lock.
const QUIET_BYTES: u64 = 1 << 20;

/// What a copy holds of each file: its length and modification time when
/// copied.
#[derive(Default)]
struct Copied(HashMap<OsString, (u64, SystemTime)>);

/// Moves `partition` into `target`; returns the old directory, renamed
/// `doomed_name` (a `-delete` name: a start deletes it), for the caller to
/// delete.
pub fn move_replica(partition: &Partition, target: &Arc<LogDir>, doomed_name: &str) -> anyhow::Result<PathBuf> {
    let source = partition.dir();
    let destination = partition_dir(target.path(), &partition.topic, partition.index);
    anyhow::ensure!(!destination.exists(), "{} exists already", destination.display());
    let future = target.path().join(format!(
        "{}-{}.{}{FUTURE_SUFFIX}",
        partition.topic,
        partition.index,
        uuid::Uuid::new_v4().simple()
    ));
    fs::create_dir_all(&future).with_context(|| format!("cannot create {}", future.display()))?;
    let doomed = source.with_file_name(doomed_name);
    let moved = copy_and_swap(partition, target, &source, &future, &destination, &doomed);
    if moved.is_err() {
        let _ = fs::remove_dir_all(&future);
    }
    moved.map(|()| doomed)
}

fn copy_and_swap(
    partition: &Partition,
    target: &Arc<LogDir>,
    source: &Path,
    future: &Path,
    destination: &Path,
    doomed: &Path,
) -> anyhow::Result<()> {
    let mut copied = Copied::default();
    let mut rewrites = partition.log_rewrites();
    for _ in 0..ROUNDS_MAX {
        let bytes = copy_round(source, future, &mut copied, false)?;
        let now = partition.log_rewrites();
        if now != rewrites {
            // bytes were rewritten in place: copy everything again
            restart(future, &mut copied)?;
            rewrites = now;
            continue;
        }
        if bytes < QUIET_BYTES {
            break;
        }
    }
    let config = partition.settings().log.clone();
    let source_dir = partition.log_dir();
    let mut failure = None;
    partition.swap_log(|log: &mut Log| {
        log.close().context("cannot close the log before moving it")?;
        // Both renames happen with appends held: a crash between them leaves
        // two identical copies; after them only the new one (the old is
        // `-delete`, removed at start), so nothing acknowledged is lost.
        let finished = (|| -> anyhow::Result<Log> {
            if log.rewrites() != rewrites {
                restart(future, &mut copied)?;
            }
            copy_round(source, future, &mut copied, true)?;
            fs::rename(future, destination)
                .with_context(|| format!("cannot rename {} to {}", future.display(), destination.display()))?;
            atomic_file::sync_dir(target.path())?;
            fs::rename(source, doomed)
                .with_context(|| format!("cannot rename {} to {}", source.display(), doomed.display()))?;
            atomic_file::sync_dir(source_dir.path())?;
            Ok(Log::open_in(target, destination, config.clone(), Recovery::None)?)
        })();
        match finished {
            Ok(moved) => Ok((moved, target.clone())),
            Err(e) => {
                // the closed log opens again where it was: the replica stays
                if doomed.exists() && !source.exists() {
                    fs::rename(doomed, source)?;
                }
                let _ = fs::remove_dir_all(destination);
                failure = Some(e);
                Ok((Log::open_in(&source_dir, source, config.clone(), Recovery::None)?, source_dir.clone()))
            }
        }
    })?;
    match failure {
        None => Ok(()),
        Some(e) => Err(e),
    }
}

fn restart(future: &Path, copied: &mut Copied) -> anyhow::Result<()> {
    for entry in fs::read_dir(future)? {
        fs::remove_file(entry?.path())?;
    }
    copied.0.clear();
    Ok(())
}

/// Copies what changed in `source` since the last round: segment files
/// (`.log`) from where the last copy ended, other files whole (only in the
/// `last` round, when they are final: indexes are written at close). The
/// last round also removes files gone from `source` and fsyncs everything.
fn copy_round(source: &Path, future: &Path, copied: &mut Copied, last: bool) -> anyhow::Result<u64> {
    let mut bytes = 0;
    let mut present = Vec::new();
    for entry in fs::read_dir(source)? {
        let entry = entry?;
        let meta = entry.metadata()?;
        if !meta.is_file() {
            continue;
        }
        let name = entry.file_name();
        present.push(name.clone());
        let is_segment = Path::new(&name).extension().is_some_and(|e| e == "log");
        if !is_segment && !last {
            continue;
        }
        let (len, modified) = (meta.len(), meta.modified()?);
        let from = match copied.0.get(&name) {
            Some(&(l, m)) if (l, m) == (len, modified) => continue,
            Some(&(l, _)) if is_segment && l <= len => l,
            _ => 0,
        };
        bytes += copy_range(&entry.path(), &future.join(&name), from, len)?;
        copied.0.insert(name, (len, modified));
    }
    if last {
        for entry in fs::read_dir(future)? {
            let entry = entry?;
            if !present.contains(&entry.file_name()) {
                fs::remove_file(entry.path())?;
            }
        }
        for entry in fs::read_dir(future)? {
            File::open(entry?.path())?.sync_all()?;
        }
        atomic_file::sync_dir(future)?;
    }
    Ok(bytes)
}

/// Copies bytes `[from, to)` of `src` into `dst` at the same place (the
/// destination is cut to `to`; `from` 0 rewrites it whole).
fn copy_range(src: &Path, dst: &Path, from: u64, to: u64) -> anyhow::Result<u64> {
    let mut input = File::open(src)?;
    let mut output = OpenOptions::new().create(true).write(true).truncate(from == 0).open(dst)?;
    output.set_len(from)?;
    input.seek(SeekFrom::Start(from))?;
    output.seek(SeekFrom::Start(from))?;
    let copied = std::io::copy(&mut (&mut input).take(to - from), &mut output)?;
    output.flush()?;
    Ok(copied)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_copy_appended_bytes_and_the_last_one_everything() {
        let tmp = tempfile::tempdir().unwrap();
        let (src, dst) = (tmp.path().join("src"), tmp.path().join("dst"));
        fs::create_dir_all(&src).unwrap();
        fs::create_dir_all(&dst).unwrap();
        fs::write(src.join("0.log"), b"first").unwrap();
        fs::write(src.join("0.index"), b"idx").unwrap();
        let mut copied = Copied::default();
        assert_eq!(copy_round(&src, &dst, &mut copied, false).unwrap(), 5);
        assert!(!dst.join("0.index").exists(), "other files wait for the last round");
        // appended: only the new bytes are copied
        OpenOptions::new().append(true).open(src.join("0.log")).unwrap().write_all(b"+more").unwrap();
        assert_eq!(copy_round(&src, &dst, &mut copied, false).unwrap(), 5);
        fs::write(dst.join("stale"), b"x").unwrap();
        copy_round(&src, &dst, &mut copied, true).unwrap();
        assert_eq!(fs::read(dst.join("0.log")).unwrap(), b"first+more");
        assert_eq!(fs::read(dst.join("0.index")).unwrap(), b"idx");
        assert!(!dst.join("stale").exists(), "what the source lacks goes");
        // a shorter file (rewritten) is copied whole
        fs::write(src.join("0.log"), b"new").unwrap();
        copy_round(&src, &dst, &mut copied, true).unwrap();
        assert_eq!(fs::read(dst.join("0.log")).unwrap(), b"new");
    }
}
