//! `spark-defaults.conf` as Spark reads it, and one key set in it with every
//! other byte kept.
//!
//! Spark loads the file with `java.util.Properties` (UTF-8, a byte order mark
//! kept as a character) and trims each value of the characters up to U+0020
//! except `\r` and `\n` (`Utils.trimExceptCRLF`). The line format, as
//! `Properties.load` reads it: white space (space, tab, form feed) at the
//! start of a line is skipped; a logical line whose first character is `#` or
//! `!` is a comment, to the end of its physical line; blank lines are skipped;
//! a line ending in an odd number of `\` continues on the next line (whose
//! leading white space is dropped), and a continuation that has gathered
//! nothing yet is no line at all (a comment or blank line after it is just
//! that); a key ends at the first unescaped `=`, `:` or white space, and one
//! `=` or `:` may stand among the white space before the value; `\t \n \r
//! \f \uXXXX` are escapes and `\x` is `x`. The last definition of a key wins.
//! `properties_differential` checks all of it against a JVM.
//!
//! Setting a key rewrites only the span of its own definition: the leading
//! white space, the key and the separator as written, then the new value.
//! A file this tool cannot rewrite safely is refused, never guessed at: not
//! UTF-8, a malformed `\u` escape (Spark itself fails on it), a `\uXXXX`
//! escape that is half of a surrogate pair (a string this tool cannot hold),
//! a `\` continuation next to a comment that Java 8 reads otherwise than
//! later Java (Spark 3.x may run on Java 8), the key defined more than once,
//! or (when the key must be added at the end) a last line that continues into
//! what would be added.

use std::collections::BTreeMap;
use std::fmt;

/// Why a file cannot be read or changed safely; each says where and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotUtf8 { line: usize },
    MalformedEscape { line: usize },
    UnpairedSurrogate { line: usize },
    JavaVersionsDiffer { line: usize },
    Duplicate { key: String, lines: Vec<usize> },
    DanglingContinuation { line: usize },
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Refusal::NotUtf8 { line } => write!(
                f,
                "line {line} is not UTF-8 text (Spark reads the file as UTF-8); convert the file to UTF-8"
            ),
            Refusal::MalformedEscape { line } => write!(
                f,
                "line {line} has a malformed \\uXXXX escape (Spark cannot load the file either); fix that line"
            ),
            Refusal::UnpairedSurrogate { line } => write!(
                f,
                "line {line} has a \\uXXXX escape that is half of a UTF-16 surrogate pair (Spark \
                 would read a broken character); fix that line"
            ),
            Refusal::JavaVersionsDiffer { line } => write!(
                f,
                "line {line} is read differently by Java 8 and by later Java (a `\\` continuation \
                 next to a comment), and Spark may run on either; remove that `\\` or the comment"
            ),
            Refusal::Duplicate { key, lines } => {
                let lines: Vec<String> = lines.iter().map(usize::to_string).collect();
                write!(
                    f,
                    "{key} is defined on lines {} (Spark uses the last); keep one definition",
                    lines.join(", ")
                )
            }
            Refusal::DanglingContinuation { line } => write!(
                f,
                "line {line}, the last, ends with a line continuation `\\`, so a line added after \
                 it would become part of it; remove that `\\`"
            ),
        }
    }
}

/// A parsed file: its text and the definitions in it, in order.
#[derive(Debug, Clone, Default)]
pub struct ConfFile {
    text: String,
    definitions: Vec<Definition>,
}

/// One `key value` definition (one logical line).
#[derive(Debug, Clone)]
struct Definition {
    key: String,
    value: String,
    /// 1-based number of its first physical line.
    line: usize,
    /// Byte offset where the value starts (where a new value goes).
    value_at: usize,
    /// The key runs to the end of the line: a separator must be added before a value.
    needs_separator: bool,
    /// Byte offset just past the last character read into it (a continuation
    /// `\\` included): the line terminator or the end of the file follows.
    end: usize,
}

/// What [`ConfFile::set`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// The definition on this line was rewritten in place.
    Replaced { line: usize },
    /// A definition was added as this line, at the end.
    Appended { line: usize },
}

impl ConfFile {
    pub fn parse(bytes: &[u8]) -> Result<ConfFile, Refusal> {
        ConfFile::parse_for(bytes, true)
    }

