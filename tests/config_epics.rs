//! EPICS tables of device files (`[[epics_motor]]`, `[[epics_signal]]` and
//! their families): what they declare, and the errors for bad tables and
//! PV templates, each naming the key, the table and the line.

use skyrun::config::{DeviceKind, DeviceSet, EpicsConfig, EpicsDevice, PlanFile};

fn err(text: &str) -> String {
    DeviceSet::parse(text, "bl.toml").unwrap_err().to_string()
}

#[test]
fn families_fill_their_templates_and_singles_keep_their_pvs() {
    let set = DeviceSet::parse(
        r#"
[[epics_motor]]
name = "th"
prefix = "ca://BL:TH"
timeout = 20

[[epics_signal]]
name = "gain"
read_pv = "BL:GAIN:RBV"
write_pv = "BL:GAIN"
put_complete = true

[[epics_signal]]
name = "same"
read_pv = "BL:SAME"
write_pv = "BL:SAME"
tolerance = 0.5

[[epics_motor_family]]
prefix = "m"
count = 100
first = 1
pv = "BL:MTR{i}"

[[epics_signal_family]]
prefix = "s"
count = 5000
read_pv = "BL:AO:{i:05}"
write_pv = "BL:AO:{i:05}:SP"
"#,
        "bl.toml",
    )
    .unwrap();
    assert_eq!(set.len(), 5103);
    assert_eq!(
        set.epics("th"),
        Some(&EpicsConfig {
            device: EpicsDevice::Motor {
                prefix: "BL:TH".into()
            },
            timeout: Some(20.0),
        })
    );
    assert_eq!(
        set.epics("gain").unwrap().device,
        EpicsDevice::Signal {
            read_pv: "BL:GAIN:RBV".into(),
            write_pv: Some("BL:GAIN".into()),
            read_only: false,
            put_complete: true,
            tolerance: None,
        }
    );
    // A write PV equal to the read PV is the read PV.
    assert_eq!(set.epics("same").unwrap().pvs(), ["BL:SAME"]);
    assert_eq!(set.epics("m100").unwrap().pvs(), ["BL:MTR100"]);
    assert!(set.get("m0").is_none());
    assert_eq!(
        set.epics("s4999").unwrap().pvs(),
        ["BL:AO:04999", "BL:AO:04999:SP"]
    );
    assert_eq!(set.kind("s7"), Some(DeviceKind::Signal));
    assert_eq!(set.kind("m7"), Some(DeviceKind::Motor));
    assert_eq!(set.get("m7").unwrap().family.as_deref(), Some("m"));
    assert_eq!(set.epics_devices().count(), 5103);

    // Plan files use them by name, family and glob as simulated devices.
    let plan = PlanFile::parse(
        "[plan]\nname = 'scan'\ndetectors = []\nmotor = 'm5'\nstart = 0\nstop = 1\nnum = 3\n",
        "p.toml",
    )
    .unwrap();
    assert_eq!(plan.check(&set).unwrap().motors, ["m5"]);
}

#[test]
fn read_only_signals_are_detectors_and_cannot_be_moved() {
    let set = DeviceSet::parse(
        "[[epics_signal]]\nname = 'i0'\nread_pv = 'BL:I0'\nread_only = true\n",
        "bl.toml",
    )
    .unwrap();
    assert_eq!(set.kind("i0"), Some(DeviceKind::Detector));
    let plan = PlanFile::parse(
        "[plan]\nname = 'scan'\ndetectors = []\nmotor = 'i0'\nstart = 0\nstop = 1\nnum = 3\n",
        "p.toml",
    )
    .unwrap();
    let e = plan.check(&set).unwrap_err().to_string();
    assert!(e.contains("device 'i0' is a detector"), "{e}");
}

