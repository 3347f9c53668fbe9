//! l7trace: the pure core (reassembly, protocols, pipeline) and the pieces the binary wires
//! together (loader, output).

pub mod btf;
pub mod cli;
pub mod events;
pub mod hooks;
pub mod loader;
pub mod output;
pub mod packet;
pub mod pids;
pub mod pipeline;
pub mod privileges;
pub mod protocols;
pub mod reassembly;
pub mod redact;
pub mod ringbuf;
pub mod run;
