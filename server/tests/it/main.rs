//! Integration tests over real gRPC on TCP: against servers run inside the test process
//! (`Server::start`) and real `groved` processes (`Server::start_process`, clusters) for
//! what needs a process. One test binary keeps link time low.

// Not every test file uses every helper.
#[allow(dead_code)]
mod harness;

#[allow(dead_code)]
mod cluster;
mod linearizability;
#[allow(dead_code)]
mod nemesis;
mod pki;
mod proxy;
mod zookeeper;

// Numbered by theme (openraft's convention): t10 basics, t20 life cycle, t30 coordination,
// t40 security and limits, t50 ensembles, t60 operations, t70 other languages and tools,
// t90 faults.
mod t11_sessions;
mod t12_watch;
mod t13_bad_input;
mod t15_cli;
mod t20_durability;
mod t30_locks;
mod t31_coordination_cli;
mod t32_recipes;
mod t40_tls;
mod t41_acl;
mod t42_quotas;
mod t43_limits;
mod t50_ensemble;
mod t51_recipes_failover;
mod t60_admin;
mod t61_backup;
mod t62_zookeeper_import;
mod t63_console;
mod t70_python;
mod t71_nodejs;
mod t72_grpcurl;
mod t90_faults;
mod t91_storage_faults;
mod t92_partitions;
mod t93_no_quorum;
mod t94_amnesia;
mod t95_fault_locks;
mod t96_fault_watches;
mod t97_fault_power_loss;
mod t98_clock_skew;
mod t99_fault_five_nodes;
