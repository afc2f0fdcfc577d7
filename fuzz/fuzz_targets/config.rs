//! `aduana.toml` as a user writes it: any text is read or refused with an
//! error naming the file, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Err(e) = aduana_warehouse::WarehouseConfig::parse(text, "fuzz.toml") {
        assert!(
            e.to_string().contains("fuzz.toml"),
            "errors name the file: {e}"
        );
    }
});
