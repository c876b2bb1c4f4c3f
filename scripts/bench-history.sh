#!/usr/bin/env bash
# Prints every stored etcd-against-AEGIS comparison of the put rows, oldest first, as one
# Markdown table, then how many of them met "≥ 2× etcd" since two changes:
#   - a run is a `compare.md` (sequential: one ratio per row), a `pairs.md` (alternating
#     pairs: the median, and in brackets the lowest and highest pair) or an `interleave.md`
#     (scripts/bench-interleave.sh: both clusters up, rows alternating in blocks; read as
#     pairs are, one block to a pair) anywhere under docs/bench-results, except inside a
#     pairs run's raw `pairs/` directory;
#   - the counts take every sequential run, every single pair and every block as one
#     comparison; the last count keeps only the comparisons whose two rows both recorded
#     their steal (the share of a vCPU the host ran elsewhere) and lost less than 5 % of a
#     vCPU to it.
#
#   - the last table judges each put target over the comparisons since the last change to the
#     put path (ADR-0007, 2026-12-05): met when the distribution-free bound for the 10th
#     percentile of the ratios (for the 90th of the p99 ratios), at 95 % shared out over the
#     sessions that have judged those comparisons, reaches it, and the chance that any of those
#     looks would have called a missed target met (their joint error) is at most 5 %.
#
# Usage: scripts/bench-history.sh [RESULTS_DIR]
#        scripts/bench-history.sh --check     (also: the side-by-side table is the newest full run's)
#        scripts/bench-history.sh --latest-run   (that run's compare.md, under docs/)
#        scripts/bench-history.sh --self-test   (the bound's rank, and the verdicts on a made-up run)
#        scripts/bench-history.sh --looks-error "N:K ..."   (the chance that looks would have
#                                                            called a missed target met)
# The tables in docs/BENCHMARKS.md ("Every stored run", between the bench-history
# markers) are this script's output; --check fails when they are stale (scripts/test.sh).
set -euo pipefail
export LC_ALL=C

root=$(cd "$(dirname "$0")/.." && pwd)

# The rank k of the distribution-free 1 - ALPHA confidence bound for the 10th percentile of
# N values (the k-th smallest; the k-th largest bounds the 90th): the largest k with
# P(Binomial(N, 0.1) <= k - 1) <= ALPHA. 0 when N is too small for any (N < 29 at 0.05,
# N < 36 at 0.025).
bound_rank() {
  awk -v n="$1" -v alpha="${2:-0.05}" 'BEGIN {
    q = 0.1; pmf = (1 - q) ^ n; cdf = pmf; k = 0
    for (j = 0; j < n && cdf <= alpha; j++) {
      k = j + 1
      pmf *= (n - j) / (j + 1) * q / (1 - q)
      cdf += pmf
    }
    print k
  }'
}

# The chance that looks at one growing set of comparisons would have called a target met
# when exactly one comparison in ten misses it (the least favourable case: a true 10th
# percentile of exactly 2x), each comparison on its own. LOOKS: "N:K ..." in the order taken,
# the comparisons at each look and the rank its bound took; a look calls the target met when
# fewer than K of its first N comparisons miss. Exact: the count of misses is carried from look
# to look, and the chance of the paths that would have been called met at an earlier look is
# set aside.
looks_error() {
  awk -v looks="$1" 'BEGIN {
    q = 0.1; split(looks, spec, " "); p[0] = 1; seen = 0; met = 0
    for (l = 1; l in spec; l++) {
      split(spec[l], nk, ":"); n = nk[1] + 0; k = nk[2] + 0
      for (; seen < n; seen++) {
        for (c = seen + 1; c >= 0; c--) p[c] = (c in p ? p[c] : 0) * (1 - q) + (c > 0 ? p[c - 1] : 0) * q
      }
      for (c = 0; c < k; c++) { met += p[c]; p[c] = 0 }
    }
    printf "%.4f\n", met
  }'
}

if [[ ${1:-} == --looks-error ]]; then
  looks_error "${2:?usage: bench-history.sh --looks-error "N:K ..."}"
  exit 0
fi

