//! How mqadmin prints: an aligned table for people, or one JSON document
//! for scripts (`--json`).

use serde_json::Value;

/// Rows of one kind, printed as a table or as JSON.
#[derive(Debug)]
pub struct Table {
    /// (column title, key of the row objects).
    columns: Vec<(&'static str, &'static str)>,
    rows: Vec<Value>,
}

impl Table {
    pub fn new(columns: &[(&'static str, &'static str)]) -> Self {
        Table {
            columns: columns.to_vec(),
            rows: Vec::new(),
        }
    }

    pub fn push(&mut self, row: Value) {
        self.rows.push(row);
    }

    pub fn rows(&self) -> &[Value] {
        &self.rows
    }

    /// The table as text: a header line, then one aligned line per row.
    pub fn render(&self) -> String {
        let cells: Vec<Vec<String>> = self
            .rows
            .iter()
            .map(|row| {
                self.columns
                    .iter()
                    .map(|(_, key)| cell(&row[*key]))
                    .collect()
            })
            .collect();
        let widths: Vec<usize> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, (title, _))| {
                cells
                    .iter()
                    .map(|r| r[i].len())
                    .chain([title.len()])
                    .max()
                    .unwrap_or(0)
            })
            .collect();
        let line = |values: Vec<&str>| {
            values
                .iter()
                .zip(&widths)
                .map(|(v, w)| format!("{v:<w$}"))
                .collect::<Vec<_>>()
                .join("  ")
                .trim_end()
                .to_owned()
        };
        let mut out = line(self.columns.iter().map(|(t, _)| *t).collect());
        for row in &cells {
            out.push('\n');
            out.push_str(&line(row.iter().map(String::as_str).collect()));
        }
        out
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::Null => "-".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => items.iter().map(cell).collect::<Vec<_>>().join(","),
        other => other.to_string(),
    }
}

/// Prints `table` (and `footer` lines under it), or `json` as one line.
pub fn emit(json_output: bool, table: &Table, footer: &[String], json: Value) {
    if json_output {
        println!("{json}");
    } else {
        println!("{}", table.render());
        for line in footer {
            println!("{line}");
        }
    }
}

/// "2026-11-25 14:03:07.123 UTC" for ms since the epoch (0: "-").
pub fn time(ms: u64) -> Value {
    if ms == 0 {
        return Value::Null;
    }
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_millis(ms);
    Value::String(humantime::format_rfc3339_millis(at).to_string())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn tables_align_columns_and_show_missing_values_as_dashes() {
        let mut table = Table::new(&[("TOPIC", "topic"), ("LAG", "lag")]);
        table.push(json!({"topic": "orders", "lag": 12}));
        table.push(json!({"topic": "a"}));
        assert_eq!(table.render(), "TOPIC   LAG\norders  12\na       -");
    }
}
