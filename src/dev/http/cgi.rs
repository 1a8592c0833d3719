//! The CGI bridge of the demo's preview: an HTTP request as the CGI meta-variables nginx's
//! `fastcgi_params` would send for it, so the preview calls `app::handle` exactly as
//! FastCGI does. Pure.

use std::path::Path;

use crate::transport::request::Request;

use super::HttpRequest;

/// Builds the CGI meta-variables nginx's `fastcgi_params` would send for `req`, with the
/// page at `script_filename` served as `script_name`.
///
/// Headers become `HTTP_*` (upper-cased, `-` to `_`); like nginx, header names that
/// contain `_` are dropped so `X_Forwarded_For` cannot pose as `X-Forwarded-For`, and
/// repeated headers are joined (`; ` for cookies, `, ` otherwise). `HTTPS` is never set:
/// the preview is plain HTTP.
pub fn cgi_request_from_http(
    req: &HttpRequest,
    script_filename: &Path,
    script_name: &str,
) -> Request {
    let text = |s: &str| s.as_bytes().to_vec();
    let mut params: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut push = |name: &str, value: Vec<u8>| params.push((name.as_bytes().to_vec(), value));

    let host = req
        .header("Host")
        .map(|h| String::from_utf8_lossy(h).into_owned());
    let server_name = host
        .as_deref()
        .map(host_without_port)
        .filter(|h| !h.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| req.local_addr.ip().to_string());

    push("GATEWAY_INTERFACE", text("CGI/1.1"));
    push(
        "SERVER_SOFTWARE",
        text(concat!("tokenusage/", env!("CARGO_PKG_VERSION"))),
    );
    push(
        "SERVER_PROTOCOL",
        text(&format!("HTTP/1.{}", req.minor_version)),
    );
    push("REQUEST_SCHEME", text("http"));
    push("REQUEST_METHOD", text(&req.method));
    push("QUERY_STRING", text(req.query()));
    push("REQUEST_URI", text(&req.target));
    push("DOCUMENT_URI", text(req.path()));
    push("SCRIPT_NAME", text(script_name));
    push(
        "SCRIPT_FILENAME",
        script_filename.as_os_str().as_encoded_bytes().to_vec(),
    );
    push("REMOTE_ADDR", text(&req.remote_addr.ip().to_string()));
    push("REMOTE_PORT", text(&req.remote_addr.port().to_string()));
    push("SERVER_ADDR", text(&req.local_addr.ip().to_string()));
    push("SERVER_PORT", text(&req.local_addr.port().to_string()));
    push("SERVER_NAME", text(&server_name));
    // php-cgi refuses to run without it when force-cgi-redirect is on.
    push("REDIRECT_STATUS", text("200"));
    push(
        "CONTENT_TYPE",
        req.header("Content-Type")
            .map(<[u8]>::to_vec)
            .unwrap_or_default(),
    );
    let content_length = if req.body.is_empty() && req.header("Content-Length").is_none() {
        String::new()
    } else {
        req.body.len().to_string()
    };
    push("CONTENT_LENGTH", text(&content_length));

    let mut joined: Vec<(String, Vec<u8>)> = Vec::new();
    for (name, value) in &req.headers {
        if name.contains('_')
            || name.eq_ignore_ascii_case("Content-Type")
            || name.eq_ignore_ascii_case("Content-Length")
        {
            continue;
        }
        let var = format!("HTTP_{}", name.to_ascii_uppercase().replace('-', "_"));
        match joined.iter_mut().find(|(n, _)| *n == var) {
            Some((_, existing)) => {
                let sep: &[u8] = if var == "HTTP_COOKIE" { b"; " } else { b", " };
                existing.extend_from_slice(sep);
                existing.extend_from_slice(value);
            }
            None => joined.push((var, value.clone())),
        }
    }
    for (name, value) in joined {
        push(&name, value);
    }

    Request {
        params,
        body: req.body.clone(),
    }
}

