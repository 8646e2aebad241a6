//! Share sessions (KIP-932's share fetch sessions, Kafka's
//! `ShareSessionCache`): per (group, member) on a partition leader, the
//! partitions the member fetches and the epoch its next request must
//! carry. Epoch 0 opens (or replaces) a session with the request's
//! partitions; later requests add partitions and name forgotten ones and
//! carry the next epoch; -1 closes. At most `group.share.max.share.sessions`;
//! when they are all taken, sessions unused for longer than a member could
//! stay in its group (`group.share.max.session.timeout.ms`) make room: a
//! client that vanished without closing its session does not hold it forever.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use uuid::Uuid;
use vltava_protocol::ResponseError;

/// The epoch that opens a session, and the one that closes it.
pub const OPEN_EPOCH: i32 = 0;
pub const CLOSE_EPOCH: i32 = -1;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct SessionKey {
    pub group: String,
    pub member: String,
}

struct Session {
    next_epoch: i32,
    last_used: Instant,
    partitions: Vec<(Uuid, i32)>,
}

#[derive(Default)]
pub struct ShareSessions {
    sessions: Mutex<HashMap<SessionKey, Session>>,
}

/// How many sessions, and how long an unused one is kept when all are taken.
pub struct SessionLimits {
    pub max_sessions: usize,
    pub idle_max: Duration,
}

/// What a request did to its session.
pub struct SessionUse {
    /// The partitions to fetch from (none when the session closed).
    pub partitions: Vec<(Uuid, i32)>,
    /// The session ended with this request (epoch -1).
    pub closed: bool,
    /// Epoch 0 replaced a session of the same member (whose
    /// acknowledgements in flight the client has given up).
    pub replaced: bool,
}

impl ShareSessions {
    /// Checks a ShareFetch's epoch and updates its session: `added` are the
    /// request's partitions, `forgotten` its forgotten topics' ones.
    pub fn on_fetch(
        &self,
        key: SessionKey,
        epoch: i32,
        added: &[(Uuid, i32)],
        forgotten: &[(Uuid, i32)],
        limits: &SessionLimits,
        now: Instant,
    ) -> Result<SessionUse, ResponseError> {
        let mut sessions = self.sessions.lock();
        match epoch {
            OPEN_EPOCH => {
                if !sessions.contains_key(&key) && sessions.len() >= limits.max_sessions {
                    sessions.retain(|_, s| now.duration_since(s.last_used) <= limits.idle_max);
                    if sessions.len() >= limits.max_sessions {
                        return Err(ResponseError::ShareSessionLimitReached);
                    }
                }
                let mut partitions = added.to_vec();
                partitions.dedup();
                let session = Session { next_epoch: 1, last_used: now, partitions: partitions.clone() };
                let replaced = sessions.insert(key, session).is_some();
                Ok(SessionUse { partitions, closed: false, replaced })
            }
            CLOSE_EPOCH => {
                sessions.remove(&key).ok_or(ResponseError::ShareSessionNotFound)?;
                Ok(SessionUse { partitions: Vec::new(), closed: true, replaced: false })
            }
            e if e < 0 => Err(ResponseError::InvalidShareSessionEpoch),
            e => {
                let s = sessions.get_mut(&key).ok_or(ResponseError::ShareSessionNotFound)?;
                if s.next_epoch != e {
                    return Err(ResponseError::InvalidShareSessionEpoch);
                }
                s.next_epoch = if e == i32::MAX { 1 } else { e + 1 };
                s.last_used = now;
                for p in added {
                    if !s.partitions.contains(p) {
                        s.partitions.push(*p);
                    }
                }
                s.partitions.retain(|p| !forgotten.contains(p));
                Ok(SessionUse { partitions: s.partitions.clone(), closed: false, replaced: false })
            }
        }
    }

    /// Checks a ShareAcknowledge's epoch: it must continue a session (and
    /// moves its epoch on), or close it (-1).
    pub fn on_acknowledge(&self, key: SessionKey, epoch: i32, now: Instant) -> Result<SessionUse, ResponseError> {
        let unbounded = SessionLimits { max_sessions: usize::MAX, idle_max: Duration::MAX };
        match epoch {
            OPEN_EPOCH => Err(ResponseError::InvalidShareSessionEpoch),
            _ => self.on_fetch(key, epoch, &[], &[], &unbounded, now),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> SessionKey {
        SessionKey { group: "g".into(), member: "m".into() }
    }

    fn limits(max_sessions: usize) -> SessionLimits {
        SessionLimits { max_sessions, idle_max: Duration::from_secs(60) }
    }

    #[test]
    fn epochs_open_continue_and_close() {
        let s = ShareSessions::default();
        let t = Uuid::from_u128(1);
        let (l, now) = (limits(10), Instant::now());
        assert_eq!(s.on_fetch(key(), 1, &[], &[], &l, now).err(), Some(ResponseError::ShareSessionNotFound));
        assert_eq!(s.on_fetch(key(), 0, &[(t, 0)], &[], &l, now).unwrap().partitions, vec![(t, 0)]);
        assert_eq!(s.on_fetch(key(), 2, &[], &[], &l, now).err(), Some(ResponseError::InvalidShareSessionEpoch));
        assert_eq!(s.on_fetch(key(), 1, &[(t, 1)], &[(t, 0)], &l, now).unwrap().partitions, vec![(t, 1)]);
        assert_eq!(s.on_acknowledge(key(), 0, now).err(), Some(ResponseError::InvalidShareSessionEpoch));
        assert!(s.on_acknowledge(key(), 2, now).is_ok());
        assert!(s.on_fetch(key(), -1, &[], &[], &l, now).unwrap().closed);
        assert_eq!(s.on_fetch(key(), 4, &[], &[], &l, now).err(), Some(ResponseError::ShareSessionNotFound));
    }

    #[test]
    fn the_session_limit_is_enforced_and_idle_sessions_make_room() {
        let s = ShareSessions::default();
        let now = Instant::now();
        s.on_fetch(key(), 0, &[], &[], &limits(1), now).unwrap();
        let other = || SessionKey { group: "g".into(), member: "n".into() };
        let soon = now + Duration::from_secs(30);
        assert_eq!(
            s.on_fetch(other(), 0, &[], &[], &limits(1), soon).err(),
            Some(ResponseError::ShareSessionLimitReached)
        );
        // replacing one's own session is not a new one
        assert!(s.on_fetch(key(), 0, &[], &[], &limits(1), soon).unwrap().replaced);
        let later = soon + Duration::from_secs(61);
        assert!(s.on_fetch(other(), 0, &[], &[], &limits(1), later).is_ok());
        assert_eq!(s.on_fetch(key(), 1, &[], &[], &limits(1), later).err(), Some(ResponseError::ShareSessionNotFound));
    }
}
