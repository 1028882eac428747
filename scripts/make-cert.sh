#!/usr/bin/env bash
# Creates a self-signed certificate and key for running rollcall with TLS on a
# development machine: an EC P-256 key (the fastest handshakes with mbedTLS),
# SHA-256 signature, subjectAltName localhost, 127.0.0.1 and ::1, and the
# serverAuth extended key usage. Browsers and curl will not trust it (use
# curl -k); for real deployments use a certificate from your CA.
#
# Usage: scripts/make-cert.sh [-o DIR] [-n NAME] [-d DAYS] [-f]
#   -o DIR   where to write cert.pem and key.pem (default: ./certs)
#   -n NAME  extra DNS name for the certificate (repeatable), e.g. -n rollcall.test
#   -d DAYS  validity in days (default: 365)
#   -f       overwrite existing files
# Then: build/rollcall --port 8443 --tls-cert certs/cert.pem --tls-key certs/key.pem
# Needs openssl; installs Debian's package (with sudo when not root) if missing.
set -euo pipefail

out_dir="certs"
days=365
force=0
names=()
while getopts "o:n:d:fh" opt; do
  case "$opt" in
    o) out_dir="$OPTARG" ;;
    n) names+=("$OPTARG") ;;
    d) days="$OPTARG" ;;
    f) force=1 ;;
    h) sed -n '2,15p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "usage: $0 [-o DIR] [-n NAME] [-d DAYS] [-f]" >&2; exit 2 ;;
  esac
done
if ! [[ "$days" =~ ^[1-9][0-9]*$ ]]; then
  echo "make-cert: -d needs a positive number of days, not '$days'" >&2
  exit 2
fi

if ! command -v openssl >/dev/null 2>&1; then
  echo "make-cert: installing openssl"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $sudo_cmd apt-get update -qq
  $sudo_cmd apt-get install -y -qq --no-install-recommends openssl >/dev/null
fi

cert="$out_dir/cert.pem"
key="$out_dir/key.pem"
if [ "$force" -eq 0 ] && { [ -e "$cert" ] || [ -e "$key" ]; }; then
  echo "make-cert: $cert or $key already exists (use -f to overwrite)" >&2
  exit 1
fi
mkdir -p "$out_dir"

san="DNS:localhost,IP:127.0.0.1,IP:::1"
for n in "${names[@]+"${names[@]}"}"; do san="$san,DNS:$n"; done

# The key is written with owner-only permissions before openssl fills it.
umask 077
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -sha256 -nodes \
  -days "$days" -subj "/CN=localhost" \
  -addext "subjectAltName=$san" \
  -addext "keyUsage=critical,digitalSignature" \
  -addext "extendedKeyUsage=serverAuth" \
  -addext "basicConstraints=critical,CA:FALSE" \
  -keyout "$key" -out "$cert" 2>/dev/null
chmod 644 "$cert"

echo "make-cert: wrote $cert and $key (valid $days days; $san)"
openssl x509 -in "$cert" -noout -subject -enddate
