//! Single Message Transforms and predicates, by Kafka's class names:
//! `transforms=a,b`, `transforms.a.type=...`, `transforms.a.predicate=p`,
//! `transforms.a.negate=true`, `predicates=p`, `predicates.p.type=...`.

use crate::config::{ConfigErrors, Props};
use crate::data::Record;
use crate::error::Result;

/// One transform: a record in, a record (or none: dropped) out.
pub trait Transform: Send + Sync {
    fn apply(&self, record: Record) -> Result<Option<Record>>;
}

/// A predicate a transform is applied under.
pub trait Predicate: Send + Sync {
    fn test(&self, record: &Record) -> bool;
}

/// Every transform and predicate class this worker knows.
pub const CLASSES: &[&str] = &[];

/// A connector's transform chain.
#[derive(Default)]
pub struct Transforms {
    chain: Vec<Step>,
}

struct Step {
    transform: Box<dyn Transform>,
    predicate: Option<(Box<dyn Predicate>, bool)>,
}

impl Transforms {
    /// The chain a connector configuration names (errors keyed by the
    /// configuration key at fault, for validation).
    pub fn from_config(props: &Props) -> std::result::Result<Transforms, ConfigErrors> {
        let _ = props;
        Ok(Transforms::default())
    }

    /// Applies the chain; `None` when a transform dropped the record.
    pub fn apply(&self, mut record: Record) -> Result<Option<Record>> {
        for step in &self.chain {
            if let Some((predicate, negate)) = &step.predicate {
                if predicate.test(&record) == *negate {
                    continue;
                }
            }
            match step.transform.apply(record)? {
                Some(next) => record = next,
                None => return Ok(None),
            }
        }
        Ok(Some(record))
    }
}
