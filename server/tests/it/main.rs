//! Integration tests over real gRPC against real `groved` processes. One test binary keeps
//! link time low; files are numbered by theme (openraft's convention).

// Not every test file uses every helper.
#[allow(dead_code)]
mod harness;

#[allow(dead_code)]
mod cluster;
mod linearizability;
mod pki;
mod proxy;

mod t10_cli;
mod t20_sessions;
mod t30_watch;
mod t40_durability;
mod t50_bad_input;
mod t60_admin;
mod t70_python;
mod t71_node;
mod t72_grpcurl;
mod t80_ensemble;
mod t85_locks;
mod t86_coordination_cli;
mod t87_recipes;
mod t88_recipes_failover;
mod t90_faults;
mod t95_tls;
mod t96_acl;
mod t97_quotas;
mod t98_abuse;
mod t99_storage_faults;
