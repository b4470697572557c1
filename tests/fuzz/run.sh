#!/bin/sh
# tests/fuzz/run.sh — build the libFuzzer harness of the front end and run it.
#
#   FUZZ_SECONDS=600 tests/fuzz/run.sh     (make fuzz sets FUZZ_SECONDS, default 60)
#
# Builds build-fuzz/fuzz_frontend with clang -fsanitize=fuzzer,address,undefined
# from the front end's sources and the grammar (generated here, apart from the
# normal build), then fuzzes for $FUZZ_SECONDS seconds. The corpus lives in
# build-fuzz/corpus (kept between runs); seeds come from tests/golden and
# generated/. A crash, a leak, a sanitizer report or a broken invariant of the
# harness stops the run, leaves the input in build-fuzz/ and exits non-zero.
# Prints libFuzzer's final statistics (executions, coverage).
set -eu
cd "$(dirname "$0")/../.."
FUZZ_SECONDS=${FUZZ_SECONDS:-60}
OUT=${FUZZ_OUT:-build-fuzz}
CLANG=${CLANG:-clang}
command -v "$CLANG" >/dev/null || { echo "fuzz: $CLANG not found (Debian: apt-get install clang)" >&2; exit 2; }
mkdir -p "$OUT/gen" "$OUT/corpus" "$OUT/seeds"

bison -Wall -Werror --defines="$OUT/gen/nao.tab.h" -o "$OUT/gen/nao.tab.c" grammar/nao.y
flex --header-file="$OUT/gen/nao.lex.h" -o "$OUT/gen/nao.lex.c" grammar/nao.l

# The front end and what it uses; nothing of the runtime.
srcs="compiler/util.c compiler/ops.c compiler/netspec.c compiler/source.c compiler/diag.c
      compiler/ast.c compiler/parse.c compiler/settings.c compiler/sema.c compiler/sema_cell.c
      compiler/frontend.c compiler/write_nao.c compiler/emit_seq.c compiler/emit_dot.c
      $OUT/gen/nao.tab.c $OUT/gen/nao.lex.c tests/unit/spec_eq.c tests/fuzz/fuzz_frontend.c"
# shellcheck disable=SC2086
"$CLANG" -std=c11 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -fno-omit-frame-pointer -I. -I"$OUT/gen" -D_DEFAULT_SOURCE -D_POSIX_C_SOURCE=200809L \
  -Wno-unused-function $srcs -lm -lpthread -o "$OUT/fuzz_frontend"

for f in tests/golden/*.nao generated/*.nao tests/golden/cli/*.stdin; do
  [ -f "$f" ] && cp "$f" "$OUT/seeds/$(echo "$f" | tr / _)"
done

echo "fuzz: running for $FUZZ_SECONDS s"
"$OUT/fuzz_frontend" -max_total_time="$FUZZ_SECONDS" -dict=tests/fuzz/nao.dict -max_len=8192 \
  -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$OUT/" \
  "$OUT/corpus" "$OUT/seeds"
