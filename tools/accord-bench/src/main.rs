//! `accord-bench`: starts an `accord` server on loopback and measures
//! (a) client-credentials tokens/s, (b) SSO auth-code + PKCE flows/s, both with p50/p99,
//! (c) SQL statements per token and per flow, and compares the throughput with the machine's
//! RSA-2048 signing ceiling from `openssl speed`, and (d) client-credentials latency in an open
//! loop at half the peak rate (a server's latency with headroom). `--peer` also measures panva's oidc-provider
//! (`peer/`) with the same client-credentials load and reports Accord ÷ peer; `--footprint`
//! measures memory instead (footprint.rs).
//!
//! ```text
//! cargo build --release -p accord-server -p accord-bench
//! target/release/accord-bench --peer --out bench.md
//! target/release/accord-bench --footprint --out footprint.md
//! ```

mod ceiling;
mod cpu;
mod footprint;
mod load;
mod peer;
mod raw_http;
mod scale;
mod server;

use anyhow::{bail, Context};
use clap::Parser;
use load::{Sample, Target, Worker, Workload};
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

#[derive(Parser, Debug)]
#[command(about = "Load benchmark for the accord server (not a test: it prints figures)")]
struct Args {
    /// The accord binary to benchmark (build it with `cargo build --release -p accord-server`).
    #[arg(long, default_value = "target/release/accord")]
    accord: PathBuf,
    /// Scenario loaded into the server; it must contain the app, tenant and user below.
    #[arg(long, default_value = "crates/accord-server/tests/fixtures/world.toml")]
    scenario: PathBuf,
    /// Seconds per throughput measurement.
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Concurrent workers, each with its own keep-alive HTTPS connection.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
    /// Repetitions of every measurement; the report shows medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Seconds of untimed load per workload before the first run.
    #[arg(long, default_value_t = 2)]
    warmup: u64,
    /// Operations per worker per run at most (bounds memory for latencies).
    #[arg(long, default_value_t = 200_000)]
    max_ops: u64,
    /// Sequential operations over which SQL statements per operation are counted.
    #[arg(long, default_value_t = 200)]
    count: u64,
    /// Seconds `openssl speed` spends on each of sign and verify.
    #[arg(long, default_value_t = 5)]
    openssl_seconds: u64,
    /// Seconds of `openssl speed -multi 2` just before every timed run and after the last one
    /// (0: none). Each run is also judged against the mean of the two measurements around it:
    /// on a host whose speed drifts (seen: the ceiling moving 30-80% within an hour), a ratio to
    /// a ceiling measured minutes earlier says more about the host than about the server.
    #[arg(long, default_value_t = 3)]
    adjacent_ceiling_seconds: u64,
    /// Before `openssl speed` and every timed run, wait up to this many seconds for the
    /// machine to be quiet (other jobs would distort the figures).
    #[arg(long, default_value_t = 120)]
    idle_wait: u64,
    /// "Quiet" means at most this fraction of all cores busy over one second.
    #[arg(long, default_value_t = 0.10)]
    idle_threshold: f64,
    /// Only measure the signing ceilings (openssl speed and aws-lc-rs), then stop.
    #[arg(long)]
    signing_only: bool,
    /// Only measure memory through a server's life (the demo world; see footprint.rs).
    #[arg(long)]
    footprint: bool,
    /// Footprint: concurrent password sign-ins in the burst.
    #[arg(long, default_value_t = 120)]
    footprint_signins: usize,
    /// Footprint: tokens issued in the long run.
    #[arg(long, default_value_t = 1_000_000)]
    footprint_tokens: u64,
    /// Footprint: seconds waited before "idle" and "after" readings.
    #[arg(long, default_value_t = 60)]
    footprint_settle: u64,
    /// Only measure requests against generated tenants of these sizes (users, comma-separated;
    /// see scale.rs), e.g. `--scale 1000,10000,100000`.
    #[arg(long, value_delimiter = ',')]
    scale: Vec<usize>,
    /// Scale: timed samples of each request per size.
    #[arg(long, default_value_t = 100)]
    scale_samples: usize,
    /// Also measure two baselines: GET /healthz (no SQL) and GET /readyz (one statement).
    #[arg(long)]
    baselines: bool,
    /// A run during which other processes used more than this many cores is repeated (up to
    /// 3 × runs attempts; the least disturbed are kept). `openssl speed` runs count as disturbed
    /// when they got less than 90% of their cores.
    #[arg(long, default_value_t = 0.2)]
    max_other_cores: f64,
    /// PostgreSQL URL for the server's store (default: SQLite in the temporary data dir).
    #[arg(long)]
    database_url: Option<String>,
    /// Also measure the peer (panva's oidc-provider, two cluster workers) issuing
    /// client-credentials tokens with the same load, after Accord, and report Accord ÷ peer.
    #[arg(long)]
    peer: bool,
    /// Send client-credentials and baseline requests with reqwest, as the bench did before its
    /// lean client (raw_http.rs): for comparing the load generator's own cost.
    #[arg(long)]
    reqwest_client: bool,
    /// Threads of the load generator's runtime: 1 runs every connection on one event loop (as
    /// `wrk -t1`), which costs the shared cores least; more use tokio's multi-thread scheduler.
    #[arg(long, default_value_t = 1)]
    load_threads: usize,
    /// Also write the report (markdown) to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value = "aaaaaaaa-0000-4000-8000-000000000001")]
    tenant: String,
    #[arg(long, default_value = "bbbbbbbb-0000-4000-8000-000000000001")]
    client_id: String,
    #[arg(long, default_value = "web-secret-1")]
    client_secret: String,
    #[arg(long, default_value = "https://app.example/callback")]
    redirect_uri: String,
    #[arg(long, default_value = "alice@contoso.test")]
    user: String,
    #[arg(long, default_value = "alice-password-1")]
    password: String,
    #[arg(long, default_value = "openid profile offline_access User.Read")]
    flow_scope: String,
}