    /// [`ConfFile::parse`]; `java8`: also refuse what Java 8 reads otherwise
    /// than Java 9 and later (false: as Java 9 and later alone read it).
    pub fn parse_for(bytes: &[u8], java8: bool) -> Result<ConfFile, Refusal> {
        let text = std::str::from_utf8(bytes).map_err(|e| Refusal::NotUtf8 {
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
        })?;
        let mut definitions = Vec::new();
        let mut unpaired = None;
        let (lines, java8_differs) = logical_lines(text);
        for logical in lines {
            let (definition, whole) = split_definition(&logical)?;
            if !whole && unpaired.is_none() {
                unpaired = Some(definition.line);
            }
            definitions.push(definition);
        }
        // Only after every line: a malformed escape anywhere is what Java reports.
        if let Some(line) = java8_differs.filter(|_| java8) {
            return Err(Refusal::JavaVersionsDiffer { line });
        }
        if let Some(line) = unpaired {
            return Err(Refusal::UnpairedSurrogate { line });
        }
        Ok(ConfFile {
            text: text.to_string(),
            definitions,
        })
    }

    /// The key/value pairs as Spark sees them: the last definition of a key
    /// wins, values trimmed as Spark trims them.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.definitions
            .iter()
            .map(|d| (d.key.clone(), spark_trim(&d.value).to_string()))
            .collect()
    }

    /// The lines on which `key` is defined.
    pub fn lines_defining(&self, key: &str) -> Vec<usize> {
        self.definitions
            .iter()
            .filter(|d| d.key == key)
            .map(|d| d.line)
            .collect()
    }

    /// The text with `key` set to `value` (a plain value that needs no
    /// escaping): its one definition rewritten in place, or a `key value` line
    /// added at the end. Every other byte is kept.
    pub fn set(&self, key: &str, value: &str) -> Result<(String, Change), Refusal> {
        let found: Vec<&Definition> = self.definitions.iter().filter(|d| d.key == key).collect();
        match found.as_slice() {
            [] => {}
            [d] => {
                let mut out = String::with_capacity(self.text.len() + value.len());
                out.push_str(&self.text[..d.value_at]);
                if d.needs_separator {
                    out.push(' ');
                }
                out.push_str(value);
                out.push_str(&self.text[d.end..]);
                return Ok((out, Change::Replaced { line: d.line }));
            }
            many => {
                return Err(Refusal::Duplicate {
                    key: key.to_string(),
                    lines: many.iter().map(|d| d.line).collect(),
                })
            }
        }
        let newline = if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let mut out = self.text.clone();
        if !out.is_empty() && !out.ends_with('\n') && !out.ends_with('\r') {
            out.push_str(newline);
        }
        let line = line_starts(&out).len() + 1;
        out.push_str(&format!("{key} {value}{newline}"));
        // The added line must be a definition of its own, and everything
        // before it unchanged: not so after a line that continues into it.
        let same = |a: &Definition, b: &Definition| a.key == b.key && a.value == b.value;
        let kept = ConfFile::parse(out.as_bytes()).is_ok_and(|after| {
            after.definitions.len() == self.definitions.len() + 1
                && after
                    .definitions
                    .iter()
                    .zip(&self.definitions)
                    .all(|(a, b)| same(a, b))
                && after
                    .definitions
                    .last()
                    .is_some_and(|d| d.key == key && d.value == value && d.line == line)
        });
        if !kept {
            return Err(Refusal::DanglingContinuation {
                line: line_starts(&self.text).len(),
            });
        }
        Ok((out, Change::Appended { line }))
    }
}

/// Where each physical line of `text` starts; lines end with `\n`, `\r\n` or
/// `\r`, as `Properties` reads them.
fn line_starts(text: &str) -> Vec<usize> {
    let bytes = text.as_bytes();
    let mut starts = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < bytes.len() {
        let terminator = match bytes[i] {
            b'\n' => 1,
            b'\r' if bytes.get(i + 1) == Some(&b'\n') => 2,
            b'\r' => 1,
            _ => {
                i += 1;
                continue;
            }
        };
        starts.push(start);
        i += terminator;
        start = i;
    }
    if start < bytes.len() {
        starts.push(start);
    }
    starts
}

/// White space between a key and its value, as `Properties` sees it.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Spark's `Utils.trimExceptCRLF`: every char up to U+0020 at either end,
/// except `\r` and `\n` (there only through an escape, so meant).
fn spark_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ' && c != '\r' && c != '\n')
}

