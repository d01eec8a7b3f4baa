# PostgreSQL for the API tests (source this from .ci/run; Debian bookworm, runs as root).
# Installs the server, starts the default cluster on localhost:5432, creates a throwaway role and
# database, and exports MODERATO_TEST_POSTGRES_URL so tests/api run every database test twice
# (SQLite and PostgreSQL). Without the variable the PostgreSQL cases are skipped.
set -euo pipefail
if ! command -v pg_ctlcluster >/dev/null 2>&1; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi
PG_VERSION="$(ls /usr/lib/postgresql | sort -V | tail -n1)"
if ! pg_lsclusters -h | grep -q "^${PG_VERSION} main"; then
    pg_createcluster "${PG_VERSION}" main >/dev/null
fi
pg_ctlcluster "${PG_VERSION}" main start 2>/dev/null || true   # already running is fine
for _ in $(seq 1 30); do
    pg_isready -q -h 127.0.0.1 -p 5432 && break
    sleep 0.5
done
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_roles WHERE rolname='moderato'\"" | grep -q 1 \
    || su postgres -c "psql -qc \"CREATE ROLE moderato LOGIN PASSWORD 'moderato' CREATEDB\""
su postgres -c "psql -qtAc \"SELECT 1 FROM pg_database WHERE datname='moderato_test'\"" | grep -q 1 \
    || su postgres -c "createdb -O moderato moderato_test"
export MODERATO_TEST_POSTGRES_URL="postgresql+psycopg://moderato:moderato@127.0.0.1:5432/moderato_test"
