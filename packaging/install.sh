#!/bin/sh
# tend-agent one-line installer, served by tend-server at GET /install.sh.
#
#   curl -fsS --cacert ca.pem https://SERVER:8443/install.sh |
#       sudo sh -s -- --activation-id ID --activation-code CODE [--tags k=v,...]
#
# Installs the tend-agent package for this host (Debian/Ubuntu: .deb with
# apt-get; RHEL/Fedora/CentOS/Rocky/Alma/Amazon Linux: .rpm with dnf or yum),
# registers the host with the server, and starts the agent. Running it again
# changes nothing, and says so.
#
# Trust (one design): everything is fetched over HTTPS from the server and
# verified against ONE CA certificate:
#   - --ca FILE if given; otherwise
#   - the CA that the server embedded in this script when serving it
#     (EMBEDDED_CA_B64 below: base64 of its ca.pem, one line).
#     The embedded CA is exactly as trustworthy as this script: the script was
#     fetched over TLS checked against the ca.pem the operator passed to curl.
# The CA is kept as /etc/tend/ca.pem and given to `tend-agent register`.
# Packages are checked against the sha256 in SERVER/packages/MANIFEST
# (lines: "<sha256>  <file name>", as sha256sum prints them).
#
# When serving this file, the server replaces the two placeholders assigned
# to EMBEDDED_SERVER and EMBEDDED_CA_B64 below (they appear nowhere else):
# EMBEDDED_SERVER with its own base URL (https://tend.example.net:8443) and
# EMBEDDED_CA_B64 with the base64 of its ca.pem, without line breaks. A copy
# that was not served (placeholders intact) needs --server and --ca.
#
# Options:
#   --activation-id ID      activation id (required unless already registered)
#   --activation-code CODE  activation code (or TEND_ACTIVATION_CODE in the
#                           environment: `sudo TEND_ACTIVATION_CODE=... sh -s`)
#   --tags k=v,k=v          extra tags for this node
#   --server URL            server base URL (default: the serving server)
#   --ca FILE               the server's CA certificate (default: embedded)
#   -h, --help              this text
#
# Exit status: 0 success (installed/registered/started, or nothing to do),
# 1 failure (message on stderr), 2 usage error.

set -eu

EMBEDDED_SERVER='@@TEND_SERVER@@'
EMBEDDED_CA_B64='@@TEND_CA_PEM_BASE64@@'

PACKAGE=tend-agent
UNIT=tend-agent.service
CONFIG=/etc/tend/agent.yaml
CA_DEST=/etc/tend/ca.pem

say() { printf 'tend-install: %s\n' "$*"; }
die() {
    printf 'tend-install: error: %s\n' "$*" >&2
    exit 1
}
usage() {
    cat >&2 <<'USAGE'
usage: curl -fsS --cacert ca.pem https://SERVER:8443/install.sh |
           sudo sh -s -- --activation-id ID --activation-code CODE [options]
  --activation-id ID      activation id (required unless already registered)
  --activation-code CODE  activation code (or TEND_ACTIVATION_CODE)
  --tags k=v,k=v          extra tags for this node
  --server URL            server base URL (default: the serving server)
  --ca FILE               the server's CA certificate (default: embedded)
USAGE
    exit 2
}

