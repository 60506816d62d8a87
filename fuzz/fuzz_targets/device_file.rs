//! Fuzz target: arbitrary bytes (as UTF-8, lossily) as a device file, parsed
//! and, when it parses, every example plan checked against it. Panics on a
//! panic in skyrun or an error that breaks the promise of `skyrun::config`
//! (see `skyrun_fuzz::assert_well_formed`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skyrun_fuzz::fuzz_device_file(data));
