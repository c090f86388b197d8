//! The HTTP transport: its own accept loop (a cap on connections, a deadline for each request's
//! headers, which also ends idle keep-alive connections), a deadline for each whole request,
//! and the Host and Origin rules that keep foreign web pages out.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt;

use crate::api::error;
use crate::state::AppState;

/// Limits of the transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpLimits {
    /// Connections open at once; more wait in the listen queue.
    pub max_connections: usize,
    /// Time a client has to send a request's headers, and the longest an idle keep-alive
    /// connection stays open.
    pub header_timeout: Duration,
    /// Longest a whole request may take, body and answer included.
    pub request_timeout: Duration,
}

impl Default for HttpLimits {
    fn default() -> Self {
        HttpLimits {
            max_connections: 256,
            header_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(60),
        }
    }
}

/// File descriptors kept for the collector (its walk, the files it reads, the store) whatever
/// the number of clients.
const FDS_FOR_THE_COLLECTOR: u64 = 128;

/// The connection cap, lowered to what the file descriptor limit leaves after the collector's
/// share (the soft limit is first raised to the hard one).
pub fn connection_cap(wanted: usize) -> usize {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    let fds = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            return wanted;
        }
        if limit.rlim_cur < limit.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: limit.rlim_max,
                rlim_max: limit.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                limit.rlim_cur = limit.rlim_max;
            }
        }
        limit.rlim_cur
    };
    let room = fds.saturating_sub(FDS_FOR_THE_COLLECTOR) / 2;
    wanted.min(room.max(4) as usize)
}

/// Accepts connections until `shutdown`, then lets the requests in flight finish.
pub(crate) async fn serve(
    listener: tokio::net::TcpListener,
    router: Router,
    limits: HttpLimits,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let cap = connection_cap(limits.max_connections);
    if cap < limits.max_connections {
        tracing::warn!(
            "at most {cap} HTTP connections (the file descriptor limit keeps {FDS_FOR_THE_COLLECTOR} for the collector)"
        );
    }
    let slots = Arc::new(tokio::sync::Semaphore::new(cap));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    // HTTP/1.1 only: an HTTP/2-detecting server reads the first bytes of a connection before
    // any header deadline applies, so a client that sends nothing would hold it for ever.
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_timeout)
        .keep_alive(true);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of descriptors or a reset connection: keep serving the others.
                    tracing::warn!("accepting a connection failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(
            router
                .clone()
                .map_request(|r: Request<hyper::body::Incoming>| r.map(axum::body::Body::new)),
        );
        let connection = builder.serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            // A client that goes away is not an error of the server.
            let _ = connection.await;
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(Duration::from_secs(10)) => {
            tracing::warn!("requests still running 10 s after shutdown began; stopping anyway");
        }
    }
    Ok(())
}

/// A deadline for the whole request: a client that sends its body slowly, or a handler stuck
/// behind a lock, cannot hold a connection for ever.
pub(crate) async fn request_timeout(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let limit = state.config.http.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => error(
            StatusCode::REQUEST_TIMEOUT,
            format!("the request took longer than {limit:?}"),
        ),
    }
}

/// The host part of a Host header or of an origin's authority, lower case, without the port.
fn host_part(authority: &str) -> String {
    let a = authority.trim().to_ascii_lowercase();
    if let Some(rest) = a.strip_prefix('[') {
        // [::1]:9464
        return rest.split(']').next().unwrap_or("").to_string();
    }
    match a.rsplit_once(':') {
        Some((h, port)) if port.chars().all(|c| c.is_ascii_digit()) => h.to_string(),
        _ => a,
    }
}

fn listed(list: &[String], value: &str) -> bool {
    list.iter().any(|e| e == "*" || e.eq_ignore_ascii_case(value))
}

/// Whether a request may be addressed to `host`: an IP address, `localhost`, or a configured
/// name. A web page can make a browser send any request to a name it controls, then point that
/// name at this server (DNS rebinding); it cannot choose the Host header an IP address gets.
fn host_allowed(state: &AppState, host: &str) -> bool {
    let name = host_part(host);
    name.parse::<IpAddr>().is_ok()
        || name == "localhost"
        || name.ends_with(".localhost")
        || listed(&state.config.access.allowed_hosts, &name)
}

/// The origin of a request's page, if it came from a browser page.
fn origin_allowed(state: &AppState, origin: &str, host: Option<&str>) -> bool {
    let same_origin = host.is_some_and(|h| {
        origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(h))
    });
    same_origin || listed(&state.config.access.allowed_origins, origin)
}

/// The Host and Origin rules, and CORS for the origins allowed.
pub(crate) async fn same_origin(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| request.uri().authority().map(|a| a.to_string()));
    if let Some(h) = &host
        && !host_allowed(&state, h)
    {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "requests addressed to {h:?} are refused; address the server by IP or localhost, or allow the name with --allowed-hosts"
            ),
        );
    }
    let origin = request
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(origin) = origin else {
        if request.method() == Method::OPTIONS {
            return StatusCode::NO_CONTENT.into_response();
        }
        return next.run(request).await;
    };
    if !origin_allowed(&state, &origin, host.as_deref()) {
        return error(
            StatusCode::FORBIDDEN,
            format!(
                "cross-origin requests from {origin} are refused; allow the origin with --allowed-origins"
            ),
        );
    }
    let cross = !host.as_deref().is_some_and(|h| {
        origin
            .split_once("://")
            .is_some_and(|(_, authority)| authority.eq_ignore_ascii_case(h))
    });
    let mut response = if request.method() == Method::OPTIONS {
        let mut r = StatusCode::NO_CONTENT.into_response();
        let h = r.headers_mut();
        h.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, OPTIONS"),
        );
        h.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("authorization, content-type, accept"),
        );
        h.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("600"));
        r
    } else {
        next.run(request).await
    };
    if cross && let Ok(v) = HeaderValue::from_str(&origin) {
        response
            .headers_mut()
            .insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, v);
        response
            .headers_mut()
            .insert(header::VARY, HeaderValue::from_static("Origin"));
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_parts() {
        assert_eq!(host_part("127.0.0.1:9464"), "127.0.0.1");
        assert_eq!(host_part("[::1]:9464"), "::1");
        assert_eq!(host_part("LocalHost"), "localhost");
        assert_eq!(host_part("attacker.example:80"), "attacker.example");
    }
}
