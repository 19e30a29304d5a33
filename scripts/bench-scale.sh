#!/usr/bin/env bash
# Benchmark of one platform's scale on this machine (not a test): boot time and memory for N instances, through
# the same probes as the lab (quick profile's stopping rule), up to any N the server's capacity check accepts
# (vnflab_max_instances is lifted). Prints the summary and the time per point; the run directory keeps every
# sample, bench/scale-<platform>-<UTC date>.json the phases and per-point times (vnflab bench).
#   scripts/bench-scale.sh kvm                   # N = 1 2 4 8
#   scripts/bench-scale.sh kvm 1 8 32 64         # the OSv VMs of docs/osv.md
#   scripts/bench-scale.sh xen 1 8 16 32         # ClickOS domains on the emulated Xen server
#   scripts/bench-scale.sh docker 1 32 128
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
platform=${1:?usage: scripts/bench-scale.sh PLATFORM [N ...]}
shift
case "$platform" in docker|kvm|xen|native) ;; *) echo "unknown platform '$platform'" >&2; exit 2 ;; esac
# The run lock, held for every playbook of the benchmark, as scripts/lab.sh does.
run_lock_name=bench-scale
# shellcheck source=scripts/run-lock.sh
source scripts/run-lock.sh
bash scripts/install.sh >/dev/null
# shellcheck disable=SC1091
source .venv/bin/activate
counts=${*:-1 2 4 8}
json_counts="[$(echo "$counts" | tr ' ' ',')]"
results=${VNFLAB_RESULTS_DIR:-$here/results}
stamp=$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p bench
timing="bench/scale-$platform-$stamp.timing.jsonl"
before=$(ls -1d "$results"/*/ 2>/dev/null | wc -l || true)  # no results folder yet: ls fails, pipefail
status=0
VNFLAB_TIMING_FILE="$timing" \
  ansible-playbook site.yml --tags boot,memory -e vnflab_profile=quick \
  -e "{\"vnflab_platforms\": [\"$platform\"], \"vnflab_boot_counts\": $json_counts, \"vnflab_memory_counts\": $json_counts,
       \"vnflab_max_instances\": 1024, \"vnflab_results_dir\": \"$results\"}" || status=$?
ansible-playbook site.yml --tags teardown >/dev/null || status=$?
[ "$(ls -1d "$results"/*/ 2>/dev/null | wc -l || true)" -gt "$before" ] || { echo "no new run directory" >&2; exit 1; }
run=$(ls -1d "$results"/*/ | tail -n 1)
vnflab summary "$run" || status=$?
vnflab bench "$timing" --run-dir "$run" --out "bench/scale-$platform-$stamp.json" --extra "platform=$platform" \
  --extra "counts=$counts" >/dev/null || status=$?
echo "bench-scale: run directory $run, bench/scale-$platform-$stamp.json"
exit "$status"
