//! `collect` and external assets, after Bluesky's `RunBundler`: a detector
//! that writes frames to a file (stream resource / stream datum documents),
//! collected into a stream declared with `declare_stream(collect=True)`;
//! an old-style flyer whose events become an event page; a detector whose
//! readings point at a resource (datum ids, `filled: false`); and the errors
//! Bluesky raises for collects it cannot place.

mod common;

use common::{run, Docs};
use serde_json::{json, Value};
use skyrun::{BlueskyException, Document, ExitStatus, Msg, Plan, PlanError, RunEngine, RunError};
use skyrun_actors::{
    sim::SynFlyer, AssetDocument, CollectDescription, CollectedEvent, DataKey, DataKeys, Device,
    DeviceContext, DeviceError, DeviceHandle, ExternalAssets, Flyable, Readable, Reading, Readings,
    Status,
};

/// A detector writing `frames` frames per kickoff/complete to one file.
struct FileDet {
    name: String,
    frames: u64,
    written: u64,
    emitted: u64,
    resource_sent: bool,
}

impl FileDet {
    fn new(name: &str, frames: u64) -> Self {
        FileDet {
            name: name.into(),
            frames,
            written: 0,
            emitted: 0,
            resource_sent: false,
        }
    }
}

impl Device for FileDet {
    fn name(&self) -> &str {
        &self.name
    }
    fn type_name(&self) -> &'static str {
        "FileDet"
    }
    fn flyable(&mut self) -> Option<&mut dyn Flyable> {
        Some(self)
    }
    fn external_assets(&mut self) -> Option<&mut dyn ExternalAssets> {
        Some(self)
    }
}

impl Flyable for FileDet {
    fn kickoff(&mut self, _: &DeviceContext) -> Result<Status, DeviceError> {
        Ok(Status::finished())
    }
    fn complete(&mut self, _: &DeviceContext) -> Result<Status, DeviceError> {
        self.written += self.frames;
        Ok(Status::finished())
    }
    fn collect(&mut self) -> Result<Vec<CollectedEvent>, DeviceError> {
        Ok(Vec::new())
    }
    fn describe_collect(&self) -> CollectDescription {
        let mut k = DataKey::for_value("file:///data/det.h5", &json!([[0, 0], [0, 0]]));
        k.dtype = "array".into();
        k.shape = vec![2, 2];
        k.external = Some("STREAM:".into());
        CollectDescription::Flat(DataKeys::from([(self.name.clone(), k)]))
    }
}

impl ExternalAssets for FileDet {
    fn collect_asset_docs(
        &mut self,
        index: Option<u64>,
    ) -> Result<Vec<AssetDocument>, DeviceError> {
        let upto = index.unwrap_or(self.written).min(self.written);
        let mut docs = Vec::new();
        if !self.resource_sent && upto > 0 {
            self.resource_sent = true;
            docs.push(
                AssetDocument::from_named(
                    "stream_resource",
                    json!({"uid": format!("{}-res", self.name), "data_key": self.name,
                           "mimetype": "application/x-hdf5", "uri": "file:///data/det.h5",
                           "parameters": {"dataset": "/entry/data"}}),
                )
                .unwrap(),
            );
        }
        if upto > self.emitted {
            docs.push(
                AssetDocument::from_named(
                    "stream_datum",
                    json!({"uid": format!("{}-res/{}", self.name, self.emitted),
                           "stream_resource": format!("{}-res", self.name), "descriptor": "",
                           "indices": {"start": self.emitted, "stop": upto},
                           "seq_nums": {"start": 0, "stop": 0}}),
                )
                .unwrap(),
            );
            self.emitted = upto;
        }
        Ok(docs)
    }
    fn get_index(&mut self) -> Result<Option<u64>, DeviceError> {
        Ok(Some(self.written))
    }
}

/// A detector whose reading is a datum id in a resource (Bluesky's
/// WritesExternalAssets without an index).
struct DatumDet {
    n: u64,
}

impl Device for DatumDet {
    fn name(&self) -> &str {
        "img"
    }
    fn type_name(&self) -> &'static str {
        "DatumDet"
    }
    fn readable(&mut self) -> Option<&mut dyn Readable> {
        Some(self)
    }
    fn external_assets(&mut self) -> Option<&mut dyn ExternalAssets> {
        Some(self)
    }
}

