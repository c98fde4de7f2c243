# Shared steps of the ad hoc bench scripts (bench/delta-latency, delta-vs-parquet,
# delta-compaction, transformer-ab, soak): the setup every one of them repeats, and the filling of
# a raw container from fresh topics. Sourced, not run:
#
#   set -euo pipefail
#   . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#   RECORDS=${1:-200000}                 # the script's own arguments and knobs
#   bench_init delta-foo bdf             # cd to the repository, env/local.env, OUT, topic names
#   RAW=bdf-raw-$RUN
#   make_containers "$RAW"
#   make_topics
#   flood "$RECORDS"                     # simulator flood → the three topics
#   land_raw "$RAW" "bdf-$RUN"           # worker --once → the raw container
#
# Functions:
#   bench_init NAME PREFIX     sets ROOT (and cd there), BIN, FILL_BIN, BENCH_BIN, RUN, OUT
#                              (created), LOBBY/GAME/CLIENT; sources env/local.env exported
#                              (set -a); exports NODE_PATH for scripts/create-containers.js
#   use_debug_fill_bin         FILL_BIN (simulator, worker) and BENCH_BIN from
#                              DATAFLOW_FILL_BIN_DIR, default target/debug
#   say MESSAGE...             "NAME: MESSAGE" on stderr
#   make_containers NAME...    creates the Azurite containers (idempotent)
#   make_topics                creates LOBBY, GAME, CLIENT with 2, 4 and 1 partitions
#   flood N [VAR=value...]     `simulator flood` of N records into the three topics (SEED=1,
#                              manifest in $OUT/manifest.json, output in $OUT/flood.out and .log);
#                              VAR=value pairs are added to its environment (SEED=3, RATE_LIMIT=…)
#   land_raw RAW GROUP [VAR=value...]
#                              `worker --once` of the three topics into az://RAW with consumer
#                              group GROUP and BATCH_SIZE (default 1000); $OUT/worker.out and .log
#
# Binaries: BIN is DATAFLOW_BIN_DIR (default target/release); flood and land_raw run FILL_BIN's
# simulator and worker (BIN, unless use_debug_fill_bin); make_topics runs BENCH_BIN
# (DATAFLOW_BENCH_BIN, default target/debug/bench; a script may set it after bench_init).
# The functions expect the scripts' `set -euo pipefail`: a failing step ends the script.

# bench_init NAME PREFIX: the setup. NAME names the output folder bench/out/NAME-RUN and prefixes
# say's lines; PREFIX names the topics PREFIX-lobby-RUN, PREFIX-game-RUN, PREFIX-client-RUN.
# RUN is the start time in seconds, so every run gets fresh topics and containers.
bench_init() {
  BENCH_NAME=$1
  ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
  cd "$ROOT"
  BIN=${DATAFLOW_BIN_DIR:-$ROOT/target/release}
  FILL_BIN=$BIN
  set -a; . env/local.env; set +a
  BENCH_BIN=${DATAFLOW_BENCH_BIN:-$ROOT/target/debug/bench}
  RUN=$(date +%s)
  OUT=$ROOT/bench/out/$1-$RUN
  mkdir -p "$OUT"
  export NODE_PATH=$ROOT/.stack/npm/node_modules
  LOBBY=$2-lobby-$RUN GAME=$2-game-$RUN CLIENT=$2-client-$RUN
}

# use_debug_fill_bin: the raw container is filled by debug binaries (they only fill it, their
# speed is not measured): FILL_BIN is DATAFLOW_FILL_BIN_DIR (default target/debug), and the
# bench binary that creates the topics comes from there too.
use_debug_fill_bin() {
  FILL_BIN=${DATAFLOW_FILL_BIN_DIR:-$ROOT/target/debug}
  BENCH_BIN=$FILL_BIN/bench
}

# say MESSAGE...: a progress line on stderr, prefixed with the bench's NAME.
say() { printf '%s: %s\n' "$BENCH_NAME" "$*" >&2; }

# make_containers NAME...: creates each Azurite blob container (existing ones are kept).
make_containers() { node scripts/create-containers.js "$@" >/dev/null; }

# make_topics: the simulator's three topics, LOBBY (2 partitions), GAME (4) and CLIENT (1).
make_topics() {
  "$BENCH_BIN" topic --bench-topic "$LOBBY" --bench-partitions 2 >/dev/null || return
  "$BENCH_BIN" topic --bench-topic "$GAME" --bench-partitions 4 >/dev/null || return
  "$BENCH_BIN" topic --bench-topic "$CLIENT" --bench-partitions 1 >/dev/null
}

# _bench_check_env FUNCTION VAR=value...: every extra argument must be an assignment (env would
# take anything else for the command to run).
_bench_check_env() {
  local f=$1 a
  shift
  for a in "$@"; do
    [[ $a == [A-Za-z_]*=* ]] || { echo "bench/lib.sh: $f: '$a' is not VAR=value" >&2; return 2; }
  done
}

# flood N [VAR=value...]: FILL_BIN's `simulator flood --messages N` into LOBBY, GAME and CLIENT,
# SEED=1, its manifest in $OUT/manifest.json, stdout in $OUT/flood.out, stderr in $OUT/flood.log.
# The VAR=value pairs go into its environment after those, so SEED=3 overrides the seed;
# RATE_LIMIT=R throttles to R records/s. Runs in the foreground (append & to run it in the
# background: $! is then a subshell that ends with the simulator, with its exit status).
flood() {
  local n=$1
  shift
  _bench_check_env flood "$@" || return
  env TOPIC_LOBBY="$LOBBY" TOPIC_GAME="$GAME" TOPIC_CLIENT="$CLIENT" SEED=1 MANIFEST_PATH="$OUT/manifest.json" "$@" \
    "$FILL_BIN/simulator" flood --messages "$n" >"$OUT/flood.out" 2>"$OUT/flood.log"
}

# land_raw RAW GROUP [VAR=value...]: FILL_BIN's `worker --once` lands everything in LOBBY, GAME
# and CLIENT into the container az://RAW, as consumer group GROUP, with BATCH_SIZE from the
# environment (default 1000); stdout (its counts) in $OUT/worker.out, stderr in $OUT/worker.log.
# The VAR=value pairs go into its environment after those.
land_raw() {
  local raw=$1 group=$2
  shift 2
  _bench_check_env land_raw "$@" || return
  env KAFKA_TOPICS="$LOBBY,$GAME,$CLIENT" KAFKA_GROUP_ID="$group" RAW_URL="az://$raw" BATCH_SIZE="${BATCH_SIZE:-1000}" "$@" \
    "$FILL_BIN/worker" --once >"$OUT/worker.out" 2>"$OUT/worker.log"
}
