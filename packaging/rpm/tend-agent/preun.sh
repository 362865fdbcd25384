# %preun of tend-agent. $1: 0 = erase, 1 (or more) = upgrade.
# Erase: disable and stop the agent (only the daemon: KillMode=process).
# Upgrade: keep it running; the new package's %post restarts it.
set -e

UNIT=tend-agent.service

if [ "$1" -eq 0 ]; then
    if command -v systemctl >/dev/null 2>&1; then
        systemctl disable "$UNIT" >/dev/null 2>&1 || true
        if [ -d /run/systemd/system ]; then
            systemctl stop "$UNIT" >/dev/null 2>&1 || true
        fi
    fi
fi
exit 0
