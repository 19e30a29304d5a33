#!/usr/bin/env bash
# Benchmark of the KVM platform's VMs on this machine (not a test): boot time and memory per VM for
# N = 1, 2, 4, ... up to the server's vnflab_max_instances (local default 8), through the same probes
# as the lab. Prints the summary; the run directory keeps every sample.
#   scripts/bench-kvm.sh                 # N = 1 2 4 8
#   scripts/bench-kvm.sh 1 2 4 8 16      # other counts (the capacity check may refuse them)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
# The run lock (analysis/vnflab/runlock.py), held for both playbooks, as scripts/lab.sh does.
lock=${VNFLAB_RUN_LOCK:-/run/lock/vnflab-run.lock}
mkdir -p "$(dirname "$lock")"
exec 9>>"$lock"
if ! flock -n 9; then
  echo "bench-kvm: $(VNFLAB_RUN_LOCK=$lock python3 analysis/vnflab/runlock.py describe)" >&2
  exit 75
fi
bash scripts/install.sh >/dev/null
# shellcheck disable=SC1091
source .venv/bin/activate
counts=${*:-1 2 4 8}
json_counts="[$(echo "$counts" | tr ' ' ',')]"
results=${VNFLAB_RESULTS_DIR:-$here/results}
before=$(ls -1d "$results"/*/ 2>/dev/null | wc -l || true)  # no results folder yet: ls fails, pipefail
ansible-playbook site.yml --tags boot,memory -e vnflab_profile=quick \
  -e "{\"vnflab_platforms\": [\"kvm\"], \"vnflab_boot_counts\": $json_counts, \"vnflab_memory_counts\": $json_counts,
       \"vnflab_max_instances\": 1024, \"vnflab_results_dir\": \"$results\"}"
ansible-playbook site.yml --tags teardown >/dev/null
run=$(ls -1d "$results"/*/ | tail -n 1)
[ "$(ls -1d "$results"/*/ | wc -l)" -gt "$before" ] || { echo "no new run directory" >&2; exit 1; }
vnflab summary "$run"
echo "bench-kvm: run directory $run"
