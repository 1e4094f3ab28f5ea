//! `accord-bench --footprint`: the server's memory, as the kernel counts it (`VmRSS` now,
//! `VmHWM` its peak), through a life: the first start with the demo world (the peak while it
//! loads, then idle), a restart on the same data dir, a burst of concurrent password sign-ins,
//! a long run of tokens, and how much of it is given back a while later.

use crate::server::{self, Server};
use anyhow::Context;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The demo world's Contoso, its room-booking daemon, and Meeting Insights with Alice (ROPC:
/// her password is checked, then consent is missing — the argon2 work is what is measured).
const CONTOSO: &str = "6f1c2a4e-2b1d-4c8e-9a57-0d3e5b7c9f10";
const BOOKING: (&str, &str) = ("5e7c1a9d-3f2b-4c6e-8a14-9b0d2e4f6a72", "contoso-booking-secret-change-me");
const INSIGHTS: (&str, &str) = ("3bcad3f8-39bc-495b-b118-04d692e0bb31", "demo-vendor-secret-change-me");
const ALICE: (&str, &str) = ("alice@contoso.test", "Passw0rd!contoso-alice");

/// Resident and peak memory of a process, in KiB (`/proc/PID/status`).
pub fn memory_kib(pid: u32) -> anyhow::Result<(u64, u64)> {
    let m = Memory::of(pid)?;
    Ok((m.rss, m.peak))
}

/// What the kernel counts for a process, in KiB: resident, its peak, and the resident split
/// into anonymous memory (the heaps: what the server allocated) and file pages (the binary's
/// code and data as they are first executed or read: shared, clean, dropped by the kernel
/// under pressure, and never given back by the process itself).
#[derive(Debug, Clone, Copy)]
pub struct Memory {
    pub rss: u64,
    pub peak: u64,
    pub anon: u64,
    pub file: u64,
}

impl Memory {
    pub fn of(pid: u32) -> anyhow::Result<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).context("reading /proc/PID/status")?;
        let field = |name: &str| {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
                .unwrap_or(0)
        };
        Ok(Memory {
            rss: field("VmRSS:"),
            peak: field("VmHWM:"),
            anon: field("RssAnon:"),
            file: field("RssFile:") + field("RssShmem:"),
        })
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

pub struct Settings {
    pub signins: usize,
    pub tokens: u64,
    pub concurrency: usize,
    pub settle: Duration,
}