/// One logical line: its chars, each with its byte offset in the text.
struct LogicalLine {
    chars: Vec<(char, usize)>,
    /// 1-based number of the physical line of its first char.
    line: usize,
    /// Byte offset just past the last char read into it, a continuation `\\` included.
    end: usize,
}

/// The logical lines of `text`, as `java.util.Properties.LineReader.readLine`
/// of Java 9 and later makes them, step by step; and the first physical line
/// Java 8's `readLine` (which Spark 3.x may run on) reads differently, if any.
/// Java 8 differs in two places only: after a continuation that has gathered
/// nothing, a `#` or `!` line is not a comment to it; and the `\\` at the end
/// of a comment still counts when the next line starts with `\\`.
fn logical_lines(text: &str) -> (Vec<LogicalLine>, Option<usize>) {
    let starts = line_starts(text);
    let line_of = |offset: usize| starts.partition_point(|s| *s <= offset);
    let mut it = text.char_indices().peekable();
    let mut lines = Vec::new();
    let mut java8_differs = None;
    let mut differs_at = |offset: usize| {
        java8_differs = java8_differs.or(Some(line_of(offset)));
    };
    'lines: loop {
        let mut chars: Vec<(char, usize)> = Vec::new();
        let (mut line, mut end) = (0, 0);
        let mut skip_blanks = true;
        let mut continued = false;
        let mut backslash = false;
        // Java 8's `precedingBackslash`, which a comment's text flips too.
        let mut backslash8 = false;
        // A continuation has just emptied the line: Java 8 sees no comment next.
        let mut emptied = false;
        loop {
            let Some((at, c)) = it.next() else {
                // The end of the file ends the line, and drops a continuation `\\`.
                if !chars.is_empty() {
                    if backslash != backslash8 {
                        differs_at(chars.last().map_or(0, |(_, at)| *at));
                    }
                    if backslash {
                        chars.pop();
                    }
                    lines.push(LogicalLine { chars, line, end });
                }
                break 'lines;
            };
            if skip_blanks {
                if is_blank(c) || (!continued && (c == '\r' || c == '\n')) {
                    continue;
                }
                skip_blanks = false;
                continued = false;
            }
            if chars.is_empty() && (c == '#' || c == '!') {
                if emptied {
                    differs_at(at);
                }
                // A comment, to the end of its physical line.
                loop {
                    match it.next() {
                        None => break 'lines,
                        Some((_, '\r' | '\n')) => break,
                        Some((_, ch)) => backslash8 = ch == '\\' && !backslash8,
                    }
                }
                skip_blanks = true;
                emptied = false;
                continue;
            }
            if c != '\n' && c != '\r' {
                if chars.is_empty() {
                    line = line_of(at);
                }
                chars.push((c, at));
                end = at + c.len_utf8();
                backslash = c == '\\' && !backslash;
                backslash8 = c == '\\' && !backslash8;
                emptied = false;
                continue;
            }
            // The end of a physical line.
            if chars.is_empty() {
                skip_blanks = true;
                emptied = false;
                continue;
            }
            if backslash != backslash8 {
                differs_at(at);
            }
            if it.peek().is_none() {
                if backslash {
                    chars.pop();
                }
                lines.push(LogicalLine { chars, line, end });
                break 'lines;
            }
            if !backslash {
                lines.push(LogicalLine { chars, line, end });
                continue 'lines;
            }
            // A continuation: the `\\` goes, the next line's leading white space too.
            chars.pop();
            skip_blanks = true;
            continued = true;
            backslash = false;
            backslash8 = false;
            emptied = chars.is_empty();
            if c == '\r' && it.peek().is_some_and(|(_, next)| *next == '\n') {
                it.next();
            }
        }
    }
    (lines, java8_differs)
}

