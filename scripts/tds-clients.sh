#!/usr/bin/env bash
# Installs the independent TDS clients that tests/tds_peer.rs drives against the TDS
# test server (tests/support/tds). Idempotent: a warm machine spends no time here.
#   FreeTDS tsql 1.3 (Debian freetds-bin, GnuTLS)         -> apt
#   python-tds 1.17 + pyOpenSSL, pymssql 2.4 (FreeTDS 1.5) -> .venv (gitignored)
#   tedious 19 (node; TDS 8.0 strict, FEDAUTH tokens)       -> .venv/node, if npm exists
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v tsql >/dev/null 2>&1; then
    echo "tds-clients: installing freetds-bin"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends freetds-bin >/dev/null
fi

[ -x .venv/bin/python ] || python3 -m venv .venv
if ! .venv/bin/python -c 'import pytds, OpenSSL, pymssql' 2>/dev/null; then
    echo "tds-clients: installing python-tds, pyOpenSSL, pymssql into .venv"
    .venv/bin/pip install -q --disable-pip-version-check python-tds==1.17.1 pyOpenSSL pymssql==2.4.6
fi

if [ ! -f .venv/node/node_modules/tedious/package.json ]; then
    if command -v npm >/dev/null 2>&1; then
        echo "tds-clients: installing tedious into .venv/node"
        npm install --prefix .venv/node --no-save --no-audit --no-fund --silent tedious@19.2.2
    else
        echo "tds-clients: npm missing; the tedious tests will skip (or fail under ROUTEPROOF_REQUIRE_PEERS=1)" >&2
    fi
fi
