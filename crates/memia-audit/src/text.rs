//! How messages print model indices and text read from files.

/// The models of a run of `k`, for messages: `models 0-15`, `model 0`, `no models`. Ranges in
/// messages are first-last (both included); `A..B` (end exclusive) is kept for what `--models`
/// takes.
pub fn run_models(k: usize) -> String {
    match k {
        0 => "no models".into(),
        1 => "model 0".into(),
        k => format!("models 0-{}", k - 1),
    }
}

/// Ascending indices as first-last ranges: `[0, 1, 2, 5, 7, 8]` -> `0-2, 5, 7-8`.
pub fn index_ranges(indices: &[usize]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut rest = indices.iter().copied().peekable();
    while let Some(first) = rest.next() {
        let mut last = first;
        while rest.next_if_eq(&(last + 1)).is_some() {
            last += 1;
        }
        parts.push(if last == first {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    parts.join(", ")
}

/// `text` (read from a file someone else may have written) with its control characters and
/// bidirectional-override characters escaped as Rust writes them (`\n`, `\u{1b}`, `\u{202e}`),
/// the rest as it is: printed on a terminal it can neither move the cursor, recolour or clear
/// the screen, nor reorder what follows it, nor fake a line of memia's own output.
pub fn escape_controls(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let bidi = matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
        if c.is_control() || bidi {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_are_first_last() {
        assert_eq!(run_models(16), "models 0-15");
        assert_eq!(run_models(1), "model 0");
        assert_eq!(run_models(0), "no models");
        assert_eq!(index_ranges(&[0, 1, 2, 5, 7, 8]), "0-2, 5, 7-8");
        assert_eq!(index_ranges(&[]), "");
    }

    #[test]
    fn control_characters_are_escaped_and_the_rest_kept() {
        assert_eq!(escape_controls("plain (ünï)"), "plain (ünï)");
        assert_eq!(
            escape_controls("a\u{1b}[31mred\u{7}\nfake\r\t\u{202e}x"),
            "a\\u{1b}[31mred\\u{7}\\nfake\\r\\t\\u{202e}x"
        );
    }
}
