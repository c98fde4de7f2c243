//! A configuration value that must never reach a log line, `--help` or `/metrics`.

use serde::{Deserialize, Deserializer};

/// A secret string. `Debug` and `Display` print `***`; read it with [`Secret::expose`].
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a value.
    pub fn new(value: impl Into<String>) -> Self {
        Secret(value.into())
    }

    /// The secret itself, for the one place that needs it (a client's credentials).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("***")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret)
    }
}

/// A URL fit for logs and error messages: the password (`redis://:pw@host`) and every query
/// value (a SAS token's `sig=...`) become `***`. An unparseable URL is not echoed at all.
pub fn redact_url(url: &str) -> String {
    let Ok(mut u) = url::Url::parse(url) else {
        return "<unparseable url>".to_owned();
    };
    if u.password().is_some() {
        let _ = u.set_password(Some("***"));
    }
    if u.query().is_some() {
        let names: Vec<String> = u.query_pairs().map(|(k, _)| k.into_owned()).collect();
        u.query_pairs_mut()
            .clear()
            .extend_pairs(names.iter().map(|k| (k.as_str(), "***")));
    }
    u.to_string()
}

/// The credential a URL carries, if any, for messages that must not show it: `"a password"`
/// (`redis://:pw@host`, `redis://user:pw@host`) or `"a query parameter that looks like a
/// credential"` (a SAS token's `sig=`, `password=`, `token=`, `key=`, `secret=`). A bare user
/// name is not a credential. A value that is not a URL is checked for an Azure connection
/// string's `AccountKey=` / `SharedAccessSignature=` and for `scheme://user:password@`.
pub fn url_credential(url: &str) -> Option<&'static str> {
    const PASSWORD: &str = "a password";
    const QUERY: &str = "a query parameter that looks like a credential (e.g. a SAS token's sig=)";
    let Ok(u) = url::Url::parse(url) else {
        let lower = url.to_ascii_lowercase();
        if lower.contains("accountkey=") || lower.contains("sharedaccesssignature=") {
            return Some("an Azure connection string key");
        }
        let userinfo = lower
            .split_once("://")
            .and_then(|(_, rest)| rest.split(['/', '?', '#']).next())
            .and_then(|authority| authority.rsplit_once('@'))
            .map(|(userinfo, _)| userinfo);
        return userinfo.filter(|u| u.contains(':')).map(|_| PASSWORD);
    };
    if u.password().is_some_and(|p| !p.is_empty()) {
        return Some(PASSWORD);
    }
    let secret_name = |name: &str| {
        let name = name.to_ascii_lowercase();
        ["sig", "pass", "pwd", "token", "secret", "key", "credential"]
            .iter()
            .any(|word| name.contains(word))
    };
    u.query_pairs()
        .any(|(name, _)| secret_name(&name))
        .then_some(QUERY)
}

/// Compares a presented secret with the expected one in time that depends only on the expected
/// one's length, so a caller cannot find the secret byte by byte by timing the answers.
pub fn constant_time_eq(expected: &[u8], presented: &[u8]) -> bool {
    let mut diff = u8::from(expected.len() != presented.len());
    for (i, e) in expected.iter().enumerate() {
        diff |= e ^ presented.get(i).copied().unwrap_or(!e);
    }
    std::hint::black_box(diff) == 0
}

impl Secret {
    /// Whether `presented` equals the secret, compared in constant time ([`constant_time_eq`]).
    pub fn matches(&self, presented: &[u8]) -> bool {
        constant_time_eq(self.0.as_bytes(), presented)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_credential_a_url_carries_without_showing_it() {
        for url in [
            "redis://:pw@127.0.0.1:6379/0",
            "rediss://user:pw@h:6380",
            "redis://:pw@h:notaport",
        ] {
            assert_eq!(url_credential(url), Some("a password"), "{url}");
        }
        for url in [
            "https://acct.blob.core.windows.net/raw?sv=2024-01-01&sig=c2VjcmV0",
            "az://raw?sas_token=x",
            "redis://h/0?password=pw",
        ] {
            assert!(
                url_credential(url).is_some_and(|w| w.starts_with("a query parameter")),
                "{url}"
            );
        }
        assert_eq!(
            url_credential("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=k=="),
            Some("an Azure connection string key")
        );
        for url in [
            "redis://127.0.0.1:6379/0",
            "redis://user@h:6379/0",
            "unix:///run/redis.sock",
            "az://raw",
            "abfss://raw@acct.dfs.core.windows.net/",
            "file:///tmp/raw",
            "memory://",
            "redis://h/0?protocol=resp3",
        ] {
            assert_eq!(url_credential(url), None, "{url}");
        }
    }

    #[test]
    fn secrets_compare_equal_only_when_identical() {
        let s = Secret::new("0123456789abcdef");
        assert!(s.matches(b"0123456789abcdef"));
        for wrong in [
            &b""[..],
            b"0123456789abcdeF",
            b"0123456789abcde",
            b"0123456789abcdef0",
        ] {
            assert!(!s.matches(wrong), "{}", String::from_utf8_lossy(wrong));
        }
        assert!(constant_time_eq(b"", b""));
        assert!(!constant_time_eq(b"", b"x"));
    }

    #[test]
    fn never_prints_its_value() {
        let s = Secret::new("hunter2");
        assert!(!format!("{s:?} {s}").contains("hunter2"));
        assert_eq!(s.expose(), "hunter2");
    }

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(
            redact_url("redis://:pw@127.0.0.1:6379/0"),
            "redis://:***@127.0.0.1:6379/0"
        );
        assert!(!redact_url("not a url pw").contains("pw"));
        let sas = redact_url("az://raw?sv=2024-01-01&sig=c2VjcmV0");
        assert_eq!(sas, "az://raw?sv=***&sig=***");
    }
}
