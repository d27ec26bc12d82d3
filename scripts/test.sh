#!/usr/bin/env bash
# Run the test suite: scripts/test.sh [PYTEST ARGS...]
#   scripts/test.sh              default run (tests marked slow are excluded)
#   scripts/test.sh -m slow      only the slow acceptance tests
# Exit status is pytest's.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/install.sh
exec .venv/bin/python -m pytest -q "$@"
