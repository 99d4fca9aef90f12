#!/bin/sh
# Validates the configuration before starting, so a misconfigured container stops with every problem listed.
set -e
node /app/bin/devicegate.js config check
exec "$@"
