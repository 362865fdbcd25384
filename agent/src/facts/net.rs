//! Network interfaces and their addresses, from getifaddrs(3).

use serde_json::{Map, Value, json};

/// `{ "eth0": { "mac": "…", "ipv4": ["10.0.0.5"], "ipv6": [...] }, … }`
pub fn interfaces() -> Value {
    let mut out = Map::new();
    let Ok(addrs) = nix::ifaddrs::getifaddrs() else { return Value::Object(out) };
    for a in addrs {
        let entry = out
            .entry(a.interface_name.clone())
            .or_insert_with(|| json!({ "mac": "", "ipv4": [], "ipv6": [] }));
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

/// The first IPv4 address that is not loopback.
pub fn primary_ipv4(interfaces: &Value) -> String {
    interfaces
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| name.as_str() != "lo")
        .flat_map(|(_, v)| v["ipv4"].as_array().cloned().unwrap_or_default())
        .filter_map(|v| v.as_str().map(str::to_string))
        .find(|a| !a.starts_with("127."))
        .unwrap_or_default()
}