if [[ ${1:-} == --self-test ]]; then
  # n: k, from the binomial tails (0.9^28 = 0.052, 0.9^29 = 0.047; at 55 P(X <= 1) = 0.021
  # and P(X <= 2) = 0.076).
  # At 0.025 (95 % over two looks): 0.9^35 = 0.02503 and 0.9^36 = 0.0225; P(X <= 1) is
  # 0.0259 at 53 and 0.0237 at 54; P(X <= 2) is 0.0262 at 69 and 0.0242 at 70.
  for want in 0:0:0.05 28:0:0.05 29:1:0.05 45:1:0.05 46:2:0.05 55:2:0.05 100:5:0.05 \
    35:0:0.025 36:1:0.025 53:1:0.025 54:2:0.025 69:2:0.025 70:3:0.025; do
    IFS=: read -r n k alpha <<<"$want"
    got=$(bound_rank "$n" "$alpha")
    [[ $got == "$k" ]] || { echo "bench-history: bound_rank $n at $alpha gave $got, want $k" >&2; exit 1; }
  done
  echo "bench-history: bound ranks as expected"
  # One look is one binomial tail (0.9^29 = 0.0471, 0.9^41 = 0.0133; P(X <= 1) at 66 = 0.0080).
  # The looks at 5edbe84's window (41, 66, 75 comparisons, ranks 1, 2, 3) together: 0.0261,
  # less than their levels' sum (0.05 + 0.025 + 0.0167) because they share comparisons.
  for want in "29:1=0.0471" "41:1=0.0133" "66:2=0.0080" "41:1 66:2 75:3=0.0261" "41:1 41:1=0.0133"; do
    got=$(looks_error "${want%=*}")
    [[ $got == "${want#*=}" ]] || { echo "bench-history: looks_error ${want%=*} gave $got, want ${want#*=}" >&2; exit 1; }
  done
  echo "bench-history: the looks' joint error as expected"
  # The verdict table on a made-up interleaved run dated after every commit: one client with
  # 29 blocks, the lowest 1.50 (the bound at 29, so not met) and one p99 ratio of 1.20 (the
  # bound from above: not met); 64 clients with 46 blocks, all 2.50; 1,000 clients with 46
  # blocks, the lowest 1.50 and the second lowest 2.05 (the bound at 46: met).
  if [[ $(git -C "$root" rev-parse --is-shallow-repository 2>/dev/null) != false ]]; then
    echo "bench-history: verdict fixture skipped, the commits' dates need a full clone"
    exit 0
  fi
  fixture=$(mktemp -d)
  trap 'rm -rf "$fixture"' EXIT
  mkdir -p "$fixture/2099-01-01/fixture"
  list() { local IFS=,; echo "$*"; }
  c1=(1.50) c1p=(1.20) c1000=(1.50 2.05) c1000p=() c64=() c64p=()
  for _ in $(seq 28); do c1+=(2.40); c1p+=(0.50); done
  for _ in $(seq 44); do c1000+=(2.60); done
  for _ in $(seq 46); do c1000p+=(0.40); c64+=(2.50); c64p+=(0.40); done
  {
    echo "| row | pairs | etcd req/s (median) | aegis req/s (median) | ratio per pair | median ratio | min / max | p99 ratio per pair | steal |"
    echo "|---|---:|---:|---:|---|---:|---:|---|---|"
    echo "| 01-put-c1 | 29 | 700 | 1680 | $(list "${c1[@]}") | **2.40×** | 1.50 / 2.40 | $(list "${c1p[@]}") | |"
    echo "| 02-put-c64 | 46 | 5000 | 12500 | $(list "${c64[@]}") | **2.50×** | 2.50 / 2.50 | $(list "${c64p[@]}") | |"
    echo "| 03-put-c1000 | 46 | 9000 | 23400 | $(list "${c1000[@]}") | **2.60×** | 1.50 / 2.60 | $(list "${c1000p[@]}") | |"
  } >"$fixture/2099-01-01/fixture/interleave.md"
  # One look: 95 %. Two looks: 97.5 % each, so 29 blocks are too few and at 46 the bound is
  # the lowest ratio again. Three, after looks at 29 and 46 blocks: the bound is met, the
  # looks' joint error (7.2 %) is not.
  expect() {
    local out want
    out=$(BENCH_HISTORY_LOOKS=$1 BENCH_HISTORY_EARLIER_LOOKS=$2 "$0" "$fixture")
    shift 2
    for want in "$@"; do
      grep -qxF -- "$want" <<<"$out" || { echo "bench-history: the verdict fixture lacks: $want" >&2; printf '%s\n' "$out" | tail -5 >&2; exit 1; }
    done
  }
  expect 1 '' '| 01-put-c1 | 29 | 28 | 1.50× | 2.40× | 1.50× | 1.20× | 4.7 % | no | no |' \
    '| 02-put-c64 | 46 | 46 | 2.50× | 2.50× | 2.50× | 0.40× | 4.8 % | yes | yes |' \
    '| 03-put-c1000 | 46 | 45 | 1.50× | 2.60× | 2.05× | 0.40× | 4.8 % | yes | yes |'
  expect 2 '' '| 01-put-c1 | 29 | 28 | 1.50× | 2.40× | — | — | — | not yet shown (fewer than 36) | not yet shown (fewer than 36) |' \
    '| 02-put-c64 | 46 | 46 | 2.50× | 2.50× | 2.50× | 0.40× | 0.8 % | yes | yes |' \
    '| 03-put-c1000 | 46 | 45 | 1.50× | 2.60× | 1.50× | 0.40× | 0.8 % | no | yes |'
  expect 3 '02-put-c64=29:1,46:2' \
    '| 02-put-c64 | 46 | 46 | 2.50× | 2.50× | 2.50× | 0.40× | 7.2 % | no (joint error over 5 %) | no (joint error over 5 %) |'
  echo "bench-history: verdicts on the fixture as expected"
  exit 0