/// One run of one workload.
#[derive(Debug, Clone, Copy)]
struct Run {
    per_second: f64,
    p50_ms: f64,
    p99_ms: f64,
    ops: u64,
    errors: u64,
    cpu: cpu::Usage,
    server_cpu_ms_per_op: f64,
    statements_per_op: f64,
    /// The signing ceiling around this run (`--adjacent-ceiling-seconds`); NaN when not measured.
    ceiling: f64,
}

/// RSA-2048 signatures per second with one and two `openssl speed` processes.
struct Signing {
    one: Measured,
    two: Measured,
    /// aws-lc-rs, the library the server signs with: (1 thread, 2 threads) signs/s.
    aws_lc: (f64, f64),
}

/// A median over the kept attempts, with every attempt (value, kept) for the record.
struct Measured {
    median: f64,
    attempts: Vec<(f64, bool)>,
}

impl Measured {
    fn describe(&self) -> String {
        let list: Vec<String> = self
            .attempts
            .iter()
            .map(|(v, kept)| if *kept { format!("{v:.0}") } else { format!("~~{v:.0}~~") })
            .collect();
        list.join(", ")
    }
}

/// Keeps the `want` least disturbed attempts (by `disturbance`), in their original order.
fn keep_least_disturbed(disturbance: &[f64], want: usize) -> Vec<bool> {
    let mut order: Vec<usize> = (0..disturbance.len()).collect();
    order.sort_by(|a, b| disturbance[*a].total_cmp(&disturbance[*b]));
    let mut kept = vec![false; disturbance.len()];
    for i in order.into_iter().take(want) {
        kept[i] = true;
    }
    kept
}

/// `openssl speed` with `processes` processes, repeated until `runs` attempts got at least 90%
/// of their CPU (or 3 × runs attempts were made).
fn measure_signing(args: &Args, processes: u32) -> anyhow::Result<Measured> {
    let want = args.runs.max(1);
    let (mut rates, mut disturbance) = (Vec::new(), Vec::new());
    while disturbance.iter().filter(|d| **d <= 0.1).count() < want && rates.len() < 3 * want {
        wait_until_idle(args);
        let (cpu_before, start) = (cpu::children_seconds(), std::time::Instant::now());
        let rate = ceiling::rsa2048_signs_per_second(args.openssl_seconds, processes)?;
        let share = (cpu::children_seconds() - cpu_before) / (start.elapsed().as_secs_f64() * f64::from(processes));
        eprintln!("  openssl speed -multi {processes}: {rate:.0} sign/s ({:.0}% of its CPU)", share * 100.0);
        rates.push(rate);
        disturbance.push(1.0 - share.min(1.0));
    }
    let kept = keep_least_disturbed(&disturbance, want);
    let median = median(rates.iter().zip(&kept).filter(|(_, k)| **k).map(|(r, _)| *r).collect());
    let attempts = rates.into_iter().zip(kept).collect();
    Ok(Measured { median, attempts })
}

