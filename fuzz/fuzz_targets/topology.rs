//! Fuzzes the topology parser and validator: any text must give a topology or diagnostics,
//! never a panic. Inline policy files resolve to a fixed small policy so that path runs too.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rolehop_core::topology::Topology;

fuzz_target!(|data: &[u8]| {
    let Ok(src) = std::str::from_utf8(data) else {
        return;
    };
    let mut read = |name: &str| -> Result<String, String> {
        if name.ends_with(".json") {
            Ok(r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"s3:GetObject","Resource":"*"}]}"#.to_owned())
        } else {
            Err(format!("no file `{name}`"))
        }
    };
    if let Err(e) = Topology::parse("rolehop.toml", src, &mut read) {
        // Rendering the diagnostics walks spans back into the source: exercise it too.
        let _ = e.to_string();
    }
});
