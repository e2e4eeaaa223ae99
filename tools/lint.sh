#!/usr/bin/env bash
# The linters of the repository, as .ci/run runs them before the tests (pip install '.[lint]'):
#   tools/lint.sh          check: ruff lint, ruff format, clang-format on cpp/ (exit 1 on any finding)
#   tools/lint.sh --fix    apply what the tools can fix themselves, then check again
# Configuration: [tool.ruff] in pyproject.toml, .clang-format.
set -euo pipefail
cd "$(dirname "$0")/.."

for tool in ruff clang-format; do
  command -v "$tool" >/dev/null 2>&1 || { echo "lint: $tool is not installed; pip install '.[lint]'" >&2; exit 2; }
done
cpp_files=(cpp/*.cpp cpp/*.h)

if [ "${1:-}" = "--fix" ]; then
  # One annotation style: builtin generics and `X | None` (ruff calls these rewrites unsafe because
  # they change annotations that something might evaluate at runtime; the modules pydantic and
  # FastAPI read are excluded in pyproject.toml, the rest use `from __future__ import annotations`).
  # (what a fix leaves is reported by the check below, so a finding here does not stop the rest)
  ruff check --fix --unsafe-fixes --select UP006,UP007,UP035,UP045,UP037 . || true
  ruff check --fix . || true
  ruff format .
  clang-format -i "${cpp_files[@]}"
fi

status=0
ruff check . || status=1
ruff format --check . || status=1
clang-format --dry-run --Werror "${cpp_files[@]}" || status=1
[ "$status" -eq 0 ] && echo "lint: clean"
exit "$status"
