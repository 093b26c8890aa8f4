#!/bin/sh
# Checks the generated unit: `systemd-analyze verify` must report nothing, and the
# sandbox's exposure score must stay at or below 2.0 (the threshold is in tenths).
# SPDX-License-Identifier: MIT
set -eu
analyze="$1"
unit="$2"

out=$("$analyze" verify --man=no "$unit" 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then
  echo "systemd-analyze verify complained:"
  echo "$out"
  exit 1
fi
"$analyze" security --offline=yes --threshold=20 --no-pager "$unit" | tail -n 1
