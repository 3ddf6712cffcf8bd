#!/bin/bash
# `make test`: every tier in $TIERS, each in its own pytest run, stage after stage.
#
# $STAGES lists the stages, separated by ';'. A stage is one or more chains run at the
# same time; a chain is tiers joined by ',' run one after the other. The first chain
# of a stage prints as it runs; the others' logs are printed whole when the stage
# ends. A tier named <dir>-pg runs tests/<dir> on a PostgreSQL server of its own
# (VMFLOW_TEST_DATABASE=postgresql; tests/conftest.py starts it), the others on SQLite.
#
# $TEST_BUDGET (seconds) bounds the whole run: a tier gets what is left of it, is
# interrupted (SIGINT, so pytest still prints what failed) when that runs out, and a
# tier with less than $TIER_MIN_S (60) left is skipped; both count as failed. Every
# tier runs even after another failed; pytest's 5 ("no tests collected") is not a
# failure. Each tier's log is kept in $TEST_LOGS; a table of every tier's exit status
# and seconds ends the output.
set -u
cd "$(dirname "$0")/.."
PYTEST=${PYTEST:-.venv/bin/pytest}
read -ra pytest_args <<<"${PYTEST_ARGS:-}"
read -ra durations <<<"${DURATIONS:-}"
logs=${TEST_LOGS:-$(mktemp -d /var/tmp/vmflow-test.XXXXXX)}
mkdir -p "$logs" && rm -f "$logs"/*.rc
budget=${TEST_BUDGET:-4500}
deadline=$((SECONDS + budget))

db_of() { case $1 in *-pg) echo postgresql ;; *) echo sqlite ;; esac; }

wanted() {  # in $TIERS, and its directory exists
  case " $TIERS " in *" $1 "*) [ -d "tests/${1%-pg}" ] ;; *) return 1 ;; esac
}

tier() {  # tier NAME live|quiet (quiet: only to its log, printed when its stage ends)
  local t=$1 start=$SECONDS rc=0 left=$((deadline - SECONDS)) out=/dev/stdout
  [ "$2" = live ] || out=/dev/null
  [ "$2" = quiet ] || echo "=== tests/${t%-pg} on $(db_of "$t")"
  if [ "$left" -lt "${TIER_MIN_S:-60}" ]; then
    echo "skipped: the run's budget of $budget s is spent" | tee "$logs/$t.log" >"$out"
    echo "124 0" >"$logs/$t.rc"
    return
  fi
  local run=(env "VMFLOW_TEST_DATABASE=$(db_of "$t")" timeout -s INT -k 120 "$left"
             "$PYTEST" "${pytest_args[@]}" "${durations[@]}" "tests/${t%-pg}")
  if [ "$2" = quiet ]; then
    "${run[@]}" >"$logs/$t.log" 2>&1 || rc=$?
  else
    "${run[@]}" 2>&1 | tee "$logs/$t.log"
    rc=${PIPESTATUS[0]}
  fi
  [ "$rc" -ne 124 ] || echo "interrupted: the run's budget ran out" | tee -a "$logs/$t.log" >"$out"
  echo "$rc $((SECONDS - start))" >"$logs/$t.rc"
}

IFS=';' read -ra stages <<<"$STAGES"
for stage in "${stages[@]}"; do
  chains=()
  for chain in $stage; do
    run=""
    for t in ${chain//,/ }; do wanted "$t" && run="$run $t"; done
    [ -z "$run" ] || chains+=("$run")
  done
  [ ${#chains[@]} -gt 0 ] || continue
  bgs=() aside=""
  for chain in "${chains[@]:1}"; do
    (for t in $chain; do tier "$t" quiet; done) &
    bgs+=($!) aside="$aside$chain"
  done
  [ -z "$aside" ] || echo "=== in the background, alongside${chains[0]}:$aside"
  for t in ${chains[0]}; do tier "$t" live; done
  [ ${#bgs[@]} -eq 0 ] || wait "${bgs[@]}"
  for t in $aside; do
    echo "=== tests/${t%-pg} on $(db_of "$t") (ran alongside)"
    cat "$logs/$t.log"
  done
done

failed=""
echo "=== tiers (exit status, seconds; logs in $logs)"
for t in $TIERS; do
  if [ ! -f "$logs/$t.rc" ]; then  # a tier no stage names would silently never run
    ! wanted "$t" || failed="$failed $t(in no stage)"
    continue
  fi
  read -r rc secs <"$logs/$t.rc"
  printf '%-12s %3s %6s\n' "$t" "$rc" "$secs"
  [ "$rc" -eq 0 ] || [ "$rc" -eq 5 ] || failed="$failed $t(rc=$rc)"
done
if [ -n "$failed" ]; then echo "FAILED tiers:$failed"; exit 1; fi
echo "all test tiers passed"
