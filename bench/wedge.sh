#!/usr/bin/env bash
# wedge.sh VARIANT: starts Wedge for a ../shared/bench scenario (the scripts export SCENARIO,
# LISTEN_ADDR, TLS_LISTEN_ADDR, UPSTREAM_ADDR, CERT, KEY, GZIP_LEVEL) in the foreground.
#   wedge        http -> wedge/http.yaml, gzip1/gzip6 -> wedge/gzip.yaml, tls, h3
#   wedgecache  http, gzip1, gzip6 -> wedge/cache.yaml (router, cache, compress)
# WEDGE_BIN is the binary (bench/run builds it).
set -euo pipefail
dir=$(cd "$(dirname "$0")" && pwd)
case $1:$SCENARIO in
wedge:http | wedge:tls | wedge:h3) conf=$SCENARIO ;;
wedge:gzip[0-9]) conf=gzip ;;
wedgecache:http | wedgecache:gzip[0-9]) conf=cache ;;
*) echo "wedge.sh: no configuration for variant $1, scenario $SCENARIO" >&2; exit 2 ;;
esac
exec "$WEDGE_BIN" --config "$dir/wedge/$conf.yaml"
