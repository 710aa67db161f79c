#!/usr/bin/env bash
# A measurement queue for one CPU core: worker I of N runs its share of each named plan at a
# scale, one seed at a time (seed 0 of every protection before seed 1 of any), at one thread.
# Runs land in the result cache as they finish (a rerun skips them, an interrupted run resumes
# from its last epoch); ship them with `fuselib export --scale SCALE`. A failed step is retried
# twice. Start one worker a core, e.g. on 2 cores:
#
#   nohup bench/queue.sh 1/2 cpu victims:0 victims:1 victims:2 > queue1.log 2>&1 &
#   nohup bench/queue.sh 2/2 cpu victims:0 victims:1 victims:2 > queue2.log 2>&1 &
#
# Where a worker's queue stands and what is left of it:
#   fuselib grid --plan victims --scale cpu --worker 1/2 --list
set -u
worker=$1 scale=$2
shift 2
bin="$(dirname "$0")/../.venv/bin"
for job in "$@"; do
  plan=${job%%:*} seed=${job#*:}
  for try in 1 2 3; do
    echo "[$(date -Is)] worker $worker: plan $plan, scale $scale, seed $seed (try $try)"
    if FUSELIB_PROGRESS=0 "$bin/fuselib" grid --plan "$plan" --scale "$scale" --seeds "$seed" \
        --worker "$worker" --threads 1; then
      break
    fi
    sleep 30
  done
done
echo "[$(date -Is)] worker $worker: queue done"
