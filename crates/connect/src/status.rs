//! The states Connect reports (`/connectors/{name}/status`) and the
//! target states a user sets (pause, resume, stop), shared by the runtime
//! that runs tasks and the herder that stores statuses.

use std::fmt;

/// A task, `connector-N` in Connect's names.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    pub connector: String,
    pub task: u32,
}

impl TaskId {
    pub fn new(connector: &str, task: u32) -> TaskId {
        TaskId { connector: connector.to_string(), task }
    }
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.connector, self.task)
    }
}

/// What a user asked a connector to be (`target-state-NAME` in the config topic).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TargetState {
    Started,
    Paused,
    /// KIP-875: tasks shut down, the connector keeps its config (offsets can be altered).
    Stopped,
}

impl TargetState {
    /// As the config topic writes it (`STARTED`, `PAUSED`, `STOPPED`).
    pub fn name(self) -> &'static str {
        match self {
            TargetState::Started => "STARTED",
            TargetState::Paused => "PAUSED",
            TargetState::Stopped => "STOPPED",
        }
    }
    pub fn parse(s: &str) -> Option<TargetState> {
        Some(match s {
            "STARTED" => TargetState::Started,
            "PAUSED" => TargetState::Paused,
            "STOPPED" => TargetState::Stopped,
            _ => return None,
        })
    }
}

/// A connector's or task's state, as `/status` shows it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum State {
    Unassigned,
    Running,
    Paused,
    Failed,
    Restarting,
    Stopped,
    /// The status topic's tombstone-like state of a deleted connector.
    Destroyed,
}

impl State {
    pub fn name(self) -> &'static str {
        match self {
            State::Unassigned => "UNASSIGNED",
            State::Running => "RUNNING",
            State::Paused => "PAUSED",
            State::Failed => "FAILED",
            State::Restarting => "RESTARTING",
            State::Stopped => "STOPPED",
            State::Destroyed => "DESTROYED",
        }
    }
    pub fn parse(s: &str) -> Option<State> {
        Some(match s {
            "UNASSIGNED" => State::Unassigned,
            "RUNNING" => State::Running,
            "PAUSED" => State::Paused,
            "FAILED" => State::Failed,
            "RESTARTING" => State::Restarting,
            "STOPPED" => State::Stopped,
            "DESTROYED" => State::Destroyed,
            _ => return None,
        })
    }
}

/// Where the runtime reports task state changes (the herder writes them
/// to the status topic as `status-task-NAME-N`).
pub trait StatusListener: Send + Sync {
    /// `trace`: the error of a FAILED task (Connect shows a Java stack trace; we show the message chain).
    fn task_state(&self, id: &TaskId, state: State, trace: Option<String>);
}
