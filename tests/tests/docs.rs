//! The documentation a reader follows: every relative link and anchor in
//! README.md, CHANGELOG.md and docs/ resolves.

use meshflow_tests::doc_links::{check_file, markdown_files};
use meshflow_tests::repo_root;

#[test]
fn every_relative_link_and_anchor_resolves() {
    let root = repo_root();
    let mut files = vec![root.join("README.md")];
    if root.join("CHANGELOG.md").exists() {
        files.push(root.join("CHANGELOG.md"));
    }
    files.extend(markdown_files(&root.join("docs")));
    assert!(files.len() > 10, "found only {files:?}");
    let broken: Vec<String> = files
        .iter()
        .flat_map(|f| check_file(f))
        .map(|b| b.to_string())
        .collect();
    println!("{} Markdown files checked", files.len());
    assert!(broken.is_empty(), "broken links:\n{}", broken.join("\n"));
}
