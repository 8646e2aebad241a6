//! Several quorum nodes driven by hand, without threads or sockets: the
//! test owns the network (it delivers, drops or holds messages) and the
//! clock (ticks). Elections, proposals, a partitioned leader, restarts from
//! disk, snapshots, a wiped voter catching up from one, and membership
//! changes (a learner joining, promoted, the leader removed).

use std::collections::{HashSet, VecDeque};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use raft::eraftpb::Message;
use vltava_metadata::{EntryData, MetadataRecord};
use vltava_quorum::node::{node_id, NodeSettings, QuorumNode};
use vltava_quorum::VoterChange;

struct Sim {
    dirs: Vec<tempfile::TempDir>,
    nodes: Vec<Option<QuorumNode>>,
    settings: NodeSettings,
    /// Nodes cut off from every other node.
    isolated: HashSet<i32>,
    network: VecDeque<Message>,
    now: Instant,
    next_id: u64,
}

impl Sim {
    fn new(n: i32, snapshot_bytes: u64) -> Self {
        let voters: Vec<i32> = (1..=n).collect();
        let mut settings = NodeSettings::new(0, voters);
        settings.snapshot_bytes = snapshot_bytes;
        settings.snapshot_interval = Duration::ZERO;
        settings.log.segment_bytes = 1 << 20;
        let mut sim = Sim {
            dirs: (0..n).map(|_| tempfile::tempdir().unwrap()).collect(),
            nodes: Vec::new(),
            settings,
            isolated: HashSet::new(),
            network: VecDeque::new(),
            now: Instant::now(),
            next_id: 1,
        };
        for id in 1..=n {
            let node = sim.open(id);
            sim.nodes.push(Some(node));
        }
        sim
    }

    fn dir(&self, id: i32) -> PathBuf {
        self.dirs[(id - 1) as usize].path().join("__cluster_metadata-0")
    }

    fn open(&self, id: i32) -> QuorumNode {
        let settings = NodeSettings { node_id: id, ..self.settings.clone() };
        QuorumNode::open(&self.dir(id), settings, self.now).unwrap()
    }

    /// Starts node `id` as a new controller that joins the quorum (no
    /// voters of its own: an empty log and no membership).
    fn add_joining_node(&mut self, id: i32) {
        assert_eq!(id as usize, self.nodes.len() + 1);
        self.dirs.push(tempfile::tempdir().unwrap());
        let node = self.open_joining(id);
        self.nodes.push(Some(node));
    }

    fn open_joining(&self, id: i32) -> QuorumNode {
        let settings = NodeSettings { node_id: id, voters: Vec::new(), join: true, ..self.settings.clone() };
        QuorumNode::open(&self.dir(id), settings, self.now).unwrap()
    }

    /// Proposes a membership change on the leader and waits until every
    /// node that is up applied it.
    fn change(&mut self, change: VoterChange) {
        let leader = self.wait_leader();
        let index = self.node(leader).propose_change(&change).expect("the leader takes the change");
        for _ in 0..100 {
            self.ticks(1);
            if self.up().iter().all(|id| self.nodes[(*id - 1) as usize].as_ref().unwrap().applied_index() >= index) {
                return;
            }
        }
        panic!("{change:?} not applied everywhere");
    }

    fn node(&mut self, id: i32) -> &mut QuorumNode {
        self.nodes[(id - 1) as usize].as_mut().expect("node is up")
    }

    fn up(&self) -> Vec<i32> {
        (1..=self.nodes.len() as i32).filter(|id| self.nodes[(*id - 1) as usize].is_some()).collect()
    }

    /// Processes every node's ready state and delivers messages until the
    /// network is quiet.
    fn settle(&mut self) {
        for _ in 0..10_000 {
            for id in self.up() {
                let now = self.now;
                let progress = self.node(id).process_ready(now).unwrap();
                self.network.extend(progress.messages);
            }
            let Some(msg) = self.network.pop_front() else {
                if self.up().iter().all(|id| !self.nodes[(*id - 1) as usize].as_ref().unwrap().has_ready()) {
                    return;
                }
                continue;
            };
            let (from, to) = (node_id(msg.from), node_id(msg.to));
            let reachable = !self.isolated.contains(&from) && !self.isolated.contains(&to);
            if reachable && self.nodes.get((to - 1) as usize).is_some_and(Option::is_some) {
                let _ = self.node(to).step(msg);
            }
        }
        panic!("the network never settled");
    }

    fn ticks(&mut self, n: usize) {
        for _ in 0..n {
            self.now += Duration::from_millis(100);
            for id in self.up() {
                self.node(id).tick();
            }
            self.settle();
        }
    }

