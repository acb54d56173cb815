#!/usr/bin/env bash
# scripts/bench/certs.sh DIR NAME: a throwaway CA (DIR/ca.crt, DIR/ca.key) and a server
# certificate for localhost and 127.0.0.1 signed by it (DIR/srv.crt, DIR/srv.key), P-256,
# valid two days, for the bench scripts' loopback TLS servers.
set -euo pipefail
d=$1 name=$2
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/ca.key" -out "$d/ca.crt" \
    -days 2 -subj "/CN=$name CA" -addext "basicConstraints=critical,CA:TRUE" 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -keyout "$d/srv.key" -out "$d/srv.csr" \
    -subj "/CN=localhost" 2>/dev/null
printf 'subjectAltName=DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' > "$d/ext"
openssl x509 -req -in "$d/srv.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial \
    -out "$d/srv.crt" -days 2 -extfile "$d/ext" 2>/dev/null
