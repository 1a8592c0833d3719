//! A transport-free request: the CGI meta-variables (RFC 3875) as raw bytes plus the body.
//!
//! FastCGI, CGI, the demo's HTTP preview and the tests all build one of these; nothing here
//! performs I/O.

/// One request as every transport hands it to the app (`app::handle`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Request {
    /// CGI meta-variables in arrival order, kept as bytes: a non-UTF-8 value must not drop
    /// the others (the `fastcgi` crate's failure mode).
    pub params: Vec<(Vec<u8>, Vec<u8>)>,
    /// The request body (unused by the page, kept for completeness).
    pub body: Vec<u8>,
}

impl Request {
    /// Builds a request from text pairs; handy in tests and the HTTP preview.
    pub fn from_pairs<'a>(pairs: impl IntoIterator<Item = (&'a str, &'a str)>) -> Self {
        let params = pairs
            .into_iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        Request {
            params,
            body: Vec::new(),
        }
    }

    /// The raw value of a meta-variable; the last one wins, like a CGI environment.
    pub fn param_bytes(&self, name: &str) -> Option<&[u8]> {
        self.params
            .iter()
            .rev()
            .find(|(k, _)| k == name.as_bytes())
            .map(|(_, v)| v.as_slice())
    }

    /// A meta-variable as text (invalid UTF-8 replaced), or "" when absent.
    pub fn param(&self, name: &str) -> String {
        self.param_bytes(name)
            .map(|v| String::from_utf8_lossy(v).into_owned())
            .unwrap_or_default()
    }

    /// The query string, without the `?`.
    pub fn query_string(&self) -> String {
        self.param("QUERY_STRING")
    }

    /// The `Cookie` request header.
    pub fn cookie_header(&self) -> String {
        self.param("HTTP_COOKIE")
    }

    /// True when the client reached the web server over TLS (`HTTPS=on`).
    pub fn is_https(&self) -> bool {
        let https = self.param("HTTPS");
        !https.is_empty() && !https.eq_ignore_ascii_case("off")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn last_param_of_a_name_wins() {
        let req = Request::from_pairs([("QUERY_STRING", "a"), ("QUERY_STRING", "b")]);
        assert_eq!(req.query_string(), "b");
    }

    #[test]
    fn https_off_is_not_https() {
        assert!(!Request::from_pairs([("HTTPS", "off")]).is_https());
        assert!(Request::from_pairs([("HTTPS", "on")]).is_https());
        assert!(!Request::default().is_https());
    }
}