/// `example.com:8080` -> `example.com`, `[::1]:80` -> `[::1]`.
fn host_without_port(host: &str) -> &str {
    let host = host.trim();
    if host.starts_with('[') {
        return host.find(']').map_or(host, |i| &host[..=i]);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port)
    }

    fn request(target: &str, headers: &[(&str, &str)]) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            target: target.into(),
            minor_version: 1,
            headers: headers
                .iter()
                .map(|(n, v)| (n.to_string(), v.as_bytes().to_vec()))
                .collect(),
            body: Vec::new(),
            remote_addr: addr(50000),
            local_addr: addr(8080),
        }
    }

    #[test]
    fn host_port_is_stripped_for_server_name() {
        assert_eq!(host_without_port("example.com:8080"), "example.com");
        assert_eq!(host_without_port("example.com"), "example.com");
        assert_eq!(host_without_port("[::1]:80"), "[::1]");
    }

    #[test]
    fn cgi_request_carries_nginx_style_meta_variables() {
        let mut req = request(
            "/ct/admin/tokenusage.php?action=export_csv",
            &[
                ("Host", "localhost:8080"),
                ("Cookie", "a=1"),
                ("cookie", "b=2"),
                ("X-Forwarded-For", "10.0.0.1"),
                ("X_Forwarded_For", "spoofed"),
                ("Content-Type", "text/plain"),
            ],
        );
        req.body = b"hello".to_vec();
        let cgi = cgi_request_from_http(
            &req,
            Path::new("/srv/ct/admin/tokenusage.php"),
            "/ct/admin/tokenusage.php",
        );
        assert_eq!(cgi.param("REQUEST_METHOD"), "GET");
        assert_eq!(cgi.query_string(), "action=export_csv");
        assert_eq!(
            cgi.param("REQUEST_URI"),
            "/ct/admin/tokenusage.php?action=export_csv"
        );
        assert_eq!(cgi.param("DOCUMENT_URI"), "/ct/admin/tokenusage.php");
        assert_eq!(cgi.param("SCRIPT_NAME"), "/ct/admin/tokenusage.php");
        assert_eq!(cgi.param("SCRIPT_FILENAME"), "/srv/ct/admin/tokenusage.php");
        assert_eq!(cgi.param("GATEWAY_INTERFACE"), "CGI/1.1");
        assert_eq!(cgi.param("SERVER_PROTOCOL"), "HTTP/1.1");
        assert_eq!(cgi.param("REMOTE_ADDR"), "127.0.0.1");
        assert_eq!(cgi.param("REMOTE_PORT"), "50000");
        assert_eq!(cgi.param("SERVER_ADDR"), "127.0.0.1");
        assert_eq!(cgi.param("SERVER_PORT"), "8080");
        assert_eq!(cgi.param("SERVER_NAME"), "localhost");
        assert_eq!(cgi.param("HTTP_HOST"), "localhost:8080");
        assert_eq!(cgi.cookie_header(), "a=1; b=2");
        assert_eq!(cgi.param("HTTP_X_FORWARDED_FOR"), "10.0.0.1");
        assert_eq!(cgi.param("CONTENT_TYPE"), "text/plain");
        assert_eq!(cgi.param("CONTENT_LENGTH"), "5");
        assert!(cgi.param_bytes("HTTP_CONTENT_TYPE").is_none());
        assert!(!cgi.is_https(), "the preview is plain HTTP");
        assert_eq!(cgi.body, b"hello");
    }

    #[test]
    fn a_posted_form_keeps_its_method_type_length_and_body() {
        let form = "csrf_token=abc%3D&action=refresh_data";
        let mut req = request(
            "/ct/admin/tokenusage.php?action=refresh_data",
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Content-Length", "37"),
            ],
        );
        req.method = "POST".into();
        req.body = form.as_bytes().to_vec();
        let cgi = cgi_request_from_http(&req, Path::new("/x/tokenusage.php"), "/x");
        assert_eq!(cgi.param("REQUEST_METHOD"), "POST");
        assert_eq!(cgi.query_string(), "action=refresh_data");
        assert_eq!(
            cgi.param("CONTENT_TYPE"),
            "application/x-www-form-urlencoded"
        );
        assert_eq!(cgi.param("CONTENT_LENGTH"), form.len().to_string());
        assert!(cgi.param_bytes("HTTP_CONTENT_LENGTH").is_none());
        assert_eq!(cgi.body, form.as_bytes());
    }

    #[test]
    fn without_a_body_content_length_is_empty_and_server_name_falls_back_to_the_address() {
        let cgi = cgi_request_from_http(&request("/p", &[]), Path::new("/p"), "/p");
        assert_eq!(cgi.param("CONTENT_LENGTH"), "");
        assert_eq!(cgi.param("CONTENT_TYPE"), "");
        assert_eq!(cgi.param("SERVER_NAME"), "127.0.0.1");
        assert!(cgi.body.is_empty());
    }

    #[test]
    fn mangled_requests_never_panic_the_mapping() {
        let target = "http://h\u{e9}/a?b=%zz";
        let headers = [
            ("Host", "[::1"),
            ("Content-Length", "3"),
            ("Connection", "close, x"),
            ("X_Y", "z"),
            ("Cookie", "a=\u{e9}"),
        ];
        let mut state: u64 = 42;
        let mut next = || {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            state
        };
        for _ in 0..5_000 {
            let mut req = request(target, &headers);
            let mut raw = req.target.clone().into_bytes();
            for _ in 0..4 {
                let roll = next();
                let at = (roll >> 33) as usize % raw.len();
                raw[at] = (roll >> 17) as u8;
                let (_, value) = &mut req.headers[(roll >> 40) as usize % headers.len()];
                let at = (roll >> 20) as usize % value.len().max(1);
                if let Some(byte) = value.get_mut(at) {
                    *byte = (roll >> 9) as u8;
                }
            }
            req.target = String::from_utf8_lossy(&raw).into_owned();
            let cgi = cgi_request_from_http(&req, Path::new("/x"), "/x");
            assert_eq!(cgi.param("SCRIPT_NAME"), "/x");
        }
    }
}
