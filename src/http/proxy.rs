//! The proxy of the environment, as curl and most HTTP clients read it.

use crate::sink::redact;

/// The proxy a report goes through: `http://` or `https://` host and port,
/// the user name and password decoded, and the hosts of `NO_PROXY`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct EnvProxy {
    /// `scheme://host:port`, nothing else.
    url: url::Url,
    username: Option<String>,
    password: Option<String>,
    no_proxy: String,
}

impl EnvProxy {
    #[cfg(test)]
    pub(crate) fn host(&self) -> &str {
        self.url.host_str().unwrap_or_default()
    }

    #[cfg(test)]
    pub(crate) fn port(&self) -> u16 {
        self.url.port_or_known_default().unwrap_or_default()
    }

    #[cfg(test)]
    pub(crate) fn scheme(&self) -> &str {
        self.url.scheme()
    }

    /// The proxy for reqwest, for every scheme (the endpoint's scheme chose
    /// it, and redirects stay within the endpoint's origin), with its
    /// credentials, and not for the hosts of `NO_PROXY` (reqwest's matching:
    /// a name and its subdomains, `.name` its subdomains, an address or a
    /// CIDR block, `*` every host).
    pub(crate) fn to_reqwest(&self) -> Result<reqwest::Proxy, String> {
        let mut proxy = reqwest::Proxy::all(self.url.as_str()).map_err(|_| {
            format!(
                "the proxy in the environment ({}) is not a usable proxy URL",
                redact(self.url.as_str())
            )
        })?;
        if let Some(user) = &self.username {
            proxy = proxy.basic_auth(user, self.password.as_deref().unwrap_or_default());
        }
        Ok(proxy.no_proxy(reqwest::NoProxy::from_string(&self.no_proxy)))
    }
}

/// The proxy for `url` from the environment, as curl and most HTTP clients
/// read it: `HTTPS_PROXY` for https, `HTTP_PROXY` for http, else `ALL_PROXY`
/// (upper case first, then lower case; a value of blanks is unset), with
/// `NO_PROXY`'s hosts reached directly. An `http://` or `https://` proxy
/// (`http://` when the value names none); one that does not parse, or of
/// another scheme, is an error that never shows it.
pub(crate) fn proxy_from_env(
    url: &url::Url,
    env: impl Fn(&str) -> Option<String>,
) -> Result<Option<EnvProxy>, String> {
    let var = |name: &str| {
        env(name)
            .or_else(|| env(&name.to_ascii_lowercase()))
            .filter(|v| !v.trim().is_empty())
    };
    let scheme_var = if url.scheme() == "https" {
        "HTTPS_PROXY"
    } else {
        "HTTP_PROXY"
    };
    let Some(raw) = var(scheme_var).or_else(|| var("ALL_PROXY")) else {
        return Ok(None);
    };
    let invalid = || {
        format!(
            "the proxy in the environment ({}) is not a usable proxy URL",
            redact(&raw)
        )
    };
    let with_scheme = if raw.contains("://") {
        raw.trim().to_string()
    } else {
        format!("http://{}", raw.trim())
    };
    let parsed = url::Url::parse(&with_scheme).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
        return Err(invalid());
    }
    let decode = |s: &str| {
        percent_encoding::percent_decode_str(s)
            .decode_utf8_lossy()
            .into_owned()
    };
    let username = (!parsed.username().is_empty()).then(|| decode(parsed.username()));
    let password = username.as_ref().and(parsed.password()).map(decode);
    let mut bare = parsed.clone();
    let _ = bare.set_username("");
    let _ = bare.set_password(None);
    bare.set_path("");
    bare.set_query(None);
    bare.set_fragment(None);
    Ok(Some(EnvProxy {
        url: bare,
        username,
        password,
        no_proxy: var("NO_PROXY").unwrap_or_default(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn proxy_for(url: &str, env: &[(&str, &str)]) -> Result<Option<EnvProxy>, String> {
        let env: std::collections::HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        proxy_from_env(&url::Url::parse(url).unwrap(), |k| env.get(k).cloned())
    }

    #[test]
    fn the_proxy_is_the_schemes_then_all_proxy_upper_case_first() {
        let https = "https://collector.example/r";
        let http = "http://collector.example/r";
        let both: &[(&str, &str)] = &[
            ("HTTPS_PROXY", "s.example:1"),
            ("HTTP_PROXY", "h.example:2"),
        ];
        let lower: &[(&str, &str)] =
            &[("https_proxy", "l.example:3"), ("ALL_PROXY", "a.example:4")];
        let upper_wins: &[(&str, &str)] = &[("HTTPS_PROXY", "u.example:5"), ("https_proxy", "x:6")];
        // (endpoint, environment, the proxy's host:port); empty is unset.
        let cases = [
            (https, both, Some("s.example:1")),
            (http, both, Some("h.example:2")),
            (https, lower, Some("l.example:3")),
            (http, lower, Some("a.example:4")),
            (https, upper_wins, Some("u.example:5")),
            (https, &[("HTTPS_PROXY", " ")], None),
            (https, &[], None),
        ];
        for (url, env, expected) in cases {
            let found = proxy_for(url, env)
                .unwrap()
                .map(|p| format!("{}:{}", p.host(), p.port()));
            assert_eq!(found.as_deref(), expected, "{url} {env:?}");
        }
    }

    #[test]
    fn the_proxys_user_and_password_are_decoded_and_never_shown() {
        let p = proxy_for(
            "https://collector.example/r",
            &[("HTTPS_PROXY", "http://us%20er:p%40ss@proxy.example:3128")],
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.scheme(), "http");
        assert_eq!((p.host(), p.port()), ("proxy.example", 3128));
        assert_eq!(
            (p.username.as_deref(), p.password.as_deref()),
            (Some("us er"), Some("p@ss"))
        );
        let bad = proxy_for(
            "https://collector.example/r",
            &[("HTTPS_PROXY", "ftp://user:SECRET@proxy.example/")],
        )
        .unwrap_err();
        assert_eq!(
            bad,
            "the proxy in the environment (ftp://proxy.example/) is not a usable proxy URL"
        );
    }
}
