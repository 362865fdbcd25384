//! Whether this host is a container, a virtual machine or neither, and which
//! technology, by the rules of `systemd-detect-virt`: containers first, then
//! virtual machines, with the same names. Only files are read (plus the CPUID
//! instruction on x86); nothing is spawned.

use std::path::Path;

use serde_json::{Value, json};

use super::file_head;

/// Container managers known by name; any other `container=` value is `container-other`.
const CONTAINERS: &[&str] =
    &["lxc", "lxc-libvirt", "systemd-nspawn", "docker", "podman", "rkt", "wsl", "proot", "pouch"];

/// DMI vendor strings (prefixes) and the virtual machine each means.
const DMI_VENDORS: &[(&str, &str)] = &[
    ("KVM", "kvm"),
    ("OpenStack", "kvm"),
    ("KubeVirt", "kvm"),
    ("Amazon EC2", "amazon"),
    ("QEMU", "qemu"),
    ("VMware", "vmware"),
    ("VMW", "vmware"),
    ("innotek GmbH", "oracle"),
    ("VirtualBox", "oracle"),
    ("Oracle Corporation", "oracle"),
    ("Xen", "xen"),
    ("Bochs", "bochs"),
    ("Parallels", "parallels"),
    ("BHYVE", "bhyve"),
    ("Hyper-V", "microsoft"),
    ("Apple Virtualization", "apple"),
    ("Google Compute Engine", "google"),
];

/// The DMI files, in the order they are tried (product name first, so that
/// KVM is told from the QEMU that hosts it).
const DMI_FILES: &[&str] = &[
    "sys/class/dmi/id/product_name",
    "sys/class/dmi/id/sys_vendor",
    "sys/class/dmi/id/board_vendor",
    "sys/class/dmi/id/bios_vendor",
    "sys/class/dmi/id/product_version",
];

/// Hypervisor signatures from CPUID leaf 0x40000000.
const CPUID_VENDORS: &[(&str, &str)] = &[
    ("XenVMMXenVMM", "xen"),
    ("KVMKVMKVM", "kvm"),
    ("Linux KVM Hv", "kvm"),
    ("TCGTCGTCGTCG", "qemu"),
    ("VMwareVMware", "vmware"),
    ("Microsoft Hv", "microsoft"),
    ("bhyve bhyve ", "bhyve"),
    ("QNXQVMBSQG", "qnx"),
    ("ACRNACRNACRN", "acrn"),
    ("SRESRESRESRE", "sre"),
    ("Apple VZ", "apple"),
];

/// What was found: `("container", "docker")`, `("vm", "kvm")`, `("none", "none")`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Virt {
    pub kind: &'static str,
    pub name: &'static str,
}

impl Virt {
    const NONE: Virt = Virt { kind: "none", name: "none" };

    fn container(name: &'static str) -> Virt {
        Virt { kind: "container", name }
    }

    fn vm(name: &'static str) -> Virt {
        Virt { kind: "vm", name }
    }

    pub fn to_json(self) -> Value {
        json!({ "type": self.kind, "name": self.name })
    }
}

/// The host's virtualization.
pub fn facts(kernel_release: &str) -> Value {
    detect(Path::new("/"), kernel_release, cpuid_hypervisor().as_deref()).to_json()
}

/// Detection against the files under `root`. `cpuid`: the hypervisor
/// signature when CPUID says a hypervisor is present (None: no hypervisor,
/// or not x86).
pub fn detect(root: &Path, kernel_release: &str, cpuid: Option<&str>) -> Virt {
    match container(root, kernel_release) {
        Some(c) => Virt::container(c),
        None => vm(root, cpuid).map(Virt::vm).unwrap_or(Virt::NONE),
    }
}

/// The first line of a file under `root`; None when it cannot be read.
fn line(root: &Path, path: &str) -> Option<String> {
    file_head::first_line(&root.join(path))
}

fn exists(root: &Path, path: &str) -> bool {
    std::fs::symlink_metadata(root.join(path)).is_ok()
}

fn container(root: &Path, kernel_release: &str) -> Option<&'static str> {
    // /proc/vz exists inside and outside an OpenVZ container, /proc/bc only outside.
    if exists(root, "proc/vz") && !exists(root, "proc/bc") {
        return Some("openvz");
    }
    if kernel_release.contains("Microsoft") || kernel_release.contains("WSL") {
        return Some("wsl");
    }
    // What the container manager says, from the least to the most privileged source.
    let said = line(root, "run/host/container-manager")
        .filter(|m| !m.is_empty())
        .or_else(|| line(root, "run/systemd/container").filter(|m| !m.is_empty()))
        .or_else(|| pid1_container_env(root));
    if let Some(name) = said {
        return Some(container_name(root, &name));
    }
    // Files only after the managers, as an image may carry a stray /.dockerenv.
    container_files(root).or_else(|| in_cgroup_namespace(root).then_some("container-other"))
}

