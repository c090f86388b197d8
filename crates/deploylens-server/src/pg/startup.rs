//! A connection's start: the password is the server's token, as HTTP's bearer token is.
//!
//! With a token, the client is asked for a cleartext password (over TLS when it is not on
//! loopback: `serve` refuses a non-loopback address without a token), compared in constant
//! time. Without one, any user is let in, as `/api/sql` lets any caller in. The user and
//! database names are not checked: there is one table store and one role.

use std::fmt::Debug;

use async_trait::async_trait;
use datafusion_postgres::pgwire;
use futures::{Sink, SinkExt};
use pgwire::api::auth::{
    DefaultServerParameterProvider, StartupHandler, finish_authentication, protocol_negotiation,
    save_startup_parameters_to_metadata,
};
use pgwire::api::{ClientInfo, PgWireConnectionState, PidSecretKeyGenerator, RandomPidSecretKeyGenerator};
use pgwire::error::{ErrorInfo, PgWireError, PgWireResult};
use pgwire::messages::startup::Authentication;
use pgwire::messages::{PgWireBackendMessage, PgWireFrontendMessage};
use subtle::ConstantTimeEq;

/// The Postgres version clients are told: recent enough that psql, JDBC and SQLAlchemy use
/// their current catalog queries.
pub(super) const SERVER_VERSION: &str = "16.6 (deploylens)";

pub(super) struct TokenStartup {
    token: Option<String>,
    parameters: DefaultServerParameterProvider,
    keys: RandomPidSecretKeyGenerator,
}

impl TokenStartup {
    pub(super) fn new(token: Option<String>) -> Self {
        let mut parameters = DefaultServerParameterProvider::default();
        parameters.server_version = SERVER_VERSION.to_string();
        parameters.is_superuser = false;
        parameters.default_transaction_read_only = true;
        parameters.time_zone = "UTC".to_string();
        TokenStartup {
            token,
            parameters,
            keys: RandomPidSecretKeyGenerator::default(),
        }
    }
}

#[async_trait]
impl StartupHandler for TokenStartup {
    async fn on_startup<C>(&self, client: &mut C, message: PgWireFrontendMessage) -> PgWireResult<()>
    where
        C: ClientInfo + Sink<PgWireBackendMessage> + Unpin + Send,
        C::Error: Debug,
        PgWireError: From<<C as Sink<PgWireBackendMessage>>::Error>,
    {
        match message {
            PgWireFrontendMessage::Startup(ref startup) => {
                protocol_negotiation(client, startup).await?;
                save_startup_parameters_to_metadata(client, startup);
                let (pid, key) = self.keys.generate(client);
                client.set_pid_and_secret_key(pid, key);
                if self.token.is_none() {
                    return finish_authentication(client, &self.parameters).await;
                }
                client.set_state(PgWireConnectionState::AuthenticationInProgress);
                client
                    .send(PgWireBackendMessage::Authentication(
                        Authentication::CleartextPassword,
                    ))
                    .await?;
            }
            PgWireFrontendMessage::PasswordMessageFamily(password) => {
                let given = password.into_password()?;
                let expected = self.token.as_deref().unwrap_or_default();
                if bool::from(given.password.as_bytes().ct_eq(expected.as_bytes())) {
                    finish_authentication(client, &self.parameters).await?;
                } else {
                    return Err(PgWireError::UserError(Box::new(ErrorInfo::new(
                        "FATAL".into(),
                        "28P01".into(),
                        "password authentication failed: the password is the server's token (DEPLOYLENS_TOKEN_FILE)".into(),
                    ))));
                }
            }
            _ => {}
        }
        Ok(())
    }
}
