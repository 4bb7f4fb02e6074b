//! Relative links in the repository's Markdown: every `[text](path)` and
//! `[text](path#anchor)` must name a file that exists and, for a Markdown
//! file, a heading it has. Anchors follow GitHub's rule: the heading in
//! lower case, spaces as hyphens, other punctuation dropped, and `-1`,
//! `-2`, ... after repeated headings.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// A link that does not resolve.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenLink {
    /// The Markdown file holding the link, as given.
    pub file: PathBuf,
    /// 1-based line of the link.
    pub line: usize,
    /// The link's target as written.
    pub target: String,
    /// Why it does not resolve.
    pub why: String,
}

impl std::fmt::Display for BrokenLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}:{}: ({}) {}",
            self.file.display(),
            self.line,
            self.target,
            self.why
        )
    }
}

/// GitHub's anchor for a heading's text.
pub fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// The anchors of a Markdown text's headings (outside fenced code).
pub fn anchors(text: &str) -> Vec<String> {
    let mut seen: HashMap<String, usize> = HashMap::new();
    let mut found = Vec::new();
    for (_, line) in prose_lines(text) {
        let Some(heading) = line.strip_prefix('#') else {
            continue;
        };
        let heading = heading.trim_start_matches('#');
        if !heading.starts_with(' ') {
            continue;
        }
        let base = anchor(heading);
        let n = seen.entry(base.clone()).or_insert(0);
        found.push(if *n == 0 {
            base.clone()
        } else {
            format!("{base}-{n}")
        });
        *n += 1;
    }
    found
}

/// `(line number, target)` of every inline link outside fenced code and
/// inline code spans.
pub fn links(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (number, line) in prose_lines(text) {
        let mut in_code = false;
        let bytes = line.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'`' => in_code = !in_code,
                b']' if !in_code && bytes.get(i + 1) == Some(&b'(') => {
                    if let Some(end) = line[i + 2..].find(')') {
                        found.push((number, line[i + 2..i + 2 + end].to_string()));
                        i += 2 + end;
                    }
                }
                _ => {}
            }
            i += 1;
        }
    }
    found
}

/// Lines outside fenced code blocks, numbered from 1.
fn prose_lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    let mut fenced = false;
    text.lines().enumerate().filter_map(move |(i, line)| {
        if line.trim_start().starts_with("```") {
            fenced = !fenced;
            return None;
        }
        (!fenced).then_some((i + 1, line))
    })
}

/// Checks every relative link of the Markdown file `file`.
pub fn check_file(file: &Path) -> Vec<BrokenLink> {
    let text =
        std::fs::read_to_string(file).unwrap_or_else(|e| panic!("read {}: {e}", file.display()));
    let dir = file.parent().unwrap_or(Path::new("."));
    let mut broken = Vec::new();
    for (line, target) in links(&text) {
        if target.contains("://") || target.starts_with("mailto:") {
            continue;
        }
        let (path, fragment) = match target.split_once('#') {
            Some((path, fragment)) => (path, Some(fragment)),
            None => (target.as_str(), None),
        };
        let resolved = if path.is_empty() {
            file.to_path_buf()
        } else {
            dir.join(path)
        };
        let mut fail = |why: String| {
            broken.push(BrokenLink {
                file: file.to_path_buf(),
                line,
                target: target.clone(),
                why,
            })
        };
        if !resolved.exists() {
            fail(format!("no such file {}", resolved.display()));
            continue;
        }
        let Some(fragment) = fragment else { continue };
        if resolved.extension().and_then(|e| e.to_str()) != Some("md") {
            continue;
        }
        let target_text = std::fs::read_to_string(&resolved).unwrap_or_default();
        if !anchors(&target_text).iter().any(|a| a == fragment) {
            fail(format!(
                "no heading with anchor #{fragment} in {}",
                resolved.display()
            ));
        }
    }
    broken
}

/// Every `.md` file under `dir`, recursively, sorted.
pub fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if path.extension().and_then(|e| e.to_str()) == Some("md") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(
            anchor("The whole cluster, not only meshflow's traffic"),
            "the-whole-cluster-not-only-meshflows-traffic"
        );
        assert_eq!(anchor("Producer (`producer.*`)"), "producer-producer");
        assert_eq!(
            anchor("1. Istio in ambient mode"),
            "1-istio-in-ambient-mode"
        );
        let text = "# A\n## Notes\n```\n# not a heading\n```\n## Notes\n";
        assert_eq!(anchors(text), ["a", "notes", "notes-1"]);
    }

    #[test]
    fn links_skip_code() {
        let text = "see [a](a.md#x) and `[b](b.md)`\n```\n[c](c.md)\n```\n[d](d.md)\n";
        assert_eq!(
            links(text),
            [(1, "a.md#x".to_string()), (5, "d.md".to_string())]
        );
    }

    #[test]
    fn a_missing_file_or_heading_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("b.md"), "# B\n## Here\n").unwrap();
        let a = dir.path().join("a.md");
        std::fs::write(
            &a,
            "[ok](b.md#here) [gone](c.md) [no heading](b.md#there) [self](#nowhere)\n",
        )
        .unwrap();
        let broken: Vec<String> = check_file(&a).into_iter().map(|b| b.target).collect();
        assert_eq!(broken, ["c.md", "b.md#there", "#nowhere"]);
    }
}
