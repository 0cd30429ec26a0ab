#!/usr/bin/env bash
# Services the test suite needs from the operating system (Debian packages):
#   .ci/services.sh chromium   make sure /usr/bin/chromium exists (installs it as root with apt)
#   .ci/services.sh postgres   install and start PostgreSQL on loopback, create a test role and
#                              database, print the URL for BRYGGA_TEST_POSTGRES_URL on stdout
# Without root or apt it fails with a message saying what to install; it never skips.
set -euo pipefail

can_install() { [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; }

apt_install() {
  if [ ! -f /var/lib/apt/lists/.brygga-updated ]; then
    apt-get update -qq >&2 && touch /var/lib/apt/lists/.brygga-updated
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
}

chromium() {
  [ -x /usr/bin/chromium ] && return 0
  if can_install; then
    echo "installing chromium (Debian package) for the browser tests" >&2
    apt_install chromium fonts-dejavu-core
  else
    echo "error: the browser tests need Debian's chromium at /usr/bin/chromium;" \
      "install it with: sudo apt-get install chromium" >&2
    exit 1
  fi
}

postgres() {
  if ! command -v pg_lsclusters >/dev/null 2>&1 || [ -z "$(pg_lsclusters -h 2>/dev/null)" ]; then
    if can_install; then
      echo "installing postgresql (Debian package) for the database tests" >&2
      apt_install postgresql
    else
      echo "error: the PostgreSQL tests need a server; install one with:" \
        "sudo apt-get install postgresql" >&2
      exit 1
    fi
  fi
  read -r version cluster port status _ < <(pg_lsclusters -h | head -n 1)
  if [ "$status" != online ]; then
    pg_ctlcluster "$version" "$cluster" start >&2
  fi
  # Runs as the postgres superuser; the tests connect over loopback with a password.
  su postgres -c "psql -qtA -p $port" >&2 <<'SQL'
DO $$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'brygga') THEN
    CREATE ROLE brygga LOGIN PASSWORD 'brygga' CREATEDB;
  END IF;
END $$;
SQL
  if ! su postgres -c "psql -qtA -p $port -lqt" | cut -d'|' -f1 | grep -qx brygga_test; then
    su postgres -c "createdb -p $port -O brygga brygga_test" >&2
  fi
  echo "postgresql://brygga:brygga@127.0.0.1:${port}/brygga_test"
}

case "${1:-}" in
  chromium | postgres) "$1" ;;
  *) echo "usage: $0 chromium|postgres" >&2; exit 2 ;;
esac
