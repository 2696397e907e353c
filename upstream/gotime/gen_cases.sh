#!/bin/sh
# Regenerate tests/cluster/data/gotime_cases.json: how metav1.Time and metav1.MicroTime (the
# release Berth follows) decode and re-encode a set of strings. Needs go and the module proxy.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../tests/cluster/data/gotime_cases.json"
cd "$here/.."
BERTH_GOTIME_CASES="$out" go test -tags gotimeextract -run TestRecordTimeCases -count=1 ./gotime/
echo "wrote $(grep -c '"value"' "$out") cases to $out"
