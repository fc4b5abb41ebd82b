//! `--json`: what a command found, as one JSON document on standard output, for scripts (and the
//! Python package). Every document carries `schema_version` ([`memia_report::SCHEMA_VERSION`],
//! the one version of memia's JSON, documented in docs/file-formats.md) and `command`; progress
//! and status lines stay on standard error.

use serde::Serialize;

/// Prints `body` (an object) with `schema_version` and `command` beside its fields.
pub(crate) fn print(command: &str, body: impl Serialize) {
    let mut doc = serde_json::Map::new();
    doc.insert("schema_version".into(), memia_report::SCHEMA_VERSION.into());
    doc.insert("command".into(), command.into());
    match serde_json::to_value(body).expect("plain data serialises") {
        serde_json::Value::Object(fields) => {
            for (key, value) in fields {
                if key != "schema_version" {
                    doc.insert(key, value);
                }
            }
        }
        other => {
            doc.insert("result".into(), other);
        }
    }
    println!(
        "{}",
        serde_json::to_string_pretty(&doc).expect("plain data serialises")
    );
}
