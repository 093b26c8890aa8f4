#!/bin/sh
# Checks the generated unit: `systemd-analyze verify` must report nothing, and the sandbox's
# exposure score must stay at or below THRESHOLD tenths (README claims 1.1: threshold 11).
#   verify-unit.sh SYSTEMD-ANALYZE UNIT THRESHOLD [above]
# Exit 0 when both hold, 1 otherwise (with the tool's output). With `above`, the unit must pass
# `verify` and its exposure must be ABOVE the threshold: a test with threshold 10 then shows
# that the bound is enforced and that README's 1.1 is still the score (not a better one).
# Each tool's own exit status is checked; nothing is piped.
# SPDX-License-Identifier: MIT
set -eu
analyze="$1"
unit="$2"
threshold="$3"
expect="${4:-within}"

status=0
out=$("$analyze" verify --man=no "$unit" 2>&1) || status=$?
if [ "$status" -ne 0 ] || [ -n "$out" ]; then
  echo "systemd-analyze verify failed (status $status):"
  echo "$out"
  exit 1
fi

status=0
out=$("$analyze" security --offline=yes --threshold="$threshold" --no-pager "$unit" 2>&1) \
  || status=$?
# The last line: "→ Overall exposure level for UNIT: 1.1 OK"
summary=${out##*
}
case "$summary" in
  *"Overall exposure level"*) ;;
  *)
    echo "systemd-analyze security printed no exposure level (status $status):"
    echo "$out"
    exit 1
    ;;
esac
if [ "$expect" = above ]; then
  if [ "$status" -eq 0 ]; then
    echo "exposure within $threshold tenths, expected above it: update README's score"
    echo "$summary"
    exit 1
  fi
  echo "$summary: above $threshold tenths, refused (status $status) as expected"
  exit 0
fi
if [ "$status" -ne 0 ]; then
  echo "exposure above the threshold of $threshold tenths (status $status):"
  echo "$out"
  exit 1
fi
echo "$summary (threshold: $threshold tenths)"
