//! Every relative link in the repository's Markdown resolves: the file exists and, when the
//! link names a heading (`file.md#anchor`), that file has the heading. The benchmark pages
//! link across each other and into stored results by anchor, and a heading renamed or moved
//! between pages would otherwise break them silently.

use std::collections::{HashMap, HashSet};
use std::fs;
use std::path::{Path, PathBuf};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the e2e crate sits in the workspace")
        .to_path_buf()
}

/// Markdown files under `dir`, leaving out build output and hidden directories.
fn markdown_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = fs::read_dir(dir).unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("directory entry").path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() {
            if !(name.starts_with('.') || name == "target" || name == "node_modules") {
                markdown_files(&path, out);
            }
        } else if name.ends_with(".md") {
            out.push(path);
        }
    }
}

/// The lines of a Markdown file outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> Vec<(usize, &str)> {
    let mut fenced = false;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
        } else if !fenced {
            out.push((i + 1, line));
        }
    }
    out
}

/// The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens.
fn slug(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | ' '))
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every anchor a file's headings make; a repeated heading gets `-1`, `-2`, ... as on GitHub.
fn anchors(text: &str) -> HashSet<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut out = HashSet::new();
    for (_, line) in prose_lines(text) {
        let hashes = line.chars().take_while(|&c| c == '#').count();
        if !(1..=6).contains(&hashes) || !line[hashes..].starts_with(' ') {
            continue;
        }
        let base = slug(line[hashes..].trim_end_matches(['#', ' ']));
        let n = seen.entry(base.clone()).or_insert(0);
        out.insert(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    out
}

/// Link targets of inline links (`[text](target)`) on one line, code spans left out.
fn link_targets(line: &str) -> Vec<String> {
    let mut prose = String::new();
    for (i, part) in line.split('`').enumerate() {
        if i % 2 == 0 {
            prose.push_str(part);
        }
    }
    let mut out = Vec::new();
    let mut rest = prose.as_str();
    while let Some(at) = rest.find("](") {
        rest = &rest[at + 2..];
        let end = rest.find([')', ' ']).unwrap_or(rest.len());
        out.push(rest[..end].to_string());
        rest = &rest[end..];
    }
    out
}

fn is_external(target: &str) -> bool {
    let before = target.split(['/', '#']).next().unwrap_or("");
    before.contains(':')
}

#[test]
fn relative_links_and_anchors_resolve() {
    let root = repo_root();
    let mut files = Vec::new();
    markdown_files(&root, &mut files);
    let mut anchor_cache: HashMap<PathBuf, HashSet<String>> = HashMap::new();
    let mut broken = Vec::new();
    let (mut checked_files, mut checked_anchors) = (0, 0);
    for file in &files {
        let text = fs::read_to_string(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
        for (line_no, line) in prose_lines(&text) {
            for target in link_targets(line) {
                if target.is_empty() || is_external(&target) {
                    continue;
                }
                let (path_part, anchor) = match target.split_once('#') {
                    Some((p, a)) => (p, Some(a)),
                    None => (target.as_str(), None),
                };
                let dest = if path_part.is_empty() {
                    file.clone()
                } else {
                    file.parent()
                        .expect("a file has a directory")
                        .join(path_part)
                };
                let at = format!(
                    "{}:{line_no}: {target}",
                    file.strip_prefix(&root).unwrap_or(file).display()
                );
                if !dest.exists() {
                    broken.push(format!("{at} (no such file)"));
                    continue;
                }
                checked_files += 1;
                let Some(anchor) = anchor.filter(|a| !a.is_empty()) else {
                    continue;
                };
                if dest.extension().and_then(|e| e.to_str()) != Some("md") {
                    continue;
                }
                let known = anchor_cache.entry(dest.clone()).or_insert_with(|| {
                    anchors(
                        &fs::read_to_string(&dest)
                            .unwrap_or_else(|e| panic!("{}: {e}", dest.display())),
                    )
                });
                checked_anchors += 1;
                if !known.contains(anchor) {
                    broken.push(format!("{at} (no such heading)"));
                }
            }
        }
    }
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
    // The walk must have found the documentation, or the test proves nothing.
    assert!(
        checked_files > 200,
        "only {checked_files} relative links found"
    );
    assert!(
        checked_anchors > 20,
        "only {checked_anchors} links to headings found"
    );
}

#[test]
fn slugs_and_repeated_headings_follow_github() {
    assert_eq!(
        slug("Session of 2026-12-03 15:30– UTC: a light apply (`758e6c7`); what's left"),
        "session-of-2026-12-03-1530-utc-a-light-apply-758e6c7-whats-left"
    );
    let text = "# Top\n## What changed\n```\n## not a heading\n```\n## What changed\n";
    let found = anchors(text);
    let want: HashSet<String> = ["top", "what-changed", "what-changed-1"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    assert_eq!(found, want);
}

#[test]
fn links_in_code_are_not_links() {
    assert_eq!(
        link_targets("see [a](x.md#y) and `[b](not-a-link.md)` then [c](http://e.org)"),
        vec!["x.md#y".to_string(), "http://e.org".to_string()]
    );
    assert!(is_external("http://e.org"));
    assert!(!is_external("bench-results/a:b.md"));
}