/// `container=` in PID 1's environment, when it can be read (root only).
fn pid1_container_env(root: &Path) -> Option<String> {
    let env = file_head::read(&root.join("proc/1/environ"), 64 * 1024)?;
    env.split(|&b| b == 0)
        .find_map(|kv| kv.strip_prefix(b"container="))
        .map(|v| String::from_utf8_lossy(v).trim().to_string())
        .filter(|v| !v.is_empty())
}

fn container_name(root: &Path, name: &str) -> &'static str {
    // `oci` names a format, not a manager: the files may tell which.
    if name == "oci" {
        return container_files(root).unwrap_or("container-other");
    }
    CONTAINERS.iter().find(|c| **c == name).copied().unwrap_or("container-other")
}

fn container_files(root: &Path) -> Option<&'static str> {
    if exists(root, "run/.containerenv") {
        Some("podman")
    } else if exists(root, ".dockerenv") {
        Some("docker")
    } else {
        None
    }
}

/// A cgroup namespace of unified cgroups (v2): the root cgroup has no
/// `cgroup.events`, and a nested one has a `cgroup.type` (older kernels:
/// no `/sys/kernel/cgroup/features` either).
fn in_cgroup_namespace(root: &Path) -> bool {
    exists(root, "sys/fs/cgroup/cgroup.controllers")
        && exists(root, "sys/fs/cgroup/cgroup.events")
        && (exists(root, "sys/fs/cgroup/cgroup.type") || !exists(root, "sys/kernel/cgroup/features"))
}

/// What the SMBIOS "virtual machine" bit (BIOS characteristics extension
/// byte 2, bit 4) says; None when the table cannot be read (root only).
fn smbios_vm_bit(root: &Path) -> Option<bool> {
    let raw = file_head::read(&root.join("sys/firmware/dmi/entries/0-0/raw"), 4096)?;
    (raw.len() >= 20 && raw[1] >= 20).then(|| raw[19] & (1 << 4) != 0)
}

/// The DMI verdict: a name, `vm-other` (only the SMBIOS bit says so), or None.
fn dmi(root: &Path) -> Option<&'static str> {
    let found = DMI_FILES
        .iter()
        .filter_map(|f| line(root, f))
        .find_map(|v| DMI_VENDORS.iter().find(|(prefix, _)| v.starts_with(prefix)).map(|(_, name)| *name));
    match found {
        // The same strings mark EC2 virtual machines and bare-metal instances.
        Some("amazon") => match smbios_vm_bit(root) {
            Some(true) => Some("amazon"),
            Some(false) => None,
            None => {
                let product = line(root, "sys/class/dmi/id/product_name").unwrap_or_default();
                let metal =
                    product.split_once(".metal").is_some_and(|(_, after)| after.is_empty() || after.starts_with('-'));
                (!metal).then_some("amazon")
            }
        },
        Some(name) => Some(name),
        None => smbios_vm_bit(root).unwrap_or(false).then_some("vm-other"),
    }
}

/// The first CPU's block of /proc/cpuinfo, read in one bounded read (the
/// kernel formats the file on demand, so the other CPUs cost nothing).
fn cpuinfo_head(root: &Path) -> String {
    let head = file_head::read(&root.join("proc/cpuinfo"), 8192).unwrap_or_default();
    String::from_utf8_lossy(&head).into_owned()
}

fn user_mode_linux(root: &Path) -> bool {
    let head = cpuinfo_head(root);
    head.lines()
        .find_map(|l| l.strip_prefix("vendor_id").map(|v| v.trim_start_matches([' ', '\t', ':']).to_string()))
        .is_some_and(|v| v.starts_with("User Mode Linux"))
}

/// Some(true) for Xen's control domain (dom0), which is no guest;
/// Some(false) for a guest (domU); None when not Xen.
fn xen_dom0(root: &Path) -> Option<bool> {
    if !exists(root, "proc/xen") {
        return None;
    }
    const XENFEAT_DOM0: u32 = 11;
    if let Some(f) = line(root, "sys/hypervisor/properties/features").and_then(|h| u64::from_str_radix(&h, 16).ok()) {
        return Some(f & (1 << XENFEAT_DOM0) != 0);
    }
    let caps = line(root, "proc/xen/capabilities").unwrap_or_default();
    Some(caps.split(',').any(|c| c.trim() == "control_d"))
}

