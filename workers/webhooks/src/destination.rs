//! Where a webhook may be delivered. An endpoint is an organizer's URL,
//! so it must not reach what only the platform can: loopback, private,
//! link-local (cloud metadata lives there), shared and reserved addresses
//! are refused unless the deployment allows private networks (tests, a
//! compose file on one host). The check runs at registration and again
//! before every delivery, since a name may resolve elsewhere later.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use url::Url;

/// Longest URL an endpoint may have.
pub const URL_MAX: usize = 2_000;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum Refusal {
    #[error("is not an absolute http:// or https:// URL of at most {URL_MAX} characters")]
    NotAUrl,
    #[error("must not carry a user name or password")]
    Credentials,
    #[error("does not resolve")]
    Unresolved,
    #[error("resolves to {0}, a loopback, private, link-local or reserved address")]
    Private(IpAddr),
}

/// Where deliveries to `url` may go: its resolved addresses, each checked.
pub async fn resolve(url: &str, allow_private: bool) -> Result<Vec<SocketAddr>, Refusal> {
    let url = parse(url)?;
    let host = url.host_str().ok_or(Refusal::NotAUrl)?;
    let port = url.port_or_known_default().ok_or(Refusal::NotAUrl)?;
    // An IPv6 literal comes bracketed; the resolver wants it bare.
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addresses: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|_| Refusal::Unresolved)?
        .collect();
    if addresses.is_empty() {
        return Err(Refusal::Unresolved);
    }
    if !allow_private {
        // One private answer is enough to refuse: a name that resolves to
        // both is either a mistake or an attempt.
        if let Some(private) = addresses
            .iter()
            .map(SocketAddr::ip)
            .find(|ip| !is_public(*ip))
        {
            return Err(Refusal::Private(private));
        }
    }
    Ok(addresses)
}

/// The URL, if it is one an endpoint may have.
pub fn parse(text: &str) -> Result<Url, Refusal> {
    if text.len() > URL_MAX {
        return Err(Refusal::NotAUrl);
    }
    let url = Url::parse(text).map_err(|_| Refusal::NotAUrl)?;
    if !matches!(url.scheme(), "http" | "https") || url.host().is_none() {
        return Err(Refusal::NotAUrl);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(Refusal::Credentials);
    }
    Ok(url)
}

/// Whether `ip` is an address on the public internet.
pub fn is_public(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_public_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_public_v4(v4),
            None => is_public_v6(v6),
        },
    }
}

fn is_public_v4(ip: Ipv4Addr) -> bool {
    let [a, b, ..] = ip.octets();
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_documentation()
        || ip.is_multicast()
        || a == 0
        // Shared address space (carrier-grade NAT), 100.64.0.0/10.
        || (a == 100 && (64..128).contains(&b))
        // Protocol assignments, 192.0.0.0/24.
        || (a == 192 && b == 0 && ip.octets()[2] == 0)
        // Benchmarking, 198.18.0.0/15.
        || (a == 198 && (18..20).contains(&b))
        // Reserved, 240.0.0.0/4.
        || a >= 240)
}

fn is_public_v6(ip: Ipv6Addr) -> bool {
    let first = ip.segments()[0];
    !(ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        // Unique local, fc00::/7.
        || (first & 0xfe00) == 0xfc00
        // Link-local, fe80::/10.
        || (first & 0xffc0) == 0xfe80
        // Documentation, 2001:db8::/32.
        || (first == 0x2001 && ip.segments()[1] == 0x0db8))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_public_addresses_are_public() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "198.18.0.1",
            "240.0.0.1",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "2001:db8::1",
        ] {
            let ip: IpAddr = private.parse().expect("an address");
            assert!(!is_public(ip), "{private} is not public");
        }
        for public in [
            "93.184.216.34",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
        ] {
            let ip: IpAddr = public.parse().expect("an address");
            assert!(is_public(ip), "{public} is public");
        }
    }

    #[test]
    fn only_plain_http_urls_without_credentials_are_endpoints() {
        assert!(parse("https://hooks.example.com/eventsys").is_ok());
        assert_eq!(parse("ftp://example.com/").err(), Some(Refusal::NotAUrl));
        assert_eq!(parse("/relative").err(), Some(Refusal::NotAUrl));
        assert_eq!(
            parse("https://user:pw@example.com/").err(),
            Some(Refusal::Credentials)
        );
        assert_eq!(
            parse(&format!("https://example.com/{}", "a".repeat(URL_MAX))).err(),
            Some(Refusal::NotAUrl)
        );
    }

    #[tokio::test]
    async fn loopback_is_refused_unless_private_networks_are_allowed() {
        for url in [
            "http://127.0.0.1:9/",
            "http://localhost:9/",
            "http://[::1]:9/",
        ] {
            assert!(
                matches!(resolve(url, false).await, Err(Refusal::Private(_))),
                "{url}"
            );
        }
        let allowed = resolve("http://127.0.0.1:9/", true).await;
        assert_eq!(allowed.ok().map(|a| a.len()), Some(1));
    }
}
