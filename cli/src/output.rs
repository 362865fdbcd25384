//! What the CLI prints: JSON, or aligned tables.

use std::io::Write as _;

use anyhow::Context;
use clap::ValueEnum;
use serde::Serialize;

#[derive(Clone, Copy, ValueEnum, PartialEq)]
pub enum Output {
    Table,
    Json,
}

/// Writes to stdout. A reader that went away (`tend … | head`) ends the
/// program quietly.
pub fn emit(text: &str) -> anyhow::Result<()> {
    emit_bytes(text.as_bytes())
}

/// Writes bytes to stdout as they are (see [`emit`]).
pub fn emit_bytes(bytes: &[u8]) -> anyhow::Result<()> {
    let mut so = std::io::stdout().lock();
    match so.write_all(bytes).and_then(|()| so.flush()) {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => std::process::exit(0),
        r => r.context("writing to stdout"),
    }
}

/// Prints a value as pretty JSON.
pub fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    emit(&format!("{}\n", serde_json::to_string_pretty(value)?))
}

/// Prints JSON, or a table of the given columns (dotted paths into each row).
pub fn show<T: Serialize>(output: Output, value: &T, columns: &[&str]) -> anyhow::Result<()> {
    let v = serde_json::to_value(value)?;
    if output == Output::Json {
        return json(&v);
    }
    let rows: Vec<serde_json::Value> = match v {
        serde_json::Value::Array(a) => a,
        other => vec![other],
    };
    let cell = |row: &serde_json::Value, col: &str| -> String {
        match row.pointer(&format!("/{}", col.replace('.', "/"))) {
            None | Some(serde_json::Value::Null) => "-".into(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(serde_json::Value::Object(m)) => m
                .iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(&v.to_string())))
                .collect::<Vec<_>>()
                .join(","),
            Some(other) => other.to_string(),
        }
    };
    let headers: Vec<String> = columns.iter().map(|c| c.to_uppercase()).collect();
    table(&headers, rows.iter().map(|r| columns.iter().map(|c| cell(r, c)).collect()).collect())
}

/// Characters of one table cell; longer text is cut with an ellipsis
/// (`--output json` has it whole).
pub const MAX_CELL: usize = 80;

/// True for characters that change what a terminal shows beyond
/// themselves: control characters (ESC starts a terminal sequence) and the
/// bidirectional formatting characters (U+202E reverses what follows).
fn is_hostile(c: char) -> bool {
    c.is_control()
        || matches!(c, '\u{200e}' | '\u{200f}' | '\u{061c}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// Untrusted text made inert for a terminal: hostile characters shown
/// escaped (`\u{1b}`, `\n`, `\u{202e}`), cut to `max` characters.
pub fn inert(s: &str, max: usize) -> String {
    let mut out = String::new();
    for (n, c) in s.chars().enumerate() {
        if n >= max {
            out.push('…');
            break;
        }
        if is_hostile(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

/// Multi-line text made inert line by line (messages, diagnostics).
pub fn inert_lines(s: &str) -> String {
    s.lines().map(|l| inert(l, usize::MAX)).collect::<Vec<_>>().join("\n")
}

/// Prints a table: the headers, then the rows, columns aligned. Every cell
/// is made inert and cut to [`MAX_CELL`] characters.
pub fn table<H: AsRef<str>>(headers: &[H], rows: Vec<Vec<String>>) -> anyhow::Result<()> {
    let rows: Vec<Vec<String>> = rows.into_iter().map(|r| r.iter().map(|c| inert(c, MAX_CELL)).collect()).collect();
    let width = |s: &str| s.chars().count();
    let widths: Vec<usize> = headers
        .iter()
        .enumerate()
        .map(|(i, h)| {
            rows.iter().filter_map(|r| r.get(i)).map(|c| width(c)).chain([width(h.as_ref())]).max().unwrap_or(0)
        })
        .collect();
    // Padded by hand: `{:<w$}` takes at most 65,535 for w.
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c}{}", " ".repeat(w.saturating_sub(width(c)))))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut text = line(headers.iter().map(AsRef::as_ref).collect()) + "\n";
    for r in &rows {
        text.push_str(&line(r.iter().map(String::as_str).collect()));
        text.push('\n');
    }
    emit(&text)
}

/// `-` for nothing.
pub fn or_dash<T: ToString>(v: Option<T>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "-".into())
}

/// A duration for people: `850ms`, `12.3s`, `4m05s`, `2h10m`.
pub fn duration_ms(ms: u64) -> String {
    match ms {
        0..1_000 => format!("{ms}ms"),
        1_000..60_000 => format!("{:.1}s", ms as f64 / 1000.0),
        60_000..3_600_000 => format!("{}m{:02}s", ms / 60_000, ms / 1000 % 60),
        _ => format!("{}h{:02}m", ms / 3_600_000, ms / 60_000 % 60),
    }
}

/// One line of untrusted text fit for a table cell: control characters
/// become spaces, and it is cut to `max` characters.
pub fn cell_text(s: &str, max: usize) -> String {
    let clean: String = s.trim().chars().map(|c| if is_hostile(c) { ' ' } else { c }).collect();
    if clean.chars().count() <= max {
        return clean;
    }
    let cut: String = clean.chars().take(max.saturating_sub(1)).collect();
    format!("{}…", cut.trim_end())
}

/// Parameters as `k=v` words (strings quoted), for headers.
pub fn params_line(params: &serde_json::Map<String, serde_json::Value>) -> String {
    params
        .iter()
        .map(|(k, val)| format!("{k}={}", val.as_str().map_or_else(|| val.to_string(), |s| format!("{s:?}"))))
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_and_cells() {
        assert_eq!(duration_ms(850), "850ms");
        assert_eq!(duration_ms(12_345), "12.3s");
        assert_eq!(duration_ms(245_000), "4m05s");
        assert_eq!(duration_ms(7_800_000), "2h10m");
        assert_eq!(cell_text("a\tb\x1b[31m", 60), "a b [31m");
        assert_eq!(cell_text(&"x".repeat(70), 10), format!("{}…", "x".repeat(9)));
    }

    #[test]
    fn hostile_text_is_inert() {
        assert_eq!(inert("web\u{1b}[2J\n\0\u{202e}x", 80), "web\\u{1b}[2J\\n\\u{0}\\u{202e}x");
        assert_eq!(inert(&"y".repeat(100), 5), "yyyyy…");
        assert_eq!(inert("plain ünïcode", 80), "plain ünïcode");
    }

    #[test]
    fn a_cell_over_65535_characters_does_not_panic() {
        // `{:<w$}` panicked past u16::MAX; cells are now cut and padded by hand.
        let rows = vec![vec!["x".repeat(70_000), "\u{1b}[2J".to_string()]];
        table(&["A", "B"], rows).expect("table");
    }
}
