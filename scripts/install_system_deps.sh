#!/usr/bin/env bash
# Install the Debian packages that Keygate's tests and benchmarks need.
#
#   chromium            browser tests (driven by Playwright with executable_path=/usr/bin/chromium;
#                       never let Playwright download a browser: the network is closed)
#   fonts-noto-cjk      so Chinese/Japanese/Korean text renders in screenshots instead of tofu
#   gettext             xgettext/msgmerge/msgfmt: makemessages and the catalogue check (tests/i18n)
#   npm                 fetches axe-core from the npm registry for the accessibility audits
#                       (tests/browser/axe.py installs it into tests/browser/.axe/, gitignored)
#   postgresql          the production database (private test instance: scripts/services.sh)
#   redis-server        shared cache / rate limits / revocation fan-out (same)
#   wrk, nginx          load generator and reference proxy for bench/
#
# Idempotent and non-interactive: packages already installed are skipped without touching
# apt at all, so a second run takes well under a second. Services are never started here
# (there is no systemd; scripts/services.sh starts private instances).
set -euo pipefail

PACKAGES=(
    chromium
    fonts-noto-cjk
    gettext
    postgresql
    redis-server
    wrk
    nginx
)
# npm may come with a nodejs from elsewhere (e.g. NodeSource) that Debian's npm conflicts with.
command -v npm >/dev/null 2>&1 || PACKAGES+=(npm)

export DEBIAN_FRONTEND=noninteractive

log() { printf '[install_system_deps] %s\n' "$*"; }

if [[ $(id -u) -ne 0 ]]; then
    if command -v sudo >/dev/null 2>&1; then
        SUDO=(sudo -E)
    else
        log "must run as root (or with sudo available)" >&2
        exit 1
    fi
else
    SUDO=()
fi

is_installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q '^install ok installed$'
}

missing=()
for pkg in "${PACKAGES[@]}"; do
    if is_installed "$pkg"; then
        log "already installed: $pkg $(dpkg-query -W -f='${Version}' "$pkg")"
    else
        missing+=("$pkg")
    fi
done

if [[ ${#missing[@]} -eq 0 ]]; then
    log "nothing to do"
    exit 0
fi

# Keep maintainer scripts from starting services (redis, nginx, the packaged postgres
# cluster) on their default ports. policy-rc.d exit 101 = "action forbidden".
# Only add it if the image does not already have one, and remove what we added.
POLICY=/usr/sbin/policy-rc.d
if [[ ! -e $POLICY ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${SUDO[@]}" tee "$POLICY" >/dev/null
    "${SUDO[@]}" chmod 755 "$POLICY"
    trap '"${SUDO[@]}" rm -f "$POLICY"' EXIT
fi

log "installing: ${missing[*]}"
# Another apt run (a parallel session, unattended upgrades) may hold the dpkg lock: wait for it.
start=$SECONDS
"${SUDO[@]}" apt-get -o DPkg::Lock::Timeout=600 update -q
"${SUDO[@]}" apt-get install -y -q --no-install-recommends -o DPkg::Lock::Timeout=600 \
    -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
    "${missing[@]}"
log "apt-get finished in $((SECONDS - start)) s"

for pkg in "${missing[@]}"; do
    if ! is_installed "$pkg"; then
        log "FAILED to install $pkg" >&2
        exit 1
    fi
    log "installed: $pkg $(dpkg-query -W -f='${Version}' "$pkg")"
done

[[ -x /usr/bin/chromium ]] && log "chromium: $(/usr/bin/chromium --version 2>/dev/null || echo '?')"
log "done"
