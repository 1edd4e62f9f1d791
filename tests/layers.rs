//! The modules of the domain and of the stripe-emulator form layers: no module uses, directly or
//! through others, one that uses it back. Read from the sources: every `crate::<module>` (and,
//! inside a directory module, every `super::<sibling>`) outside comments. A directory module
//! (`lifecycle/`, `engine/`, ...) is one module to its crate's other modules, its files together;
//! inside it, each file is a module to its siblings (`mod.rs`, which declares them, aside).

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

type Graph = BTreeMap<String, BTreeSet<String>>;

/// The names that follow any of `prefixes` in `source`, comments aside.
fn uses(source: &str, prefixes: &[String]) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or_default();
        for prefix in prefixes {
            let mut from = 0;
            while let Some(at) = code[from..].find(prefix.as_str()).map(|i| from + i) {
                // `super::super::x` names no sibling: a prefix must start a path.
                let starts_path = !code[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':');
                from = at + prefix.len();
                let name: String = code[from..]
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if starts_path && !name.is_empty() {
                    found.insert(name);
                }
            }
        }
    }
    found
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

/// The crate's top-level modules (`src/*.rs` and `src/*/`), each with what it uses.
fn crate_graph(src: &Path) -> Graph {
    let mut graph = Graph::new();
    let prefixes = ["crate::".to_owned()];
    for entry in std::fs::read_dir(src).into_iter().flatten().flatten() {
        let path = entry.path();
        let Some(module) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        let used = if path.is_dir() {
            rust_files(&path)
                .iter()
                .flat_map(|f| uses(&read(f), &prefixes))
                .collect()
        } else if path.extension().is_some_and(|e| e == "rs") && module != "lib" && module != "main"
        {
            uses(&read(&path), &prefixes)
        } else {
            continue;
        };
        let mut used: BTreeSet<String> = used;
        used.remove(module);
        graph.insert(module.to_owned(), used);
    }
    graph
}

/// The files of the directory module `src/<dir>/`, each with the siblings it uses.
fn directory_graph(src: &Path, dir: &str) -> Graph {
    let prefixes = [format!("crate::{dir}::"), "super::".to_owned()];
    let mut graph = Graph::new();
    for entry in std::fs::read_dir(src.join(dir))
        .into_iter()
        .flatten()
        .flatten()
    {
        let path = entry.path();
        let Some(module) = path.file_stem().and_then(|s| s.to_str()) else {
            continue;
        };
        if module == "mod" {
            continue;
        }
        let files = if path.is_dir() {
            rust_files(&path)
        } else if path.extension().is_some_and(|e| e == "rs") {
            vec![path.clone()]
        } else {
            continue;
        };
        let mut used: BTreeSet<String> = files
            .iter()
            .flat_map(|f| uses(&read(f), &prefixes))
            .collect();
        used.remove(module);
        graph.insert(module.to_owned(), used);
    }
    // Only siblings: `super::Item` names what `mod.rs` holds.
    let siblings: BTreeSet<String> = graph.keys().cloned().collect();
    for used in graph.values_mut() {
        used.retain(|m| siblings.contains(m));
    }
    graph
}

/// A cycle through `from`, as the modules along it.
fn cycle(graph: &Graph, from: &str) -> Option<Vec<String>> {
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

fn cycles(graph: &Graph) -> Vec<String> {
    graph
        .keys()
        .filter_map(|m| cycle(graph, m))
        .map(|c| c.join(" → "))
        .collect()
}

fn src(krate: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates")
        .join(krate)
        .join("src")
}

fn assert_layered(krate: &str, directories: &[&str], at_least: usize) {
    let src = src(krate);
    let graph = crate_graph(&src);
    assert!(graph.len() >= at_least, "read {krate}'s modules: {graph:?}");
    for dir in directories {
        assert!(src.join(dir).is_dir(), "{krate} has no {dir}/");
        assert!(graph.contains_key(*dir), "{krate}'s {dir}/ was read");
    }
    assert_eq!(
        cycles(&graph),
        Vec::<String>::new(),
        "{krate}: import cycles"
    );
    for dir in directories {
        let inner = directory_graph(&src, dir);
        assert!(inner.len() >= 2, "read {krate}'s {dir}/: {inner:?}");
        assert_eq!(
            cycles(&inner),
            Vec::<String>::new(),
            "{krate} {dir}/: import cycles"
        );
    }
}

#[test]
fn no_module_of_the_domain_is_in_an_import_cycle() {
    assert_layered("domain", &["catalogue", "lifecycle", "ports"], 10);
}

#[test]
fn no_module_of_the_stripe_emulator_is_in_an_import_cycle() {
    assert_layered("stripe-emulator", &["engine", "server"], 6);
}

#[test]
fn the_check_finds_a_cycle_when_there_is_one() {
    let top = ["crate::".to_owned()];
    let graph = Graph::from([
        ("a".to_owned(), uses("use crate::b::X;", &top)),
        (
            "b".to_owned(),
            uses("fn f() -> crate::c::Y { todo() } // crate::a", &top),
        ),
        ("c".to_owned(), uses("use crate::a::Z;", &top)),
        ("d".to_owned(), uses("use crate::a::Z;", &top)),
    ]);
    assert_eq!(
        cycle(&graph, "a"),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(cycle(&graph, "d"), None);

    let inner = ["crate::engine::".to_owned(), "super::".to_owned()];
    assert_eq!(
        uses(
            "use crate::engine::store::State; use super::events::emit; use super::super::x;",
            &inner
        ),
        BTreeSet::from(["store".to_owned(), "events".to_owned(), "super".to_owned()])
    );
}
