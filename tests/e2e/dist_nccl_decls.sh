# tests/e2e/dist_nccl_decls.sh — our NCCL declarations (runtime/dist_nccl.h)
# agree with nccl.h: tests/unit/nccl_decls.cpp, compiled with the header,
# static-asserts every table entry's signature and every constant. A
# deliberately wrong copy must then fail to compile, so the check is known to
# bite. Needs g++ and nccl.h (with cuda_runtime.h) under $CUDA_HOME/include
# or /usr/local/cuda/include; without them it fails and says so.
set -u
inc=${CUDA_HOME:-/usr/local/cuda}/include
cxx=${CXX:-g++}
for h in nccl.h cuda_runtime.h; do
  [ -f "$inc/$h" ] || { echo "nccl_decls: $inc/$h not found (install NCCL and the CUDA toolkit, or set CUDA_HOME)" >&2; exit 1; }
done
flags="-std=c++17 -fsyntax-only -Wall -Werror -Wno-enum-compare -I. -I$inc"
# shellcheck disable=SC2086
$cxx $flags tests/unit/nccl_decls.cpp || { echo "nccl_decls: our declarations disagree with nccl.h (above)" >&2; exit 1; }
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-nccl-decls.XXXXXX") || exit 1
trap 'rm -rf "$tmp"' EXIT
sed 's/SAME(all_reduce, ncclAllReduce);/SAME(all_reduce, ncclAllGather);/' tests/unit/nccl_decls.cpp >"$tmp/wrong.cpp"
# shellcheck disable=SC2086
if $cxx $flags "$tmp/wrong.cpp" 2>"$tmp/err"; then
  echo "nccl_decls: a wrong declaration compiled: the check does not bite" >&2
  exit 1
fi
grep -q "all_reduce does not have the signature of ncclAllGather" "$tmp/err" ||
  { cat "$tmp/err"; echo "nccl_decls: the wrong declaration failed for another reason" >&2; exit 1; }
sed 's/NCCLAPI_AVG == ncclAvg/NCCLAPI_AVG == ncclMin/' tests/unit/nccl_decls.cpp >"$tmp/wrong2.cpp"
# shellcheck disable=SC2086
if $cxx $flags "$tmp/wrong2.cpp" 2>/dev/null; then
  echo "nccl_decls: a wrong constant compiled: the check does not bite" >&2
  exit 1
fi
echo "nccl_decls: NCCL declarations match $inc/nccl.h"
