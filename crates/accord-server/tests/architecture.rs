//! The server's rooms (docs/architecture.md), checked: surfaces on top (protocol endpoints,
//! pages, the Graph API, the CLI), the service layer beneath them, and below it the pieces every
//! layer shares (state, keys, signing, tenant paths). A module may name only the rooms its layer
//! may use; this test reads every source file and fails on the first path that points upward.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The rooms a layer may name with `crate::…`, and the crates it may not use at all.
struct Rule {
    /// Files of the layer: a directory (`service/`) or a file (`state.rs`) under `src/`.
    files: &'static [&'static str],
    may_use: &'static [&'static str],
    no_crates: &'static [&'static str],
}

/// Below the surfaces: no HTTP, no pages.
const SHARED: &[&str] = &[
    "state",
    "crypto",
    "signing",
    "tenancy",
    "password_work",
    "lockout",
    "client_certificates",
    "federation",
    "egress",
    "throttle",
    "decision_journal",
    "replication_lag",
];
const NO_HTTP: &[&str] = &["axum", "axum_server", "tower", "tower_http", "minijinja"];

const RULES: &[Rule] = &[
    // The shared pieces use only each other.
    Rule {
        files: &[
            "state.rs",
            "crypto.rs",
            "signing.rs",
            "tenancy.rs",
            "password_work.rs",
            "lockout.rs",
            "client_certificates.rs",
            "federation.rs",
            "egress.rs",
            "throttle.rs",
            "decision_journal.rs",
            "replication_lag.rs",
        ],
        may_use: SHARED,
        no_crates: NO_HTTP,
    },
    // Services use the shared pieces, the engine and the store, never a surface.
    Rule {
        files: &["service/"],
        may_use: &[
            "service",
            "state",
            "crypto",
            "signing",
            "tenancy",
            "password_work",
            "lockout",
            "client_certificates",
            "federation",
            "egress",
            "decision_journal",
            "replication_lag",
        ],
        no_crates: NO_HTTP,
    },
    // Browser plumbing knows no surface.
    Rule { files: &["web/"], may_use: &["web", "state", "crypto", "lockout"], no_crates: &[] },
    // The protocol surface does not reach into the other surfaces.
    Rule {
        files: &["protocol/"],
        may_use: &[
            "protocol",
            "web",
            "service",
            "state",
            "crypto",
            "signing",
            "tenancy",
            "ops",
            "password_work",
            "lockout",
            "client_certificates",
            "federation",
            "replication_lag",
        ],
        no_crates: &[],
    },
    // Neither does the Graph API.
    Rule {
        files: &["graph/"],
        may_use: &[
            "graph",
            "web",
            "service",
            "state",
            "crypto",
            "signing",
            "tenancy",
            "ops",
            "protocol",
            "client_certificates",
            "throttle",
        ],
        no_crates: &[],
    },
];

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// Code without comments (line comments, doc comments), so prose may name any room.
fn code_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines().enumerate().filter_map(|(i, line)| {
        let code = match line.find("//") {
            Some(at) => &line[..at],
            None => line,
        };
        (!code.trim().is_empty()).then_some((i + 1, code))
    })
}

/// The top-level modules a line names: `crate::a::…`, `crate::{a, b::c}`.
fn rooms_named(code: &str) -> BTreeSet<String> {
    let mut rooms = BTreeSet::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        let after = &rest[at + "crate::".len()..];
        if let Some(group) = after.strip_prefix('{') {
            let inner = &group[..group.find('}').unwrap_or(group.len())];
            for part in inner.split(',') {
                let name: String = part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                if !name.is_empty() {
                    rooms.insert(name);
                }
            }
        } else {
            let name: String = after.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
            if !name.is_empty() {
                rooms.insert(name);
            }
        }
        rest = after;
    }
    rooms
}

/// Whether `code` uses the external crate `name` (`use name::…`, `name::path`).
fn uses_crate(code: &str, name: &str) -> bool {
    let needle = format!("{name}::");
    code.match_indices(&needle).any(|(at, _)| {
        let before = code[..at].chars().next_back();
        !before.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == ':')
    })
}

fn violations() -> Vec<String> {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        let Some(rule) = RULES
            .iter()
            .find(|r| r.files.iter().any(|f| if f.ends_with('/') { rel.starts_with(f) } else { rel == *f }))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, code) in code_lines(&text) {
            for room in rooms_named(code) {
                if !rule.may_use.contains(&room.as_str()) {
                    found.push(format!("src/{rel}:{line}: names crate::{room}, which its layer may not use"));
                }
            }
            for krate in rule.no_crates {
                if uses_crate(code, krate) {
                    found.push(format!("src/{rel}:{line}: uses {krate}, which its layer may not use"));
                }
            }
        }
    }
    found
}

#[test]
fn no_layer_points_upward() {
    let found = violations();
    assert!(found.is_empty(), "layering broken (docs/architecture.md):\n{}", found.join("\n"));
}

