#!/usr/bin/env bash
# Renders, lints and checks the Helm chart charts/casewire with the real
# Helm library, offline. Installs what it needs into a Python venv, only
# when missing:
#   helm-python-sdk      Helm's Go SDK (v4) as a shared library bundled in
#                        the wheel (libhelm_c), called through ctypes: the
#                        same engine as `helm template` and `helm lint`,
#                        with no helm binary to download;
#   kubernetes-validate  the Kubernetes OpenAPI schemas, bundled, to
#                        validate every rendered manifest offline.
# Then runs tests/install/check_chart.py, which prints one line per check
# and `install checks: N passed, M failed`. Among them: the Grafana
# dashboard and the PrometheusRule query only metrics the Rust sources
# record, and charts/casewire/README.md holds the values table that
# tests/install/values_table.py generates (run it after changing
# values.yaml or values.schema.json).
#
# VENV: the venv to use (default $HOME/.cache/casewire/venv, the one
# tests/run uses); created when missing.
set -euo pipefail
cd "$(dirname "$0")/../.."

VENV="${VENV:-$HOME/.cache/casewire/venv}"
HELM_SDK='helm-python-sdk==0.2.2'
KUBE_VALIDATE='kubernetes-validate>=1.31,<2'

die() { printf 'FAILED: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is needed"
if [ ! -x "$VENV/bin/python" ]; then
  echo "Creating the venv $VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (apt install python3-venv)"
fi
PY="$VENV/bin/python"

# Installed and importable at the wanted version? (`pip show` alone would
# not notice a wheel whose native library fails to load.)
have() {
  "$PY" - "$1" "$2" <<'PYEOF' 2>/dev/null
import importlib, sys
from importlib.metadata import version
from packaging.requirements import Requirement
req = Requirement(sys.argv[1])
importlib.import_module(sys.argv[2])
sys.exit(0 if req.specifier.contains(version(req.name), prereleases=True) else 1)
PYEOF
}

"$PY" -c 'import packaging' 2>/dev/null || "$VENV/bin/pip" install --quiet --disable-pip-version-check packaging
if ! have "$HELM_SDK" helm_python; then
  echo "Installing $HELM_SDK (PyPI)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$HELM_SDK"
fi
if ! have "$KUBE_VALIDATE" kubernetes_validate; then
  echo "Installing $KUBE_VALIDATE (PyPI)"
  "$VENV/bin/pip" install --quiet --disable-pip-version-check "$KUBE_VALIDATE"
fi
have "$HELM_SDK" helm_python || die "helm-python-sdk does not load in $VENV (is there a wheel for $(uname -m)?)"
have "$KUBE_VALIDATE" kubernetes_validate || die "kubernetes-validate does not load in $VENV"

exec "$PY" tests/install/check_chart.py "$@"
