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

/// The IPv4 default route from /proc/net/route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultRoute {
    pub interface: String,
    /// Dotted quad; `0.0.0.0` for a route without a gateway (point-to-point).
    pub gateway: String,
    pub metric: u32,
}

/// Reads /proc/net/route's default route (None when there is none).
pub fn default_route() -> Option<DefaultRoute> {
    parse_default_route(&std::fs::read_to_string("/proc/net/route").unwrap_or_default())
}

/// The IPv4 address of the interface that holds the default route; failing
/// that, the first address of an interface that is not loopback or a bridge.
pub fn primary_ipv4(interfaces: &Value, route: Option<&DefaultRoute>) -> String {
    if let Some(v) = route.and_then(|r| first_ipv4(interfaces, &r.interface)) {
        return v;
    }
    const VIRTUAL: &[&str] = &["lo", "docker", "br-", "veth", "virbr", "cni", "flannel", "vxlan"];
    interfaces
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(name, _)| !VIRTUAL.iter().any(|p| name.starts_with(p)))
        .find_map(|(name, _)| first_ipv4(interfaces, name))
        .unwrap_or_default()
}

/// `{ "address", "interface", "gateway" }` of the default route (empty
/// strings when there is none; `address` is the interface's first IPv4 address).
pub fn ipv4_default(interfaces: &Value, route: Option<&DefaultRoute>) -> Value {
    let (interface, gateway) = route.map(|r| (r.interface.as_str(), r.gateway.as_str())).unwrap_or_default();
    let address = first_ipv4(interfaces, interface).unwrap_or_default();
    json!({ "address": address, "interface": interface, "gateway": gateway })
}

fn first_ipv4(interfaces: &Value, name: &str) -> Option<String> {
    interfaces[name]["ipv4"].as_array().and_then(|a| a.first()).and_then(Value::as_str).map(str::to_string)
}

/// The default route of /proc/net/route's text: destination and mask
/// 0.0.0.0, up (flag RTF_UP), the lowest metric (the first on a tie, as the kernel).
fn parse_default_route(route: &str) -> Option<DefaultRoute> {
    const RTF_UP: u32 = 0x1;
    let hex = |s: &str| u32::from_str_radix(s, 16).ok();
    route
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            // Iface Destination Gateway Flags RefCnt Use Metric Mask …
            let (iface, dest, gw, flags, metric, mask) =
                (f.first()?, f.get(1)?, f.get(2)?, f.get(3)?, f.get(6)?, f.get(7)?);
            let up = hex(flags)? & RTF_UP != 0;
            (up && hex(dest)? == 0 && hex(mask)? == 0).then_some(())?;
            // The kernel prints the address as it lies in memory, read as a native integer.
            let gateway = std::net::Ipv4Addr::from(hex(gw)?.to_ne_bytes()).to_string();
            Some(DefaultRoute { interface: iface.to_string(), gateway, metric: metric.parse().ok()? })
        })
        .min_by_key(|r| r.metric)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A /proc/net/route address field for a dotted quad, on this host's byte order.
    fn hex(ip: [u8; 4]) -> String {
        format!("{:08X}", u32::from_ne_bytes(ip))
    }

    /// Interface, destination, gateway, flags, metric.
    type Row<'a> = (&'a str, [u8; 4], [u8; 4], u32, u32);

    fn table(rows: &[Row]) -> String {
        let mut t = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n".to_string();
        for (iface, dest, gw, flags, metric) in rows {
            let mask = if *dest == [0, 0, 0, 0] { [0, 0, 0, 0] } else { [255, 255, 255, 0] };
            t += &format!(
                "{iface}\t{}\t{}\t{flags:04X}\t0\t0\t{metric}\t{}\t0\t0\t0\n",
                hex(*dest),
                hex(*gw),
                hex(mask)
            );
        }
        t
    }

    #[test]
    fn primary_address_follows_the_default_route() {
        let route =
            table(&[("br-1", [192, 168, 0, 0], [0, 0, 0, 0], 1, 0), ("eth0", [0, 0, 0, 0], [192, 168, 0, 1], 3, 0)]);
        let r = parse_default_route(&route).unwrap();
        assert_eq!(r, DefaultRoute { interface: "eth0".into(), gateway: "192.168.0.1".into(), metric: 0 });
        let interfaces = json!({ "eth0": { "ipv4": ["192.168.0.7"] }, "br-1": { "ipv4": ["192.168.0.2"] } });
        assert_eq!(primary_ipv4(&interfaces, Some(&r)), "192.168.0.7");
        assert_eq!(
            ipv4_default(&interfaces, Some(&r)),
            json!({ "address": "192.168.0.7", "interface": "eth0", "gateway": "192.168.0.1" })
        );
    }

    #[test]
    fn lowest_metric_wins_and_down_routes_do_not_count() {
        let route = table(&[
            ("wlan0", [0, 0, 0, 0], [10, 0, 0, 1], 3, 600),
            ("eth0", [0, 0, 0, 0], [10, 1, 0, 1], 3, 100),
            ("eth1", [0, 0, 0, 0], [10, 2, 0, 1], 2, 0),
        ]);
        let r = parse_default_route(&route).unwrap();
        assert_eq!((r.interface.as_str(), r.gateway.as_str()), ("eth0", "10.1.0.1"));
    }

    #[test]
    fn no_default_route() {
        assert_eq!(parse_default_route(""), None);
        assert_eq!(parse_default_route(&table(&[("eth0", [10, 0, 0, 0], [0, 0, 0, 0], 1, 0)])), None);
        assert_eq!(ipv4_default(&json!({}), None), json!({ "address": "", "interface": "", "gateway": "" }));
    }
}
