#!/usr/bin/env bash
# Servers the tests need that npm does not install: the PostgreSQL state-store tests start their own
# server on 127.0.0.1 from Debian's binaries (test/helpers/postgres.ts). Runs before `npm test`
# (pretest) and so in CI: a fresh machine needs nothing but `npm ci` and `npm test`.
set -euo pipefail
if ls /usr/lib/postgresql/*/bin/postgres >/dev/null 2>&1; then exit 0; fi
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
  echo "PostgreSQL server binaries not found under /usr/lib/postgresql: install Debian's postgresql package (apt-get install -y postgresql) and run npm test again" >&2
  exit 1
fi
echo "installing Debian's postgresql package for the state-store tests…" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends postgresql >/dev/null