impl Readable for DatumDet {
    fn read(&mut self) -> Result<Readings, DeviceError> {
        self.n += 1;
        Ok(Readings::from([(
            "img".to_string(),
            Reading::new(format!("res/{}", self.n)),
        )]))
    }
    fn describe(&self) -> DataKeys {
        let mut k = DataKey::for_value("img", &json!("res/1"));
        k.external = Some("FILESTORE:".into());
        DataKeys::from([("img".to_string(), k)])
    }
}

impl ExternalAssets for DatumDet {
    fn collect_asset_docs(&mut self, _: Option<u64>) -> Result<Vec<AssetDocument>, DeviceError> {
        let mut docs = Vec::new();
        if self.n == 1 {
            docs.push(
                AssetDocument::from_named(
                    "resource",
                    json!({"uid": "res", "spec": "NPY_SEQ", "root": "/", "resource_path": "img",
                           "resource_kwargs": {}, "path_semantics": "posix"}),
                )
                .unwrap(),
            );
        }
        docs.push(
            AssetDocument::from_named(
                "datum",
                json!({"datum_id": format!("res/{}", self.n), "resource": "res",
                       "datum_kwargs": {"index": self.n}}),
            )
            .unwrap(),
        );
        Ok(docs)
    }
    fn get_index(&mut self) -> Result<Option<u64>, DeviceError> {
        Ok(None)
    }
}

fn body(d: &Document) -> Value {
    serde_json::to_value(d).unwrap()
}

#[test]
fn a_declared_stream_collects_stream_datum_with_the_runs_fields_filled_in() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let det = DeviceHandle::spawn(FileDet::new("det", 3));
        let d = det.clone();
        let plan = Plan::new("fly", move |ctx| async move {
            ctx.send(Msg::new("open_run")).await?;
            ctx.send(
                Msg::new("declare_stream")
                    .obj(&d)
                    .kwarg("name", "primary")
                    .kwarg("collect", true),
            )
            .await?;
            for _ in 0..2 {
                ctx.send(Msg::new("kickoff").obj(&d).group("k")).await?;
                ctx.send(Msg::new("wait").group("k")).await?;
                ctx.send(Msg::new("complete").obj(&d).group("c")).await?;
                ctx.send(Msg::new("wait").group("c")).await?;
                ctx.send(Msg::new("collect").obj(&d).kwarg("name", "primary"))
                    .await?;
            }
            ctx.send(Msg::new("close_run")).await?;
            Ok(())
        });
        let r = re.run(plan).await.expect("the run");
        assert_eq!(r.exit_status, ExitStatus::Success);
        assert_eq!(
            docs.names(),
            [
                "start",
                "descriptor",
                "stream_resource",
                "stream_datum",
                "stream_datum",
                "stop"
            ]
        );
        let all = docs.all();
        let start = body(&all[0]);
        let desc = body(&all[1]);
        assert_eq!(desc["data_keys"]["det"]["external"], "STREAM:");
        assert_eq!(desc["data_keys"]["det"]["shape"], json!([2, 2]));
        assert_eq!(desc["name"], "primary");
        let res = body(&all[2]);
        assert_eq!(res["run_start"], start["uid"]);
        assert_eq!(res["data_key"], "det");
        let (d1, d2) = (body(&all[3]), body(&all[4]));
        assert_eq!(d1["descriptor"], desc["uid"]);
        assert_eq!(d1["indices"], json!({"start": 0, "stop": 3}));
        assert_eq!(d1["seq_nums"], json!({"start": 1, "stop": 4}));
        assert_eq!(d2["indices"], json!({"start": 3, "stop": 6}));
        assert_eq!(d2["seq_nums"], json!({"start": 4, "stop": 7}));
        assert_eq!(body(&all[5])["num_events"], json!({"primary": 6}));
    });
}