/// The definition on a logical line, and whether its key and value are whole
/// strings (no unpaired surrogate).
fn split_definition(logical: &LogicalLine) -> Result<(Definition, bool), Refusal> {
    let chars = &logical.chars;
    let n = chars.len();
    let mut key_len = 0;
    let mut value_start = n;
    let mut has_separator = false;
    let mut escaped = false;
    while key_len < n {
        let c = chars[key_len].0;
        if !escaped && (c == '=' || c == ':') {
            value_start = key_len + 1;
            has_separator = true;
            break;
        }
        if !escaped && is_blank(c) {
            value_start = key_len + 1;
            break;
        }
        escaped = c == '\\' && !escaped;
        key_len += 1;
    }
    while value_start < n {
        let c = chars[value_start].0;
        if !is_blank(c) {
            if !has_separator && (c == '=' || c == ':') {
                has_separator = true;
            } else {
                break;
            }
        }
        value_start += 1;
    }
    let value_at = match chars.get(value_start) {
        Some((_, offset)) => *offset,
        None => chars
            .last()
            .map(|(c, offset)| offset + c.len_utf8())
            .unwrap_or(logical.end),
    };
    let (key, whole_key) = unescape(&chars[..key_len], logical.line)?;
    let (value, whole_value) = unescape(&chars[value_start..], logical.line)?;
    let definition = Definition {
        key,
        value,
        line: logical.line,
        value_at,
        needs_separator: value_start == key_len,
        end: logical.end,
    };
    Ok((definition, whole_key && whole_value))
}

