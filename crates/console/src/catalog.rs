//! The catalog section of the console (stub: filled in by its owner).

use crate::Routes;

pub fn routes() -> Routes {
    Routes::new()
}
