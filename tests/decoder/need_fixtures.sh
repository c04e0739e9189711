#!/bin/sh
# need_fixtures.sh DIR COMMAND [ARGS...]
#
# Runs COMMAND when DIR, the binlog fixtures kept beside the repository
# (../shared/fixtures/binlog), exists. Without it, says so and exits 77,
# which ctest counts as skipped (SKIP_RETURN_CODE): a clone on its own then
# passes its tests and scripts/test lists what it did not run, instead of
# failing on files it was never given.
set -eu
dir=$1
shift
if [ ! -d "$dir" ]; then
  echo "skipped: $dir not present (the binlog fixtures beside the repository, ../shared/fixtures/binlog)"
  exit 77
fi
exec "$@"
