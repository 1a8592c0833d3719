//! Bytes as lowercase hex text: md5 digests (cache file names, the credentials'
//! fingerprint) and CSRF tokens. Pure.

use std::fmt::Write;

use md5::{Digest, Md5};

/// `bytes` as two lowercase hex digits each.
pub fn hex(bytes: &[u8]) -> String {
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// md5 of `text` as 32 lowercase hex digits, like PHP's `md5()`.
pub fn md5_hex(text: &str) -> String {
    hex(&Md5::digest(text.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn md5_hex_matches_php() {
        // php -r 'echo md5("example.com");'
        assert_eq!(md5_hex("example.com"), "5ababd603b22780302dd8d83498e5172");
        assert_eq!(hex(&[0, 15, 255]), "000fff");
    }
}
