//! End to end from Dockerfile text: the converter's graphs solved with real file operations
//! (no `RUN`: there is no executor yet).

mod common;

use common::{Fixture, read_in};
use dray_frontend::convert::{ConvertOptions, NoImages, convert_source};
use dray_solver::{EventKind, RecordingReporter};

const DOCKERFILE: &str = r#"
FROM scratch AS a
COPY a.txt /a/
FROM scratch AS b
COPY b.txt /b/
FROM scratch
COPY --from=a /a /a
COPY --from=b /b /b
WORKDIR /app
COPY --link c.txt ./
COPY <<EOF /note.txt
hello
EOF
"#;

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn multi_stage_build_from_a_dockerfile_then_cached_then_one_edit() {
    let fx = Fixture::new();
    fx.write("a.txt", "A");
    fx.write("b.txt", "B");
    fx.write("c.txt", "C");
    let conv =
        convert_source(DOCKERFILE.as_bytes(), &ConvertOptions::default(), &NoImages).unwrap();
    let d = conv.definition;
    let rep = RecordingReporter::new();
    let out = rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    let layers = out.head.layer_dirs(&fx.store);
    assert_eq!(read_in(&layers, "/a/a.txt").as_deref(), Some("A"));
    assert_eq!(read_in(&layers, "/b/b.txt").as_deref(), Some("B"));
    assert_eq!(read_in(&layers, "/app/c.txt").as_deref(), Some("C"));
    assert_eq!(read_in(&layers, "/note.txt").as_deref(), Some("hello\n"));
    assert!(rep.cached().is_empty());
    let names = rep.started();
    assert!(
        names.iter().any(|n| n.contains("COPY --link c.txt")),
        "{names:?}"
    );

    // Rebuild: one cache hit at the head.
    let rep = RecordingReporter::new();
    let again = rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    assert!(rep.started().is_empty(), "{:?}", rep.started());
    assert_eq!(again.head.chain_ids(), out.head.chain_ids());

    // Editing b.txt reruns stage b's COPY and what follows from the COPY --from=b on; stage a
    // and the earlier steps of the final stage come from the cache.
    fx.write("b.txt", "B2");
    let rep = RecordingReporter::new();
    let edited = rt().block_on(fx.solver().solve(&d, &rep)).unwrap();
    let started = rep.started();
    assert!(
        started.iter().any(|n| n.contains("COPY b.txt")),
        "{started:?}"
    );
    assert!(
        !started.iter().any(|n| n.contains("COPY a.txt")),
        "{started:?}"
    );
    assert!(
        rep.events()
            .iter()
            .any(|e| e.name.contains("COPY --from=a") && e.kind == EventKind::Cached),
        "{:#?}",
        rep.events()
    );
    let layers = edited.head.layer_dirs(&fx.store);
    assert_eq!(read_in(&layers, "/b/b.txt").as_deref(), Some("B2"));
}
