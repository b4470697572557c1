#!/bin/sh
# tests/e2e/generated_cuda.sh — generated/NAME.cu is what naoc makes of
# generated/NAME.nao today (make generated rewrites them; CI fails when stale).
set -u
BUILD=${BUILD:-build}
export BUILD
exec sh tools/generated.sh check
