//! The crate's import graph runs one way: functions → (settings, adapters) → domain. This
//! reads every module's paths to other modules (`crate::…`, and `super::…` that climbs to the
//! crate root), outside its unit tests, and holds them to the layers the README's Layout
//! describes.

use std::collections::{BTreeMap, BTreeSet};

/// The layers, and what each may import besides itself.
const DOMAIN: &[&str] = &["error", "model", "notice", "plan", "ports"];
const SETTINGS: &[&str] = &["config"];
const ADAPTERS: &[&str] = &["accounts", "aws", "events", "lambda", "state", "table"];
const FUNCTIONS: &[&str] = &[
    "backup",
    "copier",
    "dashboard",
    "lagcheck",
    "permissions",
    "promoter",
    "statuspage",
    "verifier",
];

fn may_import(module: &str) -> Vec<&'static str> {
    if DOMAIN.contains(&module) || SETTINGS.contains(&module) {
        DOMAIN.to_vec()
    } else if ADAPTERS.contains(&module) {
        [DOMAIN, ADAPTERS].concat()
    } else {
        [DOMAIN, SETTINGS, ADAPTERS, FUNCTIONS].concat()
    }
}

/// `code` without its `#[cfg(test)] mod tests { … }` blocks.
fn without_tests(code: &str) -> String {
    let mut out = String::new();
    let mut rest = code;
    while let Some(at) = rest.find("#[cfg(test)]\nmod tests {") {
        out.push_str(&rest[..at]);
        let body = &rest[at..];
        let open = body.find('{').unwrap();
        let mut depth = 0;
        let end = body[open..]
            .char_indices()
            .find_map(|(i, c)| {
                depth += match c {
                    '{' => 1,
                    '}' => -1,
                    _ => 0,
                };
                (depth == 0).then_some(open + i + 1)
            })
            .unwrap_or(body.len());
        rest = &body[end..];
    }
    out.push_str(rest);
    out
}

/// The first path segment of every path in a `{a::b, c::{d, e}}` group (nested groups included).
fn group_heads(group: &str) -> Vec<String> {
    let (mut heads, mut depth, mut item) = (Vec::new(), 0, String::new());
    for c in group.chars() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => break,
            '}' => depth -= 1,
            ',' if depth == 0 => heads.push(std::mem::take(&mut item)),
            _ if depth == 0 => item.push(c),
            _ => {}
        }
    }
    heads.push(item);
    heads
        .iter()
        .map(|h| h.trim().split("::").next().unwrap_or("").trim().to_string())
        .collect()
}

/// Top-level module → the top-level modules it names.
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
            let parts: Vec<&str> = rel.trim_end_matches(".rs").split('/').collect();
            let module = parts[0].to_string();
            // How many `super::` climb from this file to the crate root.
            let depth = parts.len() - usize::from(parts.last() == Some(&"mod"));
            let code = without_tests(&std::fs::read_to_string(&path).unwrap());
            let names = graph.entry(module.clone()).or_default();
            let mut paths: Vec<&str> = code.match_indices("crate::").map(|(i, _)| &code[i + 7..]).collect();
            for (i, _) in code.match_indices("super::") {
                let before = &code[..i];
                if before.ends_with("super::") {
                    continue; // counted from the first `super::` of the run
                }
                let mut rest = &code[i..];
                let mut climbs = 0;
                while let Some(r) = rest.strip_prefix("super::") {
                    rest = r;
                    climbs += 1;
                }
                if climbs >= depth {
                    paths.push(rest);
                }
            }
            for rest in paths {
                let heads = match rest.strip_prefix('{') {
                    Some(group) => group_heads(group),
                    None => vec![rest
                        .split(|c: char| !(c.is_alphanumeric() || c == '_'))
                        .next()
                        .unwrap_or("")
                        .to_string()],
                };
                for head in heads {
                    // `crate::Error` / `crate::Result` are the error module's re-exports.
                    let head = if head == "Error" || head == "Result" {
                        "error".to_string()
                    } else {
                        head
                    };
                    if !head.is_empty() && head != module && head != "self" {
                        names.insert(head);
                    }
                }
            }
        }
    }
    graph
}

#[test]
fn every_module_is_in_a_layer() {
    let layered: BTreeSet<&str> = [DOMAIN, SETTINGS, ADAPTERS, FUNCTIONS].concat().into_iter().collect();
    let graph = imports();
    let named = graph.values().flatten().map(String::as_str);
    let unlayered: BTreeSet<&str> = graph
        .keys()
        .map(String::as_str)
        .chain(named)
        .filter(|m| !layered.contains(m))
        .collect();
    assert!(
        unlayered.is_empty(),
        "modules in no layer (add them to the README's Layout and here): {unlayered:?}"
    );
}

#[test]
fn imports_run_one_way_functions_then_settings_and_adapters_then_the_domain() {
    let upward: Vec<String> = imports()
        .iter()
        .flat_map(|(m, names)| {
            let allowed = may_import(m);
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
    let graph = imports();
    let mut done = BTreeSet::new();
    for m in graph.keys() {
        if let Some(cycle) = visit(m, &graph, &mut Vec::new(), &mut done) {
            panic!("import cycle: {}", cycle.join(" -> "));
        }
    }
}

#[test]
fn the_reader_sees_grouped_nested_and_climbing_paths() {
    assert_eq!(
        group_heads("model::{A, B}, config::C, self}"),
        ["model", "config", "self"]
    );
    assert_eq!(
        without_tests("a\n#[cfg(test)]\nmod tests {\n fn f() { crate::x }\n}\nb"),
        "a\n\nb"
    );
}