/// The sibling modules each file of `dir` names (`super::x`, `crate::dir::x`).
fn sibling_graph(dir: &str) -> BTreeMap<String, BTreeSet<String>> {
    let path = src().join(dir);
    let stems: BTreeSet<String> = std::fs::read_dir(&path)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            (p.extension().is_some_and(|x| x == "rs")).then(|| p.file_stem().unwrap().to_string_lossy().into_owned())
        })
        .filter(|s| s != "mod")
        .collect();
    let mut graph = BTreeMap::new();
    for stem in &stems {
        let text = std::fs::read_to_string(path.join(format!("{stem}.rs"))).unwrap();
        let mut named = BTreeSet::new();
        for (_, code) in code_lines(&text) {
            for prefix in ["super::".to_string(), format!("crate::{dir}::")] {
                for (at, _) in code.match_indices(&prefix) {
                    let after = &code[at + prefix.len()..];
                    let parts: Vec<&str> = match after.strip_prefix('{') {
                        Some(group) => group[..group.find('}').unwrap_or(group.len())].split(',').collect(),
                        None => vec![after],
                    };
                    for part in parts {
                        let name: String =
                            part.trim().chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                        if stems.contains(&name) && &name != stem {
                            named.insert(name);
                        }
                    }
                }
            }
        }
        graph.insert(stem.clone(), named);
    }
    graph
}

/// Cycles among sibling modules, each as `a -> b -> a`.
fn cycles(graph: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    fn walk(
        graph: &BTreeMap<String, BTreeSet<String>>,
        node: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
        found: &mut Vec<String>,
    ) {
        if let Some(at) = path.iter().position(|p| p == node) {
            found.push(format!("{} -> {node}", path[at..].join(" -> ")));
            return;
        }
        if !done.insert(node.to_string()) {
            return;
        }
        path.push(node.to_string());
        for next in graph.get(node).into_iter().flatten() {
            walk(graph, next, path, done, found);
        }
        path.pop();
    }
    let mut found = Vec::new();
    let mut done = BTreeSet::new();
    for node in graph.keys() {
        walk(graph, node, &mut Vec::new(), &mut done, &mut found);
    }
    found
}

/// Issue 12, findings 3 and 12: argon2 costs 19 MiB a check, so every password check and hash
/// must go through the bounded workers of `password_work.rs` (sign-in, resets, scenario loads).
/// Only `crypto.rs` (which defines them, and its own tests) and `password_work.rs` may call the
/// raw functions.
#[test]
fn password_hashing_goes_only_through_the_bounded_workers() {
    let root = src();
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    let mut found = Vec::new();
    for file in files {
        let rel = file.strip_prefix(&root).unwrap().to_string_lossy().replace('\\', "/");
        if rel == "crypto.rs" || rel == "password_work.rs" {
            continue;
        }
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, code) in code_lines(&text) {
            for raw in ["hash_password(", "verify_password(", "Argon2::", "argon2::"] {
                if code.contains(raw) {
                    found.push(format!("src/{rel}:{line}: {}", code.trim()));
                }
            }
        }
    }
    assert!(found.is_empty(), "password work outside password_work.rs:\n{}", found.join("\n"));
}

#[test]
fn no_two_modules_of_a_room_need_each_other() {
    // A circle (a needs b, b needs a) means a piece both use lives in the wrong file.
    let mut found = Vec::new();
    for dir in ["protocol", "graph", "admin_center", "web", "service", "service/administration"] {
        found.extend(cycles(&sibling_graph(dir)).into_iter().map(|c| format!("src/{dir}: {c}")));
    }
    assert!(found.is_empty(), "modules that import each other:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_what_it_must() {
    // A circle is found, a chain is not.
    let graph = |edges: &[(&str, &str)]| {
        let mut g: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for (a, b) in edges {
            g.entry(a.to_string()).or_default().insert(b.to_string());
            g.entry(b.to_string()).or_default();
        }
        g
    };
    assert_eq!(cycles(&graph(&[("a", "b"), ("b", "c"), ("c", "a")])), ["a -> b -> c -> a"]);
    assert!(cycles(&graph(&[("a", "b"), ("b", "c"), ("a", "c")])).is_empty());
    // And the reader sees real edges: `super::x` and grouped `super::{x, y}` paths.
    let protocol = sibling_graph("protocol");
    assert!(protocol["authorize"].contains("consent_pages") && protocol["authorize"].contains("authorization_request"));
    assert!(protocol["consent_pages"].contains("authorization_request"), "{protocol:?}");
    // The parser finds single and grouped paths, and ignores comments.
    assert_eq!(rooms_named("use crate::protocol::errors::Failure;"), BTreeSet::from(["protocol".to_string()]));
    assert_eq!(
        rooms_named("use crate::{state::AppState, web::forms};"),
        BTreeSet::from(["state".to_string(), "web".to_string()])
    );
    assert_eq!(
        code_lines("// crate::protocol\nlet x = 1; // crate::graph").map(|(_, c)| c.trim()).collect::<Vec<_>>(),
        ["let x = 1;"]
    );
    assert!(uses_crate("use axum::http::HeaderMap;", "axum"));
    assert!(!uses_crate("use my_axum::x;", "axum"));
    // Every rule matches files that exist, so a moved directory cannot silently escape it.
    let root = src();
    for rule in RULES {
        for f in rule.files {
            assert!(root.join(f.trim_end_matches('/')).exists(), "src/{f} does not exist");
        }
    }
}
