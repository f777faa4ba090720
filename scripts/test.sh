#!/usr/bin/env bash
# The whole test suite: peers, type-check, lint, unit + property + interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh
echo "== type-check"
pnpm exec tsc -p tsconfig.json
echo "== lint"
pnpm exec biome check .
echo "== tests"
pnpm exec vitest run "$@"
