//! l7trace: the pure core (reassembly, protocols) and the pieces the binary wires together.

pub mod protocols;
pub mod reassembly;
