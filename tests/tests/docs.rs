//! The documentation a reader follows: every relative link and anchor in
//! README.md, CHANGELOG.md and docs/ resolves, and the configuration
//! reference in docs/configuration.md is what the binaries say about their
//! own keys. `UPDATE=1` regenerates that reference instead of comparing.

use meshflow_tests::config_reference::{blocks, expected, list_keys, regenerate, row_key};
use meshflow_tests::doc_links::{check_file, markdown_files};
use meshflow_tests::repo_root;

#[test]
fn the_readme_stays_short() {
    let readme = std::fs::read_to_string(repo_root().join("README.md")).expect("README.md");
    let lines = readme.lines().count();
    println!("README.md: {lines} lines");
    assert!(
        lines <= 200,
        "README.md has {lines} lines; reference text goes to docs/"
    );
}

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

#[test]
fn the_configuration_reference_is_what_the_binaries_say() {
    let path = repo_root().join("docs/configuration.md");
    if std::env::var_os("UPDATE").is_some() {
        regenerate(&path);
        println!("regenerated {}", path.display());
    }
    let text = std::fs::read_to_string(&path).expect("docs/configuration.md");
    let found = blocks(&text);
    let parts: Vec<(&str, &str)> = found
        .iter()
        .map(|b| (b.binary.as_str(), b.part.as_str()))
        .collect();
    assert_eq!(
        parts,
        [
            ("meshflow-producer", "shared"),
            ("meshflow-producer", "producer"),
            ("meshflow-consumer", "consumer"),
            ("meshflow-exporter", "exporter"),
        ]
    );
    for block in &found {
        let want = expected(block);
        assert!(
            block.found == want,
            "docs/configuration.md differs from `{} --list-keys` ({}); regenerate with \
             UPDATE=1 cargo nextest run -p meshflow-tests -E 'binary(docs)'\n--- in the doc:\n{}\n--- from the code:\n{}",
            block.binary,
            block.part,
            block.found,
            want
        );
    }
    // The shared keys, shown once from the producer, are the same in every
    // service but for the listen port.
    let shared = |binary: &str| -> Vec<String> {
        list_keys(binary)
            .1
            .into_iter()
            .filter(|r| !row_key(r).contains("producer.") && !row_key(r).contains("consumer."))
            .filter(|r| !row_key(r).starts_with("exporter.") && row_key(r) != "http.listen")
            .collect()
    };
    let producer = shared("meshflow-producer");
    assert_eq!(producer.len(), 12, "{producer:#?}");
    assert_eq!(shared("meshflow-consumer"), producer);
    assert_eq!(shared("meshflow-exporter"), producer);
}