    /// The leader every member that is up and connected agrees on (a node
    /// out of the membership hears from no leader).
    fn leader(&mut self) -> Option<i32> {
        let connected: Vec<i32> = self
            .up()
            .into_iter()
            .filter(|id| !self.isolated.contains(id))
            .filter(|id| self.nodes[(*id - 1) as usize].as_ref().unwrap().membership().is_member(*id))
            .collect();
        let leaders: HashSet<i32> =
            connected.iter().map(|id| self.nodes[(*id - 1) as usize].as_ref().unwrap().leader()).collect();
        let leader = *leaders.iter().next()?;
        (leaders.len() == 1 && leader >= 0 && connected.contains(&leader)).then_some(leader)
    }

    fn wait_leader(&mut self) -> i32 {
        for _ in 0..200 {
            if let Some(l) = self.leader() {
                if self.node(l).is_leader() {
                    return l;
                }
            }
            self.ticks(1);
        }
        panic!("no leader elected");
    }

    /// Proposes a topic through node `via` and returns its name.
    fn create_topic(&mut self, via: i32) -> String {
        let name = format!("topic-{}", self.next_id);
        let data = EntryData {
            id: self.next_id,
            records: vec![MetadataRecord::Topic { name: name.clone(), topic_id: uuid::Uuid::new_v4() }],
        };
        self.next_id += 1;
        self.node(via).propose(data.encode()).expect("a leader takes the proposal");
        self.settle();
        name
    }

    fn topics(&mut self, id: i32) -> Vec<String> {
        let mut names: Vec<String> = self.node(id).image().topics().map(|t| t.name.clone()).collect();
        names.sort();
        names
    }
}

#[test]
fn three_voters_elect_one_leader_and_agree() {
    let mut sim = Sim::new(3, u64::MAX);
    let leader = sim.wait_leader();
    let mut created = Vec::new();
    for i in 0..10 {
        // proposals through any node are forwarded to the leader
        created.push(sim.create_topic(1 + i % 3));
    }
    sim.ticks(3);
    created.sort();
    for id in 1..=3 {
        assert_eq!(sim.topics(id), created, "node {id}");
    }
    assert_eq!(sim.leader(), Some(leader));
}

#[test]
fn an_isolated_leader_steps_down_and_the_majority_goes_on() {
    let mut sim = Sim::new(3, u64::MAX);
    let old = sim.wait_leader();
    sim.create_topic(old);
    sim.isolated.insert(old);
    // check-quorum: the isolated leader steps down; the other two elect one
    sim.ticks(40);
    assert!(!sim.node(old).is_leader(), "an isolated leader must step down");
    let new = sim.wait_leader();
    assert_ne!(new, old);
    let during = sim.create_topic(new);
    assert!(!sim.topics(old).contains(&during), "the isolated node cannot have learned it");
    // healed: the old leader catches up without disrupting the new term
    // (pre-vote), and the log agrees everywhere
    sim.isolated.clear();
    sim.ticks(30);
    for id in 1..=3 {
        assert!(sim.topics(id).contains(&during), "node {id} caught up");
    }
    assert_eq!(sim.leader(), Some(new), "pre-vote: the returning node did not depose the leader");
}

#[test]
fn a_restarted_voter_recovers_its_log_from_disk() {
    let mut sim = Sim::new(3, u64::MAX);
    let leader = sim.wait_leader();
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let a = sim.create_topic(leader);
    sim.ticks(2);
    sim.nodes[(follower - 1) as usize] = None;
    let b = sim.create_topic(leader);
    let reopened = sim.open(follower);
    assert!(reopened.image().topic(&a).is_some(), "committed before the stop: on disk");
    sim.nodes[(follower - 1) as usize] = Some(reopened);
    sim.ticks(10);
    assert!(sim.topics(follower).contains(&b), "caught up after the restart");
}

#[test]
fn snapshots_bound_the_log_and_a_wiped_voter_catches_up_from_one() {
    // snapshot every ~4 KiB of entries
    let mut sim = Sim::new(3, 4096);
    let leader = sim.wait_leader();
    let mut created: Vec<String> = (0..300).map(|_| sim.create_topic(leader)).collect();
    sim.ticks(3);
    created.sort();
    for id in 1..=3 {
        let index = sim.node(id).log().snapshot_index();
        assert!(index > 200, "node {id} took snapshots (last at {index})");
        assert!(sim.node(id).log().first_index() > 200, "node {id} dropped entries before its snapshot");
    }
    // a voter loses its whole metadata directory and starts empty: the
    // leader no longer has the entries it needs and sends its snapshot
    let victim = (1..=3).find(|id| *id != leader).unwrap();
    sim.nodes[(victim - 1) as usize] = None;
    std::fs::remove_dir_all(sim.dir(victim)).unwrap();
    let fresh = sim.open(victim);
    assert_eq!(fresh.image().topic_count(), 0);
    sim.nodes[(victim - 1) as usize] = Some(fresh);
    sim.ticks(20);
    assert_eq!(sim.node(victim).applied_index(), sim.node(leader).applied_index());
    assert_eq!(sim.topics(victim), created, "the wiped voter has every topic again");
    assert!(sim.node(victim).log().snapshot_index() > 0, "it installed a snapshot");
    // and it restarts from that snapshot
    sim.nodes[(victim - 1) as usize] = None;
    let reopened = sim.open(victim);
    assert_eq!(reopened.image().topic_count(), created.len());
}

