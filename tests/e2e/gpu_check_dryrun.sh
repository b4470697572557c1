#!/bin/sh
# tests/e2e/gpu_check_dryrun.sh — tests/gpu/check.sh itself, in its dry-run
# mode (mock device, tests/gpu/tiny.nao): the script must be shellcheck-clean,
# run every stage, pass the correctness check of the cuda runtime against the
# cpu backend, time the benchmark, run the PyTorch peer (eager on the CPU;
# torch.compile noted as unavailable where PyTorch is older than 2), and end
# with its table, everything in its output folder.
set -u
BUILD=${BUILD:-build}
PYTHON=${PYTHON:-/usr/bin/python3}
export BUILD PYTHON
if command -v shellcheck >/dev/null 2>&1; then
  shellcheck -s sh tests/gpu/check.sh tests/gpu/prebuild.sh || { echo "gpu_check_dryrun: shellcheck" >&2; exit 1; }
else
  echo "gpu_check_dryrun: note: no shellcheck here"
fi
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-dry.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
# a kernel cache under the build folder: the first run compiles, later ones load
TMPDIR=$(cd "$BUILD" && pwd) sh tests/gpu/check.sh --dry-run --out "$tmp/out" >"$tmp/stdout" 2>&1
rc=$?
cat "$tmp/stdout"
fail() { echo "gpu_check_dryrun: $*" >&2; exit 1; }
[ "$rc" = 0 ] || fail "check.sh --dry-run exited $rc"
s=$tmp/out/summary.txt
for f in check.log summary.txt table.txt; do [ -s "$tmp/out/$f" ] || fail "no $f"; done
grep -qx 'check_tiny=PASS' "$s" || fail "the mock check did not pass"
grep -qE '^ours_tiny_images_per_s=[0-9.]+$' "$s" || fail "no throughput of ours"
grep -qE '^ours_tiny_floor_ms=[0-9.]+$' "$s" || fail "no floor"
grep -qE '^torch_eager_tiny_images_per_s=[0-9.]+$' "$s" || fail "no PyTorch eager throughput"
grep -qE '^(torch_compile_tiny_images_per_s=[0-9.]+|torch_compile_tiny_note=no-torch.compile)$' "$s" ||
  fail "torch.compile neither ran nor was noted"
grep -q '^setting ' "$tmp/out/table.txt" || fail "no table header"
grep -q '^tiny ' "$tmp/out/table.txt" || fail "no table row"
tail -n 1 "$tmp/stdout" | grep -q '^stages: ' || fail "the table is not the end of the output"
if grep -E '^stage_' "$s" | grep -v '=ok$'; then fail "a stage did not pass"; fi
echo "gpu_check_dryrun: ok"
