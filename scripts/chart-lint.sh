#!/usr/bin/env bash
# Lints the Helm chart with the real Helm library (PyPI wheel helm-sdkpy, which needs
# Python >= 3.12) and checks the chart's CRD is crdgen's output.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.aegis/helm-venv"

find_python() {
  for p in python3.13 python3.12 "$HOME/.pyenv/versions/3.13.0/bin/python" "$HOME/.pyenv/versions/3.12.1/bin/python" python3; do
    if command -v "$p" >/dev/null 2>&1 && "$p" -c 'import sys; sys.exit(sys.version_info < (3, 12))' 2>/dev/null; then
      echo "$p"; return 0
    fi
  done
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  py="$(find_python)" || { echo "chart-lint: Python >= 3.12 is required for helm-sdkpy" >&2; exit 1; }
  "$py" -m venv "$venv"
fi
"$venv/bin/python" -c 'import helm_sdkpy, yaml' 2>/dev/null || "$venv/bin/pip" install --quiet helm-sdkpy pyyaml

cmp -s "$root/crds/aegis.dev_aegisclusters.yaml" "$root/charts/aegis/crds/aegis.dev_aegisclusters.yaml" \
  || { echo "chart-lint: charts/aegis/crds differs from crds/; run crdgen" >&2; exit 1; }
exec "$venv/bin/python" - "$root/charts/aegis" <<'PY'
"""Lints charts/aegis with Helm's own library (helm-sdkpy bundles Helm v4's Go code).

Runs twice: with the chart's default values, and with ci/all-enabled-values.yaml
deep-merged in so every optional template renders. Any lint message of severity
warning or error fails. Prints 'N passed, N failed'.
"""
import asyncio
import copy
import json
import shutil
import sys
import tempfile
from pathlib import Path

import helm_sdkpy
import yaml

CHART = Path(sys.argv[1])


def deep_merge(base, over):
    out = copy.deepcopy(base)
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def problems(result):
    """Lint messages that are not informational, whatever shape the result has."""
    found = []

    def walk(node):
        if isinstance(node, dict):
            sev = str(node.get("severity", node.get("Severity", ""))).lower()
            if sev and sev not in ("info", "1", "infosev", "unknown", "0"):
                found.append(node)
            for v in node.values():
                walk(v)
        elif isinstance(node, list):
            for v in node:
                walk(v)

    walk(result)
    errors = result.get("errors") or result.get("Errors") if isinstance(result, dict) else None
    if errors:
        found.extend(errors if isinstance(errors, list) else [errors])
    return found


async def lint(path):
    config = helm_sdkpy.Configuration(namespace="aegis")
    return await helm_sdkpy.Lint(config).run(str(path))


def main():
    passed = failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        all_on = Path(tmp) / "aegis"
        shutil.copytree(CHART, all_on)
        values = yaml.safe_load((CHART / "values.yaml").read_text())
        over = yaml.safe_load((CHART / "ci" / "all-enabled-values.yaml").read_text())
        (all_on / "values.yaml").write_text(yaml.safe_dump(deep_merge(values, over)))
        for name, path in (("defaults", CHART), ("all-enabled", all_on)):
            try:
                result = asyncio.run(lint(path))
            except helm_sdkpy.HelmError as e:
                print(f"FAIL {name}: {e}")
                failed += 1
                continue
            bad = problems(result)
            if bad:
                print(f"FAIL {name}: {json.dumps(bad, indent=2)}")
                failed += 1
            else:
                print(f"ok   {name}: {json.dumps(result)[:300]}")
                passed += 1
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
PY
