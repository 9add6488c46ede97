//! `mqbench verify PRODUCED CONSUMED`: proves that every acknowledged
//! message was received, and counts duplicates.

use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::ExitCode;

use super::VerifyArgs;

/// The message ids of a verify log, with how often each appears.
fn read_ids(path: &Path) -> anyhow::Result<HashMap<String, u64>> {
    let file = std::fs::File::open(path)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
    let mut ids = HashMap::new();
    for (number, line) in BufReader::new(file).lines().enumerate() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let entry: serde_json::Value = serde_json::from_str(&line).map_err(|e| {
            anyhow::anyhow!(
                "{}:{}: not a verify log line: {e}",
                path.display(),
                number + 1
            )
        })?;
        let id = entry
            .get("id")
            .and_then(|id| id.as_str())
            .ok_or_else(|| anyhow::anyhow!("{}:{}: no \"id\"", path.display(), number + 1))?;
        *ids.entry(id.to_owned()).or_default() += 1;
    }
    Ok(ids)
}

pub fn run(args: VerifyArgs) -> anyhow::Result<ExitCode> {
    let produced = read_ids(&args.produced)?;
    let consumed = read_ids(&args.consumed)?;
    let missing: Vec<&String> = produced
        .keys()
        .filter(|id| !consumed.contains_key(*id))
        .collect();
    let duplicates: u64 = consumed.values().map(|n| n - 1).sum();
    let unexpected = consumed
        .keys()
        .collect::<HashSet<_>>()
        .difference(&produced.keys().collect())
        .count();
    for id in missing.iter().take(10) {
        println!("lost: {id}");
    }
    println!("duplicates: {duplicates}, received but never acknowledged: {unexpected}");
    println!(
        "{} passed, {} failed",
        produced.len() - missing.len(),
        missing.len()
    );
    Ok(if missing.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