/// The runtime that drives the load (`--load-threads`).
fn load_runtime(threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    if threads <= 1 {
        tokio::runtime::Builder::new_current_thread().enable_all().build()
    } else {
        tokio::runtime::Builder::new_multi_thread().worker_threads(threads).enable_all().build()
    }
}

/// `openssl speed -multi 2` for `--adjacent-ceiling-seconds`, off the async runtime; NaN when
/// switched off.
async fn adjacent_ceiling(args: &Args) -> anyhow::Result<f64> {
    let seconds = args.adjacent_ceiling_seconds;
    if seconds == 0 {
        return Ok(f64::NAN);
    }
    let rate = tokio::task::spawn_blocking(move || ceiling::rsa2048_signs_per_second(seconds, 2)).await??;
    eprintln!("  ceiling now: {rate:.0} sign/s");
    Ok(rate)
}

/// The ceiling around run `i` of a workload: the mean of the measurements just before it and
/// just before the next run (or after the last).
fn around(ceilings: &[f64], i: usize) -> f64 {
    (ceilings[i] + ceilings[i + 1]) / 2.0
}

/// aws-lc-rs signs/s on 1 and 2 threads, on a quiet machine.
fn measure_aws_lc(args: &Args) -> anyhow::Result<(f64, f64)> {
    let mut rates = [0.0; 2];
    for (i, threads) in [1u32, 2].into_iter().enumerate() {
        wait_until_idle(args);
        rates[i] = ceiling::aws_lc_signs_per_second(args.openssl_seconds, threads)?;
        eprintln!("  aws-lc-rs, {threads} thread(s): {:.0} sign/s", rates[i]);
    }
    Ok((rates[0], rates[1]))
}

struct WorkloadResult {
    workload: Workload,
    signatures_per_op: u32,
    /// Every attempt and whether it was kept for the medians.
    runs: Vec<(Run, bool)>,
    /// Client credentials only: open-loop runs at half the closed loop's median rate.
    half_load: Vec<PacedRun>,
}

impl WorkloadResult {
    /// The runs the medians are taken over.
    fn kept(&self) -> Vec<&Run> {
        self.runs.iter().filter(|(_, kept)| *kept).map(|(run, _)| run).collect()
    }
}

/// One open-loop run at a fixed rate (load::run_paced).
struct PacedRun {
    rate: f64,
    per_second: f64,
    errors: u64,
    /// Latency from when each request was due (includes any queueing behind the server).
    due: [f64; 3],
    /// Latency from when each request was actually sent.
    sent: [f64; 3],
    server_cores: f64,
}

