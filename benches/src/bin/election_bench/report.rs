//! Medians and spreads over the runs, the side-by-side Markdown table with Kraftwerk's advantage, and the
//! SVG plot (plotters) of the headline figures.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use plotters::prelude::*;

use crate::scenarios::Figures;

/// Whether a bigger figure is better (a rate) or worse (a time); `Neither` for counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Better {
    Higher,
    Lower,
    Neither,
}

/// Every figure a run produces: key, label, unit, which way is better.
pub const METRICS: &[Metric] = &[
    (
        "create_rate",
        "topic creation: partitions/s (until led on every broker)",
        "partitions/s",
        Better::Higher,
    ),
    (
        "create_acked_s",
        "topic creation: every CreateTopics acknowledged",
        "s",
        Better::Lower,
    ),
    (
        "create_led_s",
        "topic creation: every partition led on every broker",
        "s",
        Better::Lower,
    ),
    (
        "fill_s",
        "one record written to every partition (acks=all), before the scenarios below",
        "s",
        Better::Lower,
    ),
    (
        "cs_moved",
        "controlled shutdown: leaderships moved",
        "partitions",
        Better::Neither,
    ),
    (
        "cs_rate",
        "controlled shutdown: leaderships moved per second",
        "moves/s",
        Better::Higher,
    ),
    (
        "cs_leads_nothing_s",
        "controlled shutdown: SIGTERM → leads nothing (every survivor)",
        "s",
        Better::Lower,
    ),
    (
        "cs_still_led_s",
        "controlled shutdown: SIGTERM → last poll that still saw a leadership on it was sent (the row above is within one poll of this)",
        "s",
        Better::Lower,
    ),
    (
        "cs_written_s",
        "controlled shutdown: SIGTERM → every moved partition took a record (acks=all) on its new leader (one Produce per topic and leader, sent at once)",
        "s",
        Better::Lower,
    ),
    (
        "cs_exit_s",
        "controlled shutdown: SIGTERM → process exited",
        "s",
        Better::Lower,
    ),
    (
        "cs_total_s",
        "controlled shutdown: SIGTERM → leads nothing and exited",
        "s",
        Better::Lower,
    ),
    (
        "isr_rejoin_s",
        "restarted broker: serving → every replica back in the ISR",
        "s",
        Better::Lower,
    ),
    (
        "uf_moved",
        "kill -9: partitions it led",
        "partitions",
        Better::Neither,
    ),
    (
        "uf_fenced_s",
        "kill -9 → fencing seen in Metadata",
        "s",
        Better::Lower,
    ),
    (
        "uf_from_fence_s",
        "kill -9: fencing → new leaders on every survivor",
        "s",
        Better::Lower,
    ),
    (
        "uf_from_kill_s",
        "kill -9 → new leaders on every survivor",
        "s",
        Better::Lower,
    ),
    (
        "cf_s",
        "controller kill -9 → a CreateTopics commits",
        "s",
        Better::Lower,
    ),
    (
        "load_broker_clean_s",
        "metadata load: broker restart after SIGTERM → serving its image",
        "s",
        Better::Lower,
    ),
    (
        "load_broker_crash_s",
        "metadata load: broker restart after kill -9 → serving its image",
        "s",
        Better::Lower,
    ),
    (
        "load_controller_s",
        "metadata load: controller restart → started and caught up",
        "s",
        Better::Lower,
    ),
    (
        "broker_rss_mib",
        "largest broker RSS after creation",
        "MiB",
        Better::Lower,
    ),
    (
        "controller_rss_mib",
        "largest controller RSS after creation",
        "MiB",
        Better::Lower,
    ),
    (
        "cluster_start_s",
        "cluster start (6 processes) → every broker listed",
        "s",
        Better::Lower,
    ),
];

/// The figures plotted, one panel each.
const PLOTTED: &[&str] = &[
    "create_rate",
    "cs_rate",
    "uf_from_kill_s",
    "cf_s",
    "load_broker_crash_s",
    "load_controller_s",
];

/// All runs of one system at one N.
pub type Runs = Vec<Figures>;
/// (system, N) → runs.
pub type Results = BTreeMap<(String, usize), Runs>;

/// Median, min and max of one metric over runs (None if no run has it).
pub fn stats(runs: &Runs, key: &str) -> Option<(f64, f64, f64)> {
    kraftwerk_benches::median_min_max(runs.iter().filter_map(|f| f.get(key).copied()).collect())
}

fn fmt_num(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else if x >= 0.1 {
        format!("{x:.2}")
    } else {
        format!("{x:.3}")
    }
}

fn cell(s: Option<(f64, f64, f64)>, runs: usize) -> String {
    match s {
        None => "n/a".into(),
        Some((m, lo, hi)) if runs > 1 => {
            format!("{} ({}–{})", fmt_num(m), fmt_num(lo), fmt_num(hi))
        }
        Some((m, _, _)) => fmt_num(m),
    }
}

