//! The settings' definitions checked against themselves and against the table of
//! docs/CONFIGURATION.md.

use std::collections::HashSet;

use super::settings;
use super::tests::load;

const TABLE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/CONFIGURATION.md");
const HEADER: [&str; 4] = ["key (TOML)", "environment", "default", "meaning"];

/// A table row's four cells, trimmed; the last one takes whatever follows the third `|`.
fn cells(line: &str) -> Option<[&str; 4]> {
    let mut cells = line.trim().strip_prefix('|')?.splitn(4, '|').map(str::trim);
    let row = [cells.next()?, cells.next()?, cells.next()?, cells.next()?];
    Some(row.map(|c| c.trim_end_matches('|').trim()))
}

/// The row the table would have for a setting, to say what is missing.
fn row(s: &dyn super::Definition) -> String {
    let env: Vec<String> = s.env().iter().map(|e| format!("`{e}`")).collect();
    let default = match (s.default_text(), s.derived_default()) {
        (Some(d), _) if d.is_empty() => "(none)".to_owned(),
        (Some(d), _) => format!("`{d}`"),
        (None, Some(how)) => how.to_owned(),
        (None, None) => "—".to_owned(),
    };
    format!(
        "| `{}` | {} | {default} | {} |",
        s.key(),
        env.join(", "),
        s.help()
    )
}

#[test]
fn every_setting_has_its_own_key_and_environment_names() {
    let (mut keys, mut names) = (HashSet::new(), HashSet::new());
    for s in settings() {
        assert!(keys.insert(s.key()), "{} is declared twice", s.key());
        assert!(!s.env().is_empty(), "{} has no environment name", s.key());
        for name in s.env() {
            assert!(names.insert(*name), "{name} sets two settings");
        }
    }
}

#[test]
fn each_default_reads_back_as_itself_and_lies_in_its_range() {
    let written: Vec<(&str, String)> = settings()
        .filter_map(|s| Some((s.env()[0], s.default_text()?)))
        .collect();
    let vars: Vec<(&str, &str)> = written.iter().map(|(n, d)| (*n, d.as_str())).collect();
    let set = load(&vars).validate().unwrap_or_else(|p| panic!("{p:?}"));
    let defaults = load(&[]).validate().unwrap();
    assert_eq!(format!("{set:?}"), format!("{defaults:?}"));

    let described = load(&[]).describe();
    assert_eq!(described.lines().count(), settings().count(), "{described}");
    for s in settings() {
        let value = match s.default_text() {
            Some(d) => format!("{d:?}"),
            None => "(unset)".to_owned(),
        };
        let line = format!("{} = {value}  # default", s.key());
        assert!(
            described.lines().any(|l| l == line),
            "{line:?} in {described}"
        );
    }
}

#[test]
fn the_configuration_table_lists_every_setting_as_declared() {
    let text = std::fs::read_to_string(TABLE).expect("docs/CONFIGURATION.md at the workspace root");
    let mut lines = text.lines();
    assert!(
        lines.by_ref().any(|l| cells(l) == Some(HEADER)),
        "docs/CONFIGURATION.md has no table headed | {} |",
        HEADER.join(" | ")
    );
    let separator = lines.next().unwrap_or_default();
    assert!(
        separator.starts_with("|-"),
        "{separator:?} after the header"
    );
    let rows: Vec<[&str; 4]> = lines.map_while(cells).collect();

    let mut problems = Vec::new();
    let mut seen = HashSet::new();
    for [key, env, default, meaning] in rows {
        if key == "—" && env == "`RUST_LOG`" {
            continue;
        }
        let Some(s) = settings().find(|s| key == format!("`{}`", s.key())) else {
            problems.push(format!("{key}: no such setting"));
            continue;
        };
        if !seen.insert(s.key()) {
            problems.push(format!("{key}: listed twice"));
        }
        let names: Vec<String> = s.env().iter().map(|e| format!("`{e}`")).collect();
        if env != names.join(", ") {
            problems.push(format!(
                "{key}: environment {env}, declared {}",
                names.join(", ")
            ));
        }
        // Defaults computed from something else are described freely; values are checked.
        match s.default_text() {
            Some(d) if d.is_empty() && default.contains('`') => {
                problems.push(format!("{key}: default {default}, declared none"));
            }
            Some(d) if !d.is_empty() && !default.starts_with(&format!("`{d}`")) => {
                problems.push(format!("{key}: default {default}, declared `{d}`"));
            }
            _ => {}
        }
        if meaning.is_empty() {
            problems.push(format!("{key}: no meaning"));
        }
    }
    for s in settings().filter(|s| !seen.contains(s.key())) {
        problems.push(format!("missing: {}", row(s)));
    }
    assert!(
        problems.is_empty(),
        "docs/CONFIGURATION.md's configuration table disagrees with the settings:\n{}",
        problems.join("\n")
    );
}
