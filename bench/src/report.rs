//! Figures shared by every section: medians of repeated runs and ratios, as Markdown.

use std::path::{Path, PathBuf};

/// Median of repeated runs; robust to one slow outlier, which a mean is not.
pub fn median(samples: &[f64]) -> f64 {
    assert!(!samples.is_empty(), "median of no samples");
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mid = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[mid]
    } else {
        (sorted[mid - 1] + sorted[mid]) / 2.0
    }
}

/// `ours / theirs`, printed with two decimals and an `×`.
pub fn ratio(ours: f64, theirs: f64) -> String {
    if theirs == 0.0 {
        return "n/a".into();
    }
    format!("{:.2}×", ours / theirs)
}

/// A Markdown table, built row by row and written as one section's fragment.
#[derive(Debug, Clone)]
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    pub fn new<S: Into<String>>(header: impl IntoIterator<Item = S>) -> Self {
        Self {
            header: header.into_iter().map(Into::into).collect(),
            rows: Vec::new(),
        }
    }

    pub fn row<S: Into<String>>(&mut self, cells: impl IntoIterator<Item = S>) -> &mut Self {
        let row: Vec<String> = cells.into_iter().map(Into::into).collect();
        assert_eq!(
            row.len(),
            self.header.len(),
            "row width differs from the header"
        );
        self.rows.push(row);
        self
    }

    pub fn to_markdown(&self) -> String {
        let line = |cells: &[String]| format!("| {} |\n", cells.join(" | "));
        let mut out = line(&self.header);
        out.push_str(&line(&vec!["---".to_string(); self.header.len()]));
        for row in &self.rows {
            out.push_str(&line(row));
        }
        out
    }
}

/// Where a section writes its fragment: `$BENCH_OUT` (set by `scripts/bench.sh`) or `bench/out`.
pub fn fragment_path(section: &str) -> PathBuf {
    let dir = std::env::var_os("BENCH_OUT")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new("bench").join("out"));
    dir.join(format!("{section}.md"))
}

/// Now, as the fragments print it.
pub fn stamp() -> String {
    time::OffsetDateTime::now_utc()
        .format(time::macros::format_description!(
            "[year]-[month]-[day] [hour]:[minute] UTC"
        ))
        .unwrap_or_default()
}

/// The machine a fragment was measured on (`BENCH_MACHINE`, which `scripts/bench.sh` sets
/// from the CPU model, cores and memory): fragments of different runs sit side by side in
/// `bench/results.md` and may come from different machines.
fn machine() -> String {
    std::env::var("BENCH_MACHINE").unwrap_or_else(|_| "this machine".to_string())
}

/// Writes one section's fragment (title, when, free text, table) and echoes it to stdout.
pub fn write_fragment(
    section: &str,
    title: &str,
    text: &str,
    table: &Table,
) -> std::io::Result<()> {
    let body = format!(
        "## {title}\n\n_Measured {} on {}._ {text}\n\n{}\n",
        stamp(),
        machine(),
        table.to_markdown()
    );
    let path = fragment_path(section);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    std::fs::write(&path, &body)?;
    print!("{body}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), 2.5);
    }

    #[test]
    fn table_renders_header_rule_and_rows() {
        let mut t = Table::new(["tool", "objects/s"]);
        t.row(["ours", "950"]);
        assert_eq!(
            t.to_markdown(),
            "| tool | objects/s |\n| --- | --- |\n| ours | 950 |\n"
        );
    }
}
