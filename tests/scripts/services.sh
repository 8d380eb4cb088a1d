#!/usr/bin/env bash
# Starts or stops what the integration tests talk to, on loopback only:
#   - RabbitMQ: used as is when something listens on 127.0.0.1:5672;
#     otherwise installed from the distribution's packages and started;
#     its management API (which `eventsys init` makes logins through) is
#     turned on, on 127.0.0.1:15672, when off, and off again on stop;
#   - a DynamoDB-compatible server: moto in server mode, installed into a
#     virtualenv and run single-threaded (its threaded server loses
#     conditional updates under concurrency).
# Usage: services.sh start | stop | reset
# Prints nothing on success but progress lines on stderr.
set -euo pipefail

state_dir=${EVENTSYS_SERVICES_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/eventsys/services}
moto_port=${EVENTSYS_MOTO_PORT:-8700}
moto_version=5.2.5
mkdir -p "$state_dir"

say() { echo "services: $*" >&2; }

listening() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

stop_pid() {
  local pid=$1
  kill "$pid" 2>/dev/null || return 0
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  kill -9 "$pid" 2>/dev/null || true
}

start_rabbitmq() {
  if listening 5672; then
    say "RabbitMQ already listening on 127.0.0.1:5672"
    return
  fi
  if ! command -v rabbitmq-server >/dev/null; then
    say "installing rabbitmq-server"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 install -y -qq rabbitmq-server >/dev/null
  fi
  say "starting RabbitMQ"
  export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1 ERL_EPMD_ADDRESS=127.0.0.1
  export RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
  rabbitmq-server -detached
  for i in $(seq 1 120); do
    rabbitmq-diagnostics -q ping >/dev/null 2>&1 && break
    [ "$i" = 120 ] && { say "RabbitMQ did not start"; exit 1; }
    sleep 0.5
  done
  rabbitmqctl -q await_startup --timeout 60
  rabbitmqctl eval 'list_to_integer(os:getpid()).' | tr -d '\r' > "$state_dir/rabbitmq.pid"
}

start_rabbitmq_management() {
  if listening 15672; then
    return
  fi
  say "turning on RabbitMQ's management API on 127.0.0.1:15672"
  # Loopback only: set before the plugin starts and reads it.
  rabbitmqctl -q eval 'application:set_env(rabbitmq_management, tcp_config, [{ip, "127.0.0.1"}, {port, 15672}]).' >/dev/null
  rabbitmq-plugins -q enable rabbitmq_management >/dev/null
  touch "$state_dir/rabbitmq-management.ours"
  for i in $(seq 1 60); do
    listening 15672 && return
    [ "$i" = 60 ] && { say "the management API did not start"; exit 1; }
    sleep 0.5
  done
}

stop_rabbitmq_management() {
  if [ -f "$state_dir/rabbitmq-management.ours" ]; then
    rabbitmq-plugins -q disable rabbitmq_management rabbitmq_management_agent rabbitmq_web_dispatch >/dev/null 2>&1 || true
    rm -f "$state_dir/rabbitmq-management.ours"
  fi
}

start_moto() {
  if [ -f "$state_dir/moto.pid" ] && kill -0 "$(cat "$state_dir/moto.pid")" 2>/dev/null; then
    say "moto already running; resetting it"
    reset_moto
    return
  fi
  if [ ! -x "$state_dir/venv/bin/python" ] || ! "$state_dir/venv/bin/python" -c "import moto" 2>/dev/null; then
    say "installing moto $moto_version"
    python3 -m venv "$state_dir/venv"
    "$state_dir/venv/bin/pip" install -q --disable-pip-version-check "moto[dynamodb]==$moto_version" flask flask-cors
  fi
  cat > "$state_dir/moto_single_threaded.py" <<'PY'
import sys
import werkzeug.serving
from werkzeug.serving import run_simple
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, MotoRequestHandler, create_backend_app
# One request at a time, and moto closes every connection: a rush of clients
# needs a deep accept queue, or their connects time out while they wait.
werkzeug.serving.BaseWSGIServer.request_queue_size = 2048
run_simple(sys.argv[1], int(sys.argv[2]), DomainDispatcherApplication(create_backend_app),
           threaded=False, request_handler=MotoRequestHandler)
PY
  if listening "$moto_port"; then
    say "port $moto_port is taken; set EVENTSYS_MOTO_PORT"
    exit 1
  fi
  say "starting moto on 127.0.0.1:$moto_port"
  nohup "$state_dir/venv/bin/python" "$state_dir/moto_single_threaded.py" 127.0.0.1 "$moto_port" \
    >"$state_dir/moto.log" 2>&1 &
  echo $! > "$state_dir/moto.pid"
  for i in $(seq 1 100); do
    curl -sf -o /dev/null "http://127.0.0.1:$moto_port/moto-api/" && return
    [ "$i" = 100 ] && { cat "$state_dir/moto.log" >&2; exit 1; }
    sleep 0.1
  done
}

reset_moto() {
  # Drops every table and frees moto's memory, which otherwise only grows.
  curl -sf -X POST -o /dev/null "http://127.0.0.1:$moto_port/moto-api/reset"
}

case "${1:-}" in
  start)
    start_rabbitmq
    start_rabbitmq_management
    start_moto
    ;;
  reset)
    reset_moto
    ;;
  stop)
    if [ -f "$state_dir/moto.pid" ]; then
      stop_pid "$(cat "$state_dir/moto.pid")"
      rm -f "$state_dir/moto.pid"
    fi
    stop_rabbitmq_management
    # Only a broker this script started is stopped.
    if [ -f "$state_dir/rabbitmq.pid" ]; then
      stop_pid "$(cat "$state_dir/rabbitmq.pid")"
      rm -f "$state_dir/rabbitmq.pid"
    fi
    ;;
  *)
    echo "usage: $0 start|stop|reset" >&2
    exit 2
    ;;
esac
