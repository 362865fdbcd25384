//! The end-to-end harness of tend: real, booted Debian 12 hosts, each starting clean.
//!
//! # How it works
//! 1. **Root filesystem, built once.** [`rootfs()`] runs `debootstrap --variant=minbase` for
//!    [`SUITE`] with [`PACKAGES`], from the Debian mirror this machine's apt uses
//!    ([`rootfs::mirror`]), then prepares the tree: an empty `/etc/machine-id` (so each boot gets
//!    its own id from systemd-nspawn), `/etc/hostname` and `/etc/hosts`, this machine's Debian apt
//!    sources (so `apt-get update && apt-get install` works inside on a [`Network::Shared`] host;
//!    the package lists are not in the tree, so run `apt-get update` first), and no downloaded
//!    packages. The first build takes about a minute.
//! 2. **Hosts, one per test.** [`Host::boot`] copies the tree with `cp -a --reflink=auto` into
//!    [`hosts_dir()`] (under 1 s to `/dev/shm`, about 9 s to this machine's disk), boots the copy
//!    with `systemd-nspawn -b --register=no --keep-unit`, finds the guest's PID 1 (its systemd,
//!    the child of nspawn) and waits until `systemctl is-system-running` says `running` or
//!    `degraded` (about 1 s). Commands run inside through `nsenter -t PID -a`, in a
//!    clean environment. Nothing on the machine running the tests changes: everything happens in
//!    the copy. Chrony stays inactive in a guest (`ConditionCapability=CAP_SYS_TIME`): expected.
//! 3. **Teardown, always.** Dropping a [`Host`] (also while a test panics) sends `SIGTERM` to
//!    nspawn, which powers the guest off, kills it after 10 s, and deletes the copy. Hosts left
//!    by a test process that was killed outright are stopped and deleted by the next process that
//!    boots a host.
//!
//! # What is cached where
//! Everything is under [`cache_dir()`]: `$TEND_E2E_CACHE` if set, else `/var/cache/tend-e2e`.
//! - `rootfs-<key>/`: the prepared tree. `<key>` ([`cache_key()`]) hashes the package list, the
//!   suite and the harness version, so changing [`PACKAGES`] builds a new tree. A build goes to
//!   `rootfs-<key>.tmp-<pid>/` and is renamed into place only when complete; `rootfs.lock`
//!   (`flock`) makes concurrent test processes wait for one builder. `rootfs-<key>.log` is the
//!   debootstrap log. Delete the directory to force a rebuild; old keys are not removed.
//!
//! The hosts are not cached: each lives in `<hosts>/<name>/` while it runs, with `root/` (its
//! `/`), `nspawn.log` (its console) and `owner` (the test process that booted it). `<hosts>` is
//! [`hosts_dir()`]: `$TEND_E2E_HOSTS` if set, else `/dev/shm/tend-e2e-hosts` (memory, where
//! creating files is fast) when that allows set-user-id programs and has room, else
//! `<cache>/hosts`.
//!
//! # Requirements
//! Root, `debootstrap` and `systemd-nspawn` (`apt-get install debootstrap systemd-container`,
//! which `.ci/run` does), and for the first build access to the Debian mirror.
//!
//! ```no_run
//! use tend_e2e::{BootOptions, Host, Network};
//!
//! let host = Host::boot(BootOptions::new("example").network(Network::Private));
//! host.write("/etc/motd", "hello\n");
//! assert_eq!(host.sh_ok("cat /etc/motd"), "hello\n");
//! ```

pub mod agent;
pub mod apt_repo;
mod host;
pub mod rootfs;
mod sys;

pub use host::{BootOptions, Host, Network, hosts_dir};
pub use rootfs::{PACKAGES, SUITE, cache_dir, cache_key, rootfs};