/// The percentiles a paced run reports: p50, p99, p99.9 (ms).
fn percentiles(sample: &Sample) -> [f64; 3] {
    [50.0, 99.0, 99.9].map(|p| ms(sample.percentile(p)))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.signing_only && !args.accord.exists() {
        bail!("{} not found: build it with `cargo build --release -p accord-server`", args.accord.display());
    }
    if !args.scale.is_empty() {
        let settings = scale::Settings { sizes: args.scale.clone(), samples: args.scale_samples.max(1) };
        let report = scale::run(&args.accord, &settings)?;
        println!("{report}");
        if let Some(out) = &args.out {
            std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        }
        return Ok(());
    }
    if args.footprint {
        let settings = footprint::Settings {
            signins: args.footprint_signins,
            tokens: args.footprint_tokens,
            concurrency: args.concurrency,
            settle: Duration::from_secs(args.footprint_settle),
        };
        let report = footprint::run(&args.accord, &settings)?;
        println!("{report}");
        if let Some(out) = &args.out {
            std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        }
        return Ok(());
    }
    let machine = ceiling::machine();
    let signing =
        Signing { one: measure_signing(&args, 1)?, two: measure_signing(&args, 2)?, aws_lc: measure_aws_lc(&args)? };
    if args.signing_only {
        return Ok(());
    }

    let server = server::Server::start(&args.accord, &args.scenario, args.database_url.as_deref())?;
    eprintln!("accord started at {} (pid {})", server.base, server.pid());
    let target = Arc::new(Target {
        base: server.base.clone(),
        ca_pem: server.ca_pem.clone(),
        tenant: args.tenant.clone(),
        client_id: args.client_id.clone(),
        client_secret: args.client_secret.clone(),
        redirect_uri: args.redirect_uri.clone(),
        user: args.user.clone(),
        password: args.password.clone(),
        flow_scope: args.flow_scope.clone(),
        token_path: None,
        client_credentials_scope: "https://graph.microsoft.com/.default".into(),
        lean_client: !args.reqwest_client,
    });
    let runtime = load_runtime(args.load_threads)?;
    server.stop_on_signal(&runtime);
    let results = runtime.block_on(async {
        let mut results = Vec::new();
        let mut workloads = vec![Workload::ClientCredentials, Workload::AuthCodeFlow];
        if args.baselines {
            workloads.extend([Workload::Healthz, Workload::Readyz]);
        }
        for workload in workloads {
            results.push(bench(&args, &target, server.pid(), workload).await?);
        }
        anyhow::Ok(results)
    });
    let results = results.with_context(|| format!("benchmark failed; server log:\n{}", server.log()))?;
    // The peer serves Accord's development certificate: keep a copy before Accord's dir goes.
    let tls_copy = if args.peer {
        let dir = server::temp_data_dir()?;
        let (cert, key) = server.tls_files();
        std::fs::copy(&cert, dir.join("server.pem"))?;
        std::fs::copy(&key, dir.join("server-key.pem"))?;
        Some(dir)
    } else {
        None
    };
    let ca_pem = server.ca_pem.clone();
    drop(server);
    let peer = match &tls_copy {
        Some(dir) => {
            let peer = peer::Peer::start(&dir.join("server.pem"), &dir.join("server-key.pem"), 2)
                .context("starting the peer")?;
            eprintln!("peer (oidc-provider {}) started at {}", peer::version(), peer.base);
            let target = Arc::new(Target {
                base: peer.base.clone(),
                ca_pem: ca_pem.clone(),
                tenant: String::new(),
                client_id: peer::CLIENT_ID.into(),
                client_secret: peer::CLIENT_SECRET.into(),
                redirect_uri: String::new(),
                user: String::new(),
                password: String::new(),
                flow_scope: String::new(),
                token_path: Some("/token".into()),
                client_credentials_scope: peer::SCOPE.into(),
                lean_client: !args.reqwest_client,
            });
            let runs = runtime.block_on(bench_throughput(&args, &target, Workload::ClientCredentials))?;
            drop(peer);
            let _ = std::fs::remove_dir_all(dir);
            Some(runs)
        }
        None => None,
    };

    let backend = match &args.database_url {
        Some(url) if url.starts_with("postgres") => "PostgreSQL",
        Some(_) => "custom database URL",
        None => "SQLite",
    };
    let mut report = report(&args, backend, &machine, &signing, &results);
    if let Some(peer_runs) = &peer {
        report.push_str(&peer_report(&args, &signing, &results, peer_runs));
    }
    println!("{report}");
    if let Some(out) = &args.out {
        std::fs::write(out, &report).with_context(|| format!("writing {}", out.display()))?;
        eprintln!("report written to {}", out.display());
    }
    Ok(())
}

/// A run of the peer: throughput and latency only (its CPU and statements are not Accord's to
/// count).
struct PeerRun {
    per_second: f64,
    /// The signing ceiling around the run, as for Accord's runs.
    ceiling: f64,
    p50_ms: f64,
    p99_ms: f64,
    ops: u64,
}

