//! State machine tests: ZooKeeper's rules, applied to a real (in-memory) redb database.