/// Resolves `Properties` escapes; `\uXXXX` pairs become one char. The flag
/// is false when a `\uXXXX` was half of a surrogate pair (then U+FFFD here).
fn unescape(chars: &[(char, usize)], line: usize) -> Result<(String, bool), Refusal> {
    let mut out = String::with_capacity(chars.len());
    let mut whole = true;
    let mut units: Vec<u16> = Vec::new();
    let mut it = chars.iter().map(|(c, _)| *c);
    let mut flush = |units: &mut Vec<u16>, out: &mut String| {
        for decoded in char::decode_utf16(units.drain(..)) {
            out.push(decoded.unwrap_or_else(|_| {
                whole = false;
                '\u{fffd}'
            }));
        }
    };
    while let Some(c) = it.next() {
        if c != '\\' {
            flush(&mut units, &mut out);
            out.push(c);
            continue;
        }
        match it.next() {
            Some('u') => {
                let mut unit: u16 = 0;
                for _ in 0..4 {
                    let digit = it
                        .next()
                        .and_then(|h| h.to_digit(16))
                        .ok_or(Refusal::MalformedEscape { line })?;
                    unit = unit << 4 | digit as u16;
                }
                units.push(unit);
                continue;
            }
            Some(other) => {
                flush(&mut units, &mut out);
                out.push(match other {
                    't' => '\t',
                    'n' => '\n',
                    'r' => '\r',
                    'f' => '\u{c}',
                    x => x,
                });
            }
            None => flush(&mut units, &mut out),
        }
    }
    flush(&mut units, &mut out);
    Ok((out, whole))
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "spark.tispark.telemetry.enable";

    fn values(text: &str) -> BTreeMap<String, String> {
        ConfFile::parse(text.as_bytes()).unwrap().values()
    }

    fn set(text: &str, value: &str) -> (String, Change) {
        ConfFile::parse(text.as_bytes())
            .unwrap()
            .set(KEY, value)
            .unwrap()
    }

    #[test]
    fn reads_the_three_separators_comments_and_blank_lines() {
        let v = values(
            "# comment\n! bang comment\n\n   \na b\nc=d\ne:f\n  g  =  h  \ni :j\nk\n\tl\tm n\n",
        );
        let expected: BTreeMap<String, String> = [
            ("a", "b"),
            ("c", "d"),
            ("e", "f"),
            ("g", "h"),
            ("i", "j"),
            ("k", ""),
            ("l", "m n"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        assert_eq!(v, expected);
    }

    #[test]
    fn reads_escapes_and_continuations_as_java_does() {
        let v = values(
            "url=file\\:///tmp/x\nesc\\ key=a\\tb\\u00e9\\uD83D\\uDE00\nlong=one, \\\n    two\n# c \\\nnot=continued\n",
        );
        assert_eq!(v["url"], "file:///tmp/x");
        assert_eq!(v["esc key"], "a\tbé😀");
        assert_eq!(v["long"], "one, two");
        assert_eq!(v["not"], "continued");
    }

    #[test]
    fn the_last_definition_wins_and_values_are_trimmed() {
        let v = values("a 1\na 2 \r\nb=\t3\t\r");
        assert_eq!(v["a"], "2");
        assert_eq!(v["b"], "3");
    }

    #[test]
    fn set_replaces_the_value_keeping_the_key_and_separator_as_written() {
        let cases = [
            (
                "spark.tispark.telemetry.enable   false\n",
                "spark.tispark.telemetry.enable   true\n",
            ),
            (
                "spark.tispark.telemetry.enable=false\n",
                "spark.tispark.telemetry.enable=true\n",
            ),
            (
                "  spark.tispark.telemetry.enable : yes # no\n",
                "  spark.tispark.telemetry.enable : true\n",
            ),
            (
                "spark.tispark.telemetry.enable\n",
                "spark.tispark.telemetry.enable true\n",
            ),
            (
                "spark.tispark.telemetry.enable=\n",
                "spark.tispark.telemetry.enable=true\n",
            ),
            (
                "spark.tispark.telemetry.enable false",
                "spark.tispark.telemetry.enable true",
            ),
            (
                "spark.tispark.telemetry.enable \\\n   fa\\\n  lse\r\nx y\r\n",
                "spark.tispark.telemetry.enable \\\n   true\r\nx y\r\n",
            ),
        ];
        for (before, after) in cases {
            let (text, change) = set(before, "true");
            assert_eq!(text, after, "from {before:?}");
            assert_eq!(change, Change::Replaced { line: 1 });
            assert_eq!(values(&text)[KEY], "true");
        }
    }

    #[test]
    fn set_keeps_every_other_byte() {
        let before =
            "# head\r\n\r\na=1\r\nspark.tispark.telemetry.enable=false\r\n! tail \\\r\nz  9";
        let (text, change) = set(before, "true");
        assert_eq!(text, before.replace("enable=false", "enable=true"));
        assert_eq!(change, Change::Replaced { line: 4 });
    }

    #[test]
    fn set_appends_when_absent_with_the_files_line_ending() {
        assert_eq!(set("", "true").0, format!("{KEY} true\n"));
        assert_eq!(
            set("a b", "false"),
            (format!("a b\n{KEY} false\n"), Change::Appended { line: 2 })
        );
        assert_eq!(
            set("a b\r\n\r\n", "true"),
            (
                format!("a b\r\n\r\n{KEY} true\r\n"),
                Change::Appended { line: 3 }
            )
        );
        assert_eq!(set("# only\n", "true").0, format!("# only\n{KEY} true\n"));
    }

    #[test]
    fn a_key_that_only_looks_like_the_switch_is_another_key() {
        let before =
            "spark.tispark.telemetry.enabled true\n#spark.tispark.telemetry.enable false\n";
        let (text, change) = set(before, "true");
        assert_eq!(text, format!("{before}{KEY} true\n"));
        assert_eq!(change, Change::Appended { line: 3 });
    }

    #[test]
    fn refuses_what_it_cannot_rewrite_safely() {
        assert_eq!(
            ConfFile::parse(b"a b\n\xff c\n").unwrap_err(),
            Refusal::NotUtf8 { line: 2 }
        );
        assert_eq!(
            ConfFile::parse(b"a b\nc \\u12G4\n").unwrap_err(),
            Refusal::MalformedEscape { line: 2 }
        );
        assert_eq!(
            ConfFile::parse(b"c \\u12").unwrap_err(),
            Refusal::MalformedEscape { line: 1 }
        );
        let dup = ConfFile::parse(format!("{KEY} true\nx y\n{KEY}=false\n").as_bytes()).unwrap();
        assert_eq!(
            dup.set(KEY, "true").unwrap_err(),
            Refusal::Duplicate {
                key: KEY.into(),
                lines: vec![1, 3]
            }
        );
        let dangling = ConfFile::parse(b"a b\nc d \\\n").unwrap();
        assert_eq!(dangling.values()["c"], "d");
        assert_eq!(
            dangling.set(KEY, "true").unwrap_err(),
            Refusal::DanglingContinuation { line: 2 }
        );
        for refusal in [
            Refusal::NotUtf8 { line: 2 },
            Refusal::Duplicate {
                key: KEY.into(),
                lines: vec![1, 3],
            },
            Refusal::DanglingContinuation { line: 2 },
        ] {
            let text = refusal.to_string();
            assert!(text.contains("line") && !text.contains('\n'), "{text}");
        }
    }

    #[test]
    fn a_continuation_that_has_gathered_nothing_lets_a_comment_be_a_comment() {
        // Issue 8: to Java 9 and later the `!` line is a comment, so the
        // switch is defined twice and Spark reads true; it was read as a key
        // `!` swallowing the last line, and `disable` said "already false".
        let text = format!("{KEY} false\n\\\n! note \\\n{KEY} true\n");
        let modern = ConfFile::parse_for(text.as_bytes(), false).unwrap();
        assert_eq!(modern.values().get(KEY).map(String::as_str), Some("true"));
        assert_eq!(modern.lines_defining(KEY), [1, 4]);
        // Java 8 reads it as the old code did (`!` no comment there): refused.
        assert_eq!(
            ConfFile::parse(text.as_bytes()).unwrap_err(),
            Refusal::JavaVersionsDiffer { line: 3 }
        );
        // Blank and white-space lines after such a continuation are skipped
        // by both, and a comment after them is a comment to both.
        assert_eq!(values("\\\n\n  \t\na b\n"), values("a b\n"));
        assert_eq!(values("\\\n\n# c\na b\n"), values("a b\n"));
        assert_eq!(
            ConfFile::parse(b"\\\n\n  \na b\n")
                .unwrap()
                .lines_defining("a"),
            [4]
        );
    }

    #[test]
    fn a_backslash_line_after_a_comment_ending_in_one_is_refused_for_java_8() {
        // Java 8 still counts the comment's `\\` when the next line starts with `\\`.
        let text = b"# c \\\n\\\na b\n";
        assert_eq!(
            ConfFile::parse_for(text, false).unwrap().values(),
            values("a b\n")
        );
        assert_eq!(
            ConfFile::parse(text).unwrap_err(),
            Refusal::JavaVersionsDiffer { line: 2 }
        );
        // Any other first character makes the two agree.
        assert_eq!(values("# c \\\nx\\\na b\n")["xa"], "b");
        assert_eq!(values("# c \\\\\n\\\na b\n"), values("a b\n"));
        let message = Refusal::JavaVersionsDiffer { line: 2 }.to_string();
        assert!(
            message.starts_with("line 2 is read differently by Java 8") && !message.contains('\n'),
            "{message}"
        );
    }

    #[test]
    fn an_empty_continuation_at_the_end_is_an_empty_key_only_without_a_crlf() {
        // Properties.LineReader: the `\n` ends the line at the end of the
        // stream; after `\r\n` the next read finds nothing and no line.
        let empty: BTreeMap<String, String> = [(String::new(), String::new())].into();
        assert_eq!(values("\\"), empty);
        assert_eq!(values("\\\n"), empty);
        assert_eq!(values("\\\r"), empty);
        assert_eq!(values("\\\r\n"), BTreeMap::new());
        assert_eq!(values("\\\n\n"), BTreeMap::new());
    }

    #[test]
    fn values_are_trimmed_as_spark_trims_them_keeping_escaped_line_breaks() {
        let v = values("a \\rtrue\\n\t\nb = \\t x \\f\nc \\u0000\n");
        assert_eq!(v["a"], "\rtrue\n");
        assert_eq!(v["b"], "x");
        assert_eq!(v["c"], "");
    }

    #[test]
    fn a_byte_order_mark_is_part_of_the_first_key_as_java_reads_it() {
        let v = values("\u{feff}spark.master local\n");
        assert_eq!(v["\u{feff}spark.master"], "local");
        assert!(!v.contains_key("spark.master"));
        // Not a comment either: the mark comes first.
        let v = values("\u{feff}# c\n");
        assert_eq!(v["\u{feff}#"], "c");
    }

    #[test]
    fn an_escape_that_is_half_a_surrogate_pair_is_refused_after_any_malformed_one() {
        assert_eq!(
            ConfFile::parse(b"a b\nc \\uD800x\n").unwrap_err(),
            Refusal::UnpairedSurrogate { line: 2 }
        );
        assert_eq!(
            ConfFile::parse(b"c \\uDE00\nd \\u12\n").unwrap_err(),
            Refusal::MalformedEscape { line: 2 }
        );
        assert_eq!(values("e \\uD83D\\uDE00\n")["e"], "\u{1f600}");
        let text = Refusal::UnpairedSurrogate { line: 2 }.to_string();
        assert!(text.contains("line 2") && !text.contains('\n'), "{text}");
    }

    #[test]
    fn a_dangling_continuation_does_not_stop_an_in_place_rewrite() {
        let before = format!("{KEY} false\nc d \\\n");
        let (text, _) = set(&before, "true");
        assert_eq!(text, format!("{KEY} true\nc d \\\n"));
    }
}
