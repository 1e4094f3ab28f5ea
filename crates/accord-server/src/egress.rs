//! Where Accord's own requests may go: Graph change notifications and their validation
//! handshakes, consent webhooks, and federated issuers' discovery documents and keys.
//!
//! Why a policy: each of those URLs is chosen by someone other than the operator (a
//! subscriber, a tenant's administrator, an app registration's owner, a discovery document), and
//! the federated issuer's is fetched on an anonymous token request. Without a rule Accord would
//! carry requests into the network it runs in (a cloud's metadata service at 169.254.169.254, an
//! admin console on 10.0.0.5) and its error messages ("answered HTTP 404", "cannot connect")
//! would map that network for the caller. So by default requests go to public addresses only;
//! the operator lets them reach loopback and private networks for CI and a vendor's own network
//! (`--allow-private-network-callbacks`, implied by `--test-mode`; loopback alone by
//! `--allow-http-notification-urls`). Link-local, multicast and unspecified addresses are never
//! reached.
//!
//! How it holds: a name is resolved by [`GuardedResolver`], which drops the addresses the policy
//! refuses at connect time (so a name that changes its answer between a check and the request
//! cannot slip through), and a URL whose host is an address (which no resolver sees) is checked
//! by [`Egress::request`] itself. Redirects are not followed and proxies from the environment
//! are not used: both would take the request somewhere not checked.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// How long [`Egress::check`] waits for a name to resolve.
const CHECK_LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

/// What kind of network an address is on, as the policy sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reach {
    Public,
    Loopback,
    /// RFC 1918, carrier-grade NAT (100.64.0.0/10), IPv6 unique-local (fc00::/7).
    Private,
    /// Link-local (cloud metadata services), multicast, broadcast, unspecified, reserved.
    Never,
}

/// Which networks besides the public internet Accord's requests may reach.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EgressPolicy {
    pub loopback: bool,
    pub private: bool,
}

impl EgressPolicy {
    pub fn allows(&self, ip: IpAddr) -> bool {
        match reach(ip) {
            Reach::Public => true,
            Reach::Loopback => self.loopback,
            Reach::Private => self.private,
            Reach::Never => false,
        }
    }
}

/// Why a request to `host` is refused, for whoever chose the URL (names the switch that would
/// allow it, never what answered there).
fn refusal(host: &str) -> String {
    format!(
        "{host} is on a loopback, private or link-local network, which this server does not call \
         (an operator allows loopback and private networks with --allow-private-network-callbacks)"
    )
}

/// The network `ip` is on. IPv4 addresses written as IPv6 (mapped, or NAT64's well-known
/// prefix) count as the IPv4 address they carry.
pub fn reach(ip: IpAddr) -> Reach {
    match ip {
        IpAddr::V4(v4) => reach_v4(v4),
        IpAddr::V6(v6) => reach_v6(v6),
    }
}

fn reach_v4(ip: Ipv4Addr) -> Reach {
    let [a, b, ..] = ip.octets();
    if ip.is_loopback() {
        Reach::Loopback
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Reach::Private
    } else if a == 0 || ip.is_link_local() || ip.is_multicast() || a >= 240 {
        Reach::Never
    } else {
        Reach::Public
    }
}

fn reach_v6(ip: Ipv6Addr) -> Reach {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return reach_v4(v4);
    }
    let s = ip.segments();
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        let [a, b] = s[6].to_be_bytes();
        let [c, d] = s[7].to_be_bytes();
        return reach_v4(Ipv4Addr::new(a, b, c, d));
    }
    if ip.is_loopback() {
        Reach::Loopback
    } else if s[0] & 0xfe00 == 0xfc00 {
        Reach::Private
    } else if ip.is_unspecified() || ip.is_multicast() || s[0] & 0xffc0 == 0xfe80 || s[..6] == [0; 6] {
        // The last: IPv4-compatible addresses (deprecated), which some stacks still route.
        Reach::Never
    } else {
        Reach::Public
    }
}

/// The one HTTP client for Accord's own requests, bound to a policy. Cheap to clone.
#[derive(Clone)]
pub struct Egress {
    policy: EgressPolicy,
    client: reqwest::Client,
}

impl Egress {
    pub fn new(policy: EgressPolicy) -> Result<Egress, String> {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .dns_resolver(Arc::new(GuardedResolver { policy }))
            .build()
            .map_err(|e| format!("no HTTP client: {e}"))?;
        Ok(Egress { policy, client })
    }

    /// A request to `url` that gives up after `timeout`; refused (with the reason, for the one
    /// who chose the URL) when its host is an address the policy does not reach. Names are
    /// checked when they are resolved, at connect time.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
        timeout: Duration,
    ) -> Result<reqwest::RequestBuilder, String> {
        let parsed = url::Url::parse(url).map_err(|_| "the URL is not valid".to_string())?;
        self.check_literal(&parsed)?;
        Ok(self.client.request(method, parsed).timeout(timeout))
    }

    /// Checks `url`'s host now (resolving a name), so that whoever registers it hears at once
    /// why it would never be called. A name that does not resolve passes (it may later; the
    /// request itself is checked again at connect time).
    pub async fn check(&self, url: &str) -> Result<(), String> {
        let parsed = url::Url::parse(url).map_err(|_| "the URL is not valid".to_string())?;
        if literal_address(&parsed).is_some() {
            return self.check_literal(&parsed);
        }
        let Some(host) = parsed.host_str() else { return Err("the URL has no host".into()) };
        let port = parsed.port_or_known_default().unwrap_or(443);
        // Bounded: a resolver that does not answer must not hold the registration; the request
        // itself has its own timeout and is checked again then.
        let lookup = tokio::time::timeout(CHECK_LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port))).await;
        let Ok(Ok(addrs)) = lookup else { return Ok(()) };
        let addrs: Vec<SocketAddr> = addrs.collect();
        if addrs.is_empty() || addrs.iter().any(|a| self.policy.allows(a.ip())) {
            Ok(())
        } else {
            Err(refusal(host))
        }
    }

    /// Refuses a URL whose host is an address the policy does not reach (names pass here).
    fn check_literal(&self, url: &url::Url) -> Result<(), String> {
        match literal_address(url) {
            Some(ip) if !self.policy.allows(ip) => Err(refusal(&ip.to_string())),
            _ => Ok(()),
        }
    }
}

