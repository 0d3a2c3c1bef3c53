//! The client's address behind trusted proxies: `X-Forwarded-For`, or RFC 7239 `Forwarded`
//! when no `X-Forwarded-For` was sent, both believed only from a trusted peer and walked from
//! the right while the hops are trusted.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

use crate::config::IpNet;

/// The client of a request that arrived from `peer`. A peer that is not a trusted proxy is
/// the client itself. Behind a trusted one, `X-Forwarded-For` wins when both headers came:
/// common gateways append to it and pass a client's own `Forwarded` on untouched, so
/// believing that one would let any client choose its address.
pub fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|n| n.contains(ip.to_canonical()));
    if !is_trusted(peer) {
        return peer;
    }
    let hops: Vec<Option<IpAddr>> = if headers.contains_key("x-forwarded-for") {
        headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .filter_map(|s| s.trim().parse().ok())
            .map(Some)
            .collect()
    } else {
        headers
            .get_all("forwarded")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(forwarded_for)
            .collect()
    };
    let mut client = peer;
    for hop in hops.into_iter().rev() {
        // An obfuscated or unknown node cannot be counted, nor trusted to have told the
        // truth about the hops before it: the client is the nearest address known.
        let Some(hop) = hop else { break };
        client = hop;
        if !is_trusted(hop) {
            break;
        }
    }
    client
}

/// The `for=` node of each element of one `Forwarded` field value, in order: `None` for an
/// element without one, or whose node is obfuscated (`_hidden`), `unknown` or unreadable.
pub fn forwarded_for(value: &str) -> Vec<Option<IpAddr>> {
    split_outside_quotes(value, ',')
        .into_iter()
        .map(|element| {
            split_outside_quotes(element, ';')
                .into_iter()
                .filter_map(|pair| pair.split_once('='))
                .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, node)| node_ip(node.trim()))
        })
        .collect()
}

/// A node (RFC 7239 section 6): `192.0.2.1`, `"192.0.2.1:80"`, `"[2001:db8::1]"`,
/// `"[2001:db8::1]:443"`; a quoted string may escape characters with `\`.
fn node_ip(node: &str) -> Option<IpAddr> {
    let unquoted;
    let node = match node.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) => {
            unquoted = unescape(inner);
            unquoted.as_str()
        }
        None => node,
    };
    if let Some(rest) = node.strip_prefix('[') {
        // `[v6]` or `[v6]:port`.
        let (v6, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        return v6.parse::<std::net::Ipv6Addr>().ok().map(IpAddr::V6);
    }
    if let Ok(ip) = node.parse::<std::net::Ipv4Addr>() {
        return Some(IpAddr::V4(ip));
    }
    // `v4:port` (an unbracketed IPv6 is not valid here).
    node.parse::<SocketAddr>()
        .ok()
        .filter(SocketAddr::is_ipv4)
        .map(|a| a.ip())
}

/// A port: digits, or an obfuscated port (`_abc`).
fn is_port(port: &str) -> bool {
    !port.is_empty()
        && (port.bytes().all(|b| b.is_ascii_digit())
            || (port.starts_with('_')
                && port[1..]
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'_' || b == b'-')))
}

fn unescape(quoted: &str) -> String {
    let mut out = String::with_capacity(quoted.len());
    let mut chars = quoted.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => out.extend(chars.next()),
            c => out.push(c),
        }
    }
    out
}

