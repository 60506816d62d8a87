//! Fuzz target: arbitrary bytes (as UTF-8, lossily) as a plan file, parsed
//! and checked against the example beamline as `skyrun check` does. Panics on
//! a panic in skyrun or an error that breaks the promise of `skyrun::config`
//! (see `skyrun_fuzz::assert_well_formed`).
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| skyrun_fuzz::fuzz_plan_file(data));
