#!/usr/bin/env bash
# Install the system packages the tests use for real, when missing (Debian/Ubuntu).
# prometheus (with promtool) and prometheus-pushgateway: the metrics tests run them on loopback.
set -euo pipefail
need=()
command -v chromium >/dev/null || need+=(chromium)
command -v libreoffice >/dev/null || need+=(libreoffice-calc)
[ -x /usr/bin/docker-registry ] || need+=(docker-registry)
command -v htpasswd >/dev/null || need+=(apache2-utils)
[ -d /usr/share/fonts/truetype/dejavu ] || need+=(fonts-dejavu-core)
command -v prometheus-pushgateway >/dev/null || need+=(prometheus-pushgateway)
command -v promtool >/dev/null || need+=(prometheus)
[ ${#need[@]} -eq 0 ] && exit 0
sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
echo "system-deps: installing ${need[*]}" >&2
$sudo apt-get update -qq
DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
