//! Window definitions: `TimeWindows` (tumbling, hopping), `SlidingWindows`,
//! `SessionWindows`, `JoinWindows`. To be written by the windows helper.

pub struct TimeWindows;
pub struct SlidingWindows;
pub struct SessionWindows;
pub struct JoinWindows;
