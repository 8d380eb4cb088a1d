#!/usr/bin/env bash
# The load generator's scenarios (store-ceiling, flash-sale, closed-loop,
# steady, fanout, overload) and the cancellation fan-out, on release builds, against
# the same services the tests use, with the rate limits off. Figures go to
# standard output; see BENCHMARKS.md.
#   tests/scripts/bench.sh [SCENARIO...]   only these load scenarios
#   EVENTSYS_BENCH_* size them (see tests/benches/load.rs);
#   EVENTSYS_BENCH_HOLDERS, EVENTSYS_BENCH_BASELINE_HOLDERS the cancellation fan-out.
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts=tests/scripts
export EVENTSYS_TEST_RUN="b$(date +%s)p$$"
export EVENTSYS_TEST_AMQP_URL=${EVENTSYS_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
export EVENTSYS_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:${EVENTSYS_MOTO_PORT:-8700}
export AWS_EC2_METADATA_DISABLED=true
# Request logs would be part of what is measured.
export EVENTSYS_TEST_RUST_LOG=${EVENTSYS_TEST_RUST_LOG:-warn}
trap '"$scripts/services.sh" stop' EXIT
"$scripts/services.sh" start
# The store's request log: the overload scenario counts store calls in it.
export EVENTSYS_TEST_MOTO_LOG=${EVENTSYS_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eventsys/services}/moto.log
cargo build --release --locked -p eventsys
cargo bench --locked -p eventsys-tests --bench load -- "$@"
if [ $# -eq 0 ]; then
  cargo bench --locked -p eventsys-tests --bench fan_out
fi