/// Warm-up, then `runs` timed closed-loop runs of one workload, on a quiet machine.
async fn bench_throughput(args: &Args, target: &Arc<Target>, workload: Workload) -> anyhow::Result<Vec<PeerRun>> {
    let mut workers = Vec::with_capacity(args.concurrency);
    for id in 0..args.concurrency {
        workers.push(Worker::new(target.clone(), workload, id).await?);
    }
    workers[0].once().await.context("the peer's first token")?;
    let (mut workers, warm) = load::run(workers, Duration::from_secs(args.warmup), args.max_ops).await;
    check(&warm, "peer warm-up")?;
    let (mut runs, mut ceilings) = (Vec::new(), Vec::new());
    for i in 1..=args.runs.max(1) {
        let wait = (args.idle_wait, args.idle_threshold);
        tokio::task::spawn_blocking(move || wait_until_idle_for(wait)).await?;
        ceilings.push(adjacent_ceiling(args).await?);
        let (back, sample) = load::run(workers, Duration::from_secs(args.duration), args.max_ops).await;
        workers = back;
        check(&sample, &format!("peer run {i}"))?;
        eprintln!("  peer run {i}: {:.0}/s", sample.per_second());
        runs.push(PeerRun {
            per_second: sample.per_second(),
            ceiling: f64::NAN,
            p50_ms: ms(sample.percentile(50.0)),
            p99_ms: ms(sample.percentile(99.0)),
            ops: sample.ops,
        });
    }
    ceilings.push(adjacent_ceiling(args).await?);
    for (i, run) in runs.iter_mut().enumerate() {
        run.ceiling = around(&ceilings, i);
    }
    Ok(runs)
}

/// The peer beside Accord's client credentials.
fn peer_report(args: &Args, signing: &Signing, results: &[WorkloadResult], runs: &[PeerRun]) -> String {
    let per_second = median(runs.iter().map(|r| r.per_second).collect());
    let p50 = median(runs.iter().map(|r| r.p50_ms).collect());
    let p99 = median(runs.iter().map(|r| r.p99_ms).collect());
    let accord_runs: Vec<&Run> = results
        .iter()
        .find(|r| r.workload == Workload::ClientCredentials)
        .map(WorkloadResult::kept)
        .unwrap_or_default();
    let accord = median(accord_runs.iter().map(|run| run.per_second).collect());
    let ceiling = signing.two.median;
    let peer_share = median(runs.iter().map(|r| r.per_second / r.ceiling).collect());
    let accord_share = median(accord_runs.iter().map(|run| run.per_second / run.ceiling).collect());
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\n**Peer, same load ({} workers, {} × {} s, HTTPS, after Accord stopped):** panva's \
         `oidc-provider` {} on Node {}, two cluster workers, RS256 JWT access tokens: **{per_second:.0} \
         tokens/s** (p50 {p50:.1} ms, p99 {p99:.1} ms; runs: {}) = {:.0}% of the ceiling. \
         **Accord ÷ peer = {:.2}×** ({accord:.0} against {per_second:.0}).",
        args.concurrency,
        args.runs,
        args.duration,
        peer::version(),
        node_version(),
        runs.iter().map(|r| format!("{:.0}/s ({} ops)", r.per_second, r.ops)).collect::<Vec<_>>().join(", "),
        per_second / ceiling * 100.0,
        if per_second > 0.0 && accord.is_finite() { accord / per_second } else { 0.0 },
    );
    if peer_share.is_finite() && accord_share.is_finite() {
        let _ = writeln!(
            s,
            "\nAgainst the ceiling measured around each run (`openssl speed -multi 2 -seconds {}` before \
             and after it; medians of the runs' ratios): Accord {:.0}%, the peer {:.0}%; **Accord ÷ peer, \
             each judged by the ceiling of its own minutes: {:.2}×** (runs' ceilings: Accord {}; peer {}).",
            args.adjacent_ceiling_seconds,
            accord_share * 100.0,
            peer_share * 100.0,
            accord_share / peer_share,
            ceilings_list(accord_runs.iter().map(|run| run.ceiling)),
            ceilings_list(runs.iter().map(|r| r.ceiling)),
        );
    }
    s
}

fn ceilings_list(ceilings: impl Iterator<Item = f64>) -> String {
    ceilings.map(|c| format!("{c:.0}")).collect::<Vec<_>>().join(", ")
}

fn node_version() -> String {
    std::process::Command::new("node")
        .arg("--version")
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "?".into())
}

