#!/usr/bin/env bash
# The README's test command (install with the test extra, the default suite), then the slow and
# fault-injection tests that the default suite leaves out.
set -euo pipefail
cd "$(dirname "$0")/.."
python -m pip install -q -e ".[test]"
python -m pytest -q
python -m pytest -q -m "slow or faults"
