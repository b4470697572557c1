#!/bin/sh
# tests/gpu/prebuild.sh — builds, on this machine, the programs tests/gpu/check.sh
# runs, for a device machine that cannot build naoc itself (its image may lack
# bison, flex, OpenBLAS, libjpeg or libpng): cuda_check and cuda_bench linked
# statically against those libraries (glibc stays dynamic: built on an older
# glibc than the device's, they run there), stripped, in
# .gpu-prebuilt/gpu-tools.tar.gz with the commit in .gpu-prebuilt/COMMIT.
#
# Run it before the device call and name .gpu-prebuilt in the call's carry
# (docs/cuda-runtime.md says how). The folder must be ignored by git:
#   echo /.gpu-prebuilt/ >> .git/info/exclude
set -eu
B=${BUILD_STATIC:-build-static}
jobs=${JOBS:-2}
static="-Wl,-Bstatic -lopenblas -lgfortran -lquadmath -lz -ljpeg -lpng -Wl,-Bdynamic -lpthread -ldl -lm"
make -j"$jobs" BUILD="$B" LDLIBS="$static" "$B/tests/tools/cuda_check" "$B/tests/tools/cuda_bench"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/naoc-prebuilt.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
for p in cuda_check cuda_bench; do
  strip -o "$tmp/$p" "$B/tests/tools/$p"
  if ldd "$tmp/$p" | grep -qE 'openblas|jpeg|png|libz|gfortran'; then
    echo "prebuild.sh: $p still needs a shared library the device may not have:" >&2
    ldd "$tmp/$p" >&2
    exit 1
  fi
done
mkdir -p .gpu-prebuilt
tar -czf .gpu-prebuilt/gpu-tools.tar.gz -C "$tmp" cuda_check cuda_bench
c=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)
git diff --quiet HEAD 2>/dev/null || c="$c+dirty"
echo "$c" >.gpu-prebuilt/COMMIT
ls -l .gpu-prebuilt
git check-ignore -q .gpu-prebuilt/COMMIT || echo "prebuild.sh: note: .gpu-prebuilt is not ignored by git (echo /.gpu-prebuilt/ >> .git/info/exclude)"
