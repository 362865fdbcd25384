//! Network interfaces and their addresses, from getifaddrs(3).

use serde_json::{Map, Value, json};

/// `{ "eth0": { "mac": "…", "ipv4": ["10.0.0.5"], "ipv6": [...] }, … }`
pub fn interfaces() -> Value {
    let mut out = Map::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else {
        return Value::Object(out);
    };
    for a in addrs {
        let entry = out.entry(a.interface_name.clone()).or_insert_with(|| json!({ "mac": "", "ipv4": [], "ipv6": [] }));
        let Some(addr) = a.address else { continue };
        if let Some(sin) = addr.as_sockaddr_in() {
            push(entry, "ipv4", sin.ip().to_string());
        } else if let Some(sin6) = addr.as_sockaddr_in6() {
            push(entry, "ipv6", sin6.ip().to_string());
        } else if let Some(link) = addr.as_link_addr() {
            if let Some(mac) = link.addr() {
                let s: Vec<String> = mac.iter().map(|b| format!("{b:02x}")).collect();
                entry["mac"] = Value::from(s.join(":"));
            }
        }
    }
    Value::Object(out)
}

fn push(entry: &mut Value, family: &str, addr: String) {
    if let Some(list) = entry[family].as_array_mut() {
        list.push(Value::from(addr));
    }
}

/// The IPv4 address of the interface that holds the default route; failing
/// that, the first address of an interface that is not loopback or a bridge.
pub fn primary_ipv4(interfaces: &Value) -> String {
    let route = std::fs::read_to_string("/proc/net/route").unwrap_or_default();
    let first_v4 = |name: &str| {
        interfaces[name]["ipv4"].as_array().and_then(|a| a.first()).and_then(Value::as_str).map(str::to_string)
    };
    if let Some(v) = default_route_interface(&route).and_then(|i| first_v4(&i)) {
        return v;
    }
    const VIRTUAL: &[&str] = &["lo", "docker", "br-", "veth", "virbr", "cni", "flannel", "vxlan"];
    interfaces
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| !VIRTUAL.iter().any(|p| name.starts_with(p)))
        .find_map(|(name, _)| first_v4(name))
        .unwrap_or_default()
}

/// The interface of the default route in /proc/net/route.
fn default_route_interface(route: &str) -> Option<String> {
    route.lines().skip(1).find_map(|l| {
        let mut f = l.split_whitespace();
        let (iface, dest) = (f.next()?, f.next()?);
        (dest == "00000000").then(|| iface.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn primary_address_follows_the_default_route() {
        let route = "Iface\tDestination\tGateway\nbr-1\t0000A8C0\t00000000\neth0\t00000000\t0100A8C0\n";
        assert_eq!(default_route_interface(route).as_deref(), Some("eth0"));
    }
}
