//! Helpers every benchmark shares: statistics, formatting, the bars report, scenario selection,
//! and peak RSS.
#![allow(dead_code, unreachable_pub)]

/// The median (sorts `v`).
pub fn median(v: &mut [f64]) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[v.len() / 2]
}

/// The `p` quantile, 0.0..=1.0 (sorts `v`).
pub fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

/// Nanoseconds, printed in the unit that suits them.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

/// One of offthread's performance targets, checked against this run: printed at the end as
/// met or missed.
pub struct Bar {
    pub what: String,
    pub met: bool,
}

/// Prints the targets section.
pub fn print_bars(bars: &[Bar]) {
    println!("\n## targets");
    for b in bars {
        println!("- [{}] {}", if b.met { "met" } else { "MISSED" }, b.what);
    }
}

/// One bar of the chart: how many times better offthread did than `system` in `scenario`
/// (faster, or higher throughput; above 1, offthread is ahead).
struct Point {
    scenario: String,
    system: String,
    advantage: f64,
}

static CHART: std::sync::Mutex<Vec<Point>> = std::sync::Mutex::new(Vec::new());

/// Adds a bar to the chart: `advantage` is offthread's lead over `system` (peer time ÷
/// offthread time, or offthread throughput ÷ peer throughput).
pub fn plot(scenario: &str, system: &str, advantage: f64) {
    if advantage.is_finite() && advantage > 0.0 {
        CHART.lock().unwrap().push(Point {
            scenario: scenario.to_owned(),
            system: system.to_owned(),
            advantage,
        });
    }
}

/// Writes the chart of every `plot` so far as `docs/<file>` (an SVG, log scale) when the run
/// covered every scenario (a partial run leaves the committed chart alone).
pub fn write_chart(args: &[String], file: &str, title: &str) {
    if args[1..].iter().any(|a| !a.starts_with('-')) {
        println!("\n(chart docs/{file} not redrawn: only some scenarios ran)");
        return;
    }
    let points = CHART.lock().unwrap();
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("docs")
        .join(file);
    let svg = chart_svg(&points, title);
    match std::fs::create_dir_all(path.parent().unwrap()).and_then(|()| std::fs::write(&path, svg))
    {
        Ok(()) => println!("\n(chart written to docs/{file})"),
        Err(e) => println!("\n(chart docs/{file} not written: {e})"),
    }
}

/// A horizontal bar chart, one row per point, grouped by scenario, on a log scale from 0.1× to
/// 100× around the 1× line.
fn chart_svg(points: &[Point], title: &str) -> String {
    use std::fmt::Write;
    const W: f64 = 820.0;
    const LABEL: f64 = 300.0; // left column: scenario and system
    const RIGHT: f64 = 40.0;
    const ROW: f64 = 18.0;
    const TOP: f64 = 70.0;
    const LO: f64 = -1.0; // log10 of 0.1×
    const HI: f64 = 2.0; // log10 of 100×
    let x = |v: f64| LABEL + (v.log10().clamp(LO, HI) - LO) / (HI - LO) * (W - LABEL - RIGHT);
    let mut rows = Vec::new(); // (y, point or heading)
    let mut y = TOP;
    let mut last = "";
    for p in points {
        if p.scenario != last {
            y += 6.0;
            rows.push((y, None, p.scenario.as_str()));
            y += ROW;
            last = &p.scenario;
        }
        rows.push((y, Some(p), ""));
        y += ROW;
    }
    let h = y + 40.0;
    let mut s = String::new();
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{h}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" font-size="16" font-weight="bold">{}</text>"#,
        12,
        escape(title)
    );
    let _ = writeln!(
        s,
        r##"<text x="12" y="44" fill="#555">offthread's lead over each peer, log scale: right of 1× offthread is faster (green), left of it slower (red)</text>"##
    );
    for t in [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0] {
        let gx = x(t);
        let (stroke, width) = if t == 1.0 {
            ("#333", 1.5)
        } else {
            ("#ddd", 1.0)
        };
        let _ = writeln!(
            s,
            r#"<line x1="{gx:.1}" y1="{}" x2="{gx:.1}" y2="{}" stroke="{stroke}" stroke-width="{width}"/>"#,
            TOP - 8.0,
            h - 30.0
        );
        let _ = writeln!(
            s,
            r##"<text x="{gx:.1}" y="{}" text-anchor="middle" fill="#555">{t}×</text>"##,
            h - 14.0
        );
    }
    for (ry, point, heading) in rows {
        match point {
            None => {
                let _ = writeln!(
                    s,
                    r#"<text x="12" y="{:.1}" font-weight="bold">{}</text>"#,
                    ry + 13.0,
                    escape(heading)
                );
            }
            Some(p) => {
                let (x0, x1) = (x(1.0), x(p.advantage));
                let (left, width) = (x0.min(x1), (x1 - x0).abs().max(1.0));
                let fill = if p.advantage >= 1.0 {
                    "#2e7d32"
                } else {
                    "#c62828"
                };
                let _ = writeln!(
                    s,
                    r##"<text x="{}" y="{:.1}" fill="#333">{}</text>"##,
                    28,
                    ry + 13.0,
                    escape(&p.system)
                );
                let _ = writeln!(
                    s,
                    r#"<rect x="{left:.1}" y="{:.1}" width="{width:.1}" height="{:.1}" fill="{fill}"/>"#,
                    ry + 3.0,
                    ROW - 6.0
                );
                let (tx, anchor) = if p.advantage >= 1.0 {
                    (x1 + 4.0, "start")
                } else {
                    (x1 - 4.0, "end")
                };
                let _ = writeln!(
                    s,
                    r##"<text x="{tx:.1}" y="{:.1}" text-anchor="{anchor}" fill="#333">{}</text>"##,
                    ry + 13.0,
                    ratio_label(p.advantage)
                );
            }
        }
    }
    s.push_str("</svg>\n");
    s
}

fn ratio_label(v: f64) -> String {
    if v >= 10.0 {
        format!("{v:.0}×")
    } else if v >= 0.1 {
        format!("{v:.2}×")
    } else {
        format!("{v:.3}×")
    }
}

fn escape(t: &str) -> String {
    t.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The scenarios named on the command line (`cargo bench --bench X -- a b`); none means all.
pub fn selected(args: &[String]) -> impl Fn(&str) -> bool + '_ {
    let only: Vec<&str> = args[1..]
        .iter()
        .map(String::as_str)
        .filter(|a| !a.starts_with('-'))
        .collect();
    move |s| only.is_empty() || only.contains(&s)
}

/// This process's peak resident set, from /proc (KiB; 0 where /proc is missing).
pub fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}
