//! `--scale 1000,10000,100000`: the cost of requests as the tenant grows (issue 19). For each
//! size, a tenant from the generator (`accord_core::scenario::generate`: one group per ten users
//! nested five deep, one app per hundred users) is validated, loaded on first start, then
//! measured one request at a time: an SSO sign-in's authorize → code and code → token, and the
//! admin center's pages, each `samples` times (p50 and p99); finally a restart on the same data
//! with the same scenario. The figures go to docs/benchmarks.md.

use crate::load::{self, Target, Worker, Workload};
use crate::server::{self, Server};
use accord_core::scenario::generate::{self, TenantSize};
use anyhow::{ensure, Context};
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Settings {
    pub sizes: Vec<usize>,
    pub samples: usize,
}

/// The requests measured, in report order.
const PAGES: &[(&str, &str)] = &[
    ("`/admin` home", "/admin"),
    ("`/admin/users`, first page", "/admin/users"),
    ("`/admin/users?q=user0000`, search", "/admin/users?q=user0000"),
    ("`/admin/groups`, first page", "/admin/groups"),
    ("`/admin/enterprise-apps`", "/admin/enterprise-apps"),
    ("`/admin/audit`", "/admin/audit"),
];

struct SizeReport {
    users: usize,
    file_mb: f64,
    check: Duration,
    first_start: Duration,
    restart: Duration,
    /// Resident and peak memory (KiB) after the requests, and the peak of the restart.
    memory: (u64, u64),
    restart_peak: u64,
    /// Resident memory (KiB) of the restarted server after a warm-up (sign-ins and pages).
    restart_warm: u64,
    /// (name, p50, p99) in report order.
    rows: Vec<(String, Duration, Duration)>,
}

pub fn run(accord: &Path, settings: &Settings) -> anyhow::Result<String> {
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let mut reports = Vec::new();
    for &users in &settings.sizes {
        eprintln!("scale: {users} users");
        reports.push(measure(accord, &runtime, users, settings.samples)?);
    }
    Ok(report(&reports, settings))
}

fn measure(
    accord: &Path,
    runtime: &tokio::runtime::Runtime,
    users: usize,
    samples: usize,
) -> anyhow::Result<SizeReport> {
    let dir = server::temp_data_dir()?;
    let scenario = dir.join("generated.toml");
    let text = generate::tenant(TenantSize { users, passwords: false });
    std::fs::write(&scenario, &text)?;
    let start = Instant::now();
    let out = Command::new(accord).args(["scenario", "check"]).arg(&scenario).output()?;
    let check = start.elapsed();
    ensure!(out.status.success(), "accord scenario check: {}", String::from_utf8_lossy(&out.stderr));

    let start = Instant::now();
    let server = Server::start_in(accord, Some(&scenario), None, dir.clone(), true)?;
    let first_start = start.elapsed();
    let rows = runtime.block_on(requests(&server, samples, users)).with_context(|| format!("at {users} users"))?;
    let memory = crate::footprint::memory_kib(server.pid())?;
    drop(server);
    let start = Instant::now();
    let again = Server::start_in(accord, Some(&scenario), None, dir.clone(), false)?;
    let restart = start.elapsed();
    let restart_peak = crate::footprint::memory_kib(again.pid())?.1;
    runtime.block_on(warm_up(&again)).with_context(|| format!("warming up the restart at {users} users"))?;
    let restart_warm = crate::footprint::memory_kib(again.pid())?.0;
    drop(again);
    let file_mb = text.len() as f64 / 1e6;
    Ok(SizeReport { users, file_mb, check, first_start, restart, memory, restart_peak, restart_warm, rows })
}

/// What a restarted server meets first: sign-ins and a round of the admin center's pages.
async fn warm_up(server: &Server) -> anyhow::Result<()> {
    let mut member =
        Worker::new(target(server, generate::MEMBER_UPN, generate::MEMBER_PASSWORD), Workload::AuthCodeFlow, 0).await?;
    for _ in 0..20 {
        member.timed_flow().await?;
    }
    let admin = portal_worker(server).await?;
    for (_, path) in PAGES {
        admin.timed_get(path).await?;
    }
    Ok(())
}

