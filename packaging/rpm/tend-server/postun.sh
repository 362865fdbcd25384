# %postun of tend-server. $1: 0 = erase, 1 (or more) = upgrade.
#
# RPM has no purge: an erase keeps /var/lib/tend-server (database, CA,
# tokens) and the tend-server user, as the Fedora packaging guidelines ask.
# To delete everything: rm -rf /var/lib/tend-server && userdel tend-server
set -e

if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || true
fi
if [ "$1" -eq 0 ] && [ -d /var/lib/tend-server ]; then
    echo "tend-server: kept /var/lib/tend-server (database, CA and tokens)."
fi
exit 0
