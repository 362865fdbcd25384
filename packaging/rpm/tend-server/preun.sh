# %preun of tend-server. $1: 0 = erase, 1 (or more) = upgrade.
# Erase: disable and stop the server. Upgrade: keep serving.
set -e

UNIT=tend-server.service

if [ "$1" -eq 0 ]; then
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable "$UNIT" >/dev/null 2>&1 || true
        if [ -d /run/systemd/system ]; then
            systemctl stop "$UNIT" >/dev/null 2>&1 || true
        fi
    fi
fi
exit 0
