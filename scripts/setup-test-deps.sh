#!/usr/bin/env bash
# Installs what the end-to-end tests need, idempotently, on a fresh Debian machine:
#   chromium (+ driver deps)   the browser tests (chromedp)
#   redis-server               the Redis session store tests
#   redis-sentinel, redis-cli  the Sentinel and Cluster failover tests (redis-cli --cluster create)
#   promtool                   checks and unit-tests the chart's alert rules and dashboard queries
#   node + oidc-provider 8.x   the real-IdP end-to-end tests (into test/oidc-provider/node_modules)
#   helm                       the chart tests (scripts/install-helm.sh, pinned, into .tools/bin)
#   python3-hypercorn          an h2c-capable app server for the upgrade-smuggling test (proxy)
#   libtomcat10-java + a JDK   an embedded Tomcat for the path-parameter test (proxy)
# Each step is skipped when its tool is already there. Nothing here is needed by plain `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"
need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v redis-sentinel >/dev/null 2>&1 || need_apt+=(redis-sentinel)
command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v file >/dev/null 2>&1 || need_apt+=(file)
[ -x /usr/bin/hypercorn ] || need_apt+=(python3-hypercorn)
[ -f /usr/share/java/tomcat10-catalina.jar ] || need_apt+=(libtomcat10-java)
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  # Other jobs on the machine may hold the dpkg lock: wait for it instead of failing.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Redis, the sentinels and promtool are started per test on ports of their own; the packaged
# services (which the packages may start on their default ports) are not needed.
if command -v systemctl >/dev/null 2>&1; then
  for unit in redis-server redis-sentinel prometheus; do
    if systemctl is-active --quiet "$unit" 2>/dev/null; then
      $SUDO systemctl stop "$unit" || true
    fi
  done
fi

if [ -f test/oidc-provider/package.json ] && [ ! -d test/oidc-provider/node_modules/oidc-provider ]; then
  echo "setup: installing oidc-provider from npm"
  (cd test/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -x scripts/install-helm.sh ]; then
  scripts/install-helm.sh
fi
echo "setup: test dependencies ready"