#[test]
fn bad_templates_name_the_key_and_table() {
    let fam = |key: &str, v: &str| {
        err(&format!(
            "[[epics_signal_family]]\nprefix = 's'\ncount = 3\n{key} = '{v}'\n"
        ))
    };
    assert_eq!(
        fam("read_pv", "BL:AO:{i:5}"),
        "bl.toml:4:11: 'read_pv' of [[epics_signal_family]]: bad format '{i:5}' in 'BL:AO:{i:5}' (use {i:05}: a 0 then the width, 1 to 18 digits)"
    );
    assert_eq!(
        fam("read_pv", "BL:AO:{i"),
        "bl.toml:4:11: 'read_pv' of [[epics_signal_family]]: unclosed '{' in 'BL:AO:{i'"
    );
    assert_eq!(
        fam("read_pv", "BL:AO:{index}"),
        "bl.toml:4:11: 'read_pv' of [[epics_signal_family]]: unknown placeholder '{index}' in 'BL:AO:{index}' (use {i}, or {i:05} for the index zero-padded to 5 digits)"
    );
    assert_eq!(
        fam("read_pv", "BL:AO"),
        "bl.toml:4:11: 'read_pv' of [[epics_signal_family]]: 'BL:AO' has no {i}, so all 3 members would share one PV"
    );
    assert_eq!(
        fam("read_pv", "BL AO{i}"),
        "bl.toml:4:11: 'read_pv' of [[epics_signal_family]]: 'BL AO0' has a ' ' in it: PV names have no blanks"
    );
    assert_eq!(
        err("[[epics_signal_family]]\nprefix = 's'\ncount = 3\nread_pv = 'A{i}'\nwrite_pv = 'B{j}'\n"),
        "bl.toml:5:12: 'write_pv' of [[epics_signal_family]]: unknown placeholder '{j}' in 'B{j}' (use {i}, or {i:05} for the index zero-padded to 5 digits)"
    );
    assert_eq!(
        err("[[epics_motor_family]]\nprefix = 'm'\ncount = 2\npv = 'pva://BL M{i}'\n"),
        "bl.toml:4:6: 'pv' of [[epics_motor_family]]: 'BL M0' has a ' ' in it: PV names have no blanks"
    );
    // PVAccess names keep their prefix (the client routes them); ca:// goes.
    let set = DeviceSet::parse(
        "[[epics_motor_family]]\nprefix = 'm'\ncount = 2\npv = 'pva://BL:M{i}'\n\
         [[epics_signal]]\nname = 's'\nread_pv = 'ca://BL:S'\n",
        "bl.toml",
    )
    .unwrap();
    assert_eq!(set.epics("m1").unwrap().pvs(), ["pva://BL:M1"]);
    assert_eq!(set.epics("s").unwrap().pvs(), ["BL:S"]);
    // One member needs no {i}.
    assert!(DeviceSet::parse(
        "[[epics_motor_family]]\nprefix = 'm'\ncount = 1\npv = 'BL:M'\n",
        "bl.toml"
    )
    .is_ok());
}

#[test]
fn bad_tables_say_what_is_wrong() {
    assert_eq!(
        err("[[epics_motor]]\nname = 'm'\n"),
        "bl.toml:1:1: [[epics_motor]] is missing argument 'prefix'"
    );
    assert_eq!(
        err("[[epics_motor]]\nname = 'm'\npv = 'BL:M'\n"),
        "bl.toml:3:6: key 'pv' is not used in [[epics_motor]] (the record is 'prefix'; 'pv' is the template of [[epics_motor_family]])"
    );
    assert_eq!(
        err("[[epics_motor_family]]\nprefix = 'm'\ncount = 2\n"),
        "bl.toml:1:1: [[epics_motor_family]] is missing argument 'pv'"
    );
    assert_eq!(
        err("[[epics_motor_family]]\nname = 'm'\ncount = 2\npv = 'M{i}'\n"),
        "bl.toml:2:8: key 'name' is not used in [[epics_motor_family]] (a family names its members PREFIX0, PREFIX1, ...: use 'prefix')"
    );
    assert_eq!(
        err("[[epics_signal]]\nname = 's'\n"),
        "bl.toml:1:1: [[epics_signal]] is missing argument 'read_pv'"
    );
    assert_eq!(
        err("[[epics_signal]]\nname = 's'\nread_pv = 'A'\nread_only = true\nwrite_pv = 'B'\n"),
        "bl.toml:5:12: key 'write_pv' of [[epics_signal]] has no use with read_only = true (it is never set)"
    );
    assert_eq!(
        err("[[epics_signal]]\nname = 's'\nread_pv = 'A'\nput_complete = true\ntolerance = 0.1\n"),
        "bl.toml:5:13: key 'tolerance' of [[epics_signal]] has no use with put_complete = true (the IOC says when the put is done)"
    );
    assert_eq!(
        err("[[epics_signal]]\nname = 's'\nread_pv = ''\n"),
        "bl.toml:3:11: 'read_pv' of [[epics_signal]]: the PV name is empty"
    );
    assert_eq!(
        err("[[motor]]\nname = 'x'\n[[epics_motor]]\nname = 'x'\nprefix = 'BL:X'\n"),
        "bl.toml:4:8: duplicate device name 'x' (first declared at line 1)"
    );
    assert_eq!(
        err("[[epics_signal]]\nname = 's'\nread_pv = 'A'\nvalue = 1\n"),
        "bl.toml:4:1: unknown key 'value'; expected one of: name, prefix, count, first, read_pv, write_pv, read_only, put_complete, tolerance, timeout"
    );
}
