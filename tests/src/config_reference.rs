//! The generated tables of docs/configuration.md: each sits between
//! `<!-- generated: BINARY PART ... -->` and `<!-- end generated -->`, and
//! is what `BINARY --list-keys` prints for PART (`shared`: the `kafka`,
//! `http`, `log` and `trace` keys; otherwise the keys of that section).

use std::path::Path;
use std::process::Command;

use crate::process::binary;

const BEGIN: &str = "<!-- generated: ";
const END: &str = "<!-- end generated -->";

/// Sections every service shares.
const SHARED: [&str; 4] = ["kafka.", "http.", "log.", "trace."];

/// One generated table: where it is and what it should hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Block {
    /// The binary whose `--list-keys` makes it.
    pub binary: String,
    /// `shared`, or the section whose keys it lists.
    pub part: String,
    /// What the file holds between the markers.
    pub found: String,
}

/// The generated blocks of `text`, in order.
pub fn blocks(text: &str) -> Vec<Block> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find(BEGIN) {
        let header_end = rest[start..].find("-->").expect("marker closed") + start + 3;
        let mut words = rest[start + BEGIN.len()..header_end].split_whitespace();
        let binary = words.next().unwrap_or_default().to_string();
        let part = words.next().unwrap_or_default().to_string();
        let end = rest[header_end..].find(END).expect("an end marker") + header_end;
        found.push(Block {
            binary,
            part,
            found: rest[header_end..end].trim_start_matches('\n').to_string(),
        });
        rest = &rest[end + END.len()..];
    }
    found
}

/// `binary --list-keys`: the header lines and one row per key.
pub fn list_keys(binary_name: &str) -> (Vec<String>, Vec<String>) {
    let out = Command::new(binary(binary_name))
        .arg("--list-keys")
        .env_clear()
        .output()
        .unwrap_or_else(|e| {
            panic!("run {binary_name} --list-keys: {e} (built? cargo build --bins)")
        });
    assert!(out.status.success(), "{binary_name} --list-keys: {out:?}");
    let text = String::from_utf8(out.stdout).expect("UTF-8");
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(
        lines.len() > 2,
        "{binary_name} --list-keys printed {text:?}"
    );
    (lines[..2].to_vec(), lines[2..].to_vec())
}

/// The key of a table row (`| \`kafka.x\` | ...`).
pub fn row_key(row: &str) -> &str {
    row.split('|').nth(1).unwrap_or("").trim().trim_matches('`')
}

/// What a block should hold, from its binary's `--list-keys`.
pub fn expected(block: &Block) -> String {
    let (header, rows) = list_keys(&block.binary);
    let wanted = |row: &&String| {
        let key = row_key(row);
        if block.part == "shared" {
            SHARED.iter().any(|s| key.starts_with(s))
        } else {
            key.starts_with(&format!("{}.", block.part))
        }
    };
    let mut text = header.join("\n") + "\n";
    for row in rows.iter().filter(wanted) {
        text.push_str(row);
        text.push('\n');
    }
    text
}

/// Rewrites every generated block of the file at `path` with what it
/// should hold.
pub fn regenerate(path: &Path) {
    let text = std::fs::read_to_string(path).expect("read the doc");
    let mut out = String::new();
    let mut rest = text.as_str();
    for block in blocks(&text) {
        let start = rest.find(BEGIN).expect("block");
        let header_end = rest[start..].find("-->").expect("marker") + start + 3;
        let end = rest[header_end..].find(END).expect("end") + header_end;
        out.push_str(&rest[..header_end]);
        out.push('\n');
        out.push_str(&expected(&block));
        rest = &rest[end..];
    }
    out.push_str(rest);
    std::fs::write(path, out).expect("write the doc");
}
