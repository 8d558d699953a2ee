#!/usr/bin/env bash
# Every figure of BENCHMARKS.md's "Flow control on defaults (issue 15)"
# section, tether on its defaults beside raw grpc-go in the same runs:
# push (1 and 16 sessions, 64 B, both directions), the relay of the
# issue's "Done when" (20,000 × 64 B from one session to another's client
# id), the producer faster than its consumer (memory and NATS brokers),
# and the low-rate acknowledged send.
#
#   bench/issue15.sh LABEL     writes results/issue15-LABEL-{push,relay,flow,sendwait}.{json,md}
#
# RUNS (default 3) is the runs of push, relay and sendwait; FLOW_RUNS
# (default 1) and FLOW_DURATION (default 30s) are flow's. About 15 minutes
# with the defaults on a 2-vCPU machine; RUNS=1 about 8.
set -euo pipefail
cd "$(dirname "$0")"
label=${1:?usage: issue15.sh LABEL (e.g. before, after)}
runs=${RUNS:-3}
flow_runs=${FLOW_RUNS:-1}
flow_duration=${FLOW_DURATION:-30s}
out=results/issue15-$label
bin=$(mktemp -d)/tether-bench
trap 'rm -rf "$(dirname "$bin")"' EXIT
go build -o "$bin" ./cmd/tether-bench

echo "== commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- .. || echo ' (with local changes)'), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
"$bin" push --dirs s2c,c2s --sessions 1,16 --sizes 64 --duration 5s --runs "$runs" --systems tether,raw \
  --json "$out-push.json" --md "$out-push.md"
"$bin" relay --count 20000 --size 64 --brokers memory,nats --runs "$runs" --systems tether,raw \
  --json "$out-relay.json" --md "$out-relay.md"
"$bin" flow --consumers keep,slow --slowdown 2 --duration "$flow_duration" --brokers memory,nats --runs "$flow_runs" --systems tether,raw \
  --json "$out-flow.json" --md "$out-flow.md"
"$bin" sendwait --count 1000 --interval 5ms --runs "$runs" --systems tether,raw \
  --json "$out-sendwait.json" --md "$out-sendwait.md"
echo "== written: $out-{push,relay,flow,sendwait}.{json,md}" >&2