/// Warm-up, then `runs` × (timed closed-loop run + statement count) for one workload.
async fn bench(
    args: &Args,
    target: &Arc<Target>,
    server_pid: u32,
    workload: Workload,
) -> anyhow::Result<WorkloadResult> {
    eprintln!("{}: preparing {} workers ...", workload.name(), args.concurrency);
    let mut workers = Vec::with_capacity(args.concurrency);
    for id in 0..args.concurrency {
        workers.push(Worker::new(target.clone(), workload, id).await?);
    }
    let first = workers[0].once().await?;
    let signatures_per_op = if workload.issues_tokens() { load::signatures_in(&first)? } else { 0 };
    let (mut workers, warm) = load::run(workers, Duration::from_secs(args.warmup), args.max_ops).await;
    check(&warm, "warm-up")?;

    let want = args.runs.max(1);
    let mut runs: Vec<Run> = Vec::new();
    let mut ceilings = Vec::new();
    while runs.iter().filter(|r| r.cpu.other_cores <= args.max_other_cores).count() < want && runs.len() < 3 * want {
        let i = runs.len() + 1;
        let wait = (args.idle_wait, args.idle_threshold);
        tokio::task::spawn_blocking(move || wait_until_idle_for(wait)).await?;
        ceilings.push(adjacent_ceiling(args).await?);
        let before = cpu::read(server_pid);
        let (back, sample) = load::run(workers, Duration::from_secs(args.duration), args.max_ops).await;
        let after = cpu::read(server_pid);
        workers = back;
        check(&sample, &format!("run {i}"))?;
        let usage = cpu::usage(before, after, sample.elapsed.as_secs_f64());
        let statements_per_op = load::statements_per_op(target, &mut workers[0], args.count).await?;
        let run = Run {
            per_second: sample.per_second(),
            p50_ms: ms(sample.percentile(50.0)),
            p99_ms: ms(sample.percentile(99.0)),
            ops: sample.ops,
            errors: sample.errors,
            cpu: usage,
            server_cpu_ms_per_op: usage.server_seconds * 1000.0 / sample.ops.max(1) as f64,
            statements_per_op,
            ceiling: f64::NAN,
        };
        eprintln!(
            "  run {i}: {:.0}/s, p50 {:.1} ms, p99 {:.1} ms, server {:.2} cores, other {:.2} cores, {:.1} SQL/op",
            run.per_second, run.p50_ms, run.p99_ms, run.cpu.server_cores, run.cpu.other_cores, run.statements_per_op
        );
        runs.push(run);
    }
    ceilings.push(adjacent_ceiling(args).await?);
    for (i, run) in runs.iter_mut().enumerate() {
        run.ceiling = around(&ceilings, i);
    }
    let disturbance: Vec<f64> = runs.iter().map(|r| r.cpu.other_cores).collect();
    let kept = keep_least_disturbed(&disturbance, want);
    let mut half_load = Vec::new();
    if workload == Workload::ClientCredentials {
        let peak = median(runs.iter().zip(&kept).filter(|(_, k)| **k).map(|(r, _)| r.per_second).collect());
        for i in 1..=want {
            let wait = (args.idle_wait, args.idle_threshold);
            tokio::task::spawn_blocking(move || wait_until_idle_for(wait)).await?;
            let before = cpu::read(server_pid);
            let (back, due, sent) = load::run_paced(workers, peak / 2.0, Duration::from_secs(args.duration)).await;
            let after = cpu::read(server_pid);
            workers = back;
            check(&due, &format!("half-load run {i}"))?;
            let run = PacedRun {
                rate: peak / 2.0,
                per_second: due.per_second(),
                errors: due.errors,
                due: percentiles(&due),
                sent: percentiles(&sent),
                server_cores: cpu::usage(before, after, due.elapsed.as_secs_f64()).server_cores,
            };
            eprintln!(
                "  half load, run {i}: {:.0}/s asked, {:.0}/s done, p99 {:.1} ms from due ({:.1} from sent), server {:.2} cores",
                run.rate, run.per_second, run.due[1], run.sent[1], run.server_cores
            );
            half_load.push(run);
        }
    }
    Ok(WorkloadResult { workload, signatures_per_op, runs: runs.into_iter().zip(kept).collect(), half_load })
}

