//! Access: an optional bearer token, loaded the way the ecosystem loads secrets.

use std::path::Path;

use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;

use crate::api::error;
use crate::state::AppState;

/// Why the token could not be loaded.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token file could not be read; holds its path and the I/O error.
    #[error("cannot read the token file {0}: {1}")]
    Unreadable(std::path::PathBuf, String),
    /// The token file holds only whitespace; holds its path.
    #[error("the token file {0} is empty")]
    Empty(std::path::PathBuf),
    /// `DEPLOYLENS_TOKEN` is set to an empty or blank value.
    #[error("DEPLOYLENS_TOKEN is set but empty")]
    EmptyEnv,
}

/// Loads the token. Where it comes from, in order: the file named by `DEPLOYLENS_TOKEN_FILE`,
/// then `/run/secrets/deploylens_token` (a Docker secret), then `DEPLOYLENS_TOKEN`. No token:
/// open.
pub fn load_token() -> Result<Option<String>, TokenError> {
    load_token_from(
        std::env::var_os("DEPLOYLENS_TOKEN_FILE")
            .as_deref()
            .map(Path::new),
        Path::new("/run/secrets/deploylens_token"),
        std::env::var("DEPLOYLENS_TOKEN").ok(),
    )
}

/// [`load_token`] with its sources given: the token file if named, else the secret file if it
/// exists, else the environment value. The token is trimmed.
pub fn load_token_from(
    file: Option<&Path>,
    secret: &Path,
    env: Option<String>,
) -> Result<Option<String>, TokenError> {
    let read = |p: &Path| -> Result<String, TokenError> {
        let text =
            std::fs::read_to_string(p).map_err(|e| TokenError::Unreadable(p.to_path_buf(), e.to_string()))?;
        let token = text.trim().to_string();
        if token.is_empty() {
            return Err(TokenError::Empty(p.to_path_buf()));
        }
        Ok(token)
    };
    if let Some(p) = file {
        return read(p).map(Some);
    }
    if secret.exists() {
        return read(secret).map(Some);
    }
    match env.map(|t| t.trim().to_string()) {
        Some(t) if t.is_empty() => Err(TokenError::EmptyEnv),
        other => Ok(other),
    }
}

/// Compares in constant time: the time taken says nothing of where the first difference is.
/// (Only the length can be learnt, and tokens have a fixed length.)
fn same(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.ct_eq(b).into()
}

/// The credentials of an `Authorization: Bearer <token>` header; the scheme is
/// case-insensitive (RFC 9110).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, credentials) = value.trim().split_once(' ')?;
    scheme.eq_ignore_ascii_case("bearer").then(|| credentials.trim())
}

/// Requires `Authorization: Bearer <token>` when a token is set, except on the health and
/// metrics routes unless they are protected too.
pub async fn require_token(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let access = &state.config.access;
    let Some(token) = access.token.as_deref() else {
        return next.run(request).await;
    };
    let path = request.uri().path();
    // A preflight carries no credentials; the Origin rules answer it.
    // The page and its assets hold no data: the page asks for the token and sends it with
    // each API call.
    let page = path == "/" || path.starts_with("/assets/");
    let open = (matches!(path, "/healthz" | "/readyz" | "/metrics") && !access.protect_health_and_metrics)
        || page
        || request.method() == axum::http::Method::OPTIONS;
    if open {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer);
    match given {
        Some(t) if same(t.as_bytes(), token.as_bytes()) => next.run(request).await,
        Some(_) => error(StatusCode::UNAUTHORIZED, "wrong token"),
        None => error(
            StatusCode::UNAUTHORIZED,
            "this server needs a token: send Authorization: Bearer <token>",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_sources_in_priority_order() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("token");
        let secret = dir.path().join("secret");
        std::fs::write(&file, "from-file\n").unwrap();
        std::fs::write(&secret, "from-secret").unwrap();
        let env = Some("from-env".to_string());
        assert_eq!(
            load_token_from(Some(&file), &secret, env.clone()),
            Ok(Some("from-file".into()))
        );
        assert_eq!(
            load_token_from(None, &secret, env.clone()),
            Ok(Some("from-secret".into()))
        );
        let missing = dir.path().join("none");
        assert_eq!(load_token_from(None, &missing, env), Ok(Some("from-env".into())));
        assert_eq!(load_token_from(None, &missing, None), Ok(None));
        assert!(load_token_from(Some(&missing), &secret, None).is_err());
        std::fs::write(&file, "  \n").unwrap();
        assert_eq!(
            load_token_from(Some(&file), &secret, None),
            Err(TokenError::Empty(file.clone()))
        );
        assert!(same(b"abc", b"abc") && !same(b"abc", b"abd") && !same(b"abc", b"ab"));
        assert_eq!(bearer("Bearer abc"), Some("abc"));
        assert_eq!(bearer("bearer  abc "), Some("abc"));
        assert_eq!(bearer("BEARER abc"), Some("abc"));
        assert_eq!(bearer("Basic abc"), None);
        assert_eq!(bearer("Bearerabc"), None);
    }
}
