#!/usr/bin/env bash
# requirements.lock: the exact versions CI installs (.ci/run: pip install -c requirements.lock).
# Made from pyproject.toml with the test extra, plus the type checker CI runs, at the versions
# installed where the tests last passed (pip freeze is its constraint). Run after changing a dependency:
#
#   python3 -m pip install uv && scripts/lock.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
installed="$(mktemp)"
trap 'rm -f "$installed"' EXIT
"$PYTHON" -m pip freeze --exclude-editable | grep -v '^-e ' > "$installed"
# Test tools other branches add to the test extra are pinned here too: as constraints
# (pip install -c) they install nothing that pyproject.toml does not ask for.
printf '%s\n' "mypy>=1.11,<3" "types-PyYAML" "hypothesis>=6,<7" |
    "$PYTHON" -m uv pip compile pyproject.toml - --extra test \
        --python-version 3.11 --universal --constraint "$installed" \
        --quiet --annotation-style line --custom-compile-command scripts/lock.sh |
    sed -E -e "s|,? -c $installed||" -e 's|  # via$|  # a test tool (scripts/lock.sh)|' -e 's|[[:space:]]+$||' > requirements.lock
echo "requirements.lock: $(grep -c '==' requirements.lock) pinned packages"
