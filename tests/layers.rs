//! The domain's modules form layers: no module uses, directly or through others, one that uses
//! it back (read from the sources: every `crate::<module>` outside comments).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

fn uses(source: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

fn graph(dir: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut graph = BTreeMap::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(module) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if path.extension().is_some_and(|e| e == "rs") && module != "lib" {
            let source = std::fs::read_to_string(&path).unwrap_or_default();
            let mut used = uses(&source);
            used.remove(module);
            graph.insert(module.to_owned(), used);
        }
    }
    graph
}

/// A cycle through `from`, as the modules along it.
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>, from: &str) -> Option<Vec<String>> {
    let mut stack = vec![(from.to_owned(), vec![from.to_owned()])];
    let mut seen = BTreeSet::new();
    while let Some((module, path)) = stack.pop() {
        for next in graph.get(&module).into_iter().flatten() {
            if next == from {
                return Some([path.clone(), vec![from.to_owned()]].concat());
            }
            if seen.insert(next.clone()) {
                stack.push((next.clone(), [path.clone(), vec![next.clone()]].concat()));
            }
        }
    }
    None
}

#[test]
fn no_module_of_the_domain_is_in_an_import_cycle() {
    let graph = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(graph.len() > 10, "read the modules: {graph:?}");
    let cycles: Vec<_> = graph
        .keys()
        .filter_map(|m| cycle(&graph, m))
        .map(|c| c.join(" → "))
        .collect();
    assert!(cycles.is_empty(), "import cycles: {cycles:#?}");
}

#[test]
fn the_check_finds_a_cycle_when_there_is_one() {
    let graph = BTreeMap::from([
        ("a".to_owned(), uses("use crate::b::X;")),
        (
            "b".to_owned(),
            uses("fn f() -> crate::c::Y { todo() } // crate::a"),
        ),
        ("c".to_owned(), uses("use crate::a::Z;")),
        ("d".to_owned(), uses("use crate::a::Z;")),
    ]);
    assert_eq!(
        cycle(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(cycle(&graph, "d"), None);
}