pub fn run(accord: &Path, settings: &Settings) -> anyhow::Result<String> {
    let mut report = String::from(
        "| Moment | RSS | of which heap (RssAnon) | of which code and files (RssFile) | Peak so far (VmHWM) |\n\
         |---|---|---|---|---|\n",
    );
    let row = |report: &mut String, moment: &str, pid: u32| -> anyhow::Result<Memory> {
        let m = Memory::of(pid)?;
        eprintln!("  {moment}: RSS {} (heap {}, files {}), peak {}", mib(m.rss), mib(m.anon), mib(m.file), mib(m.peak));
        let _ = writeln!(report, "| {moment} | {} | {} | {} | {} |", mib(m.rss), mib(m.anon), mib(m.file), mib(m.peak));
        Ok(m)
    };
    let data_dir = server::temp_data_dir()?;
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;

    // First start: the demo world loads (users' passwords hashed).
    let first = Server::start_in(accord, None, None, data_dir.clone(), true)?;
    row(&mut report, "first start with the demo world, ready", first.pid())?;
    std::thread::sleep(settings.settle);
    row(&mut report, &format!("first start, idle {} s later", settings.settle.as_secs()), first.pid())?;
    drop(first);

    let server = Server::start_in(accord, None, None, data_dir.clone(), false)?;
    let pid = server.pid();
    row(&mut report, "restart on the same data dir, ready", pid)?;
    std::thread::sleep(settings.settle);
    let idle = row(&mut report, &format!("restart, idle {} s later", settings.settle.as_secs()), pid)?;

    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&server.ca_pem)?)
        .pool_max_idle_per_host(settings.concurrency)
        .build()?;
    let token_url = format!("{}/{CONTOSO}/oauth2/v2.0/token", server.base);

    // One sign-in and one token, one after the other: every path the burst takes has run once
    // (its code paged in, its caches filled), so what the burst leaves can be told apart.
    runtime.block_on(async {
        sign_ins(&client, &token_url, 1).await;
        let _ = client.post(&token_url).form(&booking_form()).send().await.map(|r| r.bytes());
    });
    std::thread::sleep(settings.settle);
    let warm =
        row(&mut report, &format!("after one sign-in and one token, idle {} s later", settings.settle.as_secs()), pid)?;

    // A burst of password sign-ins at once.
    let statuses = runtime.block_on(sign_ins(&client, &token_url, settings.signins));
    eprintln!("  sign-ins answered: {statuses:?}");
    row(&mut report, &format!("after {} concurrent password sign-ins ({statuses:?})", settings.signins), pid)?;
    std::thread::sleep(settings.settle);
    let after_burst = row(&mut report, &format!("{} s after the burst", settings.settle.as_secs()), pid)?;

    // Tokens, with the RSS sampled at each tenth.
    let issued = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut samples = Vec::new();
    runtime.block_on(async {
        let mut workers = Vec::new();
        for _ in 0..settings.concurrency {
            let (client, url, issued, total) = (client.clone(), token_url.clone(), issued.clone(), settings.tokens);
            workers.push(tokio::spawn(async move {
                let form = booking_form();
                while issued.fetch_add(1, Ordering::Relaxed) < total {
                    let _ = client.post(&url).form(&form).send().await.map(|r| r.bytes());
                }
            }));
        }
        let step = (settings.tokens / 10).max(1);
        let mut next = step;
        while workers.iter().any(|w| !w.is_finished()) {
            tokio::time::sleep(Duration::from_millis(200)).await;
            if issued.load(Ordering::Relaxed) >= next {
                samples.push((next, memory_kib(pid).map(|m| m.0).unwrap_or(0)));
                next += step;
            }
        }
    });
    let rate = settings.tokens as f64 / started.elapsed().as_secs_f64();
    let first_tenth = samples.first().map(|s| s.1).unwrap_or(0);
    let last = samples.last().map(|s| s.1).unwrap_or(0);
    row(&mut report, &format!("after {} tokens ({rate:.0}/s)", settings.tokens), pid)?;
    std::thread::sleep(settings.settle);
    let settled = row(&mut report, &format!("{} s after the tokens", settings.settle.as_secs()), pid)?;
    let _ = writeln!(
        report,
        "\nIdle after restart {}, and {} once every path has run (heap {}). After the sign-in burst \
         and {} s: {} ({:+.0}% of idle, {:+.0}% of the warm idle; heap {}, {:+.0}%); after the \
         tokens and {} s: {} ({:+.0}% of idle). RSS over the token run, at each tenth: {} (first \
         tenth to last {:+.0}%).",
        mib(idle.rss),
        mib(warm.rss),
        mib(warm.anon),
        settings.settle.as_secs(),
        mib(after_burst.rss),
        pct(after_burst.rss, idle.rss),
        pct(after_burst.rss, warm.rss),
        mib(after_burst.anon),
        pct(after_burst.anon, warm.anon),
        settings.settle.as_secs(),
        mib(settled.rss),
        pct(settled.rss, idle.rss),
        samples.iter().map(|(_, k)| mib(*k)).collect::<Vec<_>>().join(", "),
        pct(last, first_tenth),
    );
    Ok(report)
}

/// The room-booking daemon's client-credentials request.
fn booking_form() -> [(&'static str, &'static str); 4] {
    [
        ("grant_type", "client_credentials"),
        ("client_id", BOOKING.0),
        ("client_secret", BOOKING.1),
        ("scope", "https://graph.microsoft.com/.default"),
    ]
}

/// `n` password sign-ins (ROPC) at once; how many got each status.
async fn sign_ins(client: &reqwest::Client, token_url: &str, n: usize) -> std::collections::BTreeMap<u16, u32> {
    let mut tasks = Vec::new();
    for _ in 0..n {
        let (client, url) = (client.clone(), token_url.to_string());
        tasks.push(tokio::spawn(async move {
            let form = [
                ("grant_type", "password"),
                ("client_id", INSIGHTS.0),
                ("client_secret", INSIGHTS.1),
                ("username", ALICE.0),
                ("password", ALICE.1),
                ("scope", "openid User.Read"),
            ];
            client.post(url).form(&form).send().await.map(|r| r.status().as_u16()).unwrap_or(0)
        }));
    }
    let mut statuses = std::collections::BTreeMap::new();
    for t in tasks {
        *statuses.entry(t.await.unwrap_or(0)).or_insert(0u32) += 1;
    }
    statuses
}

fn pct(value: u64, base: u64) -> f64 {
    if base == 0 {
        0.0
    } else {
        (value as f64 / base as f64 - 1.0) * 100.0
    }
}
