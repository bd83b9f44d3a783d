//! Who may read: the admin token as `Authorization: Bearer`, or a dashboard session cookie.
//! Who may call the routes a demo page calls itself (`POST /api/orders`, `POST /voice/session`):
//! the operator, or under `--demo` any page, limited per IP. Which origins may open `/ws`. The
//! client's IP. The one place that parses a bearer token.

use std::convert::Infallible;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap};

use crate::dashboard::session;
use crate::error::AppError;
use crate::AppState;

/// The token of an `Authorization: Bearer <token>` header, trimmed.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
}

/// The dashboard session secret in the request's cookies.
pub fn session_secret(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(session::from_cookie_header)
}

/// Whether the request holds a live dashboard session issued under the current admin token.
pub async fn has_session(state: &AppState, headers: &HeaderMap) -> Result<bool, AppError> {
    let Some(secret) = session_secret(headers) else {
        return Ok(false);
    };
    state
        .store()
        .session_valid(
            &session::hash(secret),
            &session::hash(state.admin_token()),
            crate::store::now_ms(),
        )
        .await
        .map_err(AppError::from)
}

/// Proof that the request carries the admin token (`Authorization: Bearer`) or a dashboard
/// session cookie.
#[derive(Debug, Clone, Copy)]
pub struct Admin;

impl FromRequestParts<AppState> for Admin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        if let Some(given) = bearer(&parts.headers) {
            return if session::constant_time_eq(given.as_bytes(), state.admin_token().as_bytes()) {
                Ok(Admin)
            } else {
                Err(AppError::Unauthorized("the admin token is wrong"))
            };
        }
        if has_session(state, &parts.headers).await? {
            return Ok(Admin);
        }
        Err(AppError::Unauthorized(
            "this route needs Authorization: Bearer <admin token> or a dashboard session",
        ))
    }
}

/// The client's IP, from the TCP connection (never from a header a client can write).
///
/// The accept loop (`serve::serve`) puts `ConnectInfo<SocketAddr>` in every request, so every
/// real request carries its peer address. A request driven in-process (the tests' `oneshot`) has
/// no connection: it counts as loopback, one client, rather than failing the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientIp(pub IpAddr);

impl<S: Send + Sync> FromRequestParts<S> for ClientIp {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Self(client_ip(parts)))
    }
}

fn client_ip(parts: &Parts) -> IpAddr {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map_or(IpAddr::V4(Ipv4Addr::LOCALHOST), |c| c.0.ip())
}

/// Who calls a route a demo page calls itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoCaller {
    /// The operator (the admin token or a dashboard session; for minting also the voice mint
    /// token): not limited.
    Operator,
    /// Any page, because the server runs with `--demo`: limited per IP.
    Page(IpAddr),
}

/// Decides who calls a demo route from whether the request proved to be the operator: the
/// operator; else, under `demo`, any page; else `401` with `refusal`. Under `--demo` a wrong
/// token is not refused: the request is served as any page's, limited per IP.
fn demo_caller(
    operator: Result<bool, AppError>,
    demo: bool,
    ip: IpAddr,
    refusal: &'static str,
) -> Result<DemoCaller, AppError> {
    match operator {
        Ok(true) => Ok(DemoCaller::Operator),
        // The database failed while checking a session: say so rather than guess.
        Err(e @ (AppError::Storage(_) | AppError::Internal(_))) => Err(e),
        Ok(false) | Err(_) if demo => Ok(DemoCaller::Page(ip)),
        Ok(false) | Err(_) => Err(AppError::Unauthorized(refusal)),
    }
}

/// `POST /api/orders` may go on: the operator, or under `--demo` a page within its IP's limit.
#[derive(Debug, Clone, Copy)]
pub struct OrderGate(pub DemoCaller);

impl FromRequestParts<AppState> for OrderGate {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let ip = client_ip(parts);
        let admin = Admin::from_request_parts(parts, state).await.map(|_| true);
        let caller = demo_caller(
            admin,
            state.demo(),
            ip,
            "POST /api/orders needs Authorization: Bearer <admin token> (or a server started \
             with --demo)",
        )?;
        if let DemoCaller::Page(ip) = caller {
            crate::hub::orders::admit(state.hub(), ip)?;
        }
        Ok(Self(caller))
    }
}

/// `POST /voice/session` may go on: the operator (the admin token, a dashboard session or the
/// `--voice-mint-token`), or under `--demo` a page within its IP's limit.
#[derive(Debug, Clone, Copy)]
pub struct MintGate(pub DemoCaller);

impl FromRequestParts<AppState> for MintGate {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let ip = client_ip(parts);
        let minter = match (state.voice_mint_token(), bearer(&parts.headers)) {
            (Some(token), Some(given)) => {
                session::constant_time_eq(given.as_bytes(), token.as_bytes())
            }
            _ => false,
        };
        let operator = if minter {
            Ok(true)
        } else {
            Admin::from_request_parts(parts, state).await.map(|_| true)
        };
        let caller = demo_caller(
            operator,
            state.demo(),
            ip,
            "POST /voice/session needs Authorization: Bearer <admin token or voice mint token> \
             (or a server started with --demo)",
        )?;
        if let DemoCaller::Page(ip) = caller {
            state.voice().admit_mint(ip)?;
        }
        Ok(Self(caller))
    }
}

/// The request's `Origin` is absent or on the `--allowed-origin` list (when one is set); else
/// `403`. On `GET /ws`: a page elsewhere cannot open the hub (WebSockets are not under CORS).
#[derive(Debug, Clone, Copy)]
pub struct AllowedOrigin;

impl FromRequestParts<AppState> for AllowedOrigin {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        // The same rule as telemetry's.
        crate::ingest::gate::check_origin(state.allowed_origins(), parts).map(|()| Self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_routes_need_the_operator_unless_demo() {
        let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1));
        let no = || Err(AppError::Unauthorized("wrong"));
        assert_eq!(
            demo_caller(Ok(true), false, ip, "x").unwrap(),
            DemoCaller::Operator
        );
        assert!(matches!(
            demo_caller(Ok(false), false, ip, "x"),
            Err(AppError::Unauthorized("x"))
        ));
        assert!(matches!(
            demo_caller(no(), false, ip, "x"),
            Err(AppError::Unauthorized("x"))
        ));
        assert_eq!(
            demo_caller(Ok(false), true, ip, "x").unwrap(),
            DemoCaller::Page(ip)
        );
        assert_eq!(
            demo_caller(no(), true, ip, "x").unwrap(),
            DemoCaller::Page(ip)
        );
        assert!(matches!(
            demo_caller(Err(AppError::Internal("db".into())), true, ip, "x"),
            Err(AppError::Internal(_))
        ));
    }
}