/// Splits on `sep` where it is not inside a quoted string.
fn split_outside_quotes(text: &str, sep: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == sep && !quoted => {
                parts.push(&text[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn forwarded_nodes_are_read_as_rfc_7239_writes_them() {
        let cases: [(&str, &[Option<&str>]); 14] = [
            ("for=192.0.2.60", &[Some("192.0.2.60")]),
            ("For=\"192.0.2.60:8080\"", &[Some("192.0.2.60")]),
            ("for=\"[2001:db8:cafe::17]\"", &[Some("2001:db8:cafe::17")]),
            (
                "for=\"[2001:db8:cafe::17]:4711\"",
                &[Some("2001:db8:cafe::17")],
            ),
            (
                "for=\"[2001:db8:cafe::17]:_port\"",
                &[Some("2001:db8:cafe::17")],
            ),
            (
                "for=192.0.2.43, for=198.51.100.17",
                &[Some("192.0.2.43"), Some("198.51.100.17")],
            ),
            (
                "for=192.0.2.60;proto=http;by=203.0.113.43",
                &[Some("192.0.2.60")],
            ),
            (
                "proto=https;host=\"a;b,c\";for=192.0.2.1",
                &[Some("192.0.2.1")],
            ),
            ("for=_hidden, for=_SEVKISEK", &[None, None]),
            ("for=unknown", &[None]),
            ("proto=https", &[None]),
            // An IPv6 address must be quoted and bracketed.
            ("for=2001:db8::1", &[None]),
            ("for=\"2001:db8::1\"", &[None]),
            (
                "for=\"[2001:db8::1]:80x\", for=\"192.0.2.\\1\"",
                &[None, Some("192.0.2.1")],
            ),
        ];
        for (value, want) in cases {
            let want: Vec<Option<IpAddr>> = want.iter().map(|w| w.map(ip)).collect();
            assert_eq!(forwarded_for(value), want, "{value}");
        }
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.append(*name, HeaderValue::from_str(value).unwrap());
        }
        h
    }

    /// The peer, the headers it sent, and the client they make.
    type Case<'a> = (IpAddr, &'a [(&'static str, &'a str)], &'a str);

    #[test]
    fn the_client_is_the_first_untrusted_hop_from_the_right_behind_a_trusted_peer() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1".parse().unwrap()];
        let proxy = ip("10.0.0.2");
        let cases: [Case; 11] = [
            (proxy, &[], "10.0.0.2"),
            (
                ip("203.0.113.9"),
                &[("x-forwarded-for", "192.0.2.1")],
                "203.0.113.9",
            ),
            (
                ip("203.0.113.9"),
                &[("forwarded", "for=192.0.2.1")],
                "203.0.113.9",
            ),
            (
                proxy,
                &[("x-forwarded-for", "198.51.100.1, 192.0.2.1, 10.0.0.7")],
                "192.0.2.1",
            ),
            (
                proxy,
                &[("forwarded", "for=198.51.100.1, for=192.0.2.1, for=10.0.0.7")],
                "192.0.2.1",
            ),
            (
                proxy,
                &[
                    ("forwarded", "for=198.51.100.1"),
                    ("forwarded", "for=\"[2001:db8::5]:1\""),
                ],
                "2001:db8::5",
            ),
            // Both: X-Forwarded-For wins.
            (
                proxy,
                &[
                    ("forwarded", "for=198.51.100.1"),
                    ("x-forwarded-for", "192.0.2.1"),
                ],
                "192.0.2.1",
            ),
            // An obfuscated hop stops the walk at the nearest known address.
            (
                proxy,
                &[("forwarded", "for=198.51.100.1, for=_gw, for=10.0.0.7")],
                "10.0.0.7",
            ),
            (proxy, &[("forwarded", "for=unknown")], "10.0.0.2"),
            (proxy, &[("x-forwarded-for", "garbage")], "10.0.0.2"),
            (
                ip("::ffff:10.0.0.2"),
                &[("x-forwarded-for", "192.0.2.1")],
                "192.0.2.1",
            ),
        ];
        for (peer, pairs, want) in cases {
            assert_eq!(
                client_ip(peer, &headers(pairs), &trusted),
                ip(want),
                "{peer} {pairs:?}"
            );
        }
        let ipv6_loopback = client_ip(
            ip("::1"),
            &headers(&[("forwarded", "for=192.0.2.8")]),
            &trusted,
        );
        assert_eq!(ipv6_loopback, ip("192.0.2.8"));
    }
}