/// The URL's host when it is an IP address (bracketed for IPv6), which no resolver sees.
fn literal_address(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// A request the policy stopped at connect time (the resolver's error, inside reqwest's).
#[derive(Debug)]
struct Refused(String);

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Refused {}

/// Why a request failed, in words for whoever chose its URL: the policy's refusal when it
/// stopped the request (with the reason), else only whether the host answered in time or at
/// all — never the error's detail, which can describe the network inside.
pub fn failure_reason(e: &reqwest::Error) -> String {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return refused.0.clone();
        }
        source = s.source();
    }
    if e.is_timeout() {
        "no answer in time".into()
    } else if e.is_connect() {
        "cannot connect".into()
    } else {
        "the request failed".into()
    }
}

/// The system resolver, keeping only the addresses the policy reaches.
struct GuardedResolver {
    policy: EgressPolicy,
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let found = tokio::net::lookup_host((host.as_str(), 0)).await?;
            let allowed: Vec<SocketAddr> = found.filter(|a| policy.allows(a.ip())).collect();
            if allowed.is_empty() {
                return Err(Box::new(Refused(refusal(&host))) as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn addresses_fall_on_the_networks_they_belong_to() {
        for (addr, want) in [
            ("93.184.216.34", Reach::Public),
            ("8.8.8.8", Reach::Public),
            ("2606:4700::1111", Reach::Public),
            ("127.0.0.1", Reach::Loopback),
            ("127.255.0.9", Reach::Loopback),
            ("::1", Reach::Loopback),
            ("10.0.0.5", Reach::Private),
            ("172.16.0.1", Reach::Private),
            ("172.31.255.255", Reach::Private),
            ("192.168.1.1", Reach::Private),
            ("100.64.0.1", Reach::Private),
            ("100.127.255.255", Reach::Private),
            ("fd12:3456::1", Reach::Private),
            ("169.254.169.254", Reach::Never),
            ("fe80::1", Reach::Never),
            ("0.0.0.0", Reach::Never),
            ("::", Reach::Never),
            ("224.0.0.1", Reach::Never),
            ("255.255.255.255", Reach::Never),
            ("ff02::1", Reach::Never),
            // IPv4 in IPv6 clothing counts as the IPv4 address.
            ("::ffff:169.254.169.254", Reach::Never),
            ("::ffff:10.1.2.3", Reach::Private),
            ("::ffff:127.0.0.1", Reach::Loopback),
            ("64:ff9b::a9fe:a9fe", Reach::Never),
            ("64:ff9b::808:808", Reach::Public),
            ("::a9fe:a9fe", Reach::Never),
            // Just outside the private ranges.
            ("172.32.0.1", Reach::Public),
            ("100.128.0.1", Reach::Public),
            ("11.0.0.1", Reach::Public),
        ] {
            assert_eq!(reach(ip(addr)), want, "{addr}");
        }
    }

    #[test]
    fn the_policy_opens_loopback_and_private_networks_only_when_asked() {
        let strict = EgressPolicy::default();
        let loopback = EgressPolicy { loopback: true, private: false };
        let open = EgressPolicy { loopback: true, private: true };
        assert!(strict.allows(ip("93.184.216.34")));
        assert!(!strict.allows(ip("127.0.0.1")) && !strict.allows(ip("10.0.0.5")));
        assert!(loopback.allows(ip("::1")) && !loopback.allows(ip("192.168.0.2")));
        assert!(open.allows(ip("127.0.0.1")) && open.allows(ip("10.0.0.5")));
        for never in ["169.254.169.254", "fe80::1", "0.0.0.0"] {
            assert!(!open.allows(ip(never)), "{never}");
        }
    }

    #[tokio::test]
    async fn requests_to_refused_addresses_are_not_sent() {
        let egress = Egress::new(EgressPolicy::default()).unwrap();
        let timeout = Duration::from_secs(1);
        for url in ["https://169.254.169.254/latest/meta-data/", "https://10.0.0.5/", "http://[::1]:9/"] {
            let err = egress.request(reqwest::Method::POST, url, timeout).unwrap_err();
            assert!(err.contains("does not call"), "{url}: {err}");
        }
        // A name that resolves to loopback only: refused when checked, and at connect time.
        let err = egress.check("https://localhost:9/hook").await.unwrap_err();
        assert!(err.contains("localhost is on a loopback"), "{err}");
        let sent = egress.request(reqwest::Method::GET, "https://localhost:9/hook", timeout).unwrap().send().await;
        assert!(failure_reason(&sent.unwrap_err()).contains("localhost is on a loopback"));
        // Allowed when the operator opens loopback.
        let open = Egress::new(EgressPolicy { loopback: true, private: false }).unwrap();
        open.check("https://localhost:9/hook").await.unwrap();
        assert!(open.request(reqwest::Method::GET, "http://127.0.0.1:9/", timeout).is_ok());
    }
}
