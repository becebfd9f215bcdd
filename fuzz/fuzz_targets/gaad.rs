//! Fuzzes the authorization-details reader (`aws iam get-account-authorization-details`
//! exports) and then the whole audit over what it read, as `rolehop audit --gaad` does.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rolehop_audit::input::gaad::add_export;
use rolehop_audit::model::Estate;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut estate = Estate::default();
    if add_export(&mut estate, "gaad.json", text).is_ok() {
        let _ = rolehop_audit::audit(&estate, 1_767_225_600);
    }
});
