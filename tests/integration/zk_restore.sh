#!/usr/bin/env bash
# Runs a test that stops ZooKeeper nodes, then starts every node of the
# sandbox again, pass or fail, so that later tests find a whole ensemble.
"$@"
rc=$?
for n in $(seq 1 "$(sed -n 's/^HERALD_ZK_NODES=//p' "$HERALD_SANDBOX_ENV")"); do
  "$HERALD_SOURCE/scripts/sandbox" zk-start "$n" --dir "$HERALD_SANDBOX_DIR" || rc=1
done
exit $rc