fn wait_until_idle(args: &Args) {
    wait_until_idle_for((args.idle_wait, args.idle_threshold));
}

fn wait_until_idle_for((seconds, threshold): (u64, f64)) {
    let busy = cpu::wait_until_idle(Duration::from_secs(seconds), threshold);
    if busy > threshold {
        eprintln!("  warning: the machine is still {:.0}% busy with other work; measuring anyway", busy * 100.0);
    }
}

/// Errors are reported; more than 1% of attempts failing invalidates the run.
fn check(sample: &Sample, what: &str) -> anyhow::Result<()> {
    if sample.errors == 0 {
        return Ok(());
    }
    let error = sample.first_error.as_deref().unwrap_or("?");
    eprintln!("  {what}: {} of {} operations failed; first: {error}", sample.errors, sample.ops + sample.errors);
    if sample.errors * 100 > sample.ops + sample.errors {
        bail!("{what}: too many failures ({}); first: {error}", sample.errors);
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

fn report(
    args: &Args,
    backend: &str,
    machine: &ceiling::Machine,
    signing: &Signing,
    results: &[WorkloadResult],
) -> String {
    let ceiling = signing.two.median;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "### {backend}: {} workers, medians of {} × {} s per workload ({})\n",
        args.concurrency,
        args.runs,
        args.duration,
        utc_date()
    );
    let _ = writeln!(
        s,
        "Load client: {}; the auth-code flow always uses reqwest (cookies, redirects). Load runtime: {}.\n",
        if args.reqwest_client {
            "reqwest for every workload (`--reqwest-client`)"
        } else {
            "the lean keep-alive client (raw_http.rs) for client credentials and the baselines"
        },
        match args.load_threads {
            0 | 1 => "one thread (`--load-threads 1`)".to_string(),
            n => format!("{n} threads (`--load-threads {n}`)"),
        }
    );
    let _ = writeln!(
        s,
        "Machine: {} × {}. RSA-2048 sign/s, `openssl speed -seconds {} rsa2048`: {:.0} with `-multi 1` ({}); \
         **{ceiling:.0} with `-multi 2` ({}): the ceiling**. aws-lc-rs, the server's library, for comparison: \
         {:.0} on one thread, {:.0} on two. (Struck-through attempts were disturbed by other work and not used.)\n",
        machine.cores,
        machine.model,
        args.openssl_seconds,
        signing.one.median,
        signing.one.describe(),
        signing.two.describe(),
        signing.aws_lc.0,
        signing.aws_lc.1,
    );
    s.push_str(
        "| workload | ops/s | p50 ms | p99 ms | ops/s ÷ ceiling | RSA signs/op | signs/s ÷ ceiling \
         | server cores | db cores | bench cores | other cores | server CPU ms/op | SQL stmts/op |\n",
    );
    s.push_str("|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in results {
        let kept = r.kept();
        let m = |f: fn(&Run) -> f64| median(kept.iter().map(|run| f(run)).collect());
        let per_second = m(|x| x.per_second);
        let _ = writeln!(
            s,
            "| {} | {per_second:.0} | {:.1} | {:.1} | {:.0}% | {} | {:.0}% | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.1} |",
            r.workload.name(),
            m(|x| x.p50_ms),
            m(|x| x.p99_ms),
            100.0 * per_second / ceiling,
            r.signatures_per_op,
            100.0 * per_second * f64::from(r.signatures_per_op) / ceiling,
            m(|x| x.cpu.server_cores),
            m(|x| x.cpu.database_cores),
            m(|x| x.cpu.bench_cores),
            m(|x| x.cpu.other_cores),
            m(|x| x.server_cpu_ms_per_op),
            m(|x| x.statements_per_op),
        );
    }
    s.push_str(&adjacent_report(args, results));
    s.push_str(&half_load_report(results));
    s.push_str(
        "\nEvery attempt (runs with more than the allowed other-cores load are repeated):\n\n\
         | workload | attempt | kept | ops | errors | ops/s | p50 ms | p99 ms | server cores | db cores | other cores \
         | SQL stmts/op |\n",
    );
    s.push_str("|---|--:|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n");
    for r in results {
        for (i, (x, kept)) in r.runs.iter().enumerate() {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {} | {:.0} | {:.1} | {:.1} | {:.2} | {:.2} | {:.2} | {:.1} |",
                r.workload.name(),
                i + 1,
                if *kept { "yes" } else { "no" },
                x.ops,
                x.errors,
                x.per_second,
                x.p50_ms,
                x.p99_ms,
                x.cpu.server_cores,
                x.cpu.database_cores,
                x.cpu.other_cores,
                x.statements_per_op
            );
        }
    }
    s
}

