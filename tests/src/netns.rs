//! A network namespace joined to this machine by a veth pair
//! (`deploy/local/mesh-netns`, the same tool the secured stack uses), to cut
//! the network between a service and the broker for real: the link down (a
//! partition both ways) or a blackhole route on one side only (packets one
//! way vanish, as when a firewall drops them). Needs root. Only addresses
//! the tool creates on this machine are used; the namespace and its link are
//! removed when dropped.

use std::path::PathBuf;
use std::process::Command;

/// A namespace and the two ends of its link.
pub struct Netns {
    /// The namespace's name (`ip netns exec NAME ...`).
    pub name: String,
    /// The address of the namespace's end.
    pub inside: String,
    /// The address of this machine's end, which processes in the namespace
    /// reach this machine by.
    pub outside: String,
    /// The interface of the namespace's end.
    inside_if: String,
}

fn tool() -> PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repository root")
        .join("deploy/local/mesh-netns")
}

/// Runs `ip ARGS...`, optionally inside `netns`; panics when it fails.
fn ip(netns: Option<&str>, args: &[&str]) -> String {
    let mut cmd = Command::new("ip");
    if let Some(ns) = netns {
        cmd.args(["netns", "exec", ns, "ip"]);
    }
    crate::run_checked(
        cmd.args(args),
        "run ip",
        &format!("ip {args:?} in {netns:?}"),
    )
}

impl Netns {
    /// Creates a namespace named after `prefix` plus a random suffix.
    pub fn create(prefix: &str) -> Netns {
        assert!(
            crate::is_root(),
            "network partition tests need root (network namespaces and veth pairs)"
        );
        let name = crate::unique(prefix);
        let out = crate::run_checked(
            Command::new(tool()).args(["up", &name]),
            "run mesh-netns",
            &format!("mesh-netns up {name}"),
        );
        let inside = out.trim().to_string();
        let (net, last) = inside.rsplit_once('.').expect("an IPv4 address");
        let last: u8 = last.parse().expect("an IPv4 address");
        let outside = format!("{net}.{}", last - 1);
        // The namespace's end of the link: its one interface besides lo.
        let links = ip(Some(&name), &["-o", "link", "show"]);
        let inside_if = links
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap_or(n).to_string())
            .find(|n| n != "lo")
            .expect("the namespace's veth end");
        Netns {
            name,
            inside,
            outside,
            inside_if,
        }
    }

    /// The command prefix that runs a program inside the namespace.
    pub fn exec_prefix(&self) -> Vec<String> {
        ["ip", "netns", "exec", &self.name]
            .iter()
            .map(|s| s.to_string())
            .collect()
    }

    /// Takes the link down: nothing passes either way.
    pub fn cut(&self) {
        ip(Some(&self.name), &["link", "set", &self.inside_if, "down"]);
    }

    /// Brings the link back up.
    pub fn heal(&self) {
        ip(Some(&self.name), &["link", "set", &self.inside_if, "up"]);
        // Taking the link down dropped the namespace's routes through it;
        // its address brings the connected route back, the default needs
        // nothing else here.
    }

    /// Drops, on this machine's side only, every packet towards the
    /// namespace: what the namespace sends still arrives, nothing comes back.
    pub fn blackhole_towards(&self) {
        ip(
            None,
            &["route", "add", "blackhole", &format!("{}/32", self.inside)],
        );
    }

    /// Removes the blackhole route.
    pub fn clear_blackhole(&self) {
        ip(
            None,
            &["route", "del", "blackhole", &format!("{}/32", self.inside)],
        );
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["route", "del", "blackhole", &format!("{}/32", self.inside)])
            .output();
        let _ = Command::new(tool()).args(["down", &self.name]).output();
    }
}
