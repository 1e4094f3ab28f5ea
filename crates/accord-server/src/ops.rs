//! Operations: logging, health endpoints, Prometheus metrics and per-route request metrics.

use crate::config::LogFormat;
use crate::state::SharedState;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::sync::OnceLock;
use std::time::Instant;

pub fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("ACCORD_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info,sqlx=warn,hyper=warn"));
    // Logs go to stderr (stdout carries the start-up lines scripts wait for); colours only on a terminal.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().flatten_event(true).try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

static PROMETHEUS: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide Prometheus recorder (once).
pub fn metrics_handle() -> &'static PrometheusHandle {
    PROMETHEUS.get_or_init(|| {
        let recorder = PrometheusBuilder::new()
            .set_buckets(&[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5])
            .expect("static buckets are valid")
            .build_recorder();
        let handle = recorder.handle();
        let _ = metrics::set_global_recorder(recorder);
        handle
    })
}

/// Folds the histograms' buffered samples into their buckets every few seconds. The exporter
/// keeps every observation until a scrape or this upkeep drains it: a server nobody scrapes
/// grew by about 19 bytes a request (measured: +17 MiB over 1,000,000 tokens) until it ran.
pub fn spawn_metrics_upkeep() {
    tokio::spawn(async {
        let mut tick = tokio::time::interval(std::time::Duration::from_secs(5));
        loop {
            tick.tick().await;
            metrics_handle().run_upkeep();
        }
    });
}

/// The `method` label: the standard methods by name, anything else (a client may send any
/// token) as "other", so labels come from a fixed set.
fn method_label(method: &axum::http::Method) -> &'static str {
    use axum::http::Method;
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::PATCH => "PATCH",
        Method::DELETE => "DELETE",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}

/// Counts requests and their latency by matched route (never by raw path: no cardinality blow-up).
pub async fn track_requests(req: Request, next: Next) -> Response {
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_string()).unwrap_or_else(|| "unmatched".into());
    let method = method_label(req.method());
    let start = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    metrics::counter!("accord_http_requests_total", "route" => route.clone(), "method" => method, "status" => status)
        .increment(1);
    metrics::histogram!("accord_http_request_duration_seconds", "route" => route).record(start.elapsed().as_secs_f64());
    res
}

pub async fn metrics_endpoint(State(state): State<SharedState>) -> Response {
    metrics::gauge!("accord_store_statements_total").set(state.store.statements_executed() as f64);
    let (hits, misses) = state.store.directory_cache_counts();
    metrics::gauge!("accord_directory_cache_reads_total", "result" => "hit").set(hits as f64);
    metrics::gauge!("accord_directory_cache_reads_total", "result" => "miss").set(misses as f64);
    let (grouped, batches) = state.store.group_commit_counts();
    metrics::gauge!("accord_store_grouped_writes_total").set(grouped as f64);
    metrics::gauge!("accord_store_write_batches_total").set(batches as f64);
    metrics::gauge!("accord_store_connection_checks_total").set(state.store.connection_checks() as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], metrics_handle().render()).into_response()
}

pub async fn healthz() -> &'static str {
    "ok"
}

/// Ready when the store answers.
pub async fn readyz(State(state): State<SharedState>) -> Response {
    // The database itself, never the directory cache: a replica whose database is away is not
    // ready even while its cache could still answer some reads.
    match state.store.ping().await {
        Ok(_) => (StatusCode::OK, "ready").into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (StatusCode::SERVICE_UNAVAILABLE, "store unavailable").into_response()
        }
    }
}

/// Tunes glibc's allocator, which still serves the C libraries (SQLite, aws-lc); Rust's own
/// allocations go to mimalloc (the `accord` binary's global allocator), which on the token paths
/// costs a third of what glibc's arenas did (measured: 1,079 → 1,495 auth-code flows/s). Large
/// glibc blocks are kept short-lived: by default glibc raises its mmap threshold after the first
/// big block is freed, so later ones come from the heap and stay resident for good. A fixed
/// threshold keeps every block of 256 KiB or more in its own mapping, given back the moment it
/// is freed; two arenas (one per core) bound what the many runtime threads can hold; freed
/// memory at the heap's top goes back above 1 MiB. Call it first thing, before any thread
/// starts. A no-op on other C libraries.
pub fn tune_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        // SAFETY: mallopt only sets allocator parameters; called before other threads exist.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, 256 * 1024);
            libc::mallopt(libc::M_ARENA_MAX, 2);
            libc::mallopt(libc::M_TRIM_THRESHOLD, 1024 * 1024);
        }
    }
}

/// Sets mimalloc's options; the `accord` binary calls it from an ELF constructor, before the
/// first allocation (an arena's commit policy is read when the first arena is reserved, which
/// happens before `main`). By default mimalloc commits arenas eagerly and gives freed pages back
/// 10 ms late: measured with the demo world, idle RSS was 40 MiB, against 25 MiB with both off,
/// at the same token rates (5,200–5,400 tokens/s, 1,530–1,560 flows/s).
pub fn tune_mimalloc() {
    // By their index in mimalloc.h's `mi_option_e`, the same in v2 and in v3 (which
    // libmimalloc-sys builds by default); the crate names only some options.
    const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
    const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
    // SAFETY: mi_option_set only stores an option's value; it allocates nothing.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

/// Called by each runtime worker as it parks (it has run out of work). Memory a thread frees
/// that another thread allocated waits on the allocating thread's list until that thread
/// allocates in the same size again or collects; a worker that goes idle after a burst does
/// neither, and the minute's [`release_free_memory`] runs on one thread only, so after 120
/// sign-ins ~3 MiB of emptied small-object pages stayed resident for good. Collecting here
/// frees them as the burst ends (measured: +10% → +4% of the warm idle, docs/benchmarks.md).
/// At most once per [`PARK_COLLECT_INTERVAL`] a thread, because a worker parks thousands of
/// times a second under moderate load and each collect walks its heap's pages; a worker idle
/// after a burst parks again whenever a timer or connection wakes it.
pub fn collect_parked_thread() {
    thread_local! {
        static LAST: std::cell::Cell<Option<std::time::Instant>> = const { std::cell::Cell::new(None) };
    }
    let now = std::time::Instant::now();
    let due = LAST.with(|last| match last.get() {
        Some(at) if now.duration_since(at) < PARK_COLLECT_INTERVAL => false,
        _ => {
            last.set(Some(now));
            true
        }
    });
    if due {
        // SAFETY: mi_collect only returns memory mimalloc holds free, for this thread's heap.
        unsafe {
            libmimalloc_sys::mi_collect(false);
        }
    }
}

/// How often a parking worker collects at most (see [`collect_parked_thread`]).
const PARK_COLLECT_INTERVAL: std::time::Duration = std::time::Duration::from_millis(50);

/// Gives the allocators' free pages back to the system: mimalloc's (`mi_collect`) and glibc's
/// (`malloc_trim`), where a burst's freed buffers sit in free lists, resident until reused. The
/// background job calls it every minute; it costs a walk of the free lists (well under a
/// millisecond at Accord's sizes).
pub fn release_free_memory() {
    // SAFETY: mi_collect only returns memory mimalloc holds free; it is thread-safe and a no-op
    // for a heap that never allocated (in tests the global allocator is the system's).
    unsafe {
        libmimalloc_sys::mi_collect(true);
    }
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim is thread-safe and only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}
