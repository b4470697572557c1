#!/bin/sh
# tools/deps.sh — make sure the Debian packages naoc needs are installed.
#
#   tools/deps.sh build   packages needed to build the programs
#   tools/deps.sh test    packages the test suite needs as well (PyTorch for the
#                         parity tests, the Fashion-MNIST data, OpenMPI, Graphviz)
#
# As root, missing packages are installed with apt-get. Otherwise the one
# apt-get line to run is printed and the script fails. Nothing is downloaded
# from anywhere but Debian's archive. PyTorch is a test and benchmark peer only,
# never a dependency of the programs.
set -eu

build_pkgs="gcc make flex bison pkg-config zlib1g-dev libjpeg62-turbo-dev libpng-dev libopenblas-dev libopenmpi-dev openmpi-bin"
test_pkgs="python3 python3-numpy python3-torch python3-torchvision dataset-fashion-mnist graphviz clang"

case "${1:-test}" in
  build) want="$build_pkgs" ;;
  test|all) want="$build_pkgs $test_pkgs" ;;
  *) echo "usage: tools/deps.sh [build|test]" >&2; exit 2 ;;
esac

missing=""
for p in $want; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed"; then
    missing="$missing $p"
  fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
  echo "naoc: missing Debian packages:$missing" >&2
  echo "naoc: install them with:  sudo apt-get install -y$missing" >&2
  exit 1
fi
echo "naoc: installing missing Debian packages:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