#[test]
fn a_learner_joins_is_promoted_and_the_leader_is_removed() {
    let mut sim = Sim::new(3, u64::MAX);
    let leader = sim.wait_leader();
    let mut created: Vec<String> = (0..20).map(|_| sim.create_topic(leader)).collect();

    // node 4 starts with nothing: it is no voter and never campaigns
    sim.add_joining_node(4);
    sim.ticks(30);
    assert_eq!(sim.node(4).membership().voters, Vec::<i32>::new());
    assert_eq!(sim.node(4).image().topic_count(), 0, "not a member yet: nothing sent to it");
    assert_eq!(sim.leader(), Some(leader));

    // added as a learner, it receives the log (a snapshot: its log is empty)
    sim.change(VoterChange::AddLearner { id: 4, endpoint: "h4:9093".into() });
    sim.ticks(10);
    created.sort();
    assert_eq!(sim.topics(4), created, "the learner has every topic");
    for id in 1..=4 {
        let m = sim.node(id).membership();
        assert_eq!((m.voters.clone(), m.learners.clone()), (vec![1, 2, 3], vec![4]), "node {id}");
        assert_eq!(m.endpoints.get(&4).map(String::as_str), Some("h4:9093"), "node {id}");
    }
    assert!(sim.node(4).log().snapshot_index() > 0, "it started from a snapshot");
    // a membership change is one at a time
    let index = sim.node(leader).propose_change(&VoterChange::AddVoter { id: 4, endpoint: "h4:9093".into() });
    assert!(index.is_ok());
    assert!(sim.node(leader).has_pending_change());
    assert!(sim.node(leader).propose_change(&VoterChange::Remove { id: 4 }).is_err());
    sim.ticks(5);
    assert!(!sim.node(leader).has_pending_change());
    for id in 1..=4 {
        assert_eq!(sim.node(id).membership().voters, vec![1, 2, 3, 4], "node {id}");
    }

    // the leader removes itself: it hands the leadership over
    sim.change(VoterChange::Remove { id: leader });
    sim.ticks(30);
    let new = sim.wait_leader();
    assert_ne!(new, leader);
    assert!(!sim.node(leader).is_leader());
    let voters: Vec<i32> = (1..=4).filter(|id| *id != leader).collect();
    for id in 1..=4 {
        assert_eq!(sim.node(id).membership().voters, voters, "node {id}");
    }
    let after = sim.create_topic(new);
    sim.ticks(3);
    assert!(sim.topics(4).contains(&after));

    // the removed node restarts: it stays out, and the quorum keeps its leader
    sim.nodes[(leader - 1) as usize] = None;
    let removed = sim.open(leader);
    assert!(!removed.membership().is_voter(leader), "its log says it was removed");
    sim.nodes[(leader - 1) as usize] = Some(removed);
    sim.ticks(60);
    assert_eq!(sim.leader(), Some(new), "the removed node did not disrupt the quorum");

    // node 4 restarts from its snapshot and log: still a voter, endpoints kept
    sim.nodes[3] = None;
    let reopened = sim.open_joining(4);
    let m = reopened.membership();
    assert_eq!(m.voters, voters);
    assert_eq!(m.endpoints.get(&4).map(String::as_str), Some("h4:9093"));
    assert!(reopened.image().topic(&after).is_some());
    sim.nodes[3] = Some(reopened);
    // with the old leader's replacement in, losing one more voter keeps a majority
    let other = voters.iter().copied().find(|id| *id != 4 && *id != new).unwrap();
    sim.nodes[(other - 1) as usize] = None;
    sim.ticks(40);
    let leader = sim.wait_leader();
    let last = sim.create_topic(leader);
    sim.ticks(3);
    assert!(sim.topics(4).contains(&last), "voters {voters:?} without {other}: still a quorum");
}

#[test]
fn a_snapshot_records_the_membership() {
    let mut sim = Sim::new(3, u64::MAX);
    let leader = sim.wait_leader();
    sim.create_topic(leader);
    sim.add_joining_node(4);
    sim.change(VoterChange::AddLearner { id: 4, endpoint: "h4:9093".into() });
    sim.change(VoterChange::AddVoter { id: 4, endpoint: "h4:9094".into() });
    sim.change(VoterChange::Remove { id: 3 });
    sim.ticks(5);
    let now = sim.now;
    sim.node(1).snapshot_now(now).unwrap();
    // a node that restarts from that snapshot alone (its configuration still
    // says 1, 2, 3) has the membership the log decided
    sim.nodes[0] = None;
    let reopened = sim.open(1);
    let m = reopened.membership();
    assert_eq!((m.voters.clone(), m.learners.clone()), (vec![1, 2, 4], vec![]));
    assert_eq!(m.endpoints.get(&4).map(String::as_str), Some("h4:9094"), "UpdateRaftVoter's endpoint");
    assert!(!m.endpoints.contains_key(&3));
}
