# %pre of tend-server. $1: 1 = first install, 2 (or more) = upgrade.
# Creates the system user and group tend-server before the files land.
set -e

USER_NAME=tend-server

if ! getent group "$USER_NAME" >/dev/null; then
    groupadd --system "$USER_NAME"
fi
if ! getent passwd "$USER_NAME" >/dev/null; then
    useradd --system --gid "$USER_NAME" --home-dir /var/lib/tend-server --no-create-home \
        --shell /usr/sbin/nologin --comment "tend server" "$USER_NAME"
fi
exit 0
