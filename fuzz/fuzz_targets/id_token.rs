//! Fuzzes the unverified ID-token decoder used to explain OIDC failures: any string must give
//! claims or an error, never a panic, and the error must not repeat the token.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rolehop_core::id_token::decode_unverified;
use rolehop_core::secret::secret;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match decode_unverified(&secret(text)) {
        Ok(claims) => {
            let _ = claims.expires_at();
        }
        Err(e) => {
            let msg = e.to_string();
            let t = text.trim();
            // Only a token long enough to be a secret counts; short strings match by chance.
            if t.len() >= 24 {
                assert!(!msg.contains(t), "the error repeats the token: {msg}");
            }
        }
    }
});
