//! Policies: pure functions from an event, the state the store loaded for it, and the config, to
//! a decision (and the writes it implies). No SQL, no environment, no processes here: the hook
//! driver loads the state, calls the policy, and applies and renders what it says.

pub mod collision;
pub mod file_lock;
pub mod quota;
pub mod review_gate;
pub mod route;
