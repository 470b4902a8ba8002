#!/usr/bin/env bash
# Compiles sources into one static archive with the given compiler and flags,
# and writes a depfile naming every header they include: the fuzz targets
# then share one instrumented build of the packet core instead of compiling
# it once each.
# usage: archive.sh CXX OUTPUT DEPFILE WORKDIR FLAG... -- SOURCE...
set -euo pipefail
cxx=$1 out=$2 depfile=$3 work=$4
shift 4
flags=()
while [ "$1" != "--" ]; do
  flags+=("$1")
  shift
done
shift
rm -rf "$work"
mkdir -p "$work"
objs=()
i=0
for src in "$@"; do
  obj=$work/$i-$(basename "${src%.*}").o
  "$cxx" "${flags[@]}" -MD -MF "$obj.d" -c "$src" -o "$obj"
  objs+=("$obj")
  i=$((i + 1))
done
rm -f "$out"
ar rcs "$out" "${objs[@]}"
# One rule a source, each for the archive.
sed "s|^[^ :][^:]*:|$out:|" "$work"/*.d >"$depfile"
