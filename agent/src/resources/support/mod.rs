//! What several resource types share, and none of them owns: account
//! lookups and the local account databases (`user`, `group`, `file`
//! ownership), owner/group/mode handling of paths (`file`, `directory`,
//! `template`, `systemd_unit`), batched durable writes that the engine commits
//! ([`staging`]), systemd through systemctl (`service`, `systemd_unit`,
//! `ntp`), in-place edits and files that are part of another resource
//! ([`edit`]: `file_line`, `setting`, `sysctl`, `hostname`, the
//! repositories), recursive ownership ([`tree`]: `directory`), OpenPGP key
//! fingerprints ([`openpgp`]: `apt_repository`) and archive reading
//! ([`unpack`]: `archive`). No resource type lives here.

pub mod accounts;
pub mod accounts_db;
#[cfg(test)]
pub mod accounts_testkit;
pub mod edit;
pub mod fsmeta;
pub mod openpgp;
pub mod staging;
pub mod systemd;
pub mod tree;
pub mod unpack;
