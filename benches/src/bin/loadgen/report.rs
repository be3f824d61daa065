//! Human-readable lines plus one `RESULT key=value ...` line that scripts/bench.sh parses.

use crate::consume::Consumed;
use crate::e2e::Latency;
use crate::produce::Produced;
use crate::Args;

const MIB: f64 = 1024.0 * 1024.0;

fn per_second(amount: f64, secs: f64) -> f64 {
    if secs > 0.0 {
        amount / secs
    } else {
        0.0
    }
}

fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

pub fn print(args: &Args, p: Option<&Produced>, c: Option<&Consumed>, e: Option<&Latency>) {
    let mut result = format!(
        "RESULT size={} acks={} rate={}",
        args.size, args.acks, args.rate
    );
    if let Some(p) = p {
        result.push_str(&produced(args, p));
    }
    if let Some(c) = c {
        let csecs = c.elapsed.as_secs_f64();
        let cmib_s = per_second(c.bytes as f64 / MIB, csecs);
        let cmsgs_s = per_second(c.messages as f64, csecs);
        println!(
            "consume: {} msgs in {:.2} s, {:.1} MiB/s, {:.0} msgs/s",
            c.messages, csecs, cmib_s, cmsgs_s
        );
        result.push_str(&format!(
            " consumed={} consume_mib_s={cmib_s:.2} consume_msgs_s={cmsgs_s:.0}",
            c.messages
        ));
    }
    if let Some(e) = e {
        let h = &e.latency_us;
        let (p50, p99, p999, max) = (
            ms(h.value_at_quantile(0.50)),
            ms(h.value_at_quantile(0.99)),
            ms(h.value_at_quantile(0.999)),
            ms(h.max()),
        );
        println!(
            "end-to-end: {} records, p50 {p50:.2} ms p99 {p99:.2} ms p99.9 {p999:.2} ms max {max:.2} ms",
            e.received
        );
        result.push_str(&format!(
            " e2e_received={} e2e_p50_ms={p50:.3} e2e_p99_ms={p99:.3} e2e_p999_ms={p999:.3} e2e_max_ms={max:.3}",
            e.received
        ));
    }
    println!("{result}");
}

/// Prints the produce line and returns the produce fields of the RESULT line.
fn produced(args: &Args, p: &Produced) -> String {
    let secs = p.elapsed.as_secs_f64();
    let mib_s = per_second(p.bytes as f64 / MIB, secs);
    let msgs_s = per_second(p.delivered as f64, secs);
    let (p50, p99, p999, max) = (
        ms(p.latency_us.value_at_quantile(0.50)),
        ms(p.latency_us.value_at_quantile(0.99)),
        ms(p.latency_us.value_at_quantile(0.999)),
        ms(p.latency_us.max()),
    );
    println!(
        "produce: {} msgs x {} B, acks={}, rate={}: {:.2} s, {:.1} MiB/s, {:.0} msgs/s, \
         latency p50 {:.2} ms p99 {:.2} ms p99.9 {:.2} ms max {:.2} ms, {} errors",
        p.delivered,
        args.size,
        args.acks,
        if args.rate > 0 {
            args.rate.to_string()
        } else {
            "max".into()
        },
        secs,
        mib_s,
        msgs_s,
        p50,
        p99,
        p999,
        max,
        p.errors
    );
    format!(
        " messages={} produce_mib_s={mib_s:.2} produce_msgs_s={msgs_s:.0} \
         p50_ms={p50:.3} p99_ms={p99:.3} p999_ms={p999:.3} max_ms={max:.3} errors={}",
        p.delivered, p.errors
    )
}
