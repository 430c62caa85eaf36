//! What may go into a log line. Every record is one line that no input can
//! forge: control characters in paths, URLs, conf values and error messages
//! are escaped, and only the report line itself may hold the words that
//! `grep "Telemetry report"` finds. The Java side (`TelemetryLog.log`)
//! applies the same rule to its own records.

pub use crate::names::{DEFUSED_WORDS, REPORT_WORDS};

/// `text` with every control character escaped (`\n`, `\r`, `\t`, `\u{1b}`).
pub fn escaped(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{{{:x}}}", c as u32)),
            c => out.push(c),
        }
    }
    out
}

/// A record that is not the report line: escaped, and the report's words defused.
pub fn defused(text: &str) -> String {
    escaped(text).replace(REPORT_WORDS, DEFUSED_WORDS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_characters_are_escaped_into_one_line() {
        assert_eq!(
            escaped("a\nb\r\tc\u{1b}[31m\u{0}\u{7f}\u{85}é"),
            "a\\nb\\r\\tc\\u{1b}[31m\\u{0}\\u{7f}\\u{85}é"
        );
    }

    #[test]
    fn only_the_report_line_keeps_the_words_the_operator_greps_for() {
        assert_eq!(
            defused("x\nTelemetry report: {}"),
            "x\\nTelemetry\\u{20}report: {}"
        );
    }
}
