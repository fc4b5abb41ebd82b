//! Cells of user text in the report's CSV files, safe to open in a spreadsheet.

/// One text cell of a CSV file. Text that begins with `=`, `+`, `-`, `@`, a tab or a carriage
/// return gets a leading `'`: spreadsheets take such a cell for a formula, so a provenance of
/// `=HYPERLINK("http://...", "click")` in a pool's files would become a live link, or worse, in
/// the auditor's spreadsheet (OWASP, "CSV injection"). The cell is then quoted where it holds a
/// comma, a quote or a line break (RFC 4180), so that it stays one field.
///
/// Only text goes through here: numbers, negative ones included, are written as numbers by the
/// caller, and a text that a spreadsheet would read as a negative number (`-3`) is text here
/// and keeps its quote mark.
pub fn text_cell(s: &str) -> String {
    let neutral = if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{s}")
    } else {
        s.to_string()
    };
    if neutral.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", neutral.replace('"', "\"\""))
    } else {
        neutral
    }
}

#[cfg(test)]
mod tests {
    use super::text_cell;

    #[test]
    fn formulas_are_neutralised_and_fields_quoted() {
        assert_eq!(text_cell("pool:3"), "pool:3");
        assert_eq!(text_cell(""), "");
        assert_eq!(text_cell("canary,0"), "\"canary,0\"");
        assert_eq!(
            text_cell("=HYPERLINK(\"http://x\",\"y\")"),
            "\"'=HYPERLINK(\"\"http://x\"\",\"\"y\"\")\""
        );
        assert_eq!(text_cell("+1"), "'+1");
        assert_eq!(text_cell("-2+3"), "'-2+3");
        assert_eq!(text_cell("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(text_cell("\tx"), "'\tx");
        assert_eq!(text_cell("\rx"), "\"'\rx\"");
        assert_eq!(text_cell("a=b"), "a=b", "only a leading character matters");
        assert_eq!(text_cell("say \"hi\""), "\"say \"\"hi\"\"\"");
    }
}
