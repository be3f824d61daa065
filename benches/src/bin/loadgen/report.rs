//! Human-readable lines plus one `RESULT key=value ...` line that scripts/bench.sh parses.

use crate::consume::Consumed;
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

pub fn print(args: &Args, p: &Produced, c: Option<&Consumed>) {
    let secs = p.elapsed.as_secs_f64();
    let mib_s = per_second(p.bytes as f64 / MIB, secs);
    let msgs_s = per_second(p.delivered as f64, secs);
    let (p50, p99, max) = (
        ms(p.latency_us.value_at_quantile(0.50)),
        ms(p.latency_us.value_at_quantile(0.99)),
        ms(p.latency_us.max()),
    );
    println!(
        "produce: {} msgs x {} B, acks={}, rate={}: {:.2} s, {:.1} MiB/s, {:.0} msgs/s, \
         latency p50 {:.2} ms p99 {:.2} ms max {:.2} ms, {} errors",
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
        max,
        p.errors
    );
    let mut result = format!(
        "RESULT size={} acks={} rate={} messages={} produce_mib_s={mib_s:.2} produce_msgs_s={msgs_s:.0} \
         p50_ms={p50:.3} p99_ms={p99:.3} max_ms={max:.3} errors={}",
        args.size, args.acks, args.rate, p.delivered, p.errors
    );
    if let Some(c) = c {
        let csecs = c.elapsed.as_secs_f64();
        let cmib_s = per_second(c.bytes as f64 / MIB, csecs);
        let cmsgs_s = per_second(c.messages as f64, csecs);
        println!(
            "consume: {} msgs in {:.2} s, {:.1} MiB/s, {:.0} msgs/s",
            c.messages, csecs, cmib_s, cmsgs_s
        );
        result.push_str(&format!(
            " consume_mib_s={cmib_s:.2} consume_msgs_s={cmsgs_s:.0}"
        ));
    }
    println!("{result}");
}
