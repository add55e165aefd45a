//! Where a request comes from, for the audit trail and the per-source limits.
//!
//! The peer's address, unless the peer is a trusted proxy (`COACHGRAPH_TRUSTED_PROXIES`):
//! then `X-Forwarded-For`, read from the right (what the nearest proxy saw) past every
//! trusted hop. A client cannot choose its own address by sending the header: from an
//! untrusted peer it is ignored. IPv6 clients count by their /64, the block one
//! subscriber gets: rotating addresses within it buys no fresh limits.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;
use ipnet::IpNet;

/// The client's address, as text.
pub fn source(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &[IpNet]) -> Option<String> {
    let peer = peer?.ip();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if is_trusted(&peer) {
        let forwarded: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        // From the right: each trusted hop vouches for the one before it. An entry that is
        // not an address ends the walk at the last hop that could be believed.
        for hop in forwarded.iter().rev() {
            let Ok(hop) = hop.parse::<IpAddr>() else { break };
            client = hop;
            if !is_trusted(&hop) {
                break;
            }
        }
    }
    Some(
        match client {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(client, IpAddr::V4),
            v4 => v4,
        }
        .to_string(),
    )
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;
    use crate::config::parse_proxy;

    fn headers(xff: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("x-forwarded-for", HeaderValue::from_str(xff).expect("header"));
        h
    }

    fn peer(ip: &str) -> Option<SocketAddr> {
        Some(SocketAddr::new(ip.parse().expect("ip"), 443))
    }

    #[test]
    fn forwarded_for_counts_only_from_a_trusted_proxy() {
        let trusted = [parse_proxy("10.0.0.0/8").expect("net")];
        let h = headers("198.51.100.9, 203.0.113.7");
        assert_eq!(source(peer("10.1.2.3"), &h, &trusted).as_deref(), Some("203.0.113.7"));
        assert_eq!(source(peer("192.0.2.1"), &h, &trusted).as_deref(), Some("192.0.2.1"), "a client's own header");
        assert_eq!(source(peer("192.0.2.1"), &h, &[]).as_deref(), Some("192.0.2.1"));
    }

    #[test]
    fn trusted_hops_are_skipped_from_the_right() {
        let trusted = [parse_proxy("10.0.0.1").expect("ip"), parse_proxy("10.0.0.2").expect("ip")];
        let h = headers("6.6.6.6, 203.0.113.7, 10.0.0.2");
        assert_eq!(source(peer("10.0.0.1"), &h, &trusted).as_deref(), Some("203.0.113.7"), "not the spoofed left end");
        let garbage = headers("not an address");
        assert_eq!(source(peer("10.0.0.1"), &garbage, &trusted).as_deref(), Some("10.0.0.1"));
        let port = headers("6.6.6.6, 203.0.113.7:5555");
        assert_eq!(source(peer("10.0.0.1"), &port, &trusted).as_deref(), Some("10.0.0.1"), "never the spoofable left");
    }

    #[test]
    fn mapped_ipv4_is_ipv4() {
        assert_eq!(source(peer("::ffff:192.0.2.5"), &HeaderMap::new(), &[]).as_deref(), Some("192.0.2.5"));
        assert!(parse_proxy("nonsense").is_err());
    }
}
