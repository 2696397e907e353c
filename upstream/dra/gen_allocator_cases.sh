#!/bin/sh
# Regenerate tests/dra/data/allocator_cases.json from upstream's allocator test table
# (k8s.io/dynamic-resource-allocation, the release Berth follows). Needs go and the module proxy.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/../../tests/dra/data/allocator_cases.json"
version=v0.37.2
src="$(go mod download -json "k8s.io/dynamic-resource-allocation@$version" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')"
work="$(mktemp -d)"
trap 'chmod -R u+w "$work"; rm -rf "$work"' EXIT
cp -r "$src" "$work/dra"
chmod -R u+w "$work/dra"
cp "$here/record_test.go" "$work/dra/structured/record_test.go"
cd "$work/dra"
BERTH_DRA_CASES="$out" GOFLAGS=-mod=mod go test -tags draextract -run TestRecordAllocatorCases -count=1 ./structured/ >"$work/log" 2>&1 || { tail -40 "$work/log"; exit 1; }
echo "wrote $(grep -c '"name"' "$out") cases to $out"
