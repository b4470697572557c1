#!/bin/sh
# tools/render-cells.sh — draw the paper's cells for docs/language.md.
#
# Renders `naoc --emit dot` of generated/naonet-a-cifar10.nao and
# generated/naonet-b-cifar10.nao with Graphviz into docs/img/naonet-a.png and
# docs/img/naonet-b.png (both cells of each network in one picture).
set -eu
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
command -v dot >/dev/null || { echo "render-cells: graphviz's dot is not installed" >&2; exit 2; }
mkdir -p docs/img
for n in a b; do
  "$BUILD/naoc" --emit dot "generated/naonet-$n-cifar10.nao" | dot -Tpng -Gdpi=80 -o "docs/img/naonet-$n.png"
  echo "wrote docs/img/naonet-$n.png"
done
