//! What the format tests share: the levels, and checks of one schema
//! following another.

use vltava_schema::{check_compatibility, Compatibility, ParsedSchema};

use Compatibility::*;

pub const ALL_LEVELS: [Compatibility; 7] =
    [None, Backward, BackwardTransitive, Forward, ForwardTransitive, Full, FullTransitive];
pub const BACKWARD_ONLY: [Compatibility; 3] = [None, Backward, BackwardTransitive];
pub const FORWARD_ONLY: [Compatibility; 3] = [None, Forward, ForwardTransitive];

/// The levels at which `new` may follow `old` (a single previous version).
pub fn passing_levels(new: &ParsedSchema, old: &ParsedSchema) -> Vec<Compatibility> {
    ALL_LEVELS.into_iter().filter(|&l| reasons(l, new, old).is_empty()).collect()
}

/// Why `new` may not follow `old` at `level`.
pub fn reasons(level: Compatibility, new: &ParsedSchema, old: &ParsedSchema) -> Vec<String> {
    check_compatibility(level, new, std::slice::from_ref(old))
}

/// Checking `schema` against itself at FULL runs out of steps in both
/// directions, quickly, and says so.
pub fn assert_too_complex(schema: &ParsedSchema) {
    let started = std::time::Instant::now();
    let why = reasons(Full, schema, schema);
    assert!(started.elapsed() < std::time::Duration::from_secs(10));
    assert_eq!(why.len(), 2, "{why:?}");
    assert!(why.iter().all(|w| w.contains("SCHEMA_TOO_COMPLEX")), "{why:?}");
}
