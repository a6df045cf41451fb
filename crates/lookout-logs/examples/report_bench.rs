//! `cargo run --release -p lookout-logs --example report_bench -- FILE [THREADS]`: the offline report alone,
//! without the binary around it, for profiling the parser (`perf record`, `valgrind --tool=callgrind`).

use std::io::Read;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: report_bench FILE [THREADS]")?;
    let threads: usize = args.next().map_or(Ok(2), |t| t.parse())?;
    let format = lookout_logs::LogFormat::named_or_custom("combined")?;
    let input: Box<dyn Read + Send> = Box::new(std::fs::File::open(&path)?);
    let started = std::time::Instant::now();
    let opts = lookout_logs::report::ReportOptions::default();
    let r = lookout_logs::offline::analyze(vec![input], &format, &opts, threads, &|_| {})?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{} lines, {} malformed, {} clients, {:.3} s, {:.2} M lines/s",
        r.lines,
        r.malformed,
        r.distinct_clients,
        secs,
        r.lines as f64 / secs / 1e6
    );
    Ok(())
}
