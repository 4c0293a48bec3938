#!/usr/bin/env bash
# Three-node comparison on one machine, one run: a Grove ensemble with its default settings,
# then a 3-node ZooKeeper 3.8 ensemble (Debian's `zookeeper` package, installed if missing),
# driven by the same load generator (grove-bench) with the same settings; then Grove's
# leader failover time. Prints a summary with Grove ÷ ZooKeeper per workload.
#
#   scripts/bench-cluster.sh [seconds per workload, default 15] [failover rounds, default 5]
#
# Environment: CONCURRENCY (32), WORKLOADS ("create set lock get get-linearizable"),
# SKIP_ZK=1 to run Grove only, GROVED=path to run another groved binary.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${1:-15}
ROUNDS=${2:-5}
CONCURRENCY=${CONCURRENCY:-32}
WORKLOADS=${WORKLOADS:-create set lock get get-linearizable}
OUT=$(mktemp -d)
export RUST_BACKTRACE=0
cargo build --release --quiet --bin groved --bin grove --bin grove-bench --features grove-client/zk-compare
BENCH=target/release/grove-bench
# Another server build to compare (an earlier commit's binary), same load generator.
GROVED=${GROVED:-target/release/groved}
PIDS=()
cleanup() { for p in "${PIDS[@]:-}"; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
echo "== $(date -u +%FT%TZ), commit $(git rev-parse --short HEAD), $(nproc) cores, results in $OUT"

PEERS=1=127.0.0.1:17281,2=127.0.0.1:17282,3=127.0.0.1:17283
declare -A GPID
start_grove() {
    local i=$1
    "$GROVED" --id "$i" --data-dir "$OUT/g$i" --listen 127.0.0.1:1718"$i" \
        --peer-listen 127.0.0.1:1728"$i" --admin-listen 127.0.0.1:1738"$i" \
        --peers $PEERS >"$OUT/g$i.out" 2>>"$OUT/g$i.log" &
    GPID[$i]=$!
    PIDS+=($!)
}
for i in 1 2 3; do start_grove "$i"; done
ALL=127.0.0.1:17181,127.0.0.1:17182,127.0.0.1:17183
until target/release/grove --server $ALL status 2>/dev/null | grep -q "Ready: true"; do sleep 0.5; done
sleep 2
leader() { target/release/grove --server $ALL --json status | python3 -c 'import json,sys; print(json.load(sys.stdin)["leader_id"])'; }
LEADER=$(leader)
ADMINS="127.0.0.1:1738$LEADER"
for i in 1 2 3; do [ "$i" = "$LEADER" ] || ADMINS="$ADMINS,127.0.0.1:1738$i"; done
echo "== Grove: 3 voters, leader $LEADER"
GPIDS="${GPID[1]},${GPID[2]},${GPID[3]}"
for w in $WORKLOADS; do
    $BENCH -s "$ALL" -w "$w" -d "$DURATION" -c "$CONCURRENCY" --pid "$GPIDS" --admin "$ADMINS" --label grove-3 \
        | tee -a "$OUT/results.txt" | grep -v '^{'
done
$BENCH -s "$ALL" -w watch-fanout --watchers 1000 --rounds 100 --label grove-3 | tee -a "$OUT/results.txt" | grep -v '^{'
for i in 1 2 3; do
    echo "grove member $i RSS: $(awk '/VmRSS/ {print $2 " kB"}' /proc/"${GPID[$i]}"/status)" | tee -a "$OUT/results.txt"
done

echo "== Grove leader failover, $ROUNDS rounds"
for r in $(seq 1 "$ROUNDS"); do
    LEADER=$(leader)
    $BENCH -s "$ALL" -w failover --pid "$GPIDS" --label grove-3-failover \
        | tee -a "$OUT/results.txt" | grep -E "killed|^\{" | head -1
    start_grove "$LEADER"
    GPIDS="${GPID[1]},${GPID[2]},${GPID[3]}"
    until target/release/grove --server "127.0.0.1:1718$LEADER" status 2>/dev/null | grep -q "Ready: true"; do sleep 0.5; done
    sleep 3
done
for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
PIDS=()
sleep 2

if [ "${SKIP_ZK:-}" != "1" ]; then
    if [ ! -f /usr/share/java/zookeeper.jar ]; then
        echo "== installing Debian's zookeeper package"
        sudo=()
        [ "$(id -u)" = "0" ] || sudo=(sudo)
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y --no-install-recommends zookeeper >/dev/null
    fi
    echo "== ZooKeeper 3-node ensemble ($(dpkg-query -W -f '${Version}' zookeeper))"
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
    ZP="$(IFS=,; echo "${ZPIDS[*]}")"
    for w in $WORKLOADS; do
        $BENCH --target zookeeper -s "$ZALL" -w "$w" -d "$DURATION" -c "$CONCURRENCY" --pid "$ZP" --label zookeeper-3 \
            | tee -a "$OUT/results.txt" | grep -v '^{'
    done
    $BENCH --target zookeeper -s 127.0.0.1:12181 -w watch-fanout --watchers 1000 --rounds 100 --label zookeeper-3 \
        | tee -a "$OUT/results.txt" | grep -v '^{'
    for p in "${ZPIDS[@]}"; do
        echo "zookeeper member RSS: $(awk '/VmRSS/ {print $2 " kB"}' /proc/"$p"/status)" | tee -a "$OUT/results.txt"
    done
fi

echo "== summary ($OUT/results.txt)"
python3 scripts/bench-summary.py "$OUT/results.txt"
