//! Window definitions, as Kafka Streams has them: [`TimeWindows`] (tumbling,
//! or hopping with `advance_by`), [`SlidingWindows`] (a window per record and
//! the time difference before it), [`SessionWindows`] (records of a key closer
//! than an inactivity gap), [`JoinWindows`] (how far apart two records of a
//! stream-stream join may be). Each has a grace period: how long after a
//! window ends (by stream time) out-of-order records still update it.
//!
//! [`WindowedSerde`] writes windowed keys in Kafka's layouts
//! (`TimeWindowedSerializer`: the key's bytes then the window start as 8
//! big-endian bytes; `SessionWindowedSerializer`: the key's bytes, the session
//! end, the session start), so a Java consumer reads what we write.

use std::sync::Arc;
use std::time::Duration;

use crate::error::{Result, StreamsError};
use crate::serde::{Serde, SerdeRef};
use crate::state::{Window, Windowed};

fn ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn invalid(what: &str, reason: impl std::fmt::Display) -> StreamsError {
    StreamsError::Topology(format!("invalid {what}: {reason}"))
}

/// Fixed-size windows by time: tumbling (`advance == size`) or hopping
/// (`advance_by(d)` with `d < size`: windows overlap). Window `[start,
/// start + size)` with `start` a multiple of the advance.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TimeWindows {
    pub size_ms: i64,
    pub advance_ms: i64,
    pub grace_ms: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size`; records after a window's end (by stream
    /// time) are dropped.
    pub fn of_size_with_no_grace(size: Duration) -> Result<Self> {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// Tumbling windows of `size` that accept out-of-order records until
    /// stream time passes their end plus `grace`.
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Result<Self> {
        let size_ms = ms(size);
        if size_ms <= 0 {
            return Err(invalid("TimeWindows", "the window size must be at least 1 ms"));
        }
        Ok(TimeWindows { size_ms, advance_ms: size_ms, grace_ms: ms(grace) })
    }

    /// Hopping windows: a new window every `advance` (at most the size, more
    /// than zero).
    pub fn advance_by(self, advance: Duration) -> Result<Self> {
        let advance_ms = ms(advance);
        if advance_ms <= 0 || advance_ms > self.size_ms {
            return Err(invalid(
                "TimeWindows",
                format!("the advance ({advance_ms} ms) must be more than 0 and at most the size ({} ms)", self.size_ms),
            ));
        }
        Ok(TimeWindows { advance_ms, ..self })
    }

    /// The windows a record at `timestamp` falls in, oldest first (starts
    /// are never negative).
    pub fn windows_for(&self, timestamp: i64) -> Vec<Window> {
        let first = (timestamp.saturating_sub(self.size_ms).saturating_add(self.advance_ms)).max(0) / self.advance_ms
            * self.advance_ms;
        let mut out = Vec::new();
        let mut start = first;
        while start <= timestamp {
            out.push(Window { start_ms: start, end_ms: start.saturating_add(self.size_ms) });
            start += self.advance_ms;
        }
        out
    }
}

/// Sliding windows: for each record, the window `[t - difference, t]`
/// (both ends inclusive) and the window just after it; a window's aggregate
/// is over every record of the key inside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SlidingWindows {
    pub time_difference_ms: i64,
    pub grace_ms: i64,
}

impl SlidingWindows {
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Result<Self> {
        let time_difference_ms = ms(difference);
        if time_difference_ms <= 0 {
            return Err(invalid("SlidingWindows", "the time difference must be at least 1 ms"));
        }
        Ok(SlidingWindows { time_difference_ms, grace_ms: ms(grace) })
    }

    pub fn of_time_difference_with_no_grace(difference: Duration) -> Result<Self> {
        Self::of_time_difference_and_grace(difference, Duration::ZERO)
    }
}

/// Session windows: records of one key less than the inactivity gap apart
/// belong to one session `[first, last]`; a record between two sessions
/// merges them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SessionWindows {
    pub inactivity_gap_ms: i64,
    pub grace_ms: i64,
}

impl SessionWindows {
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Result<Self> {
        let inactivity_gap_ms = ms(gap);
        if inactivity_gap_ms <= 0 {
            return Err(invalid("SessionWindows", "the inactivity gap must be at least 1 ms"));
        }
        Ok(SessionWindows { inactivity_gap_ms, grace_ms: ms(grace) })
    }

    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> Result<Self> {
        Self::of_inactivity_gap_and_grace(gap, Duration::ZERO)
    }
}

/// A stream-stream join's window: a record at `t` of the left stream joins
/// the right stream's records in `[t - before, t + after]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JoinWindows {
    pub before_ms: i64,
    pub after_ms: i64,
    pub grace_ms: i64,
}