#[test]
fn an_old_style_flyer_collects_an_event_page_per_stream() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let flyer = DeviceHandle::spawn(SynFlyer::new("flyer", 4));
        let f = flyer.clone();
        let plan = Plan::new("fly", move |ctx| async move {
            ctx.send(Msg::new("open_run")).await?;
            ctx.send(Msg::new("kickoff").obj(&f).group("k")).await?;
            ctx.send(Msg::new("wait").group("k")).await?;
            ctx.send(Msg::new("complete").obj(&f).group("c")).await?;
            ctx.send(Msg::new("wait").group("c")).await?;
            ctx.send(Msg::new("collect").obj(&f)).await?;
            ctx.send(Msg::new("close_run")).await?;
            Ok(())
        });
        re.run(plan).await.expect("the run");
        assert_eq!(docs.names(), ["start", "descriptor", "event_page", "stop"]);
        let all = docs.all();
        let Document::EventPage(page) = &all[2] else {
            panic!("not a page: {:?}", all[2])
        };
        assert_eq!(page.seq_num, vec![1, 2, 3, 4]);
        assert_eq!(page.data["flyer_x"].len(), 4);
        assert_eq!(page.descriptor, body(&all[1])["uid"].as_str().unwrap());
        assert_eq!(body(&all[3])["num_events"], json!({"flyer": 4}));
    });
}

#[test]
fn a_reading_that_points_at_a_resource_brings_its_resource_and_datum_before_the_event() {
    run(async {
        let re = RunEngine::new();
        let docs = Docs::subscribe(&re);
        let img = DeviceHandle::spawn(DatumDet { n: 0 });
        let i = img.clone();
        let plan = Plan::new("count", move |ctx| async move {
            ctx.send(Msg::new("open_run")).await?;
            for _ in 0..2 {
                ctx.send(Msg::new("create").kwarg("name", "primary"))
                    .await?;
                ctx.send(Msg::new("read").obj(&i)).await?;
                ctx.send(Msg::new("save")).await?;
            }
            ctx.send(Msg::new("close_run")).await?;
            Ok(())
        });
        re.run(plan).await.expect("the run");
        assert_eq!(
            docs.names(),
            [
                "start",
                "descriptor",
                "resource",
                "datum",
                "event",
                "datum",
                "event",
                "stop"
            ]
        );
        let all = docs.all();
        assert_eq!(body(&all[2])["run_start"], body(&all[0])["uid"]);
        let ev = body(&all[4]);
        assert_eq!(ev["data"]["img"], "res/1");
        assert_eq!(ev["filled"], json!({"img": false}));
    });
}

#[test]
fn collects_bluesky_cannot_place_fail_the_run_with_its_reasons() {
    run(async {
        let re = RunEngine::new();
        // Each with the exception Bluesky's bundler raises for it.
        let cases: Vec<(Msg, &str, BlueskyException)> = vec![
            (
                Msg::new("collect").kwarg("stream", true),
                "(stream=True) is no longer supported",
                BlueskyException::RuntimeError,
            ),
            (
                Msg::new("collect").kwarg("name", "nowhere"),
                "declare stream needs to be called first",
                BlueskyException::AssertionError,
            ),
            (
                Msg::new("collect"),
                "Single nested data keys should be pre-declared",
                BlueskyException::AssertionError,
            ),
        ];
        for (msg, want, raises) in cases {
            let det = DeviceHandle::spawn(FileDet::new("det", 2));
            let plan = Plan::new("bad", move |ctx| async move {
                ctx.send(Msg::new("open_run")).await?;
                ctx.send(msg.obj(&det)).await?;
                Ok(())
            });
            let err = re.run(plan).await.expect_err("the collect must fail");
            let RunError::Failed { error, summary } = err else {
                panic!("not a failure: {err:?}")
            };
            let text = error.to_string();
            assert!(text.contains(want), "{text:?} does not say {want:?}");
            assert!(
                matches!(&error, PlanError::Bundle { raises: r, .. } if *r == raises),
                "{error:?}"
            );
            assert_eq!(error.kind(), raises.name());
            // The run still closes: failed, with the reason.
            assert_eq!(summary.exit_status, ExitStatus::Fail);
            assert!(summary.reason.contains(want), "{:?}", summary.reason);
        }
        // The engine is usable afterwards.
        let ok = re.run(Plan::new("null", |ctx| async move {
            ctx.send(Msg::new("null")).await?;
            Ok(())
        }));
        ok.await.expect("the engine runs the next plan");
    });
}
