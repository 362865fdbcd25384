//! Resource identity, the properties every resource shares, and the typed
//! specification of each resource type.

use std::fmt;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::condition::When;
use crate::resources::{
    Ownership, Presence, apt_repository::AptRepositoryProps, archive::ArchiveProps, authorized_key::AuthorizedKeyProps,
    cron::CronProps, directory::DirectoryProps, download::DownloadProps, exec::ExecProps, file::FileProps,
    file_line::FileLineProps, group::GroupProps, hostname::HostnameProps, kernel_module::KernelModuleProps,
    link::LinkProps, mount::MountProps, ntp::NtpProps, package::PackageProps, service::ServiceProps,
    setting::SettingProps, sysctl::SysctlProps, systemd_unit::SystemdUnitProps, template::TemplateProps,
    timezone::TimezoneProps, user::UserProps, yum_repository::YumRepositoryProps,
};

/// Generates the resource type list and the typed `Spec` from one table, so a
/// new type is added in exactly one place (plus its props file).
macro_rules! kinds {
    ($($variant:ident => $name:literal, $props:ty;)*) => {
        /// A resource type.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Kind { $($variant),* }

        impl Kind {
            pub const ALL: &'static [Kind] = &[$(Kind::$variant),*];

            pub fn name(self) -> &'static str {
                match self { $(Kind::$variant => $name),* }
            }

            pub fn parse(s: &str) -> Option<Kind> {
                match s { $($name => Some(Kind::$variant),)* _ => None }
            }

            /// The JSON Schema of this type's own properties.
            pub fn props_schema(self, generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
                match self { $(Kind::$variant => <$props as JsonSchema>::json_schema(generator)),* }
            }

            /// Deserializes this type's properties: the fast path for valid
            /// ones (no error path is tracked).
            pub fn spec_fast(self, v: &serde_yaml::Value) -> Result<Spec, serde_yaml::Error> {
                Ok(match self {
                    $(Kind::$variant => Spec::$variant(<$props as Deserialize>::deserialize(v)?)),*
                })
            }

            /// Deserializes this type's properties.
            pub fn spec_from(self, v: &serde_yaml::Value) -> Result<Spec, serde_path_to_error::Error<serde_yaml::Error>> {
                Ok(match self {
                    $(Kind::$variant => Spec::$variant(serde_path_to_error::deserialize(v)?)),*
                })
            }
        }

        /// The typed properties of one resource.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        #[serde(untagged)]
        pub enum Spec { $($variant($props)),* }

        impl Spec {
            pub fn kind(&self) -> Kind {
                match self { $(Spec::$variant(_) => Kind::$variant),* }
            }
        }
    };
}