fn target(server: &Server, user: &str, password: &str) -> Arc<Target> {
    Arc::new(Target {
        base: server.base.clone(),
        ca_pem: server.ca_pem.clone(),
        tenant: generate::TENANT_ID.into(),
        client_id: generate::BENCH_APP_ID.into(),
        client_secret: generate::BENCH_SECRET.into(),
        redirect_uri: generate::BENCH_REDIRECT_URI.into(),
        user: user.into(),
        password: password.into(),
        flow_scope: "openid profile offline_access User.Read User.ReadBasic.All GroupMember.Read.All".into(),
        token_path: None,
        client_credentials_scope: String::new(),
        lean_client: false,
    })
}

async fn requests(server: &Server, samples: usize, users: usize) -> anyhow::Result<Vec<(String, Duration, Duration)>> {
    let mut rows = Vec::new();
    // The member signs in once (password), then every flow rides the SSO session.
    let mut member =
        Worker::new(target(server, generate::MEMBER_UPN, generate::MEMBER_PASSWORD), Workload::AuthCodeFlow, 0).await?;
    let (mut authorize, mut token) = (Vec::new(), Vec::new());
    member.timed_flow().await?;
    for _ in 0..samples {
        let (a, t) = member.timed_flow().await?;
        authorize.push(a);
        token.push(t);
    }
    rows.push(percentiles("SSO sign-in, authorize → code", authorize));
    rows.push(percentiles("code → token", token));

    // Graph's user list: a first page of 100, and every page of 999 to the end (the total).
    let bearer = member.access_token().await?;
    member.timed_graph("/v1.0/users?$top=100", &bearer).await?;
    let mut first = Vec::with_capacity(samples);
    for _ in 0..samples {
        first.push(member.timed_graph("/v1.0/users?$top=100", &bearer).await?.0);
    }
    rows.push(percentiles("Graph `/v1.0/users?$top=100`", first));
    let (mut next, mut pages, mut listed) = (Some("/v1.0/users?$top=999".to_string()), Vec::new(), 0);
    let start = std::time::Instant::now();
    while let Some(url) = next.take() {
        let (took, body) = member.timed_graph(&url, &bearer).await?;
        pages.push(took);
        listed += body["value"].as_array().map_or(0, Vec::len);
        next = body["@odata.nextLink"].as_str().map(str::to_string);
    }
    let walk = start.elapsed();
    ensure!(listed >= 2, "the user list was empty");
    rows.push(percentiles("Graph: a page of 999 while paging through every user", pages));
    rows.push(("Graph: paging through every user (total)".to_string(), walk, walk));

    let admin = portal_worker(server).await?;
    // The root of the group tree: every user belongs to it through nested groups.
    let found = admin.get("/admin/groups?q=Group%2000000").await?;
    let root = found
        .split("href=\"/admin/groups/")
        .nth(1)
        .and_then(|rest| rest.get(..36))
        .context("the root group is not on its search page")?;
    let root_page = format!("/admin/groups/{root}");
    // Deep into the nested list: after the user in the middle of the tenant.
    let middle = admin.get(&format!("/admin/users?q=user{:06}", users / 2)).await?;
    let middle = middle
        .split("href=\"/admin/users/")
        .filter_map(|rest| rest.get(..36))
        .find(|id| id.chars().all(|c| c.is_ascii_hexdigit() || c == '-'))
        .context("the middle user is not on its search page")?;
    let pages = PAGES.iter().map(|(n, p)| (n.to_string(), p.to_string())).chain([
        ("`/admin/groups/{root}` (every user nested)".to_string(), root_page.clone()),
        ("the same, nested members from the middle on".to_string(), format!("{root_page}?nested_after={middle}")),
    ]);
    for (name, path) in pages {
        admin.timed_get(&path).await?;
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            times.push(admin.timed_get(&path).await?);
        }
        rows.push(percentiles(&name, times));
    }

    // Graph's transitive members of the root: the first page, and the page after the middle
    // user's (its nextLink, as a client paging through would reach it).
    let first = format!("/v1.0/groups/{root}/transitiveMembers?$top=100");
    let (_, body) = member.timed_graph(&first, &bearer).await?;
    ensure!(body["value"].as_array().is_some_and(|v| v.len() == 100), "the root's first page: {body}");
    let mut deep = String::from(body["@odata.nextLink"].as_str().context("no nextLink on the root's first page")?);
    for _ in 0..(users / 200) {
        let (_, body) = member.timed_graph(&deep, &bearer).await?;
        match body["@odata.nextLink"].as_str() {
            Some(next) => deep = next.to_string(),
            None => break,
        }
    }
    for (name, path) in [
        ("Graph `transitiveMembers` of the root, first page of 100".to_string(), first),
        ("the same, a page halfway through".to_string(), deep),
    ] {
        let mut times = Vec::with_capacity(samples);
        for _ in 0..samples {
            times.push(member.timed_graph(&path, &bearer).await?.0);
        }
        rows.push(percentiles(&name, times));
    }
    Ok(rows)
}

