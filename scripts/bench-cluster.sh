#!/usr/bin/env bash
# Three-node benchmark on one machine: a Grove ensemble (3 voters + 1 observer), then (if
# installed) a 3-node ZooKeeper 3.8 ensemble, with the same load generator and settings;
# then Grove's leader failover time.
#
#   scripts/bench-cluster.sh [seconds per workload, default 20] [failover rounds, default 5]
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-20}
ROUNDS=${2:-5}
OUT=$(mktemp -d)
export RUST_BACKTRACE=0
cargo build --release --quiet --bin groved --bin grove --bin grove-bench --features grove-client/zk-compare
BENCH=target/release/grove-bench
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT

PEERS=1=127.0.0.1:17281,2=127.0.0.1:17282,3=127.0.0.1:17283
start_grove() {
    local i=$1
    target/release/groved --id "$i" --data-dir "$OUT/g$i" --listen 127.0.0.1:1718"$i" \
        --peer-listen 127.0.0.1:1728"$i" --admin-listen 127.0.0.1:1738"$i" \
        --peers $PEERS --observers 4=127.0.0.1:17284 >"$OUT/g$i.out" 2>>"$OUT/g$i.log" &
    GPID[$i]=$!
    PIDS+=($!)
}
declare -A GPID
for i in 1 2 3 4; do start_grove "$i"; done
ALL=127.0.0.1:17181,127.0.0.1:17182,127.0.0.1:17183
until target/release/grove --server 127.0.0.1:17184 status 2>/dev/null | grep -q "Ready: true"; do sleep 0.5; done
LEADER=$(target/release/grove --server $ALL --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')
FOLLOWER=$(( LEADER % 3 + 1 ))
echo "== Grove: leader $LEADER, follower $FOLLOWER, observer 4 (data in $OUT)"
SERVERS_PIDS="${GPID[1]},${GPID[2]},${GPID[3]},${GPID[4]}"
run() { # label server workload...
    local label=$1 server=$2; shift 2
    for w in "$@"; do
        $BENCH -s "$server" -w "$w" -d "$DURATION" --pid "$SERVERS_PIDS" --admin "127.0.0.1:1738$LEADER" --label "$label" \
            | tee -a "$OUT/results.txt" | tail -1
    done
}
run grove-3-spread "$ALL" create set get get-linearizable mixed
run grove-3-leader "127.0.0.1:1718$LEADER" create set get get-linearizable
run grove-3-follower "127.0.0.1:1718$FOLLOWER" create set get get-linearizable
run grove-3-observer 127.0.0.1:17184 set get get-linearizable
$BENCH -s "127.0.0.1:1718$LEADER" -w watch-fanout --watchers 1000 --rounds 100 --label grove-3-leader \
    | tee -a "$OUT/results.txt" | tail -1

echo "== Grove leader failover, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
    LEADER=$(target/release/grove --server $ALL --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])')
    $BENCH -s "$ALL" -w failover --pid "${GPID[1]},${GPID[2]},${GPID[3]}" --label grove-3-failover \
        | tee -a "$OUT/results.txt" | grep -E "killed|^\{" | head -1
    start_grove "$LEADER"
    until target/release/grove --server "127.0.0.1:1718$LEADER" status 2>/dev/null | grep -q "Ready: true"; do sleep 0.5; done
    sleep 3
done
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
PIDS=()
sleep 2

if [ -f /usr/share/java/zookeeper.jar ]; then
    echo "== ZooKeeper 3-node ensemble"
    J=/usr/share/java
    CP="$J/zookeeper.jar:$J/zookeeper-jute.jar:$J/slf4j-api.jar:$J/slf4j-log4j12.jar:$J/log4j-1.2.jar"
    for j in netty-buffer netty-codec netty-common netty-handler netty-resolver netty-transport \
        netty-transport-native-epoll netty-transport-native-unix-common commons-cli commons-io metrics-core \
        snappy-java jackson-databind jackson-core jackson-annotations; do
        CP="$CP:$J/$j.jar"
    done
    ZPIDS=()
    for i in 1 2 3; do
        mkdir -p "$OUT/zk$i"
        echo "$i" >"$OUT/zk$i/myid"
        cat >"$OUT/zk$i/zoo.cfg" <<EOF
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$OUT/zk$i
clientPort=1218$i
clientPortAddress=127.0.0.1
maxClientCnxns=0
admin.enableServer=false
server.1=127.0.0.1:12881:13881
server.2=127.0.0.1:12882:13882
server.3=127.0.0.1:12883:13883
EOF
        printf 'log4j.rootLogger=WARN, C\nlog4j.appender.C=org.apache.log4j.ConsoleAppender\nlog4j.appender.C.layout=org.apache.log4j.PatternLayout\n' >"$OUT/zk$i/log4j.properties"
        java -cp "$OUT/zk$i:$CP" org.apache.zookeeper.server.quorum.QuorumPeerMain "$OUT/zk$i/zoo.cfg" >"$OUT/zk$i.log" 2>&1 &
        ZPIDS+=($!)
        PIDS+=($!)
    done
    sleep 8
    ZALL=127.0.0.1:12181,127.0.0.1:12182,127.0.0.1:12183
    for w in create set get get-linearizable mixed; do
        $BENCH --target zookeeper -s "$ZALL" -w "$w" -d "$DURATION" --pid "$(IFS=,; echo "${ZPIDS[*]}")" --label zookeeper-3-spread \
            | tee -a "$OUT/results.txt" | tail -1
    done
    $BENCH --target zookeeper -s 127.0.0.1:12181 -w watch-fanout --watchers 1000 --rounds 100 --label zookeeper-3 \
        | tee -a "$OUT/results.txt" | tail -1
fi

echo "== summary ($OUT/results.txt)"
python3 scripts/bench-summary.py "$OUT/results.txt"
