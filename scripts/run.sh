#!/usr/bin/env bash
# Quick start: set up, build and run the server on the embedded defaults
# (port 8080, LMDB in ./data, anonymous sessions allowed). Extra arguments are passed to rollcall.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
scripts/build.sh
mkdir -p data
exec build/rollcall --allow-anonymous "$@"
