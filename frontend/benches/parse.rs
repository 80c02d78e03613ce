//! Parse and expand a generated 1,000-instruction Dockerfile.
//!
//! Target (issue: the Dockerfile frontend): the whole frontend — parse, typed instructions, stage
//! resolution with every word expanded — in at most 5 ms on a 2-core machine.

use std::fmt::Write;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use dray_frontend::stages::ResolveOptions;

/// A realistic mix over five stages: ARG/ENV with expansions, RUN with continuation lines and
/// heredocs, COPY with flags and `--from`, LABEL, WORKDIR, EXPOSE, and metadata instructions.
/// Returns the Dockerfile and its instruction count.
fn dockerfile(instructions: usize) -> (String, usize) {
    let mut out =
        String::from("# syntax=docker/dockerfile:1\nARG BASE=debian:bookworm\nARG VERSION=1.0\n");
    let mut count = 2;
    let stages = 5;
    let per_stage = instructions / stages;
    for stage in 0..stages {
        let _ = writeln!(out, "FROM ${{BASE}} AS stage{stage}");
        let _ = writeln!(out, "ARG VERSION");
        count += 2;
        let mut i = 0;
        while count < (stage + 1) * per_stage + 2 {
            let line = match i % 10 {
                0 => format!("ENV APP_{i}=\"/opt/app-${{VERSION}}/{i}\" PATH=/opt/bin:$PATH"),
                1 => format!(
                    "RUN --mount=type=cache,target=/var/cache/apt \\\n    apt-get update && \\\n    apt-get install -y pkg{i} && \\\n    rm -rf /var/lib/apt/lists/*"
                ),
                2 => format!(
                    "COPY --chown=app:app --chmod=0644 src/{i}/ ${{APP_{}}}/",
                    i - 2
                ),
                3 => format!(
                    "LABEL org.example.step{i}=\"${{VERSION}}\" org.example.stage=stage{stage}"
                ),
                4 => format!("WORKDIR /work/${{VERSION}}/{i}"),
                5 => "RUN <<EOF\nset -e\necho building\nmake -j2 all\nEOF".to_owned(),
                6 => format!("EXPOSE {} {}/udp", 8000 + i, 9000 + i),
                7 if stage > 0 => format!("COPY --from=stage{} /work /imported/{i}", stage - 1),
                7 => format!("ADD --chmod=755 https://example.com/tool-{i}.tar.gz /tools/"),
                8 => format!("ARG OPT_{i}=${{VERSION:-0}}"),
                _ => format!("USER app:${{OPT_{}:-app}}", i - 1),
            };
            out.push_str(&line);
            out.push('\n');
            count += 1;
            i += 1;
        }
    }
    out.push_str("CMD [\"/opt/bin/app\", \"--serve\"]\n");
    count += 1;
    (out, count)
}

fn bench(c: &mut Criterion) {
    let (source, count) = dockerfile(1_000);
    assert!(
        (1_000..=1_010).contains(&count),
        "generated {count} instructions"
    );
    let options = ResolveOptions::default();
    // The benchmark measures the success path: fail loudly if the input is rejected.
    let loaded = dray_frontend::load(source.as_bytes(), &options)
        .expect("the generated Dockerfile is valid");
    assert_eq!(loaded.ast.instructions.len(), count);

    let mut group = c.benchmark_group("frontend");
    group.throughput(Throughput::Elements(count as u64));
    group.bench_function("parse_1000", |b| {
        b.iter(|| dray_frontend::parser::parse(std::hint::black_box(source.as_bytes())).unwrap())
    });
    group.bench_function("parse_type_expand_1000", |b| {
        b.iter(|| dray_frontend::load(std::hint::black_box(source.as_bytes()), &options).unwrap())
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