fi

check=false latest=false
case ${1:-} in
  --check) check=true; shift ;;
  --latest-run) latest=true; shift ;;
esac
results=${1:-$root/docs/bench-results}
[[ -d $results ]] || { echo "bench-history: no directory $results" >&2; exit 2; }

# The counts start at these commits: spare followers batched (ADR-0014), and the node
# allocating with jemalloc (ADR-0017).
since_batching=4e70d70
since_jemalloc=a0a5421
# The KV store's layout (ADR-0025), and the last change to the put path: the verdicts are
# taken over the comparisons since `judged_since`, which moves with each such change.
since_kv_layout=d7f9934
judged_since=5edbe84
# How many sessions have judged the comparisons since `judged_since`, this one included
# (ADR-0007, amendment of 2026-12-05 02:00): every look's bounds are taken at 95 % shared out
# evenly over the looks (1 - 0.05 / looks). One more in each session that reports a verdict;
# back to 1 when `judged_since` moves. The variable is for the self-test's fixture.
looks=${BENCH_HISTORY_LOOKS:-3}
# The looks before this one at the same comparisons, per row, as "N:K" (comparisons, bound
# rank) in the order taken: with this look's they give the looks' joint error (amendment of
# 2026-12-05 04:40), which must be at most 5 % for a verdict of met. A session that raises
# `looks` first appends the last look's N:K here; empty when `judged_since` moves.
earlier_looks=${BENCH_HISTORY_EARLIER_LOOKS-"01-put-c1=41:1,66:2 02-put-c64=34:1,59:2 03-put-c1000=41:1,66:2"}

commit_time() { git -C "$root" log -1 --format=%cI "$1" 2>/dev/null || true; }

if $check; then
  # Runs are ordered by their commits' dates: a shallow clone cannot tell them.
  if [[ $(git -C "$root" rev-parse --is-shallow-repository 2>/dev/null) != false ]]; then
    echo "bench-history: skipped, the commits' dates need a full clone"
    exit 0
  fi
  doc=$root/docs/BENCHMARKS.md
  if ! diff -u <(sed -n '/<!-- bench-history:start -->/,/<!-- bench-history:end -->/p' "$doc" | sed '1d;$d') \
    <("$0" "$results") >&2; then
    echo "bench-history: the tables in $doc are stale; regenerate them with scripts/bench-history.sh" >&2
    exit 1
  fi
  # The side-by-side table at the top is the newest full run's compare.md, verbatim.
  shown=$(sed -n 's/^<!-- latest-run:start \(.*\) -->$/\1/p' "$doc")
  newest=$("$0" --latest-run "$results")
  if [[ $shown != "$newest" ]]; then
    echo "bench-history: $doc shows ${shown:-no run} side by side; the newest full run is $newest" >&2
    exit 1
  fi
  if ! diff -u <(sed -n '/^<!-- latest-run:start /,/^<!-- latest-run:end -->/p' "$doc" | sed '1d;$d') \
    "$root/docs/$newest" >&2; then
    echo "bench-history: the side-by-side table in $doc differs from $newest" >&2
    exit 1
  fi
  echo "bench-history: the tables in docs/BENCHMARKS.md, and its side-by-side run, match docs/bench-results"
  exit 0
