//! `spark-defaults.conf` as Spark reads it, and one key set in it with every
//! other byte kept.
//!
//! Spark loads the file with `java.util.Properties` (UTF-8) and trims each
//! value. The line format: `#` or `!` starts a comment line; blank lines are
//! skipped; a key ends at the first unescaped `=`, `:` or white space, and one
//! `=` or `:` may stand among the white space before the value; a line ending
//! in an odd number of `\` continues on the next line (whose leading white
//! space is dropped); `\t \n \r \f \uXXXX` are escapes and `\x` is `x`. The
//! last definition of a key wins.
//!
//! Setting a key rewrites only the span of its own definition: the leading
//! white space, the key and the separator as written, then the new value.
//! A file this tool cannot rewrite safely is refused, never guessed at: not
//! UTF-8, a malformed `\u` escape (Spark itself fails on it), the key defined
//! more than once, or (when the key must be added at the end) a last line
//! that continues into nothing.

use std::collections::BTreeMap;
use std::fmt;

/// Why a file cannot be read or changed safely; each says where and what to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    NotUtf8 { line: usize },
    MalformedEscape { line: usize },
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
    /// The last physical line, when it continues into nothing.
    dangling: Option<usize>,
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
    /// Byte offset of the end of its last physical line, before the line terminator.
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
        let text = std::str::from_utf8(bytes).map_err(|e| Refusal::NotUtf8 {
            line: 1 + bytes[..e.valid_up_to()]
                .iter()
                .filter(|b| **b == b'\n')
                .count(),
        })?;
        let lines = physical_lines(text);
        let mut definitions = Vec::new();
        let mut dangling = None;
        let mut i = 0;
        while i < lines.len() {
            let first = lines[i];
            let content = &text[first.start..first.content_end];
            let body = content.trim_start_matches(is_blank);
            i += 1;
            if body.is_empty() || body.starts_with('#') || body.starts_with('!') {
                continue;
            }
            // The logical line: each char with its byte offset in `text`.
            let mut chars: Vec<(char, usize)> = Vec::new();
            let mut from = first.content_end - body.len();
            let mut current = first;
            loop {
                let segment = &text[from..current.content_end];
                let continues = segment.bytes().rev().take_while(|b| *b == b'\\').count() % 2 == 1;
                let upto = current.content_end - usize::from(continues);
                chars.extend(text[from..upto].char_indices().map(|(o, c)| (c, from + o)));
                if !continues {
                    break;
                }
                let Some(next) = lines.get(i) else {
                    dangling = Some(current.number);
                    break;
                };
                i += 1;
                current = *next;
                let next_content = &text[next.start..next.content_end];
                from = next.content_end - next_content.trim_start_matches(is_blank).len();
            }
            definitions.push(split_definition(&chars, first, current)?);
        }
        Ok(ConfFile {
            text: text.to_string(),
            definitions,
            dangling,
        })
    }

    /// The key/value pairs as Spark sees them: the last definition of a key
    /// wins, values trimmed.
    pub fn values(&self) -> BTreeMap<String, String> {
        self.definitions
            .iter()
            .map(|d| (d.key.clone(), java_trim(&d.value).to_string()))
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
        if let Some(line) = self.dangling {
            return Err(Refusal::DanglingContinuation { line });
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
        let line = physical_lines(&out).len() + 1;
        out.push_str(&format!("{key} {value}{newline}"));
        Ok((out, Change::Appended { line }))
    }
}

#[derive(Debug, Clone, Copy)]
struct PhysicalLine {
    number: usize,
    start: usize,
    content_end: usize,
}

/// The lines of `text`, ended by `\n`, `\r\n` or `\r` as `Properties` does.
fn physical_lines(text: &str) -> Vec<PhysicalLine> {
    let bytes = text.as_bytes();
    let mut lines = Vec::new();
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
        lines.push(PhysicalLine {
            number: lines.len() + 1,
            start,
            content_end: i,
        });
        i += terminator;
        start = i;
    }
    if start < bytes.len() {
        lines.push(PhysicalLine {
            number: lines.len() + 1,
            start,
            content_end: bytes.len(),
        });
    }
    lines
}

/// White space between a key and its value, as `Properties` sees it.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\u{c}')
}

/// Java's `String.trim`: every char up to U+0020 at either end.
fn java_trim(s: &str) -> &str {
    s.trim_matches(|c: char| c <= ' ')
}

fn split_definition(
    chars: &[(char, usize)],
    first: PhysicalLine,
    last: PhysicalLine,
) -> Result<Definition, Refusal> {
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
            .unwrap_or(first.start),
    };
    Ok(Definition {
        key: unescape(&chars[..key_len], first.number)?,
        value: unescape(&chars[value_start..], first.number)?,
        line: first.number,
        value_at,
        needs_separator: value_start == key_len,
        end: last.content_end,
    })
}

/// Resolves `Properties` escapes; `\uXXXX` pairs become one char.
fn unescape(chars: &[(char, usize)], line: usize) -> Result<String, Refusal> {
    let mut out = String::with_capacity(chars.len());
    let mut units: Vec<u16> = Vec::new();
    let mut it = chars.iter().map(|(c, _)| *c);
    let flush = |units: &mut Vec<u16>, out: &mut String| {
        out.extend(char::decode_utf16(units.drain(..)).map(|r| r.unwrap_or('\u{fffd}')));
    };
    while let Some(c) = it.next() {
        if c != '\\' {
            flush(&mut units, &mut out);
            out.push(c);
            continue;
        }
        match it.next() {
            Some('u') => {
                let hex: String = it.by_ref().take(4).collect();
                let unit = (hex.len() == 4)
                    .then(|| u16::from_str_radix(&hex, 16).ok())
                    .flatten()
                    .filter(|_| hex.chars().all(|h| h.is_ascii_hexdigit()))
                    .ok_or(Refusal::MalformedEscape { line })?;
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
    Ok(out)
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
    fn a_dangling_continuation_does_not_stop_an_in_place_rewrite() {
        let before = format!("{KEY} false\nc d \\\n");
        let (text, _) = set(&before, "true");
        assert_eq!(text, format!("{KEY} true\nc d \\\n"));
    }
}
