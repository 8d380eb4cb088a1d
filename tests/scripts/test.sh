#!/usr/bin/env bash
# The test command. Makes this machine ready (starts RabbitMQ if nothing
# listens on 127.0.0.1:5672, installs and starts a DynamoDB-compatible
# server), then checks formatting, lints, the deployment artefacts, and
# runs every test against those services. Stops what it started.
#
#   tests/scripts/test.sh              everything
#   tests/scripts/test.sh FILTER...    only the tests matching FILTER
set -euo pipefail
cd "$(dirname "$0")/../.."
scripts=tests/scripts

run="r$(date +%s)p$$"
export EVENTSYS_TEST_RUN=$run
export EVENTSYS_TEST_AMQP_URL=${EVENTSYS_TEST_AMQP_URL:-amqp://guest:guest@127.0.0.1:5672}
export EVENTSYS_TEST_DYNAMODB_ENDPOINT=http://127.0.0.1:${EVENTSYS_MOTO_PORT:-8700}
# The AWS SDK must never look for credentials beyond loopback.
export AWS_EC2_METADATA_DISABLED=true

cleanup() {
  # Vhosts of tests that were killed before they could remove their own.
  rabbitmqctl eval "[rabbit_vhost:delete(V, <<\"eventsys-tests\">>) || V <- rabbit_vhost:list_names(), binary:match(V, <<\"eventsys-test-$run\">>) =/= nomatch]." \
    >/dev/null 2>&1 || true
  "$scripts/services.sh" stop
}
trap cleanup EXIT
"$scripts/services.sh" start
state_dir=${EVENTSYS_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eventsys/services}
EVENTSYS_TEST_MOTO_PID=$(cat "$state_dir/moto.pid")
export EVENTSYS_TEST_MOTO_PID
export EVENTSYS_TEST_MOTO_LOG=$state_dir/moto.log

step() { printf '\n== %s\n' "$*"; }

# The schema-driven tester the contract tests run against the live API.
schemathesis_version=4.32.5
tester_venv=${XDG_CACHE_HOME:-$HOME/.cache}/eventsys/contract-tester
if ! "$tester_venv/bin/st" --version 2>/dev/null | grep -q "$schemathesis_version"; then
  echo "installing schemathesis $schemathesis_version into $tester_venv" >&2
  rm -rf "$tester_venv"
  python3 -m venv "$tester_venv"
  "$tester_venv/bin/pip" install -q --disable-pip-version-check "schemathesis==$schemathesis_version"
fi
export EVENTSYS_TEST_SCHEMATHESIS=$tester_venv/bin/st

# The browser tests: Debian's Chromium (installed when missing, like
# RabbitMQ), driven by playwright-core, with axe-core; both pinned by
# tests/browser/package-lock.json and installed without install scripts.
if ! command -v chromium >/dev/null || ! command -v node >/dev/null; then
  echo "installing chromium and node" >&2
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq chromium nodejs npm >/dev/null
fi
(cd tests/browser && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
EVENTSYS_TEST_CHROMIUM=$(command -v chromium)
export EVENTSYS_TEST_CHROMIUM

if [ $# -eq 0 ]; then
  step "format and lints"
  cargo fmt --all -- --check
  cargo clippy --workspace --all-targets --locked -- -D warnings
  step "deployment artefacts"
  "$scripts/check-deploy.sh"
  step "dependencies (deny.toml): licences, bans, sources, advisories"
  if ! cargo deny --version >/dev/null 2>&1; then
    cargo install --locked cargo-deny
  fi
  cargo deny --log-level error check licenses bans sources
  # Advisories need the advisory database: fetched afresh where the network
  # allows, else the copy cargo-deny keeps from earlier; with neither, say
  # so rather than pass in silence.
  advisory_dbs="${CARGO_HOME:-$HOME/.cargo}/advisory-dbs"
  if cargo deny --log-level error fetch db >/dev/null 2>&1; then
    cargo deny --log-level error check advisories
  elif compgen -G "$advisory_dbs/*/crates" >/dev/null; then
    echo "advisory database unreachable: checking against the copy kept from earlier" >&2
    cargo deny --offline --log-level error check advisories
  else
    echo "advisories NOT checked: no advisory database could be fetched" >&2
  fi
  for db in "$advisory_dbs"/*/; do
    if [ -d "$db/.git" ]; then
      echo "advisory database $(basename "$db") as of $(git -C "$db" log -1 --format=%cs)"
    fi
  done
fi

step "build"
cargo build --workspace --locked

step "tests"
# The fault tests restart RabbitMQ and freeze the store: they run last, alone.
if cargo nextest --version >/dev/null 2>&1; then
  cargo nextest run --workspace --locked --no-fail-fast -E 'not binary(faults)' "$@"
  if [ $# -eq 0 ]; then
    step "fault tests"
    cargo nextest run --locked --no-fail-fast -p eventsys-tests --test faults --test-threads 1
  fi
else
  cargo test --workspace --locked --no-fail-fast --lib --bins --test it --test store -- "$@"
  if [ $# -eq 0 ]; then
    step "fault tests"
    cargo test --locked --no-fail-fast -p eventsys-tests --test faults -- --test-threads 1
  fi
fi

report="${TMPDIR:-/tmp}/eventsys-tests/$run/reliability.md"
if [ -f "$report" ]; then
  step "faults: attempted | accepted | refused | unanswered | terminal | succeeded / sold out / failed | duplicated | oversold | half-way | settled in"
  cat "$report"
fi
