//! The main demo: a scan of a simulated detector over a simulated motor,
//! printing the documents as a table as they arrive.
//!
//! ```text
//! cargo run --release --example demo
//! ```

use skyrun::{plans, Document, RunEngine};
use skyrun_actors::{
    sim::{Noise, SynAxis, SynGauss},
    DeviceHandle,
};

fn main() -> anyhow::Result<()> {
    actix::System::new().block_on(async {
        let re = RunEngine::new();
        let motor = SynAxis::new("motor").with_velocity(50.0).with_units("mm");
        let det = SynGauss::new("det", motor.probe(), 0.0, 100.0, 1.0).with_noise(Noise::Poisson);
        let (motor, det) = (DeviceHandle::spawn(motor), DeviceHandle::spawn(det));

        re.subscribe(|_name, doc| match doc {
            Document::Start(s) => {
                println!("Transient Scan ID: {}     Time: {:.3}", s.scan_id, s.time);
                println!("Persistent Unique Scan ID: '{}'", s.uid);
            }
            Document::Descriptor(d) if d.name == "primary" => {
                println!("+-----------+------------+------------+------------+");
                println!("|   seq_num |       time |      motor |        det |");
                println!("+-----------+------------+------------+------------+");
            }
            Document::Event(e) => {
                let t =
                    chrono::DateTime::from_timestamp(e.time as i64, (e.time.fract() * 1e9) as u32)
                        .map(|t| t.format("%H:%M:%S").to_string())
                        .unwrap_or_default();
                println!(
                    "| {:>9} | {:>10} | {:>10.3} | {:>10.3} |",
                    e.seq_num,
                    t,
                    e.data["motor"].as_f64().unwrap_or(f64::NAN),
                    e.data["det"].as_f64().unwrap_or(f64::NAN)
                );
            }
            Document::Stop(s) => {
                println!("+-----------+------------+------------+------------+");
                println!(
                    "generator scan ['{}'] ({}{})",
                    &s.run_start[..8],
                    s.exit_status.as_str(),
                    if s.reason.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", s.reason)
                    }
                );
            }
            _ => {}
        });
        let summary = re
            .run(plans::scan(vec![det], &motor, -3.0, 3.0, 13))
            .await?;
        println!("exit status: {}", summary.exit_status.as_str());
        Ok(())
    })
}
