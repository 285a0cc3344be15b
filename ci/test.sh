#!/usr/bin/env bash
# The README's test command: install with the test extra, run the whole suite (slow tests included).
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[test]"
python -m pytest -q
