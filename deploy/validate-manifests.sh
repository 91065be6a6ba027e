#!/usr/bin/env bash
# Validates the deployment files without a cluster, and exits non-zero on the first kind of
# error it finds:
#   - every Kubernetes manifest under deploy/k8s against the Kubernetes schemas
#     (kubernetes-validate, strict: unknown fields fail), the kustomization's output too when
#     kubectl is installed;
#   - KEDA ScaledObjects against deploy/schemas/keda-scaledobject.schema.json, since the
#     Kubernetes schemas know no custom resources;
#   - the CloudNativePG Cluster as YAML with its apiVersion and kind only (its operator's schema
#     is large and not ours to copy);
#   - Helm values files (*-values.yaml) as YAML mappings;
#   - docker-compose.yml against the Compose specification (check-jsonschema).
# Missing tools are installed from PyPI into a virtual environment (or the user's site when
# python3-venv is absent).
#   bash deploy/validate-manifests.sh [MANIFESTS_DIR] [COMPOSE_FILE]
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

manifests="${1:-deploy/k8s}"
compose_file="${2:-docker-compose.yml}"
kubernetes_version="${KUBERNETES_VERSION:-1.30.0}"
scaled_object_schema="deploy/schemas/keda-scaledobject.schema.json"
tools="${CONTACT_IMPORT_VALIDATE_TOOLS:-${XDG_CACHE_HOME:-$HOME/.cache}/contact-import/validate-tools}"
packages=(kubernetes-validate==1.37.0 check-jsonschema==0.39.0)

say() { printf '%s\n' "$*" >&2; }

python=""
check_jsonschema=""
have_tools() { "$1" -c 'import kubernetes_validate, jsonschema, yaml' 2>/dev/null && [ -x "$2" ]; }
ensure_tools() {
  if have_tools "$tools/bin/python" "$tools/bin/check-jsonschema"; then
    python="$tools/bin/python" check_jsonschema="$tools/bin/check-jsonschema"
    return
  fi
  if command -v check-jsonschema >/dev/null && have_tools python3 "$(command -v check-jsonschema)"; then
    python=python3 check_jsonschema="$(command -v check-jsonschema)"
    return
  fi
  say "installing ${packages[*]} into $tools"
  if python3 -m venv "$tools" >/dev/null 2>&1; then
    "$tools/bin/python" -m pip install --quiet --disable-pip-version-check "${packages[@]}"
    python="$tools/bin/python" check_jsonschema="$tools/bin/check-jsonschema"
  else
    # Debian's python3 without python3-venv: the user's site, which PEP 668 must be told about.
    rm -rf "$tools"
    PIP_BREAK_SYSTEM_PACKAGES=1 python3 -m pip install --quiet --user --disable-pip-version-check "${packages[@]}"
    python=python3 check_jsonschema="$(python3 -m site --user-base)/bin/check-jsonschema"
  fi
  have_tools "$python" "$check_jsonschema" || { say "the validation tools did not install"; exit 1; }
}

# Reads YAML files (PATH, or LABEL=PATH to name it otherwise) and checks each document by
# what it is.
check_documents() {
  "$python" - "$kubernetes_version" "$scaled_object_schema" "$@" <<'PY'
import json
import sys

import jsonschema
import kubernetes_validate
import yaml

kubernetes_version, schema_path, *paths = sys.argv[1:]
scaled_object = jsonschema.Draft202012Validator(json.load(open(schema_path)))
failures = 0


def fail(where, message):
    global failures
    failures += 1
    print(f"FAIL {where}: {message}")


for argument in paths:
    where_file, _, path = argument.rpartition("=")
    where_file = where_file or path
    text = open(path).read()
    try:
        documents = [d for d in yaml.safe_load_all(text) if d is not None]
    except yaml.YAMLError as error:
        fail(where_file, f"not YAML: {error}")
        continue
    if where_file.endswith("-values.yaml"):
        if len(documents) == 1 and isinstance(documents[0], dict):
            print(f"ok   {where_file}: Helm values, YAML")
        else:
            fail(where_file, "Helm values must be one YAML mapping")
        continue
    if where_file.endswith("kustomization.yaml"):
        continue  # built by kustomize and checked through its output
    for document in documents:
        if not isinstance(document, dict):
            fail(where_file, "a document that is not a mapping")
            continue
        api_version = str(document.get("apiVersion", ""))
        kind = str(document.get("kind", ""))
        name = (document.get("metadata") or {}).get("name", "?")
        where = f"{where_file} {kind}/{name}"
        if api_version.startswith("keda.sh/"):
            errors = sorted(scaled_object.iter_errors(document), key=lambda e: list(e.path))
            for error in errors:
                fail(where, f"{'/'.join(map(str, error.path)) or '(root)'}: {error.message}")
            if not errors:
                print(f"ok   {where}: {schema_path}")
        elif api_version.startswith("postgresql.cnpg.io/"):
            if kind == "Cluster" and isinstance(document.get("spec"), dict):
                print(f"ok   {where}: YAML, apiVersion and kind (operator schema not checked)")
            else:
                fail(where, "expected a CloudNativePG Cluster with a spec")
        else:
            try:
                kubernetes_validate.validate(document, kubernetes_version, strict=True)
                print(f"ok   {where}: Kubernetes {kubernetes_version}")
            except kubernetes_validate.SchemaNotFoundError:
                fail(where, f"no Kubernetes {kubernetes_version} schema for {api_version} {kind}")
            except kubernetes_validate.ValidationError as error:
                location = "/".join(map(str, error.path)) or "(root)"
                fail(where, f"{location}: {error.message}")
sys.exit(1 if failures else 0)
PY
}

ensure_tools
status=0

mapfile -t files < <(find "$manifests" -type f \( -name '*.yaml' -o -name '*.yml' \) | sort)
[ "${#files[@]}" -gt 0 ] || { say "no manifests under $manifests"; exit 1; }
check_documents "${files[@]}" || status=1

if [ -f "$manifests/kustomization.yaml" ]; then
  if command -v kubectl >/dev/null; then
    built="$(mktemp)"
    trap 'rm -f "$built"' EXIT
    if kubectl kustomize "$manifests" >"$built"; then
      check_documents "kustomize build of $manifests=$built" || status=1
    else
      say "FAIL $manifests: kustomize build"
      status=1
    fi
  else
    say "skipped: kustomize build of $manifests (no kubectl); its files were checked one by one"
  fi
fi

if "$check_jsonschema" --builtin-schema vendor.compose-spec "$compose_file"; then
  :
else
  status=1
fi

if [ "$status" -ne 0 ]; then
  say "deployment files: INVALID"
else
  say "deployment files: valid"
fi
exit "$status"
