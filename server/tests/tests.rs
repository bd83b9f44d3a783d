//! The server's integration tests: one binary (so one link), the helpers in `util.rs`.
//!
//! - `demo`: the routes a demo page calls itself: the operator's, or any page's under `--demo`,
//!   limited per IP; only the newest orders kept; a full voice key store answers 503.
//! - `dashboard`: sign-in and its cookie, pagination, one issue, the fleet from health exports.
//! - `hardening`: what the security review found: OTLP limits, timeouts and connection caps,
//!   rate limits per event, retention, refused origins and database URLs, panics, static files.
//! - `http`: the router in-process through `tower::ServiceExt::oneshot`.
//! - `socket`: the real server on a real socket (port 0) and its graceful shutdown.
//! - `hub`: `/ws` with a real WebSocket client: every exit path, limits, the orders feed.
//! - `ingest`: `POST /api/{project}/envelope/` and the read API, in-process.
//! - `metrics`: `POST /v1/metrics` (OTLP/HTTP JSON), vitals p75 and metric points.
//! - `voice`: `/voice/*`: keys, refusals, the cap, and a real WebRTC call from a `str0m` client
//!   over 127.0.0.1 UDP (events, echo, speech events, every way a call ends).
//! - `writer`: the group commit through the HTTP routes: events, metric points and health
//!   samples committed together and acknowledged only after the commit, a retried export
//!   from 50 tasks at once stored once, a full queue answered 503 with `Retry-After`.
//!
//! The process-level tests (the real binary, SIGTERM, a real browser) live in `tests/e2e/`.

mod dashboard;
mod demo;
mod hardening;
mod http;
mod hub;
mod ingest;
mod metrics;
mod socket;
mod util;
mod voice;
mod writer;