fi

# A run's place in time: the date of the commit named at the end of its directory's
# name or of the nearest enclosing one's (put3-<commit>/run1), else its date directory
# (the first under RESULTS_DIR) at noon.
when() {
  local rel=${1#"$results"/} part hash= t=
  local -a parts
  IFS=/ read -ra parts <<<"$rel"
  for ((i = ${#parts[@]} - 1; i >= 1; i--)); do
    part=${parts[$i]}
    if [[ $part =~ [-]([0-9a-f]{7,40})$ ]]; then
      hash=${BASH_REMATCH[1]}
      break
    fi
  done
  [[ -n $hash ]] && t=$(commit_time "$hash")
  [[ -n $t ]] || t="${parts[0]}T12:00:00"
  echo "$t"
}

host() {
  local m=$1/machine.txt
  [[ -f $m ]] || m=$(dirname "$1")/machine.txt
  case $(sed -n 's/^cpu: //p' "$m" 2>/dev/null | head -n 1) in
    *AMD*) echo AMD ;;
    *Intel*) echo Intel ;;
    *) echo "?" ;;
  esac
}

kind_of_pairs() {
  local n warm
  if [[ -f $1/interleave.md ]]; then
    n=$(sed -n 's/^interleaved: \([0-9]*\) blocks.*/\1/p' "$1/machine.txt" 2>/dev/null | head -n 1)
    echo "$n interleaved blocks"
    return
  fi
  n=$(sed -n 's/^pairs: \([0-9]*\).*/\1/p' "$1/machine.txt" 2>/dev/null | head -n 1)
  warm=$(sed -n 's/.*warm-up before each pair row: \([0-9]*s\).*/\1/p' "$1/machine.txt" 2>/dev/null | head -n 1)
  [[ -n $n ]] || n=$(awk -F'|' 'NR > 2 { gsub(/ /, "", $3); print $3; exit }' "$1/pairs.md")
  if [[ -n $warm && $warm != 0s ]]; then echo "$n warm pairs"; else echo "$n pairs"; fi
}

# Per file, one line per put row: row|ratio cell|p99 cell|ratio list (pairs)|p99 list
# (pairs)|steal list (pairs that record it: "etcd / aegis" per pair). Only tables of etcd
# (base) against AEGIS (candidate) are read.
put_rows() {
  awk -F'|' -v pairs="$2" '
    NR == 1 { ok = pairs ? ($4 ~ /etcd/ && $5 ~ /aegis/) : ($5 ~ /etcd/ && $6 ~ /aegis/) }
    !ok { exit }
    { for (i = 2; i < NF; i++) gsub(/^ +| +$|\*/, "", $i) }
    $2 ~ /^0[123]-put-c(1|64|1000)$/ {
      if (pairs) { split($8, r, " / "); print $2 "|" $7 " (" r[1] "–" r[2] ")|" $9 "|" $6 "|" $9 "|" $10 }
      else print $2 "|" $7 "|" $10 "|" $7 "|" $10 "|"
    }' "$1"
}

# Field $3 of row $2 in put_rows' output $1.
field() { awk -F'|' -v row="$2" -v f="$3" '$1 == row { print $f }' <<<"$1"; }

# requests/s in a load row's JSON; empty if none.
rate_of() { [[ -f $1 ]] && sed -n 's/.*"requests_per_sec": *\([0-9.eE+-]*\).*/\1/p' "$1" | head -n 1 || true; }

# AEGIS's rate over etcd's from the two rows' JSON in $1/aegis and $1/etcd, to four places
# (the tables' two places would count 1.997 as 2.00); empty if either is missing.
exact_ratio() {
  local a e
  a=$(rate_of "$1/aegis/$2.json")
  e=$(rate_of "$1/etcd/$2.json")
  [[ -n $a && -n $e ]] && awk -v a="$a" -v e="$e" 'BEGIN { if (e > 0) printf "%.4f", a / e }' || true
}

# The steal a load row's file records ("steal: 3.5% of a vCPU"), as a number; empty if none.
steal_of() { [[ -f $1 ]] && sed -n 's/^steal: \([0-9.]*\)%.*/\1/p' "$1" | head -n 1 || true; }

# 1 when both rows of a comparison lost less than 5 % of a vCPU to the host, 0 when one lost
# more, "?" when a row recorded none.
quiet() {
  if [[ -z $1 || -z $2 ]]; then echo "?"; else awk -v e="$1" -v a="$2" 'BEGIN { print (e < 5 && a < 5) ? 1 : 0 }'; fi
}

# The newest full run (a sequential compare.md with the one-client put row and the failover row), as a
# path under docs/: the run the side-by-side table at the top of docs/BENCHMARKS.md shows.
if $latest; then
  newest= newest_t=
  while IFS= read -r file; do
    grep -q '^| 01-put-c1 |' "$file" && grep -q '^| 20-failover |' "$file" || continue
    t=$(when "$(dirname "$file")")
    if [[ -z $newest || $t > $newest_t ]]; then newest=${file#"$root"/docs/} newest_t=$t; fi
  done < <(find "$results" -name compare.md | sort)
  [[ -n $newest ]] || { echo "bench-history: no full run under $results" >&2; exit 2; }
  echo "$newest"
  exit 0
fi

table=() # time|run|host|kind|1|64|1000|p99
comparisons=() # time|row|ratio|p99|quiet
while IFS= read -r file; do
  dir=$(dirname "$file")
  pairs=0 raw=$dir/pairs
  case $(basename "$file") in
    pairs.md) pairs=1 ;;
    interleave.md) pairs=1 raw=$dir ;;
  esac
  rows=$(put_rows "$file" "$pairs")
  [[ -n $rows ]] || continue
  t=$(when "$dir")
  rel=${file#"$root"/docs/}
  name=${dir#"$results"/*/}
  if ((pairs)); then kind=$(kind_of_pairs "$dir"); else kind=sequential; fi
  table+=("$t|[$name]($rel)|$(host "$dir")|$kind|$(field "$rows" 01-put-c1 2)|$(field "$rows" 02-put-c64 2)|$(field "$rows" 03-put-c1000 2)|$(field "$rows" 01-put-c1 3)")
  while IFS='|' read -r row _ _ ratios p99s steals; do
    IFS=',' read -ra rs <<<"$ratios"
    IFS=',' read -ra ps <<<"$p99s"
    IFS=',' read -ra ss <<<"$steals"
    for i in "${!rs[@]}"; do
      if ((pairs)); then
        e=$(sed -n 's#^ *\([0-9.]*\) / .*#\1#p' <<<"${ss[$i]:-}")
        a=$(sed -n 's#.* / \([0-9.]*\) *$#\1#p' <<<"${ss[$i]:-}")
        exact=$(exact_ratio "$raw/$((i + 1))" "$row")
      else
        e=$(steal_of "$dir/etcd/$row.steal")
        a=$(steal_of "$dir/aegis/$row.steal")
        exact=$(exact_ratio "$dir" "$row")
      fi
      ratio=${exact:-${rs[$i]//[ ×]/}}
      comparisons+=("$t|$row|$ratio|${ps[$i]//[ ×]/}|$(quiet "$e" "$a")")
    done
  done <<<"$rows"
done < <(find "$results" \( -name compare.md -o -name pairs.md -o -name interleave.md \) -not -path '*/pairs/*' | sort)

echo "| run | host | kind | put, 1 client | 64 clients | 1,000 clients | 1-client p99 ratio |"
echo "|---|---|---|---:|---:|---:|---|"
printf '%s\n' "${table[@]}" | sort -t'|' -k1,1 -s | cut -d'|' -f2- | awk -F'|' -v OFS=' | ' '
  { for (i = 1; i <= NF; i++) if ($i == "") $i = "—"; $1 = $1; print "| " $0 " |" }'

echo
echo "| comparisons (every sequential run, every pair and every interleaved block) | put, 1 client | 64 clients | 1,000 clients | 1-client p99 above etcd's |"
echo "|---|---:|---:|---:|---:|"
for count in "$since_batching all" "$since_jemalloc all" "$since_jemalloc quiet" "$since_kv_layout all"; do
  read -r since which <<<"$count"
  from=$(commit_time "$since")
  [[ -n $from ]] || { echo "bench-history: commit $since is not in this clone" >&2; exit 2; }
  label="≥ 2× since \`$since\`"
  [[ $which == quiet ]] && label="$label, both rows < 5 % steal"
  printf '%s\n' "${comparisons[@]}" | awk -F'|' -v from="$from" -v label="$label" -v which="$which" '
    $1 >= from && (which == "all" || $5 == "1") {
      n[$2]++; if ($3 + 0 >= 2) met[$2]++
      if (!($2 in lo) || $3 + 0 < lo[$2]) lo[$2] = $3 + 0
      if (!($2 in hi) || $3 + 0 > hi[$2]) hi[$2] = $3 + 0
      if ($2 == "01-put-c1") { np++; if ($4 + 0 > 1) worse++ }
    }
    function c(r) { return sprintf("%d of %d (%.2f–%.2f×)", met[r], n[r], lo[r], hi[r]) }
    END {
      printf "| %s | %s | %s | %s | %d of %d |\n", label,
        c("01-put-c1"), c("02-put-c64"), c("03-put-c1000"), worse, np
    }'
done

# The verdicts (ADR-0007, 2026-12-05).
from=$(commit_time "$judged_since")
[[ -n $from ]] || { echo "bench-history: commit $judged_since is not in this clone" >&2; exit 2; }
echo
alpha=$(awk -v l="$looks" 'BEGIN { print 0.05 / l }')
level=$(awk -v l="$looks" 'BEGIN { printf "%g %% (95 %% over %d look%s)", 100 - 5 / l, l, l == 1 ? "" : "s" }')
# The fewest comparisons with any bound at that level.
fewest=$(awk -v a="$alpha" 'BEGIN { n = 0; while (0.9 ^ n > a) n++; print n }')
echo "| put row: comparisons since \`$judged_since\` (ADR-0007) | n | ≥ 2× | lowest | median | 10th percentile, $level lower bound | p99 ratio: 90th percentile, upper bound at the same level | the looks' joint error | ≥ 2× met | p99 met |"
echo "|---|---:|---:|---:|---:|---:|---:|---:|---|---|"
for row in 01-put-c1 02-put-c64 03-put-c1000; do
  # A comparison is time|row|ratio|p99 ratio|quiet.
  in_window=$(printf '%s\n' "${comparisons[@]}" | awk -F'|' -v from="$from" -v row="$row" '$1 >= from && $2 == row')
  ratios=$(cut -d'|' -f3 <<<"$in_window" | sed '/^$/d' | sort -g)
  p99s=$(cut -d'|' -f4 <<<"$in_window" | sed '/^$/d' | sort -g)
  n=$(grep -c . <<<"$ratios" || true)
  np=$(grep -c . <<<"$p99s" || true)
  k=$(bound_rank "$n" "$alpha")
  kp=$(bound_rank "$np" "$alpha")
  low=$( ((k > 0)) && sed -n "${k}p" <<<"$ratios" || true)
  high=$( ((kp > 0)) && sed -n "$((np - kp + 1))p" <<<"$p99s" || true)
  # Every comparison has its p99 ratio, so one joint error serves both verdicts.
  joint=
  if ((k > 0)); then
    spec=$(tr ' ' '\n' <<<"$earlier_looks" | sed -n "s/^$row=//p" | tr ',' ' ')
    joint=$(looks_error "${spec:+$spec }$n:$k")
  fi
  awk -v row="$row" -v n="$n" -v low="$low" -v high="$high" -v ratios="$ratios" -v fewest="$fewest" \
    -v joint="$joint" '
    function verdict(reached) {
      if (reached && joint + 0 > 0.05) return "no (joint error over 5 %)"
      return reached ? "yes" : "no"
    }
    BEGIN {
      m = split(ratios, r, "\n"); met = 0
      for (i = 1; i <= m; i++) if (r[i] + 0 >= 2) met++
      median = m ? (m % 2 ? r[(m + 1) / 2] : (r[m / 2] + r[m / 2 + 1]) / 2) : 0
      shown = "not yet shown (fewer than " fewest ")"
      printf "| %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |\n", row, n, met,
        m ? sprintf("%.2f×", r[1]) : "—", m ? sprintf("%.2f×", median) : "—",
        low == "" ? "—" : sprintf("%.2f×", low), high == "" ? "—" : sprintf("%.2f×", high),
        joint == "" ? "—" : sprintf("%.1f %%", joint * 100),
        low == "" ? shown : verdict(low + 0 >= 2), high == "" ? shown : verdict(high + 0 <= 1)
    }'
done
