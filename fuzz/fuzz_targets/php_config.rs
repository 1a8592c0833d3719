#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| tokenusage::dev::fuzzing::php_config(data));
