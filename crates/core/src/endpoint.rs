//! Whether a URL keeps what is sent to it on this machine or encrypted: tokens and issued
//! credentials may cross plain http only to loopback (tests, local emulators).

/// The host of an `http://` URL (a bracketed IPv6 host keeps its brackets), or `None` for any
/// other scheme.
pub fn plain_http_host(url: &str) -> Option<&str> {
    let rest = url.trim().strip_prefix("http://")?;
    // The host ends at the path, the query or the port; a bracketed IPv6 host ends at `]`.
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let authority = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    Some(match authority.strip_prefix('[') {
        Some(v6) => match v6.split_once(']') {
            Some((h, after)) if after.is_empty() || after.starts_with(':') => {
                &authority[..h.len() + 2]
            }
            _ => authority,
        },
        None => authority.split(':').next().unwrap_or(""),
    })
}

/// Hosts whose traffic never leaves the machine.
pub fn is_loopback_host(host: &str) -> bool {
    matches!(
        host.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "[::1]"
    )
}

/// The host, when `url` would send in clear text to another machine.
pub fn cleartext_off_machine(url: &str) -> Option<&str> {
    plain_http_host(url).filter(|h| !is_loopback_host(h))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http_off_loopback_is_cleartext() {
        for url in [
            "https://sts.eu-west-1.amazonaws.com",
            "http://127.0.0.1:5000",
            "http://localhost:4566/",
            "http://LOCALHOST",
            "http://[::1]:8080/x",
        ] {
            assert_eq!(cleartext_off_machine(url), None, "{url}");
        }
        for (url, host) in [
            ("http://10.0.0.5:4566", "10.0.0.5"),
            ("http://localstack:4566", "localstack"),
            ("http://127.0.0.1.evil.example/", "127.0.0.1.evil.example"),
            ("http://[::1].evil/", "[::1].evil"),
            ("http://user@evil.example:80", "evil.example"),
            ("http://[fe80::1]:80", "[fe80::1]"),
        ] {
            assert_eq!(cleartext_off_machine(url), Some(host), "{url}");
        }
    }
}
