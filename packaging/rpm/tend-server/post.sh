# %post of tend-server. $1: 1 = first install, 2 (or more) = upgrade.
# Data directory 0700; unit enabled and started on a fresh install;
# a running server restarted on upgrade.
set -e

UNIT=tend-server.service
DATA_DIR=/var/lib/tend-server

mkdir -p "$DATA_DIR"
chown tend-server:tend-server "$DATA_DIR"
chmod 0700 "$DATA_DIR"

if [ "$1" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl enable "$UNIT" >/dev/null 2>&1 || true
fi

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    if [ "$1" -ge 2 ]; then
        systemctl try-restart "$UNIT" >/dev/null 2>&1 || true
    else
        systemctl start "$UNIT" || echo "tend-server: could not start $UNIT; see: journalctl -u tend-server" >&2
    fi
fi
exit 0
