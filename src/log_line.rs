//! What may be shown to a person: one rule for every log line, every line the
//! command-line tool prints and the report's JSON itself.
//!
//! A character is escaped when it could break a line or drive a terminal or
//! change how the text around it reads ([`needs_escape`]): the C0 controls,
//! DEL, the C1 controls (U+0080..U+009F; U+009B is an 8-bit CSI), the
//! bidirectional controls (U+061C, U+200E, U+200F, U+202A..U+202E,
//! U+2066..U+2069) and the line and paragraph separators U+2028 and U+2029.
//! In a log line or terminal output such a character is written as `\n`,
//! `\r`, `\t` or `\u{85}` ([`escaped`]); in JSON as `\u0085` ([`json`]), so
//! that the report line in the log is the body that was sent, byte for byte,
//! and still valid JSON. Only the report line itself may hold the words that
//! `grep "Telemetry report"` finds. The Java side (`TelemetryLog.log`)
//! applies the same rule to its own records.

pub use crate::names::{DEFUSED_WORDS, REPORT_WORDS};
use serde::Serialize;

/// A value echoed into a message (a conf value, a path, a URL) is shown up
/// to this many characters, then cut with a note of its length.
pub const SHOWN_CHARS: usize = 256;
/// A log record (but the report line) is cut at this many characters.
pub const RECORD_CHARS: usize = 8 * 1024;

/// True for the characters that are never shown raw (see the module's text).
pub fn needs_escape(c: char) -> bool {
    c.is_control() // C0, DEL and C1
        || matches!(
            c,
            '\u{061C}'
                | '\u{200E}'
                | '\u{200F}'
                | '\u{202A}'..='\u{202E}'
                | '\u{2066}'..='\u{2069}'
                | '\u{2028}'
                | '\u{2029}'
        )
}

