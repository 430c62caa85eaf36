//! The fleet page (`GET /` on `collect --ui ADDR`): the counts of
//! [`super::fleet::gather`] over the last [`WINDOW_DAYS`] days, the same as
//! `fleet --json --since 30d`, as one self-contained HTML document: inline
//! CSS and inline SVG bar charts with the numbers beside them, no script,
//! nothing fetched from anywhere (a network without internet shows it
//! whole). Every number carries a `data-` attribute for machines.
//!
//! What clients sent (versions, read engines, OS names) is shown as every
//! value shown to a person is (`log_line::shown`: C0, DEL, C1 and
//! bidirectional controls escaped, cut after 256 characters), then
//! HTML-escaped, in text and attributes alike.

use super::fleet::{day_name, Count, Fleet, DAY};
use crate::log_line;
use std::fmt::Write as _;

/// The page's window: reports received in the last 30 days.
pub const WINDOW_DAYS: u64 = 30;
/// Values shown per split, most first; the rest are summed on one line.
pub const MAX_VALUES: usize = 12;

/// The splits, in the page's order: `fleet --json`'s field and its title.
fn splits(fleet: &Fleet) -> [(&'static str, &'static str, &Vec<Count>); 7] {
    [
        ("spark_version", "Spark version", &fleet.spark_version),
        ("tispark_version", "TiSpark version", &fleet.tispark_version),
        ("tidb_version", "TiDB version", &fleet.tidb_version),
        ("read_engine", "Read engines", &fleet.read_engine),
        ("streaming", "Streaming", &fleet.streaming),
        ("os", "OS", &fleet.os),
        ("cpu_cores", "CPU cores (logical)", &fleet.cpu_cores),
    ]
}

/// `text` for HTML text and quoted attributes.
fn html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A value as the page shows it (before HTML escaping): a string as shown
/// to a person ([`log_line::shown`]), anything else as JSON.
pub fn shown_value(value: &serde_json::Value) -> String {
    match value {
        serde_json::Value::String(s) => log_line::shown(s),
        other => log_line::shown(&other.to_string()),
    }
}

