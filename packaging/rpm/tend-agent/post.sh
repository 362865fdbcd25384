# %post of tend-agent. $1: 1 = first install, 2 (or more) = upgrade.
#
# Same behaviour as the Debian postinst: state directory 0700, unit enabled
# (explicitly: the RHEL/Fedora preset policy would leave an unknown unit
# disabled), started on a fresh install only if registered or configured for
# an S3 source, and `try-restart --no-block` on upgrade (KillMode=process
# keeps a working run-command child alive; --no-block avoids a deadlock when
# the agent itself runs the dnf that upgrades it). The old package's %postun
# does not restart again.
set -e

UNIT=tend-agent.service
STATE_DIR=/var/lib/tend
CONFIG=/etc/tend/agent.yaml

mkdir -p "$STATE_DIR"
chown root:root "$STATE_DIR"
chmod 0700 "$STATE_DIR"

if [ "$1" -eq 1 ] && command -v systemctl >/dev/null 2>&1; then
    systemctl enable "$UNIT" >/dev/null 2>&1 || true
fi

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
    if [ "$1" -ge 2 ]; then
        systemctl --no-block try-restart "$UNIT" >/dev/null 2>&1 || true
    elif /usr/bin/tend-agent configured --config "$CONFIG" 2>/dev/null; then
        systemctl start "$UNIT" || echo "tend-agent: could not start $UNIT; see: journalctl -u tend-agent" >&2
    else
        echo "tend-agent: installed and enabled, not started: this host is not registered yet."
        echo "tend-agent: run 'tend-agent register --server URL --ca CA.pem --activation-id ID --activation-code CODE'"
        echo "tend-agent: then 'systemctl start tend-agent' (or set an S3 source: in $CONFIG)."
    fi
fi
exit 0
