#!/usr/bin/env bash
# The whole test suite: peers, type-check, lint, unit + property + interop tests.
# Every phase runs even when an earlier one fails, so one run shows every problem.
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-peers.sh || exit 1
failed=()
echo "== type-check"
pnpm exec tsc -p tsconfig.json || failed+=(type-check)
echo "== lint"
pnpm exec biome check . || failed+=(lint)
echo "== tests"
pnpm exec vitest run "$@" || failed+=(tests)
if [ ${#failed[@]} -gt 0 ]; then
  echo "FAILED: ${failed[*]}"
  exit 1
fi
