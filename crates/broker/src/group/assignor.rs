//! Server-side partition assignors of KIP-848 consumer groups: `uniform`
//! (balanced and sticky: a member keeps what it had as long as the balance
//! allows) and `range` (per topic, contiguous ranges in member order).
//! Pure functions of the members' subscriptions and previous targets.

use std::collections::{BTreeMap, BTreeSet};

use uuid::Uuid;

/// Partitions per topic id.
pub type Assignment = BTreeMap<Uuid, BTreeSet<i32>>;

/// The assignors vltava implements, by Kafka's names.
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// What an assignor knows about one member.
pub struct AssignorMember<'a> {
    pub member_id: &'a str,
    /// Topics the member subscribes to that exist.
    pub topics: BTreeSet<Uuid>,
    /// The member's previous target assignment.
    pub previous: Option<&'a Assignment>,
}

/// The target assignment of every member with assignor `name` (`range`, or
/// `uniform` for anything else); `partitions`: partition count per topic.
pub fn assign(
    name: &str,
    members: &[AssignorMember<'_>],
    partitions: &BTreeMap<Uuid, i32>,
) -> BTreeMap<String, Assignment> {
    let mut out: BTreeMap<String, Assignment> =
        members.iter().map(|m| (m.member_id.to_string(), Assignment::new())).collect();
    if name == "range" {
        range(members, partitions, &mut out);
    } else {
        uniform(members, partitions, &mut out);
    }
    out
}

fn range(members: &[AssignorMember<'_>], partitions: &BTreeMap<Uuid, i32>, out: &mut BTreeMap<String, Assignment>) {
    for (topic, count) in partitions {
        let mut subscribed: Vec<&str> =
            members.iter().filter(|m| m.topics.contains(topic)).map(|m| m.member_id).collect();
        if subscribed.is_empty() {
            continue;
        }
        subscribed.sort_unstable();
        let (per, extra) = (*count as usize / subscribed.len(), *count as usize % subscribed.len());
        let mut next = 0i32;
        for (i, member) in subscribed.iter().enumerate() {
            let n = (per + usize::from(i < extra)) as i32;
            if n > 0 {
                out.get_mut(*member).expect("member").entry(*topic).or_default().extend(next..next + n);
            }
            next += n;
        }
    }
}

fn uniform(members: &[AssignorMember<'_>], partitions: &BTreeMap<Uuid, i32>, out: &mut BTreeMap<String, Assignment>) {
    let mut owner: BTreeMap<(Uuid, i32), &str> = BTreeMap::new();
    let mut load: BTreeMap<&str, usize> = members.iter().map(|m| (m.member_id, 0)).collect();
    let eligible = |topic: &Uuid| -> Vec<&str> {
        members.iter().filter(|m| m.topics.contains(topic)).map(|m| m.member_id).collect()
    };
    let total: usize = partitions
        .iter()
        .filter(|(t, _)| members.iter().any(|m| m.topics.contains(*t)))
        .map(|(_, c)| *c as usize)
        .sum();
    // a member keeps at most the balanced share of what it had
    let share = if members.is_empty() { 0 } else { total.div_ceil(members.len()) };
    for m in members {
        let Some(previous) = m.previous else { continue };
        for (topic, parts) in previous {
            let Some(count) = partitions.get(topic) else { continue };
            if !m.topics.contains(topic) {
                continue;
            }
            for p in parts.iter().filter(|p| **p < *count) {
                if load[m.member_id] >= share || owner.contains_key(&(*topic, *p)) {
                    continue;
                }
                owner.insert((*topic, *p), m.member_id);
                *load.get_mut(m.member_id).expect("member") += 1;
            }
        }
    }
    // what is left goes to the least loaded eligible member
    for (topic, count) in partitions {
        let candidates = eligible(topic);
        if candidates.is_empty() {
            continue;
        }
        for p in 0..*count {
            if owner.contains_key(&(*topic, p)) {
                continue;
            }
            let chosen = *candidates.iter().min_by_key(|m| (load[**m], **m)).expect("candidates");
            owner.insert((*topic, p), chosen);
            *load.get_mut(chosen).expect("member") += 1;
        }
    }
    // balance: move partitions from the most to the least loaded eligible
    // member while that narrows the gap (bounded by the partition count)
    for _ in 0..=owner.len() {
        let mut moved = false;
        let keys: Vec<(Uuid, i32)> = owner.keys().copied().collect();
        for key in keys {
            let from = owner[&key];
            let best = eligible(&key.0).into_iter().filter(|m| *m != from).min_by_key(|m| (load[*m], *m));
            if let Some(to) = best {
                if load[to] + 1 < load[from] {
                    owner.insert(key, to);
                    *load.get_mut(from).expect("member") -= 1;
                    *load.get_mut(to).expect("member") += 1;
                    moved = true;
                }
            }
        }
        if !moved {
            break;
        }
    }
    for ((topic, p), member) in owner {
        out.get_mut(member).expect("member").entry(topic).or_default().insert(p);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(a: &Assignment) -> usize {
        a.values().map(|s| s.len()).sum()
    }

    #[test]
    fn uniform_is_balanced_complete_and_sticky() {
        let t = Uuid::from_u128(1);
        let topics: BTreeSet<Uuid> = [t].into();
        let parts: BTreeMap<Uuid, i32> = [(t, 6)].into();
        let ms = |ids: &[&'static str],
                  prev: &BTreeMap<String, Assignment>|
         -> Vec<(String, BTreeSet<Uuid>, Option<Assignment>)> {
            ids.iter().map(|id| (id.to_string(), topics.clone(), prev.get(*id).cloned())).collect()
        };
        let run = |v: &Vec<(String, BTreeSet<Uuid>, Option<Assignment>)>| {
            let members: Vec<AssignorMember<'_>> = v
                .iter()
                .map(|(id, t, p)| AssignorMember { member_id: id, topics: t.clone(), previous: p.as_ref() })
                .collect();
            assign("uniform", &members, &parts)
        };
        let first = run(&ms(&["a", "b", "c"], &BTreeMap::new()));
        assert!(first.values().all(|a| count(a) == 2));
        let all: BTreeSet<i32> = first.values().flat_map(|a| a[&t].iter().copied()).collect();
        assert_eq!(all.len(), 6);
        // c leaves: a and b keep theirs and split c's
        let second = run(&ms(&["a", "b"], &first));
        assert!(second.values().all(|a| count(a) == 3));
        for id in ["a", "b"] {
            assert!(first[id][&t].is_subset(&second[id][&t]), "{id} keeps its partitions");
        }
        // a fourth member takes one from each that had three... balance 2/2/1/1
        let third = run(&ms(&["a", "b", "d", "e"], &second));
        let mut counts: Vec<usize> = third.values().map(count).collect();
        counts.sort();
        assert_eq!(counts, vec![1, 1, 2, 2]);
    }

    #[test]
    fn range_gives_contiguous_ranges_in_member_order() {
        let t = Uuid::from_u128(7);
        let parts: BTreeMap<Uuid, i32> = [(t, 5)].into();
        let members = vec![
            AssignorMember { member_id: "b", topics: [t].into(), previous: None },
            AssignorMember { member_id: "a", topics: [t].into(), previous: None },
        ];
        let out = assign("range", &members, &parts);
        assert_eq!(out["a"][&t], [0, 1, 2].into());
        assert_eq!(out["b"][&t], [3, 4].into());
    }

    #[test]
    fn heterogeneous_subscriptions_only_get_their_topics() {
        let (t1, t2) = (Uuid::from_u128(1), Uuid::from_u128(2));
        let parts: BTreeMap<Uuid, i32> = [(t1, 4), (t2, 2)].into();
        let members = vec![
            AssignorMember { member_id: "a", topics: [t1].into(), previous: None },
            AssignorMember { member_id: "b", topics: [t1, t2].into(), previous: None },
        ];
        let out = assign("uniform", &members, &parts);
        assert!(!out["a"].contains_key(&t2));
        assert_eq!(count(&out["a"]) + count(&out["b"]), 6);
        assert_eq!(count(&out["a"]), 3);
    }
}