const STYLE: &str = "
body{font:15px/1.4 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif;margin:0;
 background:#f4f6f8;color:#1d2530}
header{background:#1d2b3a;color:#fff;padding:18px 32px}
header h1{margin:0;font-size:24px;font-weight:600}
header p{margin:4px 0 0;color:#c8d3de}
main{padding:20px 32px 32px}
.totals{display:flex;gap:16px;margin-bottom:20px}
.total{background:#fff;border-radius:8px;padding:12px 20px;box-shadow:0 1px 2px #0002}
.total b{display:block;font-size:30px;font-weight:600}
.total span{color:#5a6776}
section{background:#fff;border-radius:8px;padding:14px 20px;margin-bottom:20px;box-shadow:0 1px 2px #0002}
h2{font-size:17px;margin:0 0 10px;font-weight:600}
.grid{display:grid;grid-template-columns:repeat(auto-fill,minmax(560px,1fr));gap:20px}
.grid section{margin:0}
table{border-collapse:collapse;width:100%}
td{padding:3px 6px;vertical-align:middle}
td.v{width:40%;overflow-wrap:anywhere;font-family:ui-monospace,'DejaVu Sans Mono',monospace;font-size:13px}
td.n{width:4em;text-align:right;font-variant-numeric:tabular-nums;font-weight:600}
td.b svg{display:block}
.empty{color:#8a96a3;font-style:italic}
.legend{color:#5a6776;font-size:13px;margin:0 0 6px}
.key{display:inline-block;width:10px;height:10px;margin:0 4px 0 12px;border-radius:2px}
footer{color:#5a6776;font-size:13px;padding:0 32px 24px}
code{font-family:ui-monospace,'DejaVu Sans Mono',monospace}
";

const REPORTS_COLOUR: &str = "#3b7dd8";
const HOSTS_COLOUR: &str = "#e08a2e";

/// The page for `fleet` (gathered since the start of the window), at `now`
/// (unix seconds).
pub fn render(fleet: &Fleet, now: u64) -> String {
    let mut out = String::with_capacity(32 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>TiSpark fleet</title><style>{STYLE}</style></head><body>\n"
    );
    let _ = write!(
        out,
        "<header><h1>TiSpark fleet</h1><p>Reports received in the last {WINDOW_DAYS} days, \
         since <time data-since=\"{since}\">{since_utc}</time>, as of \
         <time data-now=\"{now}\">{now_utc}</time>. The splits count the newest report of \
         each track id (one track id: one host).</p></header>\n<main>\n",
        since = fleet.since,
        since_utc = html(&fleet.since_utc),
        now_utc = html(&log_line::utc(now)),
    );
    let _ = writeln!(
        out,
        "<div class=\"totals\"><div class=\"total\"><b data-total=\"reports\">{}</b>\
         <span>reports</span></div><div class=\"total\"><b data-total=\"track_ids\">{}</b>\
         <span>track ids (hosts)</span></div></div>",
        fleet.reports, fleet.track_ids
    );
    per_day(&mut out, fleet, now);
    out.push_str("<div class=\"grid\">\n");
    for (field, title, counts) in splits(fleet) {
        split(&mut out, field, title, counts);
    }
    out.push_str("</div>\n</main>\n");
    let _ = write!(
        out,
        "<footer>The same counts as <code>tispark-telemetry fleet --json --since {WINDOW_DAYS}d</code>. \
         Metrics for Prometheus: <code>/metrics</code>.</footer>\n</body></html>\n"
    );
    out
}

/// The day chart: one pair of bars (reports, track ids) a day, from the
/// window's first day to today, each with its numbers above it.
fn per_day(out: &mut String, fleet: &Fleet, now: u64) {
    let first = fleet.since / DAY;
    let last = (now / DAY).max(first);
    let days: Vec<(u64, u64, u64)> = (first..=last)
        .map(|d| {
            let counted = fleet.days.iter().find(|day| day.start == d * DAY);
            (
                d * DAY,
                counted.map_or(0, |c| c.reports),
                counted.map_or(0, |c| c.track_ids),
            )
        })
        .collect();
    let top = days.iter().map(|d| d.1).max().unwrap_or(0).max(1);
    let (width, height, left, bottom, above) = (1160.0f64, 240.0f64, 8.0, 30.0, 26.0);
    let slot = (width - left) / days.len() as f64;
    let bar = (slot * 0.36).min(16.0);
    let plot = height - bottom - above;
    let _ = write!(
        out,
        "<section><h2>Reports and track ids per day (UTC)</h2>\
         <p class=\"legend\"><span class=\"key\" style=\"background:{REPORTS_COLOUR}\"></span>reports\
         <span class=\"key\" style=\"background:{HOSTS_COLOUR}\"></span>track ids with a report that day</p>\
         <svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" viewBox=\"0 0 {width} {height}\" \
         role=\"img\" aria-label=\"reports and track ids per day\" font-family=\"sans-serif\">\
         <line x1=\"{left}\" y1=\"{base}\" x2=\"{width}\" y2=\"{base}\" stroke=\"#9aa5b1\"/>",
        base = height - bottom
    );
    for (i, (start, reports, ids)) in days.iter().enumerate() {
        let x = left + slot * i as f64 + slot / 2.0;
        let h = |n: u64| plot * n as f64 / top as f64;
        let base = height - bottom;
        let name = day_name(*start);
        let _ = write!(
            out,
            "<g data-day=\"{name}\" data-reports=\"{reports}\" data-track-ids=\"{ids}\">\
             <title>{name}: {reports} reports, {ids} track ids</title>\
             <rect x=\"{rx:.1}\" y=\"{ry:.1}\" width=\"{bar:.1}\" height=\"{rh:.1}\" fill=\"{REPORTS_COLOUR}\"/>\
             <rect x=\"{hx:.1}\" y=\"{hy:.1}\" width=\"{bar:.1}\" height=\"{hh:.1}\" fill=\"{HOSTS_COLOUR}\"/>",
            rx = x - bar - 1.0,
            ry = base - h(*reports),
            rh = h(*reports),
            hx = x + 1.0,
            hy = base - h(*ids),
            hh = h(*ids),
        );
        if *reports > 0 {
            let _ = write!(
                out,
                "<text x=\"{x:.1}\" y=\"{y1:.1}\" font-size=\"11\" text-anchor=\"middle\" \
                 fill=\"{REPORTS_COLOUR}\" font-weight=\"bold\">{reports}</text>\
                 <text x=\"{x:.1}\" y=\"{y2:.1}\" font-size=\"11\" text-anchor=\"middle\" \
                 fill=\"{HOSTS_COLOUR}\" font-weight=\"bold\">{ids}</text>",
                y1 = base - h(*reports) - 15.0,
                y2 = base - h(*reports) - 3.0,
            );
        }
        let _ = write!(
            out,
            "<text x=\"{x:.1}\" y=\"{ly:.1}\" font-size=\"10\" text-anchor=\"middle\" \
             fill=\"#5a6776\">{label}</text></g>",
            ly = height - bottom + 14.0,
            label = &name[5..],
        );
    }
    out.push_str("</svg></section>\n");
}

/// One split: a row per value (most first), its bar and its count.
fn split(out: &mut String, field: &str, title: &str, counts: &[Count]) {
    let top = counts.iter().map(|c| c.count).max().unwrap_or(0).max(1);
    let _ = write!(
        out,
        "<section data-split=\"{field}\"><h2>{title}</h2><table>"
    );
    if counts.is_empty() {
        out.push_str("<tr><td class=\"empty\">no reports in the window</td></tr>");
    }
    for c in counts.iter().take(MAX_VALUES) {
        let value = html(&shown_value(&c.value));
        let label = if value.is_empty() {
            "<span class=\"empty\">(empty)</span>".to_string()
        } else {
            value.clone()
        };
        let _ = write!(
            out,
            "<tr data-value=\"{value}\" data-count=\"{n}\"><td class=\"v\">{label}</td>\
             <td class=\"b\"><svg xmlns=\"http://www.w3.org/2000/svg\" width=\"100%\" height=\"16\" \
             viewBox=\"0 0 300 16\" preserveAspectRatio=\"none\"><rect width=\"300\" height=\"16\" \
             fill=\"#e8edf2\"/><rect width=\"{w:.1}\" height=\"16\" fill=\"{REPORTS_COLOUR}\"/></svg></td>\
             <td class=\"n\">{n}</td></tr>",
            n = c.count,
            w = 300.0 * c.count as f64 / top as f64,
        );
    }
    if counts.len() > MAX_VALUES {
        let rest = &counts[MAX_VALUES..];
        let hosts: u64 = rest.iter().map(|c| c.count).sum();
        let _ = write!(
            out,
            "<tr data-more-values=\"{}\" data-more-count=\"{hosts}\"><td class=\"v empty\">{} more \
             values</td><td></td><td class=\"n\">{hosts}</td></tr>",
            rest.len(),
            rest.len()
        );
    }
    out.push_str("</table></section>\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_escapes_markup_and_quotes() {
        assert_eq!(
            html("<a href='x'>&\"</a>"),
            "&lt;a href=&#39;x&#39;&gt;&amp;&quot;&lt;/a&gt;"
        );
    }

    #[test]
    fn a_value_is_shown_escaped_and_cut() {
        assert_eq!(
            shown_value(&"a\u{202e}b\u{9b}".into()),
            "a\\u{202e}b\\u{9b}"
        );
        assert_eq!(shown_value(&true.into()), "true");
        assert_eq!(shown_value(&8.into()), "8");
        let long = shown_value(&"x".repeat(1000).into());
        assert_eq!(long, format!("{}… (1000 characters)", "x".repeat(256)));
    }
}