# Everything runs from main, called on the last line: a truncated download
# runs nothing, and no command can read the rest of the script from stdin.
main() {
    # ---- arguments ------------------------------------------------------------

    activation_id=
    activation_code=${TEND_ACTIVATION_CODE:-}
    tags=
    server=
    ca_file=
    while [ $# -gt 0 ]; do
        case $1 in
        --activation-id) [ $# -ge 2 ] || usage; activation_id=$2; shift 2 ;;
        --activation-id=*) activation_id=${1#*=}; shift ;;
        --activation-code) [ $# -ge 2 ] || usage; activation_code=$2; shift 2 ;;
        --activation-code=*) activation_code=${1#*=}; shift ;;
        --tags) [ $# -ge 2 ] || usage; tags=$2; shift 2 ;;
        --tags=*) tags=${1#*=}; shift ;;
        --server) [ $# -ge 2 ] || usage; server=$2; shift 2 ;;
        --server=*) server=${1#*=}; shift ;;
        --ca) [ $# -ge 2 ] || usage; ca_file=$2; shift 2 ;;
        --ca=*) ca_file=${1#*=}; shift ;;
        -h | --help) usage ;;
        *) printf 'tend-install: unknown argument: %s\n' "$1" >&2; usage ;;
        esac
    done

    # A placeholder the server did not substitute still looks like @@NAME@@.
    if [ -z "$server" ]; then
        case $EMBEDDED_SERVER in
        @@*@@ | '') die "no server URL: pass --server https://SERVER:8443 (this copy of install.sh was not served by tend-server)" ;;
        *) server=$EMBEDDED_SERVER ;;
        esac
    fi
    server=${server%/}
    case $server in
    https://?*) ;;
    *) die "the server URL must start with https:// (got '$server')" ;;
    esac

    # ---- preconditions --------------------------------------------------------

    [ "$(id -u)" -eq 0 ] || die "must run as root (pipe into 'sudo sh -s -- ...')"
    for tool in curl sha256sum uname sed awk mktemp; do
        command -v "$tool" >/dev/null 2>&1 || die "'$tool' is required but not installed"
    done

    # OS family from /etc/os-release: ID, then ID_LIKE.
    [ -r /etc/os-release ] || die "cannot read /etc/os-release: unknown operating system"
    os_field() {
        sed -n "s/^$1=//p" /etc/os-release | tail -n 1 | tr -d '"' | tr -d "'"
    }
    os_id=$(os_field ID)
    os_like=$(os_field ID_LIKE)
    family=
    for id in $os_id $os_like; do
        case $id in
        debian | ubuntu) family=deb; break ;;
        rhel | fedora | centos | rocky | almalinux | amzn | ol) family=rpm; break ;;
        esac
    done
    [ -n "$family" ] || die "unsupported operating system '$os_id' (supported: Debian, Ubuntu, RHEL, Fedora, CentOS, Rocky, AlmaLinux, Amazon Linux)"

    machine=$(uname -m)
    case $machine in
    x86_64 | amd64) deb_arch=amd64 rpm_arch=x86_64 ;;
    aarch64 | arm64) deb_arch=arm64 rpm_arch=aarch64 ;;
    *) die "unsupported architecture '$machine' (supported: x86_64, aarch64)" ;;
    esac

    if [ "$family" = deb ]; then
        command -v apt-get >/dev/null 2>&1 || die "apt-get not found on this Debian-family host"
        command -v dpkg-query >/dev/null 2>&1 || die "dpkg-query not found on this Debian-family host"
        installer=apt-get
    else
        command -v rpm >/dev/null 2>&1 || die "rpm not found on this RHEL-family host"
        if command -v dnf >/dev/null 2>&1; then
            installer=dnf
        elif command -v yum >/dev/null 2>&1; then
            installer=yum
        else
            die "neither dnf nor yum found on this RHEL-family host"
        fi
    fi
    if [ ! -d /run/systemd/system ]; then
        die "systemd is not running on this host: tend-agent runs as a systemd service"
    fi

    tmp=$(mktemp -d /tmp/tend-install.XXXXXX) || die "cannot create a temporary directory"
    trap 'rm -rf "$tmp"' EXIT
    trap 'exit 1' HUP INT TERM

    changed=

    # ---- CA -------------------------------------------------------------------

    if [ -n "$ca_file" ]; then
        [ -r "$ca_file" ] || die "cannot read the CA file '$ca_file'"
        cp "$ca_file" "$tmp/ca.pem"
    else
        case $EMBEDDED_CA_B64 in
        @@*@@ | '') die "no CA certificate: pass --ca FILE (this copy of install.sh was not served by tend-server)" ;;
        esac
        command -v base64 >/dev/null 2>&1 || die "'base64' is required to decode the embedded CA certificate"
        printf '%s\n' "$EMBEDDED_CA_B64" | base64 -d >"$tmp/ca.pem" 2>/dev/null ||
            die "the CA certificate embedded in this script is not valid base64"
    fi
    grep -q -- '-----BEGIN CERTIFICATE-----' "$tmp/ca.pem" ||
        die "the CA certificate is not a PEM certificate"
    ca=$tmp/ca.pem

    fetch() { # URL DEST
        curl -fsS --proto '=https' --tlsv1.2 --cacert "$ca" --retry 3 --retry-delay 2 \
            --connect-timeout 15 -o "$2" "$1"
    }

    # ---- package --------------------------------------------------------------

    fetch "$server/packages/MANIFEST" "$tmp/MANIFEST" ||
        die "cannot download $server/packages/MANIFEST (is the server reachable, and is this its CA?)"

    # Package file names as cargo-deb and cargo-generate-rpm write them:
    #   tend-agent_VERSION_ARCH.deb      tend-agent-VERSION-RELEASE.ARCH.rpm
    if [ "$family" = deb ]; then
        pattern="^${PACKAGE}_[^_/]*_${deb_arch}\\.deb\$"
    else
        pattern="^${PACKAGE}-[^/]*\\.${rpm_arch}\\.rpm\$"
    fi
    # The newest matching file (version sort), with its checksum.
    line=$(awk -v pat="$pattern" 'NF == 2 && $2 ~ pat { print $2 " " $1 }' "$tmp/MANIFEST" |
        sort -V | tail -n 1)
    [ -n "$line" ] || die "the server has no $PACKAGE package for $family/$machine (see $server/packages/MANIFEST)"
    file=${line%% *}
    sum=${line#* }
    case $sum in
    *[!0-9a-f]* | '') die "bad checksum for $file in MANIFEST" ;;
    esac
    [ ${#sum} -eq 64 ] || die "bad checksum for $file in MANIFEST"

    if [ "$family" = deb ]; then
        want=$(printf '%s\n' "$file" | sed -n "s/^${PACKAGE}_\\([^_]*\\)_.*/\\1/p")
        have=
        if [ "$(dpkg-query -W -f='${db:Status-Status}' "$PACKAGE" 2>/dev/null || true)" = installed ]; then
            have=$(dpkg-query -W -f='${Version}' "$PACKAGE")
        fi
    else
        want=$(printf '%s\n' "$file" | sed -n "s/^${PACKAGE}-\\(.*\\)\\.${rpm_arch}\\.rpm\$/\\1/p")
        have=$(rpm -q --qf '%{VERSION}-%{RELEASE}' "$PACKAGE" 2>/dev/null || true)
        case $have in *"not installed"*) have= ;; esac
    fi

    if [ -n "$have" ] && [ "$have" = "$want" ]; then
        say "$PACKAGE $have is already installed"
    elif [ -n "$have" ] && [ "$family" = deb ] && dpkg --compare-versions "$have" gt "$want"; then
        say "$PACKAGE $have is installed, newer than the server's $want: leaving it"
    else
        say "downloading $file"
        fetch "$server/packages/$file" "$tmp/$file" || die "cannot download $server/packages/$file"
        got=$(sha256sum "$tmp/$file" | awk '{ print $1 }')
        if [ "$got" != "$sum" ]; then
            die "checksum mismatch for $file: expected $sum, got $got. Nothing was installed."
        fi
        say "checksum ok ($sum)"
        if [ "$family" = deb ]; then
            DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
                -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
                "$tmp/$file" </dev/null || die "apt-get could not install $file"
        else
            "$installer" install -y "$tmp/$file" </dev/null || die "$installer could not install $file"
        fi
        say "installed $PACKAGE ${want:-from $file}${have:+ (was $have)}"
        changed=1
    fi
    command -v tend-agent >/dev/null 2>&1 || die "tend-agent is not on PATH after the installation"

    # ---- CA copy --------------------------------------------------------------

    mkdir -p /etc/tend
    if [ -f "$CA_DEST" ] && cmp -s "$ca" "$CA_DEST"; then
        :
    else
        if [ -f "$CA_DEST" ]; then
            say "replacing $CA_DEST (it differs from this server's CA)"
        fi
        install -m 0644 "$ca" "$CA_DEST"
        changed=1
    fi

    # ---- registration ---------------------------------------------------------

    # The identity lives in STATE_DIR/identity: state_dir from the config if set.
    state_dir=$(sed -n 's/^state_dir:[[:space:]]*//p' "$CONFIG" 2>/dev/null | tail -n 1 |
        sed -e 's/[[:space:]]#.*$//' -e 's/[[:space:]]*$//' -e 's/^"\(.*\)"$/\1/' -e "s/^'\\(.*\\)'\$/\\1/")
    state_dir=${state_dir:-/var/lib/tend}
    node_file=$state_dir/identity/node.json

    registered_now=
    if [ -f "$node_file" ]; then
        say "already registered ($node_file); not registering again"
        if [ -n "$tags" ]; then
            say "note: --tags apply at registration only; change this node's tags on the server"
        fi
    else
        [ -n "$activation_id" ] || die "this host is not registered: --activation-id is required"
        [ -n "$activation_code" ] || die "this host is not registered: --activation-code (or TEND_ACTIVATION_CODE) is required"
        say "registering with $server"
        # The code goes through the environment, not the command line (ps).
        if ! out=$(TEND_ACTIVATION_CODE=$activation_code tend-agent register --server "$server" \
            --ca "$CA_DEST" --activation-id "$activation_id" --tags "$tags" --config "$CONFIG" 2>&1 </dev/null); then
            printf '%s\n' "$out" >&2
            die "registration failed (see the message above): tend-agent is installed but not registered, and not started"
        fi
        printf '%s\n' "$out"
        registered_now=1
        changed=1
    fi
    node_id=$(sed -n 's/.*"node_id"[[:space:]]*:[[:space:]]*"\([^"]*\)".*/\1/p' "$node_file" | head -n 1)

    # ---- service --------------------------------------------------------------

    if ! systemctl is-enabled --quiet "$UNIT" 2>/dev/null; then
        systemctl enable "$UNIT" >/dev/null 2>&1 || die "cannot enable $UNIT"
        say "enabled $UNIT"
        changed=1
    fi
    if systemctl is-active --quiet "$UNIT"; then
        if [ -n "$registered_now" ]; then
            systemctl restart "$UNIT" || die "cannot restart $UNIT; see: journalctl -u tend-agent"
            say "restarted $UNIT"
        fi
    else
        systemctl start "$UNIT" || die "cannot start $UNIT; see: journalctl -u tend-agent"
        systemctl is-active --quiet "$UNIT" ||
            die "$UNIT did not start; see: systemctl status tend-agent; journalctl -u tend-agent"
        say "started $UNIT"
        changed=1
    fi

    if [ -n "$changed" ]; then
        say "done: $PACKAGE is installed, registered as ${node_id:-?} with $server, and running"
    else
        say "nothing to do: $PACKAGE is installed, registered as ${node_id:-?}, and running"
    fi
    exit 0
}

main "$@"
