//! EC2 facts through IMDSv2, against a metadata service on loopback. (No real
//! EC2 metadata service can run here; this one follows the IMDSv2 protocol:
//! a PUT for a session token, then reads that must carry it.)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use common::{Scratch, stderr};

/// Serves IMDSv2 on a loopback port; returns its URL.
fn fake_imds() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let mut token_ok = false;
            let mut ttl = false;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap_or(0) == 0 || h == "\r\n" {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                token_ok |= lower.starts_with("x-aws-ec2-metadata-token: tok-123");
                ttl |= lower.starts_with("x-aws-ec2-metadata-token-ttl-seconds:");
            }
            let (status, body) = if request_line.starts_with("PUT /latest/api/token") && ttl {
                ("200 OK", "tok-123".to_string())
            } else if request_line.starts_with("GET /latest/dynamic/instance-identity/document") && token_ok {
                (
                    "200 OK",
                    r#"{"instanceId":"i-0abc","instanceType":"t3.micro","region":"eu-west-1","availabilityZone":"eu-west-1b","imageId":"ami-123","accountId":"111122223333","privateIp":"10.0.0.5"}"#.to_string(),
                )
            } else {
                ("401 Unauthorized", String::new())
            };
            let mut s = stream;
            let _ = write!(s, "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len());
        }
    });
    url
}

#[test]
fn imdsv2_facts_are_read_and_cached_per_boot() {
    let s = Scratch::new();
    let url = fake_imds();
    std::fs::create_dir_all(s.state()).unwrap();
    let out = s.agent().env("TEND_EC2", "on").env("TEND_IMDS_ENDPOINT", &url).arg("facts").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ec2"]["instance_id"], "i-0abc");
    assert_eq!(f["ec2"]["region"], "eu-west-1");
    assert_eq!(f["ec2"]["availability_zone"], "eu-west-1b");
    assert_eq!(f["ec2"]["ami_id"], "ami-123");
    // Cached: a later run needs no metadata service at all.
    let out =
        s.agent().env("TEND_EC2", "on").env("TEND_IMDS_ENDPOINT", "http://127.0.0.1:9").arg("facts").output().unwrap();
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(f["ec2"]["instance_id"], "i-0abc");
}

#[test]
fn an_unanswering_metadata_service_costs_the_budget_and_no_facts() {
    let s = Scratch::new();
    // Accepts connections and never answers.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let out = s.agent().env("TEND_EC2", "on").env("TEND_IMDS_ENDPOINT", &url).arg("facts").output().unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let f: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(f.get("ec2").is_none());
    drop(listener);
}

#[test]
fn auto_mode_does_not_probe_off_ec2() {
    // This machine is not EC2 hardware: auto must not even try the endpoint.
    let s = Scratch::new();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    if tend_agent::facts::ec2::looks_like_ec2(std::path::Path::new("/")) {
        return;
    }
    let out = s.agent().env("TEND_EC2", "auto").env("TEND_IMDS_ENDPOINT", &url).arg("facts").output().unwrap();
    assert!(out.status.success());
    assert!(listener.accept().is_err(), "auto mode probed the metadata service off EC2");
}
