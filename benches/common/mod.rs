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

/// One bar of an issue: printed at the end as met or missed.
pub struct Bar {
    pub what: String,
    pub met: bool,
}

/// Prints the bars section.
pub fn print_bars(bars: &[Bar]) {
    println!("\n## bars");
    for b in bars {
        println!("- [{}] {}", if b.met { "met" } else { "MISSED" }, b.what);
    }
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
