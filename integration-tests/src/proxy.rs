//! A fault-injecting HTTP proxy in front of a real service (ClickHouse): the
//! test points Reactor at the proxy, then makes the service pause, answer
//! errors, drop connections, or apply a request and lose its response, on
//! demand, as Toxiproxy does at the wire. Nothing in Reactor knows about it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use anyhow::{Context, Result};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::net::TcpListener;
use tokio::sync::watch;

/// What the proxy does to a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Fault {
    /// Forward it.
    #[default]
    None,
    /// Hold it (and every later one) until the fault changes: a server that
    /// stopped (SIGSTOP) or a network that black-holes.
    Pause,
    /// Forward it after a delay.
    Delay(Duration),
    /// Answer 503 without forwarding.
    ServerError,
    /// Close the connection without forwarding or answering.
    Reset,
    /// Forward it, let the service apply it, read the whole answer, then
    /// close the connection instead of passing the answer on.
    DropResponse,
}

/// Which requests a fault applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// Every request.
    #[default]
    All,
    /// Only ClickHouse INSERTs (`query=INSERT ...`).
    Inserts,
}

/// Requests the proxy has seen, by what it did.
#[derive(Debug, Default)]
pub struct Counts {
    /// Forwarded and answered.
    pub forwarded: AtomicU64,
    /// Answered 503, or reset, without forwarding.
    pub refused: AtomicU64,
    /// Applied by the service, answer dropped.
    pub dropped_after_apply: AtomicU64,
}

#[derive(Debug)]
struct State {
    upstream: String,
    client: Client<HttpConnector, Full<Bytes>>,
    fault: watch::Sender<(Fault, Scope)>,
    counts: Counts,
}

/// A running proxy; stops when dropped.
#[derive(Debug)]
pub struct FaultProxy {
    address: SocketAddr,
    state: Arc<State>,
    task: tokio::task::JoinHandle<()>,
    handled: Arc<Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards to `upstream`
    /// (`http://host:port`).
    pub async fn start(upstream: &str) -> Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let state = Arc::new(State {
            upstream: upstream.trim_end_matches('/').to_owned(),
            client: Client::builder(TokioExecutor::new()).build_http(),
            fault: watch::channel((Fault::None, Scope::All)).0,
            counts: Counts::default(),
        });
        let handled = Arc::new(Mutex::new(Vec::new()));
        let (accept_state, accept_handled) = (Arc::clone(&state), Arc::clone(&handled));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let state = Arc::clone(&accept_state);
                let connection = tokio::spawn(async move {
                    let service = service_fn(move |request| handle(Arc::clone(&state), request));
                    // A connection ends with an error when a fault resets it.
                    let _ended = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
                accept_handled
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push(connection);
            }
        });
        Ok(FaultProxy {
            address,
            state,
            task,
            handled,
        })
    }

    /// The proxy's URL, to configure in place of the service's.
    pub fn url(&self) -> String {
        format!("http://{}", self.address)
    }

    /// From now on, does `fault` to requests in `scope`.
    pub fn set(&self, fault: Fault, scope: Scope) {
        self.state.fault.send_replace((fault, scope));
    }

    /// Back to forwarding everything.
    pub fn heal(&self) {
        self.set(Fault::None, Scope::All);
    }

    /// What the proxy did so far.
    pub fn counts(&self) -> &Counts {
        &self.state.counts
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
        for connection in self
            .handled
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .drain(..)
        {
            connection.abort();
        }
    }
}

fn in_scope(request: &Request<Incoming>, scope: Scope) -> bool {
    match scope {
        Scope::All => true,
        Scope::Inserts => request.uri().query().is_some_and(|q| {
            let q = q.to_ascii_uppercase();
            q.contains("QUERY=INSERT") || q.contains("QUERY=INSERT%20")
        }),
    }
}

async fn handle(state: Arc<State>, request: Request<Incoming>) -> Result<Response<Full<Bytes>>> {
    let mut faults = state.fault.subscribe();
    let (fault, scope) = *faults.borrow_and_update();
    let fault = if in_scope(&request, scope) {
        fault
    } else {
        Fault::None
    };
    match fault {
        Fault::None => forward(&state, request).await,
        Fault::Pause => {
            // Held until the fault is lifted (or changed), then forwarded.
            let lifted = faults
                .wait_for(|(fault, _)| *fault != Fault::Pause)
                .await
                .is_ok();
            anyhow::ensure!(lifted, "fault proxy: stopped");
            forward(&state, request).await
        }
        Fault::Delay(delay) => {
            tokio::time::sleep(delay).await;
            forward(&state, request).await
        }
        Fault::ServerError => {
            let _refused = state.counts.refused.fetch_add(1, Ordering::Relaxed);
            Ok(Response::builder()
                .status(StatusCode::SERVICE_UNAVAILABLE)
                .body(Full::new(Bytes::from_static(
                    b"fault proxy: injected 503 Service Unavailable\n",
                )))?)
        }
        Fault::Reset => {
            let _refused = state.counts.refused.fetch_add(1, Ordering::Relaxed);
            anyhow::bail!("fault proxy: connection reset")
        }
        Fault::DropResponse => {
            let response = forward(&state, request).await?;
            let _dropped = state
                .counts
                .dropped_after_apply
                .fetch_add(1, Ordering::Relaxed);
            let status = response.status();
            anyhow::bail!("fault proxy: dropped a {status} response after the request was applied")
        }
    }
}

/// Sends `request` to the upstream service and returns its whole answer.
async fn forward(state: &State, request: Request<Incoming>) -> Result<Response<Full<Bytes>>> {
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut upstream = Request::builder()
        .method(parts.method)
        .uri(format!("{}{path}", state.upstream));
    for (name, value) in &parts.headers {
        if !is_framing(name) {
            upstream = upstream.header(name, value);
        }
    }
    let response = state
        .client
        .request(upstream.body(Full::new(body))?)
        .await
        .context("fault proxy: the upstream service")?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    for name in [
        hyper::header::CONTENT_LENGTH,
        hyper::header::TRANSFER_ENCODING,
        hyper::header::CONNECTION,
    ] {
        let _removed = parts.headers.remove(name);
    }
    let _forwarded = state.counts.forwarded.fetch_add(1, Ordering::Relaxed);
    Ok(Response::from_parts(parts, Full::new(body)))
}

/// Headers that describe one hop's framing: the proxy sends whole bodies and
/// lets hyper set them anew.
fn is_framing(name: &hyper::header::HeaderName) -> bool {
    use hyper::header::{CONNECTION, CONTENT_LENGTH, HOST, TRANSFER_ENCODING};
    [HOST, CONTENT_LENGTH, TRANSFER_ENCODING, CONNECTION].contains(name)
}
