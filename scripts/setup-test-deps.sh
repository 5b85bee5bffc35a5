#!/usr/bin/env bash
# Installs what the end-to-end tests need, idempotently, on a fresh Debian machine:
#   chromium (+ driver deps)   the browser tests (chromedp)
#   redis-server               the Redis session store tests
#   node + oidc-provider 8.x   the real-IdP end-to-end tests (into test/oidc-provider/node_modules)
#   helm                       the chart tests (scripts/install-helm.sh, pinned, into .tools/bin)
#   python3-hypercorn          an h2c-capable app server for the upgrade-smuggling test (proxy)
#   libtomcat10-java + a JDK   an embedded Tomcat for the path-parameter test (proxy)
# Each step is skipped when its tool is already there. Nothing here is needed by plain `go test`.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
command -v node >/dev/null 2>&1 || need_apt+=(nodejs npm)
command -v file >/dev/null 2>&1 || need_apt+=(file)
[ -x /usr/bin/hypercorn ] || need_apt+=(python3-hypercorn)
[ -f /usr/share/java/tomcat10-catalina.jar ] || need_apt+=(libtomcat10-java)
command -v javac >/dev/null 2>&1 || need_apt+=(default-jdk-headless)
if [ ${#need_apt[@]} -gt 0 ]; then
  echo "setup: installing ${need_apt[*]} from Debian"
  SUDO=""
  [ "$(id -u)" -eq 0 ] || SUDO="sudo"
  export DEBIAN_FRONTEND=noninteractive
  # Others may run apt on the same machine at the same time: wait for the lock instead of failing.
  $SUDO apt-get -o DPkg::Lock::Timeout=600 update -qq
  $SUDO apt-get -o DPkg::Lock::Timeout=600 install -y -qq --no-install-recommends "${need_apt[@]}" >/dev/null
fi
# Redis is started per test on its own port; the packaged service is not needed.
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
  systemctl stop redis-server || true
fi

if [ -f test/oidc-provider/package.json ] && [ ! -d test/oidc-provider/node_modules/oidc-provider ]; then
  echo "setup: installing oidc-provider from npm"
  (cd test/oidc-provider && npm ci --no-audit --no-fund --loglevel=error)
fi

if [ -x scripts/install-helm.sh ]; then
  scripts/install-helm.sh
fi
echo "setup: test dependencies ready"
