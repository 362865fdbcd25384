# %postun of tend-agent. $1: 0 = erase, 1 (or more) = upgrade.
#
# RPM has no purge: an erase keeps the state in /var/lib/tend (identity,
# cache, queued reports), like `apt-get remove`, so a re-install carries on
# as the same node. To forget the host: rm -rf /var/lib/tend /etc/tend/ca.pem
# Upgrade: nothing (the new %post already restarted the agent).
set -e

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" -eq 0 ] && [ -d /var/lib/tend ]; then
    echo "tend-agent: kept /var/lib/tend (this host's identity); delete it to forget the registration."
fi
exit 0
