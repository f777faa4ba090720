#!/usr/bin/env bash
# Installs the independent peers the interop tests talk to (Debian packages), only when
# one is missing, so a second run costs nothing. Used by `pnpm test` and by .ci/run.
set -euo pipefail

# command-or-check -> Debian package
declare -A need=(
  [tshark]=tshark
  [openssl]=openssl
  [gnutls-cli]=gnutls-bin
  [curl]=curl
  [socat]=socat
  [nc]=netcat-openbsd
  [ip]=iproute2
  [ping]=iputils-ping
  [sysctl]=procps
  [gnutls-serv]=gnutls-bin
  [scapy]=python3-scapy
  [nghttp]=nghttp2-client
  [h2load]=nghttp2-client
  [nghttpd]=nghttp2-server
  [nghttpx]=nghttp2-proxy
  [gtlsclient]=ngtcp2-client
  [gtlsserver]=ngtcp2-server
  [wrk]=wrk
  [nginx]=nginx
  [websockets]=python3-websockets
  [h2]=python3-h2
  [grpc]=python3-grpcio
  [dumpcap]=tshark
  [chromium]=chromium
)

missing=()
for cmd in "${!need[@]}"; do
  if [[ "$cmd" =~ ^(scapy|websockets|h2|grpc)$ ]]; then
    # Debian's Python modules live in Debian's python; the python3 on PATH may be another build.
    /usr/bin/python3 -c "import $cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
  else
    command -v "$cmd" >/dev/null 2>&1 || missing+=("${need[$cmd]}")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-peers: installing ${missing[*]}" >&2
if [ "$(id -u)" -ne 0 ]; then
  echo "install-peers: need root to apt-get install ${missing[*]}" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