impl JoinWindows {
    /// Records at most `difference` apart join; records later than that plus
    /// `grace` (by stream time) no longer do.
    pub fn of_time_difference_and_grace(difference: Duration, grace: Duration) -> Result<Self> {
        let d = ms(difference);
        if d < 0 {
            return Err(invalid("JoinWindows", "the time difference must not be negative"));
        }
        Ok(JoinWindows { before_ms: d, after_ms: d, grace_ms: ms(grace) })
    }

    pub fn of_time_difference_without_grace(difference: Duration) -> Result<Self> {
        Self::of_time_difference_and_grace(difference, Duration::ZERO)
    }

    /// How far before a left record right records join it (`after` stays).
    pub fn before(self, before: Duration) -> Result<Self> {
        let w = JoinWindows { before_ms: ms(before), ..self };
        w.validate()
    }

    /// How far after a left record right records join it (`before` stays).
    pub fn after(self, after: Duration) -> Result<Self> {
        let w = JoinWindows { after_ms: ms(after), ..self };
        w.validate()
    }

    fn validate(self) -> Result<Self> {
        if self.before_ms.saturating_add(self.after_ms) < 0 {
            return Err(invalid(
                "JoinWindows",
                format!("the window size (before {} + after {}) must not be negative", self.before_ms, self.after_ms),
            ));
        }
        Ok(self)
    }

    /// `before + after`: the join window stores' window size.
    pub fn size_ms(&self) -> i64 {
        self.before_ms.saturating_add(self.after_ms)
    }
}

/// Serdes of windowed keys in Kafka's byte layouts (see the module docs).
pub struct WindowedSerde;

impl WindowedSerde {
    /// `TimeWindowedSerde`: key bytes + window start (8 bytes, big-endian);
    /// the window end is the start plus `window_size_ms` when read back.
    pub fn time<K: 'static>(inner: SerdeRef<K>, window_size_ms: i64) -> SerdeRef<Windowed<K>> {
        Arc::new(TimeWindowedSerde { inner, window_size_ms })
    }

    /// `SessionWindowedSerde`: key bytes + session end + session start (8
    /// bytes each, big-endian).
    pub fn session<K: 'static>(inner: SerdeRef<K>) -> SerdeRef<Windowed<K>> {
        Arc::new(SessionWindowedSerde { inner })
    }
}

fn key_bytes<K: 'static>(inner: &SerdeRef<K>, topic: &str, key: &K) -> Result<Vec<u8>> {
    inner
        .serialize(topic, key)?
        .ok_or_else(|| StreamsError::serde(topic, "a windowed key's inner key serialized to null"))
}

fn be_i64(b: &[u8]) -> i64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    i64::from_be_bytes(a)
}

pub struct TimeWindowedSerde<K> {
    inner: SerdeRef<K>,
    window_size_ms: i64,
}

impl<K: 'static> Serde<Windowed<K>> for TimeWindowedSerde<K> {
    fn serialize(&self, topic: &str, w: &Windowed<K>) -> Result<Option<Vec<u8>>> {
        let mut out = key_bytes(&self.inner, topic, &w.key)?;
        out.extend_from_slice(&w.window.start_ms.to_be_bytes());
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>> {
        let data = data.ok_or_else(|| StreamsError::serde(topic, "null bytes for a windowed key"))?;
        if data.len() < 8 {
            return Err(StreamsError::serde(topic, "a time-windowed key shorter than its 8-byte window start"));
        }
        let (k, t) = data.split_at(data.len() - 8);
        let start_ms = be_i64(t);
        Ok(Windowed {
            key: self.inner.deserialize(topic, Some(k))?,
            window: Window { start_ms, end_ms: start_ms.saturating_add(self.window_size_ms) },
        })
    }
}

