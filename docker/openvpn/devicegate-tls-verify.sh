#!/bin/sh
# devicegate: OpenVPN --tls-verify hook in POSIX sh + curl (no Node start per connection).
#
# Why: OpenVPN applies a *deferred* result (management-client-auth, deferred scripts/plugins) only on its next 1 s
# timer tick, so those paths add ~1 s to every connect. A synchronous tls-verify hook does not. This hook answers
# from a small local cache (one file per certificate fingerprint) and, on a miss, asks devicegate synchronously
# with a hard timeout. Fail closed: anything but an explicit "decision":"allow" in time is exit 1 (deny).
#
# OpenVPN server config (see server-tls-verify.conf):
#   script-security 2
#   setenv DEVICEGATE_URL https://devicegate.example:8443
#   setenv DEVICEGATE_TOKEN_FILE /etc/devicegate/openvpn-token      (a concentrator API token, mode 0600)
#   setenv DEVICEGATE_GATEWAY_ID ovpn-gw-01
#   setenv DEVICEGATE_CACHE_DIR /run/devicegate-ovpn-cache          (tmpfs, writable by the openvpn user)
#   tls-verify /usr/local/lib/devicegate/devicegate-tls-verify.sh
# Optional: DEVICEGATE_TIMEOUT (seconds, default 1), DEVICEGATE_CACHE_MAX_SECONDS (default 60; an allow is reused at
# most this long, so a revocation reaches new connections within it; live sessions are ended by the management
# daemon's revocation feed), DEVICEGATE_CA_FILE (CA bundle for https to devicegate).
set -u

# OpenVPN calls tls-verify once per certificate depth; it has verified the chain itself. Decide on the client
# certificate (depth 0) only.
[ "${1:-}" = "0" ] || exit 0

url=${DEVICEGATE_URL:-}
token_file=${DEVICEGATE_TOKEN_FILE:-}
gateway_id=${DEVICEGATE_GATEWAY_ID:-openvpn}
cache_dir=${DEVICEGATE_CACHE_DIR:-}
timeout=${DEVICEGATE_TIMEOUT:-1}
cache_max=${DEVICEGATE_CACHE_MAX_SECONDS:-60}
[ -n "$url" ] && [ -n "$token_file" ] && [ -r "$token_file" ] || exit 1

# Only plain values go into the request: the fingerprint as 64 hex digits, the serial as decimal digits, the peer
# address as an IP literal. Anything else means a malformed environment: deny.
# OpenVPN gives tls_digest_sha256_0 as lower-case colon-hex; drop the colons without forking (this hook runs for
# every connection, and every process start is time OpenVPN's single event loop waits for).
saved_ifs=$IFS
IFS=:
# shellcheck disable=SC2086 # deliberate word splitting on ':'
set -- ${tls_digest_sha256_0:-}
IFS=$saved_ifs
fp=''
for part in "$@"; do fp=$fp$part; done
case "$fp" in *[!0-9a-f]*|'') exit 1 ;; esac
[ "${#fp}" -eq 64 ] || exit 1
serial=${tls_serial_0:-}
case "$serial" in *[!0-9]*) serial='' ;; esac
ip=${untrusted_ip:-${untrusted_ip6:-}}
case "$ip" in *[!0-9a-fA-F:.]*) ip='' ;; esac
case "$gateway_id" in *[!A-Za-z0-9._-]*) gateway_id=openvpn ;; esac

now=$(date +%s)
if [ -n "$cache_dir" ] && [ -r "$cache_dir/$fp" ]; then
  read -r verdict expires < "$cache_dir/$fp" || verdict=''
  case "${expires:-}" in *[!0-9]*|'') expires=0 ;; esac
  if [ "$expires" -gt "$now" ]; then
    [ "$verdict" = allow ] && exit 0
    [ "$verdict" = deny ] && exit 1
  fi
fi

serial_json=''
[ -n "$serial" ] && serial_json=",\"serial\":{\"dec\":\"$serial\"}"
peer_json=''
[ -n "$ip" ] && peer_json=",\"peer\":{\"ip\":\"$ip\"}"
body="{\"gateway\":{\"id\":\"$gateway_id\",\"kind\":\"openvpn\",\"hook\":\"tls-verify\"},\"event\":\"connect\",\"cert\":{\"sha256\":\"$fp\"$serial_json}$peer_json}"
token=$(cat "$token_file")
resp=$(curl -sS --fail --max-time "$timeout" ${DEVICEGATE_CA_FILE:+--cacert "$DEVICEGATE_CA_FILE"} \
  -H "Authorization: Bearer $token" -H 'Content-Type: application/json' --data-binary "$body" \
  "$url/v1/decisions" 2>/dev/null) || exit 1

# No JSON parser in plain sh: an allow must be the complete response shape devicegate sends (one JSON object that
# starts with the decision and the decision id and states reason OK), so a truncated or garbled body is a deny.
verdict=deny
case "$resp" in
  '{"decision":"allow","decision_id":"'*'","reason_code":"OK",'*'}') verdict=allow ;;
esac
case "$resp" in *'
'*) verdict=deny ;; esac
if [ -n "$cache_dir" ]; then
  ttl=${resp#*\"ttl_seconds\":}
  ttl=${ttl%%[!0-9]*}
  [ -n "$ttl" ] || ttl=0
  [ "$ttl" -gt "$cache_max" ] && ttl=$cache_max
  # Denies are cached briefly so a refused device cannot hammer devicegate; allows up to the cap.
  [ "$verdict" = deny ] && ttl=5
  # OpenVPN runs tls-verify hooks one at a time, so a plain write is enough; a torn entry reads as a miss.
  [ "$ttl" -gt 0 ] && printf '%s %s\n' "$verdict" "$((now + ttl))" > "$cache_dir/$fp" 2>/dev/null
fi
[ "$verdict" = allow ] && exit 0
exit 1