/// A worker signed in to the admin center as the generated tenant's Global Administrator.
async fn portal_worker(server: &Server) -> anyhow::Result<Worker> {
    let t = target(server, generate::ADMIN_UPN, generate::ADMIN_PASSWORD);
    let worker = Worker::new(t.clone(), Workload::Healthz, 1).await?;
    let client = worker.client();
    let page = client.get(format!("{}/portal/signin?return_to=/admin", t.base)).send().await?.text().await?;
    let field = |name| load::input_value(&page, name).with_context(|| format!("no {name} on the sign-in page"));
    let action = load::form_action(&page).context("no sign-in form")?;
    let form =
        [("flow", field("flow")?), ("csrf", field("csrf")?), ("login", t.user.clone()), ("passwd", t.password.clone())];
    let res = client.post(format!("{}{action}", t.base)).form(&form).send().await?;
    ensure!(res.status().as_u16() == 302, "admin sign-in answered {}", res.status());
    Ok(worker)
}

fn percentiles(name: &str, mut times: Vec<Duration>) -> (String, Duration, Duration) {
    times.sort();
    let at = |p: f64| times[((times.len() as f64 - 1.0) * p).round() as usize];
    (name.to_string(), at(0.5), at(0.99))
}

fn ms(d: Duration) -> String {
    let ms = d.as_secs_f64() * 1000.0;
    if ms >= 100.0 {
        format!("{ms:.0}")
    } else {
        format!("{ms:.1}")
    }
}

fn report(reports: &[SizeReport], settings: &Settings) -> String {
    let mut out = String::new();
    let sizes: Vec<String> = reports.iter().map(|r| format!("{} users", r.users)).collect();
    let _ = writeln!(
        out,
        "Generated tenants (`accord_core::scenario::generate`), release build, SQLite, one request at a time, \
         {} samples each after one untimed; p50 / p99 in ms.\n",
        settings.samples
    );
    let _ = writeln!(out, "| request | {} |", sizes.join(" | "));
    let _ = writeln!(out, "|---|{}", "--:|".repeat(reports.len()));
    for (i, (name, _, _)) in reports[0].rows.iter().enumerate() {
        let cells: Vec<String> = reports.iter().map(|r| format!("{} / {}", ms(r.rows[i].1), ms(r.rows[i].2))).collect();
        let _ = writeln!(out, "| {name} | {} |", cells.join(" | "));
    }
    let cells = |f: &dyn Fn(&SizeReport) -> String| reports.iter().map(f).collect::<Vec<_>>().join(" | ");
    let _ = writeln!(out, "| scenario file | {} |", cells(&|r| format!("{:.1} MB", r.file_mb)));
    let _ = writeln!(out, "| `accord scenario check` | {} |", cells(&|r| format!("{:.2} s", r.check.as_secs_f64())));
    let _ = writeln!(
        out,
        "| first start, loading the scenario | {} |",
        cells(&|r| format!("{:.1} s", r.first_start.as_secs_f64()))
    );
    let _ = writeln!(out, "| restart, same scenario | {} |", cells(&|r| format!("{:.1} s", r.restart.as_secs_f64())));
    let mib = |kib: u64| format!("{:.1} MiB", kib as f64 / 1024.0);
    let _ = writeln!(
        out,
        "| RSS after the requests (peak since start) | {} |",
        cells(&|r| format!("{} ({})", mib(r.memory.0), mib(r.memory.1)))
    );
    let _ = writeln!(out, "| peak RSS of the restart | {} |", cells(&|r| mib(r.restart_peak)));
    let _ = writeln!(
        out,
        "| RSS of the restart after 20 sign-ins and the admin pages | {} |",
        cells(&|r| mib(r.restart_warm))
    );
    out
}