/// One row of a table: key, label, unit, which way is better.
pub type Metric = (&'static str, &'static str, &'static str, Better);

/// How many times better Kraftwerk's median is than Kafka's (above 1: Kraftwerk better).
pub fn advantage(metrics: &[Metric], key: &str, kw: Option<f64>, ka: Option<f64>) -> Option<f64> {
    let better = metrics.iter().find(|m| m.0 == key).map(|m| m.3)?;
    let (kw, ka) = (kw?, ka?);
    match better {
        Better::Higher if ka > 0.0 => Some(kw / ka),
        // Times below the harness's 20 ms polling step are noise, not a ratio.
        Better::Lower if kw >= 0.02 && ka >= 0.02 => Some(ka / kw),
        _ => None,
    }
}

/// The tables, one per N, as Markdown.
pub fn markdown(results: &Results, sizes: &[usize]) -> String {
    let mut out = String::new();
    for &n in sizes {
        let kw = results.get(&("kraftwerk".to_string(), n));
        let ka = results.get(&("kafka".to_string(), n));
        if kw.is_none() && ka.is_none() {
            continue;
        }
        let runs_of = |r: Option<&Runs>| r.map(Vec::len).unwrap_or(0);
        let _ = writeln!(
            out,
            "\n### N = {n} partitions, RF=3 ({} Kraftwerk run(s), {} Kafka run(s); median (min–max))\n",
            runs_of(kw),
            runs_of(ka)
        );
        out.push_str(&table(kw, ka, METRICS));
    }
    out
}

/// The side-by-side rows of `metrics` that either system has, as a Markdown table.
pub fn table(kw: Option<&Runs>, ka: Option<&Runs>, metrics: &[Metric]) -> String {
    let mut out = String::new();
    let runs_of = |r: Option<&Runs>| r.map(Vec::len).unwrap_or(0);
    let _ = writeln!(
        out,
        "| metric | unit | Kraftwerk | Apache Kafka | Kraftwerk advantage |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (key, label, unit, _) in metrics {
        let a = kw.and_then(|r| stats(r, key));
        let b = ka.and_then(|r| stats(r, key));
        if a.is_none() && b.is_none() {
            continue;
        }
        let adv = advantage(metrics, key, a.map(|s| s.0), b.map(|s| s.0))
            .map(|x| format!("{x:.2}×"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "| {label} | {unit} | {} | {} | {adv} |",
            cell(a, runs_of(kw)),
            cell(b, runs_of(ka))
        );
    }
    out
}

/// One panel per plotted figure: for each N, Kraftwerk's and Kafka's medians side by side, with the
/// min–max of the runs as a line over each bar.
pub fn plot(results: &Results, sizes: &[usize], path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1500, 900)).into_drawing_area();
    root.fill(&WHITE)?;
    let (title, body) = root.split_vertically(50);
    title.draw(&Text::new(
        "Partition elections, 3 controllers + 3 brokers, RF=3: Kraftwerk (blue) vs Apache Kafka (orange), median and min–max",
        (20, 15),
        ("sans-serif", 20),
    ))?;
    let panels = body.split_evenly((2, 3));
    let kw_color = RGBColor(31, 119, 180);
    let ka_color = RGBColor(255, 127, 14);
    for (panel, key) in panels.iter().zip(PLOTTED) {
        let (_, label, unit, _) = METRICS.iter().find(|m| m.0 == *key).copied().unwrap_or((
            key,
            key,
            "",
            Better::Neither,
        ));
        let mut top = 0.0f64;
        for &n in sizes {
            for sys in ["kraftwerk", "kafka"] {
                if let Some((_, _, hi)) = results
                    .get(&(sys.to_string(), n))
                    .and_then(|r| stats(r, key))
                {
                    top = top.max(hi);
                }
            }
        }
        let top = if top > 0.0 { top * 1.15 } else { 1.0 };
        let labels: Vec<String> = sizes.iter().map(|n| format!("N={n}")).collect();
        let mut chart = ChartBuilder::on(panel)
            .caption(format!("{label} ({unit})"), ("sans-serif", 13))
            .margin(10)
            .x_label_area_size(25)
            .y_label_area_size(55)
            .build_cartesian_2d(0.0..sizes.len() as f64, 0.0..top)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(sizes.len() * 2 + 1)
            .x_label_formatter(&|x| {
                let i = x.floor() as usize;
                if (x - x.floor() - 0.5).abs() < 0.01 {
                    labels.get(i).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .draw()?;
        for (i, &n) in sizes.iter().enumerate() {
            for (j, (sys, color)) in [("kraftwerk", kw_color), ("kafka", ka_color)]
                .iter()
                .enumerate()
            {
                let Some((m, lo, hi)) = results
                    .get(&(sys.to_string(), n))
                    .and_then(|r| stats(r, key))
                else {
                    continue;
                };
                let x0 = i as f64 + 0.15 + j as f64 * 0.35;
                let x1 = x0 + 0.33;
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x0, 0.0), (x1, m)],
                    color.filled(),
                )))?;
                let xm = (x0 + x1) / 2.0;
                chart.draw_series(std::iter::once(PathElement::new(
                    vec![(xm, lo), (xm, hi)],
                    BLACK,
                )))?;
            }
        }
    }
    root.present()?;
    Ok(())
}