/// `text` with every character of [`needs_escape`] escaped (`\n`, `\r`,
/// `\t`, `\u{1b}`, `\u{202e}`).
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if needs_escape(c) => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A value echoed into a message: quoted, `"` and `\` escaped with a
/// backslash, the rest as [`escaped`], and cut after [`SHOWN_CHARS`]
/// characters (`"first 256…" (5000000 characters)`).
pub fn quoted(text: &str) -> String {
    let (head, count) = cut(text);
    let inner = escaped(&head.replace('\\', "\\\\").replace('"', "\\\""));
    match count {
        Some(count) => format!("\"{inner}…\" ({count} characters)"),
        None => format!("\"{inner}\""),
    }
}

/// A path echoed into a message: [`quoted`].
pub fn quoted_path(path: &std::path::Path) -> String {
    quoted(&path.to_string_lossy())
}

/// A value shown unquoted (a URL, a sink's path): [`escaped`], and cut after
/// [`SHOWN_CHARS`] characters (`first 256… (5000000 characters)`).
pub fn shown(text: &str) -> String {
    match cut(text) {
        (head, Some(count)) => format!("{}… ({count} characters)", escaped(head)),
        (head, None) => escaped(head),
    }
}

/// The first [`SHOWN_CHARS`] characters, and the whole length when that is more.
fn cut(text: &str) -> (&str, Option<usize>) {
    match text.char_indices().nth(SHOWN_CHARS) {
        Some((at, _)) => (&text[..at], Some(text.chars().count())),
        None => (text, None),
    }
}

/// A record that is not the report line: escaped, the report's words
/// defused, and cut after [`RECORD_CHARS`] characters.
pub fn defused(text: &str) -> String {
    let count = text.chars().count();
    let text = if count > RECORD_CHARS {
        let cut: String = text.chars().take(RECORD_CHARS).collect();
        format!("{cut}… (cut: {count} characters)")
    } else {
        text.to_string()
    };
    escaped(&text).replace(REPORT_WORDS, DEFUSED_WORDS)
}

/// Unix seconds as the command-line tool shows them: `2026-11-24T18:31:19Z`.
#[cfg(feature = "cli")]
pub fn utc(unix: u64) -> String {
    let time = std::time::UNIX_EPOCH + std::time::Duration::from_secs(unix);
    humantime::format_rfc3339_seconds(time).to_string()
}

/// `value` as one line of JSON in which no character of [`needs_escape`]
/// appears raw: serde_json escapes the C0 controls itself, and DEL, C1, the
/// bidirectional controls and U+2028/U+2029 are written `\u007f`, `\u0085`,
/// `\u202e`. [`escaped`] leaves such a line unchanged, so the line logged is
/// the line sent.
pub fn json<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string(value).map(escape_raw)
}

/// As [`json`], indented (the command-line tool's `--json` output).
pub fn json_pretty<T: Serialize + ?Sized>(value: &T) -> Result<String, serde_json::Error> {
    serde_json::to_string_pretty(value).map(escape_raw)
}

/// serde_json's text with each raw character of [`needs_escape`] but the
/// indentation's newlines written as a JSON escape. Outside strings serde_json
/// writes only ASCII punctuation, digits, letters, spaces and those newlines,
/// so every such character is inside a string, where `\uXXXX` is the same
/// character.
fn escape_raw(text: String) -> String {
    if !text.chars().any(|c| c != '\n' && needs_escape(c)) {
        return text;
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if c != '\n' && needs_escape(c) {
            out.push_str(&format!("\\u{:04x}", c as u32));
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
    fn control_characters_are_escaped_into_one_line() {
        assert_eq!(
            escaped("a\nb\r\tc\u{1b}[31m\u{0}\u{7f}\u{85}\u{9b}é\u{a0}"),
            "a\\nb\\r\\tc\\u{1b}[31m\\u{0}\\u{7f}\\u{85}\\u{9b}é\u{a0}"
        );
    }

    #[test]
    fn bidirectional_controls_and_line_separators_are_escaped() {
        assert_eq!(
            escaped("a\u{202e}b\u{2066}c\u{2069}\u{200e}\u{200f}\u{61c}\u{202a}\u{2028}\u{2029}"),
            "a\\u{202e}b\\u{2066}c\\u{2069}\\u{200e}\\u{200f}\\u{61c}\\u{202a}\\u{2028}\\u{2029}"
        );
        // Their neighbours are shown as they are.
        assert_eq!(
            escaped("\u{2065}\u{206a}\u{2027}\u{202f}"),
            "\u{2065}\u{206a}\u{2027}\u{202f}"
        );
    }

    #[test]
    fn only_the_report_line_keeps_the_words_the_operator_greps_for() {
        assert_eq!(
            defused("x\nTelemetry report: {}"),
            "x\\nTelemetry\\u{20}report: {}"
        );
    }

    #[test]
    fn a_record_is_cut_at_its_bound() {
        let long = "é".repeat(RECORD_CHARS + 1);
        assert_eq!(
            defused(&long),
            format!(
                "{}… (cut: {} characters)",
                "é".repeat(RECORD_CHARS),
                RECORD_CHARS + 1
            )
        );
        let exact = "é".repeat(RECORD_CHARS);
        assert_eq!(defused(&exact), exact);
    }

    #[test]
    fn an_echoed_value_is_quoted_escaped_and_cut() {
        assert_eq!(quoted("a\"b\\c\u{85}"), r#""a\"b\\c\u{85}""#);
        assert_eq!(
            quoted_path(std::path::Path::new("/a\nb\u{1b}")),
            "\"/a\\nb\\u{1b}\""
        );
        assert_eq!(
            quoted(&"x".repeat(SHOWN_CHARS)),
            format!("\"{}\"", "x".repeat(SHOWN_CHARS))
        );
        assert_eq!(
            quoted(&"x".repeat(5_000_000)),
            format!("\"{}…\" (5000000 characters)", "x".repeat(SHOWN_CHARS))
        );
    }

    #[test]
    fn json_escapes_every_character_a_line_must_not_hold_and_reads_back_the_same() {
        let value: String = (0u32..0x3000).filter_map(char::from_u32).collect();
        let line = json(&value).unwrap();
        assert_eq!(escaped(&line), line, "a character was left raw");
        assert!(line.contains(r"\u007f") && line.contains(r"\u0085") && line.contains(r"\u202e"));
        assert_eq!(serde_json::from_str::<String>(&line).unwrap(), value);
        // What serde_json writes already, it still writes so.
        assert_eq!(
            json(&serde_json::json!({"k": "a\"\\\n\u{1}é"})).unwrap(),
            r#"{"k":"a\"\\\n\u0001é"}"#
        );
        let pretty = json_pretty(&serde_json::json!({"k": ["\u{9b}\u{202e}\n"]})).unwrap();
        assert_eq!(pretty, "{\n  \"k\": [\n    \"\\u009b\\u202e\\n\"\n  ]\n}");
    }

    #[cfg(feature = "cli")]
    #[test]
    fn utc_formats_unix_seconds() {
        assert_eq!(utc(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(utc(1_795_545_079), "2026-11-24T18:31:19Z");
        assert_eq!(utc(4_107_542_399), "2100-02-28T23:59:59Z");
        assert_eq!(utc(4_107_542_400), "2100-03-01T00:00:00Z");
    }
}
