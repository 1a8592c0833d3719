//! Cross-site request protection for the state-changing actions (`refresh_data`,
//! `update_pricing`, `clear_cache`): a random token in a `SameSite=Strict`, `HttpOnly`
//! cookie, repeated in the page's links and compared in constant time.
//!
//! A cookie rather than server state, because a CGI process keeps nothing between
//! requests and the PHP session file is never written. Pure: the random bytes are passed
//! in.

use cookie::{Cookie, SameSite};

/// The cookie that carries the token.
pub const COOKIE_NAME: &str = "tokenusage_csrf";
/// Random bytes in a token (hex-encoded: 64 characters).
pub const TOKEN_BYTES: usize = 32;

/// Makes a token from random bytes.
pub fn token_from_bytes(bytes: &[u8; TOKEN_BYTES]) -> String {
    crate::digest::hex(bytes)
}

/// The token in the request's cookies, if it is well formed (the first cookie of the
/// name, like PHP reads cookies).
pub fn token_from_cookies(cookie_header: &str) -> Option<String> {
    first_cookie(cookie_header, COOKIE_NAME).filter(|value| is_well_formed(value))
}

/// The first cookie called `name` in a `Cookie` header; malformed pairs are skipped.
pub fn first_cookie(cookie_header: &str, name: &str) -> Option<String> {
    Cookie::split_parse(cookie_header)
        .filter_map(Result::ok)
        .find(|cookie| cookie.name() == name)
        .map(|cookie| cookie.value().to_string())
}

fn is_well_formed(token: &str) -> bool {
    token.len() == TOKEN_BYTES * 2 && token.bytes().all(|b| b.is_ascii_hexdigit())
}

/// True when the token sent with an action matches the cookie's, compared in constant
/// time so the comparison leaks nothing about where they differ.
pub fn tokens_match(expected: &str, given: &str) -> bool {
    let (a, b) = (expected.as_bytes(), given.as_bytes());
    if a.len() != b.len() || !is_well_formed(expected) {
        return false;
    }
    a.iter().zip(b).fold(0u8, |diff, (x, y)| diff | (x ^ y)) == 0
}

/// The `Set-Cookie` value for a new token, scoped to the page's folder.
pub fn set_cookie(token: &str, path: &str, https: bool) -> String {
    Cookie::build((COOKIE_NAME, token.to_string()))
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

    const TOKEN: &str = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";

    #[test]
    fn a_token_is_64_hex_characters() {
        let token = token_from_bytes(&[0xab; TOKEN_BYTES]);
        assert_eq!(token.len(), 64);
        assert!(is_well_formed(&token));
    }

    #[test]
    fn the_first_well_formed_cookie_of_the_name_is_the_token() {
        let header = format!("PHPSESSID=abc; {COOKIE_NAME}={TOKEN}; {COOKIE_NAME}=other");
        assert_eq!(token_from_cookies(&header).as_deref(), Some(TOKEN));
        assert_eq!(token_from_cookies(&format!("{COOKIE_NAME}=short")), None);
        assert_eq!(token_from_cookies("garbage;;=;"), None);
    }

    #[test]
    fn only_the_same_token_matches() {
        assert!(tokens_match(TOKEN, TOKEN));
        assert!(!tokens_match(TOKEN, &TOKEN.replace('f', "e")));
        assert!(!tokens_match(TOKEN, ""));
        assert!(!tokens_match("", ""));
    }

    #[test]
    fn the_cookie_is_http_only_strict_and_secure_over_https() {
        let cookie = set_cookie(TOKEN, "/ct/admin/", true);
        assert!(cookie.starts_with(&format!("{COOKIE_NAME}={TOKEN}")));
        for part in ["HttpOnly", "SameSite=Strict", "Secure", "Path=/ct/admin/"] {
            assert!(cookie.contains(part), "{cookie} lacks {part}");
        }
        assert!(!set_cookie(TOKEN, "/", false).contains("Secure"));
    }
}
