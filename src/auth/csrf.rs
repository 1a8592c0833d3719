//! Cross-site request protection for the state-changing actions (`refresh_data`,
//! `update_pricing`, `clear_cache`).
//!
//! The page's buttons are forms that POST a token; the token is an HMAC, with the
//! installation's secret, of the admin's session (its session cookie, or the web server's
//! user) and a random value in a `SameSite=Strict`, `HttpOnly` cookie of this browser
//! (`__Host-` over HTTPS). A cookie planted from a sibling subdomain therefore chooses no
//! valid token, and the token never stands in a URL, where access logs would keep it.
//! A cookie and an HMAC rather than server state, because a CGI process keeps nothing
//! between requests and the PHP session file is never written. Pure: the random bytes and
//! the secret are passed in.

use cookie::{Cookie, SameSite};

use crate::data::secret::Secret;
use crate::data::url::query_pairs;

/// The cookie that carries this browser's random value over plain HTTP.
pub const COOKIE_NAME: &str = "tokenusage_csrf";
/// The same over HTTPS: a `__Host-` cookie is Secure, for the whole host and no other,
/// so neither plain HTTP nor a sibling subdomain can set it.
pub const HTTPS_COOKIE_NAME: &str = "__Host-tokenusage_csrf";
/// Random bytes in a browser's value (hex-encoded: 64 characters).
pub const NONCE_BYTES: usize = 32;

/// The cookie's name for a request over HTTPS or not.
pub fn cookie_name(https: bool) -> &'static str {
    if https {
        HTTPS_COOKIE_NAME
    } else {
        COOKIE_NAME
    }
}

/// A browser's random value from random bytes.
pub fn nonce_from_bytes(bytes: &[u8; NONCE_BYTES]) -> String {
    crate::data::digest::hex(bytes)
}

/// The browser's value in the request's cookies, if well formed (the first cookie of the
/// name, like PHP reads cookies).
pub fn nonce_from_cookies(cookie_header: &str, https: bool) -> Option<String> {
    first_cookie(cookie_header, cookie_name(https)).filter(|value| is_well_formed(value))
}

/// The token the page's forms carry for this session and browser.
pub fn token(secret: &Secret, session: &str, nonce: &str) -> String {
    secret.sign("csrf", &[session, nonce])
}

/// The `token` field of a POSTed form body (`application/x-www-form-urlencoded`).
pub fn token_from_form(body: &[u8]) -> Option<String> {
    let body = std::str::from_utf8(body).ok()?;
    query_pairs(body)
        .find(|(name, _)| name == "token")
        .map(|(_, value)| value)
}

/// The first cookie called `name` in a `Cookie` header; malformed pairs are skipped.
pub fn first_cookie(cookie_header: &str, name: &str) -> Option<String> {
    Cookie::split_parse(cookie_header)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_string())
}

fn is_well_formed(token: &str) -> bool {
    token.len() == NONCE_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True when the token sent with an action is the expected one, compared in constant
/// time so the comparison leaks nothing about where they differ.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() || !is_well_formed(expected) {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The `Set-Cookie` value for a browser's new value: over HTTPS a `__Host-` cookie (which
/// must have `Path=/`), else scoped to the page's folder.
pub fn set_cookie(nonce: &str, folder: &str, https: bool) -> String {
    let path = if https { "/" } else { folder };
    Cookie::build((cookie_name(https), nonce.to_string()))
        .path(path.to_string())
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(https)
        .build()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    const NONCE: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    fn secret(byte: u8) -> Secret {
        Secret::from_bytes([byte; 32])
    }

    #[test]
    fn a_nonce_is_64_hex_characters() {
        let nonce = nonce_from_bytes(&[0xab; NONCE_BYTES]);
        assert_eq!(nonce.len(), 64);
        assert!(is_well_formed(&nonce));
    }

    #[test]
    fn the_first_well_formed_cookie_of_the_name_is_the_nonce() {
        let header = format!("PHPSESSID=abc; {COOKIE_NAME}={NONCE}; {COOKIE_NAME}=other");
        assert_eq!(nonce_from_cookies(&header, false).as_deref(), Some(NONCE));
        assert_eq!(
            nonce_from_cookies(&format!("{COOKIE_NAME}=short"), false),
            None
        );
        assert_eq!(nonce_from_cookies("garbage;;=;", false), None);
    }

    #[test]
    fn over_https_only_the_host_prefixed_cookie_counts() {
        let plain = format!("{COOKIE_NAME}={NONCE}");
        assert_eq!(nonce_from_cookies(&plain, true), None);
        let host = format!("{HTTPS_COOKIE_NAME}={NONCE}");
        assert_eq!(nonce_from_cookies(&host, true).as_deref(), Some(NONCE));
    }

    #[test]
    fn the_token_is_bound_to_the_session_the_browser_and_the_secret() {
        let token = token(&secret(1), "session-a", NONCE);
        assert!(tokens_match(
            &token,
            &super::token(&secret(1), "session-a", NONCE)
        ));
        // A planted cookie knows the nonce, not the secret: no other session's token fits.
        assert!(!tokens_match(
            &token,
            &super::token(&secret(1), "session-b", NONCE)
        ));
        assert!(!tokens_match(
            &token,
            &super::token(&secret(2), "session-a", NONCE)
        ));
        assert!(!tokens_match(&token, NONCE));
        assert!(!tokens_match(&token, ""));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn the_token_comes_from_a_posted_form() {
        assert_eq!(
            token_from_form(b"a=1&token=abc%20d&token=second").as_deref(),
            Some("abc d")
        );
        assert_eq!(token_from_form(b"a=1"), None);
        assert_eq!(token_from_form(b"\xff\xfe"), None);
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_host_prefixed_over_https() {
        let cookie = set_cookie(NONCE, "/ct/admin/", true);
        assert!(cookie.starts_with(&format!("{HTTPS_COOKIE_NAME}={NONCE}")));
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/"] {
            assert!(cookie.contains(part), "{cookie} lacks {part}");
        }
        assert!(!cookie.contains("Path=/ct"), "{cookie}");
        let plain = set_cookie(NONCE, "/ct/admin/", false);
        assert!(plain.starts_with(&format!("{COOKIE_NAME}={NONCE}")));
        assert!(plain.contains("Path=/ct/admin/") && !plain.contains("Secure"));
    }
}