/// Each workload's runs against the ceiling measured around them (`--adjacent-ceiling-seconds`).
fn adjacent_report(args: &Args, results: &[WorkloadResult]) -> String {
    let mut s = String::new();
    if args.adjacent_ceiling_seconds == 0 {
        return s;
    }
    let _ = writeln!(
        s,
        "\nAgainst the ceiling measured around each run (`openssl speed -multi 2 -seconds {}` just \
         before it and after it; medians of the kept runs' ratios, each run's in brackets):\n",
        args.adjacent_ceiling_seconds
    );
    for r in results.iter().filter(|r| r.workload.issues_tokens()) {
        let kept = r.kept();
        let shares: Vec<f64> =
            kept.iter().map(|run| run.per_second * f64::from(r.signatures_per_op) / run.ceiling).collect();
        let _ = writeln!(
            s,
            "- {}: **{:.0}% of the ceiling's signatures** ({}; ceilings {})",
            r.workload.name(),
            median(shares.clone()) * 100.0,
            shares.iter().map(|x| format!("{:.0}%", x * 100.0)).collect::<Vec<_>>().join(", "),
            kept.iter().map(|run| format!("{:.0}", run.ceiling)).collect::<Vec<_>>().join(", "),
        );
    }
    s
}

/// Client credentials at half their peak, open loop: the latency a server shows with headroom.
fn half_load_report(results: &[WorkloadResult]) -> String {
    let mut s = String::new();
    for r in results.iter().filter(|r| !r.half_load.is_empty()) {
        let runs = &r.half_load;
        let m = |f: &dyn Fn(&PacedRun) -> f64| median(runs.iter().map(f).collect());
        let _ = writeln!(
            s,
            "\n**{} at half the peak, open loop** ({:.0} requests/s due at fixed intervals, {} runs; \
             latency from when a request was due, so waiting behind the server counts, and includes \
             up to 1 ms of the bench's timer; medians): {:.0}/s done, **p50 {:.1} ms, p99 {:.1} ms**, \
             p99.9 {:.1} ms; from the actual send p50 {:.1} ms, p99 {:.1} ms; server {:.2} cores; \
             {} errors. Runs' p99 from due: {}.",
            r.workload.name(),
            m(&|x| x.rate),
            runs.len(),
            m(&|x| x.per_second),
            m(&|x| x.due[0]),
            m(&|x| x.due[1]),
            m(&|x| x.due[2]),
            m(&|x| x.sent[0]),
            m(&|x| x.sent[1]),
            m(&|x| x.server_cores),
            runs.iter().map(|x| x.errors).sum::<u64>(),
            runs.iter().map(|x| format!("{:.1} ms", x.due[1])).collect::<Vec<_>>().join(", "),
        );
    }
    s
}

/// Today's date (UTC) as YYYY-MM-DD, from the civil-from-days algorithm (H. Hinnant).
fn utc_date() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_the_least_disturbed_attempts_in_order() {
        assert_eq!(super::keep_least_disturbed(&[0.5, 0.0, 0.1, 0.9], 2), [false, true, true, false]);
        assert_eq!(super::keep_least_disturbed(&[0.3], 3), [true]);
    }

    #[test]
    fn a_run_is_judged_by_the_ceilings_measured_either_side_of_it() {
        let ceilings = [6000.0, 8000.0, 7000.0];
        assert_eq!(super::around(&ceilings, 0), 7000.0);
        assert_eq!(super::around(&ceilings, 1), 7500.0);
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(super::median(vec![3.0, 1.0, 2.0]), 2.0);
        assert_eq!(super::median(vec![4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
