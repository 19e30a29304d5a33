#!/usr/bin/env bash
# Benchmark of the main job (not a test): runs scripts/lab.sh with the vnflab_timing callback and records
# where the time goes: install, builds (emulated servers, Xen install and reboot, OSv and Capstan, ClickOS),
# lab, provision and proxy per server, each metric per server and point, report, teardown; and Ansible's
# own share (what the measuring tasks took beyond their probe modules' time).
# Writes bench/<UTC date>.json and .md; extra arguments go to ansible-playbook (through scripts/lab.sh).
#   scripts/bench.sh                         # the default profile, all platforms
#   scripts/bench.sh --quick                 # the quick profile
#   scripts/bench.sh --first-run             # as on a fresh machine: the build caches (/var/cache/vnflab) are
#                                            # moved aside first, so every image and unikernel is built again
#   scripts/bench.sh -e '{"vnflab_platforms": ["docker"]}'
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
profile=default first_run=false
while [ $# -gt 0 ]; do
  case $1 in
    --quick) profile=quick; shift ;;
    --first-run) first_run=true; shift ;;
    *) break ;;
  esac
done
cache_root=${VNFLAB_CACHE_ROOT:-/var/cache/vnflab}
kept=
if [ "$first_run" = true ] && [ -e "$cache_root" ]; then
  # Not while a run uses the caches: the lab's run lock (scripts/run-lock.sh; lab.sh below takes it for the run).
  lock=${VNFLAB_RUN_LOCK:-/run/lock/vnflab-run.lock}
  if ! (exec 9>>"$lock" && flock -n 9); then
    echo "bench: --first-run: a run holds $lock; the caches stay where they are" >&2
    exit 75
  fi
  kept="$cache_root.kept-$(date -u +%Y%m%dT%H%M%SZ)"
  mv "$cache_root" "$kept"
  echo "bench: first run: the build caches were moved to $kept (remove it, or move it back, afterwards)"
fi
started=$(date +%s.%N)
load_before=$(cut -d" " -f1-3 /proc/loadavg)  # the machine may be shared: the load says how much
bash scripts/install.sh
install_s=$(awk -v a="$started" -v b="$(date +%s.%N)" 'BEGIN {printf "%.3f", b - a}')
stamp=$(date -u +%Y%m%dT%H%M%SZ)
results=${VNFLAB_RESULTS_DIR:-$here/results}
out_dir=${VNFLAB_BENCH_DIR:-$here/bench}
mkdir -p "$out_dir"
timing="$out_dir/$stamp.timing.jsonl"
before=$(ls -1d "$results"/*/ 2>/dev/null | wc -l || true)  # no results folder yet: ls fails, pipefail
status=0
VNFLAB_TIMING_FILE="$timing" \
  bash scripts/lab.sh -e "vnflab_profile=$profile" -e "vnflab_results_dir=$results" "$@" || status=$?
run=
if [ "$(ls -1d "$results"/*/ 2>/dev/null | wc -l || true)" -gt "$before" ]; then
  run=$(ls -1d "$results"/*/ | tail -n 1)
fi
.venv/bin/vnflab bench "$timing" ${run:+--run-dir "$run"} --out "$out_dir/$stamp.json" --phase "install=$install_s" \
  --extra "profile=$profile" --extra "first_run=$first_run" ${kept:+--extra "caches_moved_to=$kept"} \
  --extra "exit_status=$status" --extra "cores=$(nproc)" \
  --extra "loadavg_before=$load_before" --extra "loadavg_after=$(cut -d" " -f1-3 /proc/loadavg)" \
  --extra "commit=$(git rev-parse --short HEAD 2>/dev/null || echo unknown)" \
  --extra "memory_mb=$(awk '/^MemTotal/ {printf "%d", $2 / 1024}' /proc/meminfo)" --extra "command=scripts/bench.sh $*"
echo "bench: $out_dir/$stamp.json (run directory ${run:-none})"
exit "$status"