fn device_tree(root: &Path) -> Option<&'static str> {
    if let Some(hv) = line(root, "proc/device-tree/hypervisor/compatible") {
        return Some(if hv == "linux,kvm" {
            "kvm"
        } else if hv.contains("xen") {
            "xen"
        } else if hv.contains("vmware") {
            "vmware"
        } else {
            "vm-other"
        });
    }
    if exists(root, "proc/device-tree/ibm,partition-name")
        && exists(root, "proc/device-tree/hmc-managed?")
        && !exists(root, "proc/device-tree/chosen/qemu,graphic-width")
    {
        return Some("powervm");
    }
    let entries = std::fs::read_dir(root.join("proc/device-tree")).ok()?;
    if entries.filter_map(Result::ok).any(|e| e.file_name().to_string_lossy().contains("fw-cfg")) {
        return Some("qemu");
    }
    (line(root, "proc/device-tree/compatible").as_deref() == Some("qemu,pseries")).then_some("qemu")
}

fn zvm(root: &Path) -> Option<&'static str> {
    let text = String::from_utf8(file_head::read(&root.join("proc/sysinfo"), 64 * 1024)?).ok()?;
    let cp = text.lines().find_map(|l| l.strip_prefix("VM00 Control Program:"))?;
    Some(if cp.split_whitespace().next() == Some("z/VM") { "zvm" } else { "kvm" })
}

/// The virtual machine, in systemd's order: DMI names that hide behind
/// other hypervisors, UML, Xen guests, CPUID, DMI, /sys/hypervisor, the
/// device tree, z/VM; then Hyper-V enlightenments alone mean Microsoft.
fn vm(root: &Path, cpuid: Option<&str>) -> Option<&'static str> {
    let dmi = dmi(root);
    if let Some(name @ ("oracle" | "xen" | "amazon" | "parallels" | "google")) = dmi {
        return Some(name);
    }
    if user_mode_linux(root) {
        return Some("uml");
    }
    let dom0 = xen_dom0(root);
    if dom0 == Some(false) {
        return Some("xen");
    }
    let mut hyperv = false;
    let other = std::cell::Cell::new(false);
    match cpuid.map(|sig| CPUID_VENDORS.iter().find(|(s, _)| *s == sig).map(|(_, name)| *name)) {
        Some(Some("microsoft")) => hyperv = true,
        Some(Some(name)) => return Some(name),
        Some(None) => other.set(true),
        None => {}
    }
    // `vm-other` is remembered and the next source asked.
    let named = |found: Option<&'static str>| match found {
        Some("vm-other") => {
            other.set(true);
            None
        }
        found => found,
    };
    let found = if dom0 == Some(true) {
        None
    } else {
        named(dmi)
            .or_else(|| named(line(root, "sys/hypervisor/type").map(|t| if t == "xen" { "xen" } else { "vm-other" })))
            .or_else(|| named(device_tree(root)))
            .or_else(|| zvm(root))
    };
    found.or(if hyperv {
        Some("microsoft")
    } else if other.get() {
        Some("vm-other")
    } else {
        None
    })
}

/// The hypervisor signature from CPUID leaf 0x40000000, when leaf 1 says a
/// hypervisor is present.
#[cfg(any(target_arch = "x86_64", target_arch = "x86"))]
#[allow(unsafe_code, unused_unsafe)]
fn cpuid_hypervisor() -> Option<String> {
    #[cfg(target_arch = "x86")]
    use std::arch::x86::__cpuid;
    #[cfg(target_arch = "x86_64")]
    use std::arch::x86_64::__cpuid;
    // SAFETY: CPUID exists on every x86-64 CPU and on every x86 one Rust targets.
    let leaf1 = unsafe { __cpuid(1) };
    if leaf1.ecx & 0x8000_0000 == 0 {
        return None;
    }
    // SAFETY: as above; leaf 0x40000000 is reserved for hypervisors.
    let leaf = unsafe { __cpuid(0x4000_0000) };
    let bytes: Vec<u8> = [leaf.ebx, leaf.ecx, leaf.edx].iter().flat_map(|r| r.to_le_bytes()).collect();
    Some(String::from_utf8_lossy(&bytes).trim_end_matches('\0').to_string())
}