kinds! {
    File => "file", FileProps;
    Directory => "directory", DirectoryProps;
    Template => "template", TemplateProps;
    Exec => "exec", ExecProps;
    User => "user", UserProps;
    Group => "group", GroupProps;
    Package => "package", PackageProps;
    Service => "service", ServiceProps;
    SystemdUnit => "systemd_unit", SystemdUnitProps;
    Cron => "cron", CronProps;
    Ntp => "ntp", NtpProps;
    FileLine => "file_line", FileLineProps;
    Setting => "setting", SettingProps;
    Link => "link", LinkProps;
    Sysctl => "sysctl", SysctlProps;
    Timezone => "timezone", TimezoneProps;
    Hostname => "hostname", HostnameProps;
    AuthorizedKey => "authorized_key", AuthorizedKeyProps;
    KernelModule => "kernel_module", KernelModuleProps;
    Download => "download", DownloadProps;
    Mount => "mount", MountProps;
    AptRepository => "apt_repository", AptRepositoryProps;
    Archive => "archive", ArchiveProps;
    YumRepository => "yum_repository", YumRepositoryProps;
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Spec {
    /// Static problems of the properties: `(property, message)`.
    pub fn problems(&self, name: &str) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if self.is_path() {
            if let Some(e) = crate::resources::check_absolute_path(name) {
                out.push(("", e));
            }
        }
        out.extend(match self {
            Spec::File(p) => p.problems(),
            Spec::Template(p) => p.problems(),
            Spec::Exec(p) => p.problems(),
            Spec::Directory(p) => p.problems(),
            Spec::User(p) => {
                let mut v = p.problems();
                v.extend(crate::resources::user::check_account_name(name).map(|e| ("", e)));
                v
            }
            Spec::Group(_) => crate::resources::user::check_account_name(name).map(|e| ("", e)).into_iter().collect(),
            Spec::Package(p) => p.problems(name),
            Spec::Service(p) => p.problems(),
            Spec::SystemdUnit(p) => p.problems(name),
            Spec::Cron(p) => p.problems(name),
            Spec::Ntp(p) => p.problems(),
            Spec::FileLine(p) => p.problems(),
            Spec::Setting(p) => p.problems(),
            Spec::Link(p) => p.problems(),
            Spec::Sysctl(p) => p.problems(name),
            Spec::AuthorizedKey(p) => p.problems(),
            Spec::KernelModule(p) => p.problems(name),
            Spec::Download(p) => p.problems(),
            Spec::Mount(p) => p.problems(),
            Spec::AptRepository(p) => p.problems(name),
            Spec::Archive(p) => p.problems(),
            Spec::YumRepository(p) => p.problems(name),
            Spec::Timezone(_) => crate::resources::timezone::check_zone(name).map(|e| ("", e)).into_iter().collect(),
            Spec::Hostname(_) => {
                crate::resources::hostname::check_hostname(name).map(|e| ("", e)).into_iter().collect()
            }
        });
        out
    }

    /// Resources this one must follow when the recipe declares them: the
    /// owner of a file, the groups of a user, the package of a service.
    pub fn implicit_after(&self, name: &str) -> Vec<ResourceId> {
        let mut out = Vec::new();
        if let Some(o) = self.ownership() {
            out.extend(o.owner.map(|u| ResourceId::new(Kind::User, u)));
            out.extend(o.group.map(|g| ResourceId::new(Kind::Group, g)));
        }
        match self {
            Spec::User(p) => {
                out.extend(p.group.iter().map(|g| ResourceId::new(Kind::Group, g.clone())));
                out.extend(p.groups.iter().flatten().map(|g| ResourceId::new(Kind::Group, g.clone())));
            }
            Spec::Exec(p) => out.extend(p.user.iter().map(|u| ResourceId::new(Kind::User, u.clone()))),
            Spec::Cron(p) => out.push(ResourceId::new(Kind::User, p.user.clone())),
            Spec::AuthorizedKey(p) => out.push(ResourceId::new(Kind::User, p.user.clone())),
            // The mount point first.
            Spec::Mount(_) => out.push(ResourceId::new(Kind::Directory, name)),
            // The archive's directory and its download first; the owner of what it holds.
            Spec::Archive(p) => {
                out.push(ResourceId::new(Kind::Directory, name));
                out.push(ResourceId::new(Kind::Download, p.source.clone()));
                out.extend(p.owner.iter().map(|u| ResourceId::new(Kind::User, u.clone())));
                out.extend(p.group.iter().map(|g| ResourceId::new(Kind::Group, g.clone())));
            }
            // The bridge's parameters exist only once its module is loaded.
            Spec::Sysctl(_) if name.starts_with("net.bridge.") => {
                out.push(ResourceId::new(Kind::KernelModule, "br_netfilter"));
            }
            Spec::Service(p) => {
                let unit = p.unit_name(name);
                let base = unit.strip_suffix(".service").unwrap_or(&unit).to_string();
                out.push(ResourceId::new(Kind::Package, base));
            }
            // An edit of a file the recipe also writes comes after the write.
            Spec::FileLine(FileLineProps { path, .. }) | Spec::Setting(SettingProps { path, .. }) => {
                out.push(ResourceId::new(Kind::File, path.clone()));
                out.push(ResourceId::new(Kind::Template, path.clone()));
            }
            Spec::Ntp(_) => {
                for pkg in ["chrony", "systemd-timesyncd", "ntp", "ntpsec"] {
                    out.push(ResourceId::new(Kind::Package, pkg));
                }
            }
            _ => {}
        }
        out
    }

    /// The file or directory the resource writes, if any: its name for path
    /// types, the edited file for `file_line`, `setting` and an
    /// `authorized_key` with a `path`.
    pub fn edited_path<'a>(&'a self, name: &'a str) -> Option<&'a str> {
        match self {
            Spec::FileLine(p) => Some(&p.path),
            Spec::Setting(p) => Some(&p.path),
            Spec::AuthorizedKey(p) => p.path.as_deref(),
            s if s.is_path() => Some(name),
            _ => None,
        }
    }

    /// True for types whose name is a filesystem path.
    pub fn is_path(&self) -> bool {
        matches!(
            self,
            Spec::File(_)
                | Spec::Directory(_)
                | Spec::Template(_)
                | Spec::Link(_)
                | Spec::Download(_)
                | Spec::Mount(_)
                | Spec::Archive(_)
        )
    }

    /// Whether a path resource should exist (None for other types).
    pub fn presence(&self) -> Option<Presence> {
        match self {
            Spec::File(p) => Some(p.state),
            Spec::Directory(p) => Some(p.state),
            Spec::Template(p) => Some(p.state),
            Spec::Link(p) => Some(p.state),
            _ => None,
        }
    }

    /// Owner, group and mode of a path resource.
    pub fn ownership(&self) -> Option<Ownership> {
        let o = |owner: &Option<String>, group: &Option<String>, mode| Ownership {
            owner: owner.clone(),
            group: group.clone(),
            mode,
        };
        match self {
            Spec::File(p) => Some(o(&p.owner, &p.group, p.mode.clone())),
            Spec::Directory(p) => Some(o(&p.owner, &p.group, p.mode.clone())),
            Spec::Template(p) => Some(o(&p.owner, &p.group, p.mode.clone())),
            Spec::Download(p) => Some(o(&p.owner, &p.group, p.mode.clone())),
            _ => None,
        }
    }
}

/// `type:name`, e.g. `file:/etc/motd`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ResourceId {
    pub kind: Kind,
    pub name: String,
}

impl ResourceId {
    pub fn new(kind: Kind, name: impl Into<String>) -> Self {
        Self { kind, name: name.into() }
    }

    /// Parses `type:name`. The error says what is wrong.
    pub fn parse(s: &str) -> Result<Self, String> {
        let (k, n) = s
            .split_once(':')
            .ok_or_else(|| format!("{s:?} is not a resource reference; write it as type:name, e.g. file:/etc/motd"))?;
        let kind = Kind::parse(k).ok_or_else(|| format!("unknown resource type `{k}` in {s:?}"))?;
        if n.is_empty() {
            return Err(format!("{s:?} has an empty name"));
        }
        Ok(Self::new(kind, n))
    }
}

impl fmt::Display for ResourceId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.kind, self.name)
    }
}

impl Serialize for ResourceId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Properties every resource may have, whatever its type.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Common {
    /// Resources (`type:name`) that must be converged before this one.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<String>,
    /// Resources refreshed (an exec run, a service restarted) when this one changes.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notifies: Vec<String>,
    /// Converge this resource only when the condition holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<When>,
    /// Never print or report this resource's content, diffs or output.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub sensitive: bool,
}

impl Common {
    pub const KEYS: &'static [&'static str] = &["requires", "notifies", "when", "sensitive"];
}
