#!/bin/sh
# Writes the journal of each past schema version, v1.sql to v6.sql, for
# tests/unit/test_journal_migration.cpp: the journal code of the last commit
# at that version (src/journal and src/core, from git) is compiled alone with
# make_fixture.cpp, which writes every row through that version's public
# Journal API; the file is then kept as `sqlite3 .dump` text (reviewable in
# git) behind the PRAGMAs a dump leaves out. Needs g++, SQLiteCpp, spdlog,
# fmt and the sqlite3 shell. Arguments: the versions to write (default: all),
# e.g. `make_fixtures.sh 5`: a written fixture never changes, so adding a
# version writes that one alone.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d /tmp/gapless-journal-versions-XXXXXX)
trap 'rm -rf "$work"' EXIT

# version:commit; src/journal and src/core there are as at the last commit
# before the next version arrived.
for pair in 1:81d7639 2:470d5ae 3:fa8dd16 4:8929258 5:001a79c 6:a60d8f6; do
  version=${pair%%:*}
  commit=${pair#*:}
  if [ $# -gt 0 ] && ! echo " $* " | grep -q " $version "; then continue; fi
  mkdir -p "$work/v$version"
  git -C "$here/../.." archive "$commit" src/core src/journal | tar -x -C "$work/v$version"
  src="$work/v$version/src"
  core="$src/core/clock.cpp"
  for extra in backoff fault_episode stop_wait hex build_info; do
    if [ -f "$src/core/$extra.cpp" ]; then core="$core $src/core/$extra.cpp"; fi
  done
  # build_info.cpp's two headers, which meson generates.
  echo "#define GAPLESS_VERSION \"fixture-v$version\"" > "$src/core/build_version.hpp"
  echo "#define GAPLESS_REVISION \"$commit\"" > "$src/core/build_revision.hpp"
  # shellcheck disable=SC2086
  g++ -std=c++20 -O0 -DFIXTURE_VERSION="$version" -I "$src" "$here/make_fixture.cpp" "$src"/journal/*.cpp $core \
    -o "$work/make_v$version" -lSQLiteCpp -lsqlite3 -lspdlog -lfmt -pthread
  "$work/make_v$version" "$work/v$version.db" > "$work/v$version.log" 2>&1
  {
    echo "-- A gapless journal at schema version $version, as the code of commit $commit wrote it"
    echo "-- (its journal code is that of the last commit at that version), for"
    echo "-- tests/unit/test_journal_migration.cpp."
    echo "-- Produced by tests/journal_versions/make_fixtures.sh: that commit's src/journal and"
    echo "-- src/core compiled alone with make_fixture.cpp, which writes every row through"
    echo "-- that version's public Journal API, then \`sqlite3 .dump\` of the file behind the"
    echo "-- PRAGMAs a dump leaves out. The journal times are those of the run; do not edit."
    echo "PRAGMA auto_vacuum = INCREMENTAL;"
    echo "PRAGMA journal_mode = WAL;"
    echo "PRAGMA application_id = $(sqlite3 "$work/v$version.db" 'PRAGMA application_id');"
    echo "PRAGMA user_version = $(sqlite3 "$work/v$version.db" 'PRAGMA user_version');"
    sqlite3 "$work/v$version.db" .dump
  } > "$here/v$version.sql"
  echo "wrote $here/v$version.sql (schema version $version, commit $commit)"
done
