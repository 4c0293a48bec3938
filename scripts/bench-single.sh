#!/usr/bin/env bash
# Single-node benchmark: Grove, then (if installed) ZooKeeper 3.8 from Debian's package, on
# this machine in one run, with the same load generator (grove-bench) and settings.
#
#   scripts/bench-single.sh [seconds per workload, default 20]
#   WORKLOADS="lock" FANOUT=0 scripts/bench-single.sh 10     # a subset
#
# ZooKeeper: `apt-get install zookeeper` (not needed by the tests). Results are printed as
# JSON lines, one per workload and target, and summarized at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
OUT=$(mktemp -d)
export RUST_BACKTRACE=0

cargo build --release --quiet --bin groved --bin grove-bench --features grove-client/zk-compare
BENCH=target/release/grove-bench
WORKLOADS=${WORKLOADS:-"create set get get-linearizable mixed lock"}
FANOUT=${FANOUT:-1}

cleanup() {
    [ -n "${GROVE_PID:-}" ] && kill "$GROVE_PID" 2>/dev/null || true
    [ -n "${ZK_PID:-}" ] && kill "$ZK_PID" 2>/dev/null || true
}
trap cleanup EXIT

echo "== Grove (standalone, data in $OUT/grove)"
target/release/groved --data-dir "$OUT/grove" --listen 127.0.0.1:17181 --peer-listen 127.0.0.1:17281 \
    --admin-listen 127.0.0.1:17381 >"$OUT/groved.out" 2>"$OUT/groved.log" &
GROVE_PID=$!
sleep 2
for w in $WORKLOADS; do
    $BENCH -s 127.0.0.1:17181 -w "$w" -d "$DURATION" --pid "$GROVE_PID" --admin 127.0.0.1:17381 --label grove-single \
        | tee -a "$OUT/results.txt" | tail -1
done
if [ "$FANOUT" = 1 ]; then
    $BENCH -s 127.0.0.1:17181 -w watch-fanout --watchers 1000 --rounds 100 --label grove-single \
        | tee -a "$OUT/results.txt" | tail -1
fi
# Leadership handoff on resign (Grove's Election service; ZooKeeper has no server-side
# election to compare with).
$BENCH -s 127.0.0.1:17181 -w election --rounds 500 --label grove-single | tee -a "$OUT/results.txt" | tail -1
kill "$GROVE_PID"; wait "$GROVE_PID" 2>/dev/null || true; GROVE_PID=

if [ -f /usr/share/java/zookeeper.jar ]; then
    echo "== ZooKeeper $(ls /usr/share/java/zookeeper-3*.jar | grep -o '3\.[0-9.]*[0-9]') (standalone, data in $OUT/zk)"
    mkdir -p "$OUT/zk"
    cat >"$OUT/zoo.cfg" <<EOF
tickTime=2000
dataDir=$OUT/zk
clientPort=2181
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
EOF
    printf 'log4j.rootLogger=WARN, C\nlog4j.appender.C=org.apache.log4j.ConsoleAppender\nlog4j.appender.C.layout=org.apache.log4j.PatternLayout\n' >"$OUT/log4j.properties"
    J=/usr/share/java
    CP="$OUT:$J/zookeeper.jar:$J/zookeeper-jute.jar:$J/slf4j-api.jar:$J/slf4j-log4j12.jar:$J/log4j-1.2.jar"
    for j in netty-buffer netty-codec netty-common netty-handler netty-resolver netty-transport \
        netty-transport-native-epoll netty-transport-native-unix-common commons-cli commons-io metrics-core \
        snappy-java jackson-databind jackson-core jackson-annotations; do
        CP="$CP:$J/$j.jar"
    done
    java -cp "$CP" org.apache.zookeeper.server.ZooKeeperServerMain "$OUT/zoo.cfg" >"$OUT/zk.log" 2>&1 &
    ZK_PID=$!
    sleep 5
    for w in $WORKLOADS; do
        $BENCH --target zookeeper -s 127.0.0.1:2181 -w "$w" -d "$DURATION" --pid "$ZK_PID" --label zookeeper-single \
            | tee -a "$OUT/results.txt" | tail -1
    done
    if [ "$FANOUT" = 1 ]; then
        $BENCH --target zookeeper -s 127.0.0.1:2181 -w watch-fanout --watchers 1000 --rounds 100 \
            --label zookeeper-single | tee -a "$OUT/results.txt" | tail -1
    fi
fi

echo "== summary ($OUT/results.txt)"
python3 scripts/bench-summary.py "$OUT/results.txt"