#[cfg(not(any(target_arch = "x86_64", target_arch = "x86")))]
fn cpuid_hypervisor() -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A root holding the given files.
    fn root(files: &[(&str, &[u8])]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (path, content) in files {
            let p = dir.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, content).unwrap();
        }
        dir
    }

    fn at(files: &[(&str, &[u8])], cpuid: Option<&str>) -> (&'static str, &'static str) {
        let r = root(files);
        let v = detect(r.path(), "6.1.0-18-amd64", cpuid);
        (v.kind, v.name)
    }

    #[test]
    fn bare_metal_is_none() {
        assert_eq!(at(&[("sys/class/dmi/id/sys_vendor", b"Dell Inc.\n")], None), ("none", "none"));
    }

    #[test]
    fn containers_by_what_the_manager_says() {
        assert_eq!(at(&[("run/systemd/container", b"systemd-nspawn\n")], None), ("container", "systemd-nspawn"));
        assert_eq!(at(&[("run/host/container-manager", b"podman\n")], None), ("container", "podman"));
        assert_eq!(at(&[("proc/1/environ", b"HOME=/\0container=lxc\0TERM=xterm\0")], None), ("container", "lxc"));
        assert_eq!(at(&[("run/systemd/container", b"garden\n")], None), ("container", "container-other"));
        // `oci` defers to the files.
        let oci: &[(&str, &[u8])] = &[("run/systemd/container", b"oci\n"), (".dockerenv", b"")];
        assert_eq!(at(oci, None), ("container", "docker"));
        assert_eq!(at(&[("run/systemd/container", b"oci\n")], None), ("container", "container-other"));
    }

    #[test]
    fn container_files_come_after_the_managers() {
        assert_eq!(at(&[(".dockerenv", b"")], None), ("container", "docker"));
        assert_eq!(at(&[("run/.containerenv", b""), (".dockerenv", b"")], None), ("container", "podman"));
        let stray: &[(&str, &[u8])] = &[(".dockerenv", b""), ("run/systemd/container", b"lxc")];
        assert_eq!(at(stray, None), ("container", "lxc"));
    }

    #[test]
    fn containers_win_over_virtual_machines() {
        let both: &[(&str, &[u8])] = &[(".dockerenv", b""), ("sys/class/dmi/id/sys_vendor", b"QEMU\n")];
        assert_eq!(at(both, Some("KVMKVMKVM")), ("container", "docker"));
    }

    #[test]
    fn openvz_wsl_and_cgroup_namespaces() {
        assert_eq!(at(&[("proc/vz/veinfo", b"")], None), ("container", "openvz"));
        assert_eq!(at(&[("proc/vz/veinfo", b""), ("proc/bc/0", b"")], None), ("none", "none"));
        let r = root(&[]);
        assert_eq!(detect(r.path(), "5.15.90.1-microsoft-standard-WSL2", None).name, "wsl");
        let ns: &[(&str, &[u8])] = &[
            ("sys/fs/cgroup/cgroup.controllers", b""),
            ("sys/fs/cgroup/cgroup.events", b""),
            ("sys/fs/cgroup/cgroup.type", b""),
        ];
        assert_eq!(at(ns, None), ("container", "container-other"));
        let host: &[(&str, &[u8])] = &[("sys/fs/cgroup/cgroup.controllers", b""), ("sys/kernel/cgroup/features", b"")];
        assert_eq!(at(host, None), ("none", "none"));
    }

    #[test]
    fn virtual_machines_from_dmi() {
        assert_eq!(at(&[("sys/class/dmi/id/sys_vendor", b"QEMU\n")], None), ("vm", "qemu"));
        // The product name is read first: KVM, not the QEMU behind it.
        let kvm: &[(&str, &[u8])] =
            &[("sys/class/dmi/id/product_name", b"KVM\n"), ("sys/class/dmi/id/sys_vendor", b"QEMU\n")];
        assert_eq!(at(kvm, None), ("vm", "kvm"));
        assert_eq!(at(&[("sys/class/dmi/id/sys_vendor", b"VMware, Inc.\n")], None), ("vm", "vmware"));
        assert_eq!(at(&[("sys/class/dmi/id/board_vendor", b"Oracle Corporation\n")], None), ("vm", "oracle"));
        assert_eq!(at(&[("sys/class/dmi/id/product_version", b"Hyper-V UEFI\n")], None), ("vm", "microsoft"));
        assert_eq!(
            at(
                &[
                    ("sys/class/dmi/id/sys_vendor", b"Google\n"),
                    ("sys/class/dmi/id/product_name", b"Google Compute Engine\n")
                ],
                None
            ),
            ("vm", "google")
        );
    }

    #[test]
    fn amazon_virtual_machines_and_bare_metal() {
        let vendor: (&str, &[u8]) = ("sys/class/dmi/id/sys_vendor", b"Amazon EC2\n");
        assert_eq!(
            at(&[vendor, ("sys/class/dmi/id/product_name", b"t3.micro\n")], Some("KVMKVMKVM")),
            ("vm", "amazon")
        );
        assert_eq!(at(&[vendor, ("sys/class/dmi/id/product_name", b"m5.metal\n")], None), ("none", "none"));
        let mut raw = vec![0u8; 24];
        raw[1] = 24;
        assert_eq!(at(&[vendor, ("sys/firmware/dmi/entries/0-0/raw", &raw)], None), ("none", "none"));
        raw[19] = 1 << 4;
        assert_eq!(at(&[vendor, ("sys/firmware/dmi/entries/0-0/raw", &raw)], None), ("vm", "amazon"));
        // The bit alone: some virtual machine.
        assert_eq!(at(&[("sys/firmware/dmi/entries/0-0/raw", &raw)], None), ("vm", "vm-other"));
    }

    #[test]
    fn virtual_machines_from_cpuid() {
        assert_eq!(at(&[], Some("KVMKVMKVM")), ("vm", "kvm"));
        assert_eq!(at(&[], Some("VMwareVMware")), ("vm", "vmware"));
        assert_eq!(at(&[], Some("bhyve bhyve ")), ("vm", "bhyve"));
        assert_eq!(at(&[], Some("NotAKnownHV")), ("vm", "vm-other"));
        // CPUID's Hyper-V signature may be QEMU's enlightenments: DMI decides.
        assert_eq!(at(&[("sys/class/dmi/id/sys_vendor", b"QEMU\n")], Some("Microsoft Hv")), ("vm", "qemu"));
        assert_eq!(at(&[], Some("Microsoft Hv")), ("vm", "microsoft"));
        // CPUID wins over DMI otherwise.
        assert_eq!(at(&[("sys/class/dmi/id/sys_vendor", b"QEMU\n")], Some("KVMKVMKVM")), ("vm", "kvm"));
    }

    #[test]
    fn xen_guests_and_control_domain() {
        assert_eq!(at(&[("proc/xen/capabilities", b"\n")], None), ("vm", "xen"));
        assert_eq!(at(&[("proc/xen/capabilities", b"control_d\n")], None), ("none", "none"));
        assert_eq!(
            at(&[("proc/xen/x", b""), ("sys/hypervisor/properties/features", b"00000801\n")], None),
            ("none", "none")
        );
        assert_eq!(
            at(&[("proc/xen/x", b""), ("sys/hypervisor/properties/features", b"00000001\n")], None),
            ("vm", "xen")
        );
        assert_eq!(at(&[("sys/hypervisor/type", b"xen\n")], None), ("vm", "xen"));
        assert_eq!(at(&[("sys/hypervisor/type", b"s390\n")], None), ("vm", "vm-other"));
    }

    #[test]
    fn user_mode_linux_device_tree_and_zvm() {
        let uml: &[(&str, &[u8])] = &[("proc/cpuinfo", b"processor\t: 0\nvendor_id\t: User Mode Linux\n")];
        assert_eq!(at(uml, Some("KVMKVMKVM")), ("vm", "uml"));
        let plain: &[(&str, &[u8])] = &[("proc/cpuinfo", b"processor\t: 0\nvendor_id\t: GenuineIntel\n")];
        assert_eq!(at(plain, None), ("none", "none"));
        assert_eq!(at(&[("proc/device-tree/hypervisor/compatible", b"linux,kvm\0")], None), ("vm", "kvm"));
        assert_eq!(at(&[("proc/device-tree/fw-cfg@9020000/compatible", b"qemu,fw-cfg-mmio\0")], None), ("vm", "qemu"));
        assert_eq!(at(&[("proc/sysinfo", b"VM00 Control Program: z/VM    7.2.0\n")], None), ("vm", "zvm"));
        assert_eq!(at(&[("proc/sysinfo", b"VM00 Control Program: KVM/Linux\n")], None), ("vm", "kvm"));
    }
}
