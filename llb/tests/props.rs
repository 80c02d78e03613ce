//! Property tests: whatever graph the builder makes, `marshal` yields a valid, deduplicated,
//! topologically ordered definition with the head last; digests and references round-trip.

use std::collections::HashSet;

use dray_llb::{
    Copy, Definition, Digest, ExecSpec, FileAction, FileChain, ImageRef, LocalAttrs, Mkdir, Mount,
    State, marshal,
};
use proptest::prelude::*;

/// One builder step: which operation, two pool indices and a small parameter.
type Step = (u8, usize, usize, u8);

fn build(steps: &[Step]) -> State {
    let mut pool = vec![
        State::scratch(),
        State::image(ImageRef::parse("alpine").unwrap()),
        State::local("context", LocalAttrs::default()),
    ];
    for &(kind, a, b, p) in steps {
        let a = pool[a % pool.len()].clone();
        let b = pool[b % pool.len()].clone();
        // A small parameter space, so identical nodes arise often and dedup is exercised.
        let word = format!("w{}", p % 3);
        let next = match kind % 6 {
            0 => a.run(ExecSpec::new(["sh", "-c", word.as_str()])).root(),
            1 => a
                .run(ExecSpec::new(["make", word.as_str()]).mount(Mount::bind("/in", b).readonly()))
                .root(),
            2 => a.file(FileChain::new().copy(
                &b,
                Copy {
                    src: word.clone(),
                    dest: "/dst/".into(),
                    ..Copy::default()
                },
            )),
            3 => a.file(FileChain::new().then(FileAction::Mkdir(Mkdir {
                path: word.clone(),
                mode: 0o755,
                make_parents: p % 2 == 0,
                owner: None,
                timestamp: None,
            }))),
            4 => State::merge([a, b]),
            _ => a.with_env(word, "v").with_cwd("sub").named("renamed"),
        };
        pool.push(next);
    }
    pool.pop().unwrap_or_else(State::scratch)
}

fn check(def: &Definition, head: &State) {
    def.validate().unwrap();
    let digests = def.digests();
    let unique: HashSet<Digest> = digests.iter().copied().collect();
    assert_eq!(unique.len(), digests.len(), "each node once");
    assert_eq!(digests.last(), Some(&head.digest()), "head last");
    // Every non-head node is used by a later node: nothing unreachable is emitted.
    for (i, d) in digests.iter().enumerate().take(digests.len() - 1) {
        assert!(
            def.nodes[i + 1..]
                .iter()
                .any(|n| n.inputs.iter().any(|inp| inp.node == *d)),
            "node {i} is unused"
        );
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn marshal_is_valid_deduplicated_and_deterministic(
        steps in prop::collection::vec((any::<u8>(), any::<usize>(), any::<usize>(), any::<u8>()), 0..24)
    ) {
        let head = build(&steps);
        let def = marshal(&head).unwrap();
        check(&def, &head);
        // Building the same program again gives the same definition, digest for digest.
        prop_assert_eq!(marshal(&build(&steps)).unwrap(), def.clone());
        // And the JSON form round-trips.
        let back: Definition = serde_json::from_str(&serde_json::to_string(&def).unwrap()).unwrap();
        prop_assert_eq!(back, def);
    }

    #[test]
    fn digest_strings_round_trip(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let d = Digest::of(&bytes);
        prop_assert_eq!(d.to_string().parse::<Digest>().unwrap(), d);
    }

    #[test]
    fn normalized_references_are_fixed_points(
        domain in prop::sample::select(vec!["", "docker.io/", "localhost:5000/", "ghcr.io/", "Reg.example/"]),
        // No dot in the first component: with one, a bare `a.b/c` names the registry `a.b`
        // (and docker's familiar form of `docker.io/a.b/c` is ambiguous in the same way).
        path in "[a-z0-9]{1,5}([_-][a-z0-9]{1,4}){0,2}(/[a-z0-9]{1,5}([._-][a-z0-9]{1,3})?){0,2}",
        tag in prop::option::of("[A-Za-z0-9_][A-Za-z0-9_.-]{0,10}"),
    ) {
        let input = match &tag {
            Some(t) => format!("{domain}{path}:{t}"),
            None => format!("{domain}{path}"),
        };
        let r = ImageRef::parse(&input).unwrap();
        prop_assert_eq!(ImageRef::parse(&r.to_string()).unwrap(), r.clone());
        prop_assert_eq!(ImageRef::parse(&r.familiar()).unwrap(), r.clone());
        prop_assert_eq!(r.tag(), Some(tag.as_deref().unwrap_or("latest")));
    }
}
