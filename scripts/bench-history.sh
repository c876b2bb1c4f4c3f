#!/usr/bin/env bash
# Prints every stored comparison of the put rows as one Markdown table, oldest first:
# for each directory under docs/bench-results (or the one given) that holds a
# `compare.md` (a sequential run) or a `pairs.md` (alternating pairs), its host CPU,
# the put ratio at 1, 64 and 1,000 clients and the one-client p99 ratio. A pairs run
# gives the median and, in brackets, the lowest and highest pair.
#
# Usage: scripts/bench-history.sh [RESULTS_DIR]
#        scripts/bench-history.sh --check
# The table in docs/BENCHMARKS.md ("Every stored run", between the bench-history
# markers) is this script's output; --check fails when it is stale (scripts/test.sh).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)
check=false
if [[ ${1:-} == --check ]]; then
  check=true
  shift
fi
results=${1:-$root/docs/bench-results}
[[ -d $results ]] || { echo "bench-history: no directory $results" >&2; exit 2; }

# A run's place in time: its commit's date where the directory names one that git
# knows, else the date directory at noon.
when() {
  local dir=$1 day hash t=
  day=$(basename "$(dirname "$dir")")
  hash=$(basename "$dir" | grep -oE '[0-9a-f]{7,40}$' || true)
  if [[ -n $hash ]]; then
    t=$(git -C "$root" log -1 --format=%cI "$hash" 2>/dev/null || true)
  fi
  echo "${t:-${day}T12:00:00}"
}

# Fields of a Markdown table row named $2 in file $1, '|'-separated, trimmed.
row() {
  awk -F'|' -v name="$2" '{ gsub(/ /, "", $2) } $2 == name {
    for (i = 3; i < NF; i++) { gsub(/^ +| +$/, "", $i); printf "%s%s", $i, (i < NF - 1 ? "|" : "\n") }
  }' "$1"
}

# Sequential run: the ratio column (5th field after the name); p99 ratio is the 8th.
seq_ratio() { row "$1" "$2" | awk -F'|' 'NF { gsub(/\*/, "", $5); print $5 }'; }
seq_p99() { row "$1" "$2" | awk -F'|' 'NF { print $8 }'; }
# Pairs run: "median (min–max)"; the p99 ratios per pair are the last field.
pair_ratio() {
  row "$1" "$2" | awk -F'|' 'NF { m = $5; gsub(/\*/, "", m); split($6, r, " / ")
    printf "%s (%s–%s)\n", m, r[1], r[2] }'
}
pair_p99() { row "$1" "$2" | awk -F'|' 'NF { print $7 }'; }

host() {
  local cpu
  cpu=$(sed -n 's/^cpu: //p' "$1/machine.txt" 2>/dev/null | head -n 1)
  case $cpu in
    *AMD*) echo AMD ;;
    *Intel*) echo Intel ;;
    *) echo "?" ;;
  esac
}

kind_of_pairs() {
  local n warm
  n=$(sed -n 's/^pairs: \([0-9]*\).*/\1/p' "$1/machine.txt" 2>/dev/null | head -n 1)
  warm=$(sed -n 's/.*warm-up before each pair row: \([0-9]*s\).*/\1/p' "$1/machine.txt" 2>/dev/null | head -n 1)
  [[ -n $n ]] || n=$(row "$1/pairs.md" 01-put-c1 | cut -d'|' -f1)
  if [[ -n $warm && $warm != 0s ]]; then echo "$n warm pairs"; else echo "$n pairs"; fi
}

if $check; then
  # Runs are ordered by their commits' dates: a shallow clone cannot tell them.
  if [[ $(git -C "$root" rev-parse --is-shallow-repository 2>/dev/null) != false ]]; then
    echo "bench-history: skipped, the commits' dates need a full clone"
    exit 0
  fi
  doc=$root/docs/BENCHMARKS.md
  if ! diff -u <(sed -n '/<!-- bench-history:start -->/,/<!-- bench-history:end -->/p' "$doc" | sed '1d;$d') \
    <("$0" "$results") >&2; then
    echo "bench-history: the table in $doc is stale; regenerate it with scripts/bench-history.sh" >&2
    exit 1
  fi
  echo "bench-history: the table in docs/BENCHMARKS.md matches docs/bench-results"
  exit 0
fi

lines=()
while IFS= read -r dir; do
  dir=${dir%/}
  rel=${dir#"$root"/docs/}
  t=$(when "$dir")
  h=$(host "$dir")
  if [[ -f $dir/compare.md ]] && [[ -n $(row "$dir/compare.md" 01-put-c1) ]]; then
    lines+=("$t|[$(basename "$dir")]($rel/compare.md)|$h|sequential|$(seq_ratio "$dir/compare.md" 01-put-c1)|$(seq_ratio "$dir/compare.md" 02-put-c64)|$(seq_ratio "$dir/compare.md" 03-put-c1000)|$(seq_p99 "$dir/compare.md" 01-put-c1)")
  fi
  if [[ -f $dir/pairs.md ]]; then
    lines+=("$t|[$(basename "$dir")]($rel/pairs.md)|$h|$(kind_of_pairs "$dir")|$(pair_ratio "$dir/pairs.md" 01-put-c1)|$(pair_ratio "$dir/pairs.md" 02-put-c64)|$(pair_ratio "$dir/pairs.md" 03-put-c1000)|$(pair_p99 "$dir/pairs.md" 01-put-c1)")
  fi
done < <(find "$results" -mindepth 2 -maxdepth 2 -type d | sort)

echo "| run | host | kind | put, 1 client | 64 clients | 1,000 clients | 1-client p99 ratio |"
echo "|---|---|---|---:|---:|---:|---|"
printf '%s\n' "${lines[@]}" | sort -t'|' -k1,1 -s | cut -d'|' -f2- | awk -F'|' -v OFS=' | ' '
  { for (i = 1; i <= NF; i++) if ($i == "") $i = "—"; $1 = $1; print "| " $0 " |" }'
