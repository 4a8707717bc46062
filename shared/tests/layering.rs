//! The crate's import graph runs one way: functions → (settings, adapters) → domain. This
//! reads every module's `crate::` paths (outside its unit tests) and holds them to the layers
//! the README's Layout describes.

use std::collections::{BTreeMap, BTreeSet};

/// What each layer may import, besides itself.
const DOMAIN: &[&str] = &["error", "model", "notice", "plan", "ports"];
const SETTINGS: &[&str] = &["config"];
const ADAPTERS: &[&str] = &["aws", "events", "lambda", "state", "table"];
const FUNCTIONS: &[&str] = &["backup", "copier", "dashboard", "lagcheck", "permissions", "promoter"];

/// Top-level module → the top-level modules it names through `crate::`.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut stack = vec![root.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
            if !rel.ends_with(".rs") || rel.starts_with("bin/") || rel == "lib.rs" {
                continue;
            }
            let module = rel.trim_end_matches(".rs").split('/').next().unwrap().to_string();
            let text = std::fs::read_to_string(&path).unwrap();
            let code = text.split("#[cfg(test)]\nmod tests").next().unwrap();
            let names = graph.entry(module.clone()).or_default();
            for (i, _) in code.match_indices("crate::") {
                let rest = &code[i + "crate::".len()..];
                let group = rest.strip_prefix('{').map(|g| &g[..g.find('}').unwrap_or(g.len())]);
                let heads: Vec<&str> = match group {
                    Some(g) => g
                        .split(',')
                        .map(|p| p.trim().split("::").next().unwrap_or(""))
                        .collect(),
                    None => vec![rest
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("")],
                };
                for head in heads
                    .into_iter()
                    .filter(|h| !h.is_empty() && *h != module && *h != "self")
                {
                    // `crate::Error` / `crate::Result` are the error module's re-exports
                    let head = if head == "Error" || head == "Result" {
                        "error"
                    } else {
                        head
                    };
                    names.insert(head.to_string());
                }
            }
        }
    }
    graph
}

#[test]
fn every_module_is_in_a_layer() {
    let layered: BTreeSet<&str> = [DOMAIN, SETTINGS, ADAPTERS, FUNCTIONS].concat().into_iter().collect();
    let modules: BTreeSet<String> = imports().into_keys().collect();
    let unlayered: Vec<&String> = modules.iter().filter(|m| !layered.contains(m.as_str())).collect();
    assert!(
        unlayered.is_empty(),
        "modules in no layer (add them to the README's Layout and here): {unlayered:?}"
    );
}

#[test]
fn imports_run_one_way_functions_then_settings_and_adapters_then_the_domain() {
    let graph = imports();
    let may = |module: &str| -> Vec<&str> {
        if DOMAIN.contains(&module) {
            DOMAIN.to_vec()
        } else if SETTINGS.contains(&module) || ADAPTERS.contains(&module) {
            [DOMAIN, ADAPTERS].concat()
        } else {
            [DOMAIN, SETTINGS, ADAPTERS, FUNCTIONS].concat()
        }
    };
    let upward: Vec<String> = graph
        .iter()
        .flat_map(|(m, names)| {
            let allowed = may(m);
            names
                .iter()
                .filter(move |n| !allowed.contains(&n.as_str()))
                .map(move |n| format!("{m} -> {n}"))
        })
        .collect();
    assert!(upward.is_empty(), "imports against the layering: {upward:?}");
}

#[test]
fn the_import_graph_has_no_cycle() {
    let graph = imports();
    // Depth-first search; a back edge is a cycle.
    fn visit<'a>(
        m: &'a str,
        graph: &'a BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<&'a str>,
        done: &mut BTreeSet<&'a str>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| *p == m) {
            return Some(path[i..].iter().chain([&m]).map(|s| s.to_string()).collect());
        }
        if !done.insert(m) {
            return None;
        }
        path.push(m);
        for n in graph.get(m).into_iter().flatten() {
            if let Some(cycle) = visit(n, graph, path, done) {
                return Some(cycle);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}
