//! SQL text as a logged-in Flight SQL user sends it: split into statements
//! (size and nesting bounds), planned read-only on the planning stack,
//! then physically planned (join and value guards), on a runtime with the
//! server's stack size, against a small generated warehouse. Any input
//! must end in a plan or an error: a panic, an abort (stack overflow) or a
//! hang (libFuzzer's `-timeout`) is a finding.
#![no_main]

use std::sync::OnceLock;

use aduana_engine::{EngineOptions, Session, WritePolicy};
use aduana_warehouse::{OpenOptions, Warehouse};
use libfuzzer_sys::fuzz_target;

struct Target {
    runtime: tokio::runtime::Runtime,
    session: Session,
    _warehouse: tempfile::TempDir,
}

fn target() -> &'static Target {
    static TARGET: OnceLock<Target> = OnceLock::new();
    TARGET.get_or_init(|| {
        let dir = tempfile::tempdir().expect("a temporary folder for the warehouse");
        let mut options = aduana_synth::GenerateOptions::new(dir.path(), 2_000, 7);
        options.months = 2;
        options.overwrite = true;
        aduana_synth::generate(&options).expect("the fuzzing warehouse is generated");
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_stack_size(aduana_engine::bounds::EXECUTION_STACK)
            .enable_all()
            .build()
            .expect("a runtime");
        let uri = dir.path().display().to_string();
        let session = runtime.block_on(async {
            let warehouse = Warehouse::open_with(&uri, OpenOptions::default())
                .await
                .expect("the fuzzing warehouse opens");
            Session::open(warehouse, &EngineOptions::default())
                .await
                .expect("a session")
        });
        Target {
            runtime,
            session,
            _warehouse: dir,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(sql) = std::str::from_utf8(data) else {
        return;
    };
    let target = target();
    let session = &target.session;
    target.runtime.block_on(async {
        let Ok(statements) = Session::statements(sql) else {
            return;
        };
        let state = session.context().state();
        for statement in statements {
            let Ok(plan) = session.plan(&state, statement, WritePolicy::ReadOnly).await else {
                return;
            };
            if state.create_physical_plan(&plan).await.is_err() {
                return;
            }
        }
    });
});