pub struct SessionWindowedSerde<K> {
    inner: SerdeRef<K>,
}

impl<K: 'static> Serde<Windowed<K>> for SessionWindowedSerde<K> {
    fn serialize(&self, topic: &str, w: &Windowed<K>) -> Result<Option<Vec<u8>>> {
        let mut out = key_bytes(&self.inner, topic, &w.key)?;
        out.extend_from_slice(&w.window.end_ms.to_be_bytes());
        out.extend_from_slice(&w.window.start_ms.to_be_bytes());
        Ok(Some(out))
    }

    fn deserialize(&self, topic: &str, data: Option<&[u8]>) -> Result<Windowed<K>> {
        let data = data.ok_or_else(|| StreamsError::serde(topic, "null bytes for a session-windowed key"))?;
        if data.len() < 16 {
            return Err(StreamsError::serde(
                topic,
                "a session-windowed key shorter than its 16 bytes of end and start",
            ));
        }
        let (k, t) = data.split_at(data.len() - 16);
        Ok(Windowed {
            key: self.inner.deserialize(topic, Some(k))?,
            window: Window { end_ms: be_i64(t), start_ms: be_i64(&t[8..]) },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::Serdes;

    fn d(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn windows_validate_their_parameters() {
        assert!(TimeWindows::of_size_with_no_grace(d(0)).is_err());
        let w = TimeWindows::of_size_and_grace(d(10), d(5)).unwrap();
        assert_eq!(w, TimeWindows { size_ms: 10, advance_ms: 10, grace_ms: 5 });
        assert!(w.advance_by(d(11)).is_err());
        assert!(w.advance_by(d(0)).is_err());
        assert_eq!(w.advance_by(d(5)).unwrap().advance_ms, 5);
        assert!(SlidingWindows::of_time_difference_with_no_grace(d(0)).is_err());
        assert!(SessionWindows::of_inactivity_gap_with_no_grace(d(0)).is_err());
        let j = JoinWindows::of_time_difference_and_grace(d(10), d(3)).unwrap();
        assert_eq!((j.before_ms, j.after_ms, j.grace_ms, j.size_ms()), (10, 10, 3, 20));
        assert_eq!(j.before(d(0)).unwrap().size_ms(), 10);
    }

    #[test]
    fn time_windows_for_a_timestamp() {
        let tumbling = TimeWindows::of_size_with_no_grace(d(10)).unwrap();
        assert_eq!(tumbling.windows_for(15), vec![Window { start_ms: 10, end_ms: 20 }]);
        assert_eq!(tumbling.windows_for(10), vec![Window { start_ms: 10, end_ms: 20 }]);
        let hopping = tumbling.advance_by(d(5)).unwrap();
        let starts: Vec<i64> = hopping.windows_for(12).iter().map(|w| w.start_ms).collect();
        assert_eq!(starts, vec![5, 10]);
        // no negative starts
        let starts: Vec<i64> = hopping.windows_for(3).iter().map(|w| w.start_ms).collect();
        assert_eq!(starts, vec![0]);
    }

    #[test]
    fn windowed_serdes_use_kafkas_layouts() {
        let key = Windowed { key: "ab".to_string(), window: Window { start_ms: 10, end_ms: 20 } };
        let s = WindowedSerde::time(Serdes::string(), 10);
        let bytes = s.serialize("t", &key).unwrap().unwrap();
        assert_eq!(bytes, [b"ab".as_slice(), &10i64.to_be_bytes()].concat());
        assert_eq!(s.deserialize("t", Some(&bytes)).unwrap(), key);
        assert!(s.deserialize("t", Some(&[1, 2])).is_err());
        let sess = Windowed { key: "ab".to_string(), window: Window { start_ms: 3, end_ms: 9 } };
        let s = WindowedSerde::session(Serdes::string());
        let bytes = s.serialize("t", &sess).unwrap().unwrap();
        assert_eq!(bytes, [b"ab".as_slice(), &9i64.to_be_bytes(), &3i64.to_be_bytes()].concat());
        assert_eq!(s.deserialize("t", Some(&bytes)).unwrap(), sess);
        assert!(s.deserialize("t", None).is_err());
    }
}
