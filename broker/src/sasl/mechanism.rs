//! One authentication exchange, run by the `rsasl` crate's server side: PLAIN checks the listener's JAAS users
//! (in constant time, with `subtle`), SCRAM-SHA-256/512 the credentials stored in the metadata log. This module
//! turns rsasl's steps into what Kafka tells a client: a challenge, success as a user, or a failure with Kafka's
//! wording (which never says whether the user exists). As in Kafka's `ScramSaslServer`, a SCRAM client naming
//! a user without a credential fails at its first message (with the same wording as a wrong proof).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::Mutex;
use rsasl::callback::{Context, Request, SessionCallback, SessionData};
use rsasl::mechanisms::scram::properties::ScramStoredPassword;
use rsasl::prelude::{Mechname, SASLConfig, SASLServer, Session, SessionError, State, Validation};
use rsasl::property::{AuthId, AuthzId, Password};
use rsasl::validate::{Validate, ValidationError};
use subtle::ConstantTimeEq;

use super::settings::{Mechanism, SaslSettings};
use crate::network::log_limit::{Admit, LogLimiter};

/// A SCRAM credential as Kafka stores it (UserScramCredentialRecord): never the password.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScramCredential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: u32,
}

/// Where SCRAM credentials are looked up (the metadata image this broker serves).
pub trait ScramStore: Send + Sync {
    fn scram_credential(&self, user: &str, mechanism: Mechanism) -> Option<ScramCredential>;
}

/// The message Kafka gives a client whose PLAIN password is wrong or whose user is unknown.
pub const PLAIN_FAILED: &str = "Authentication failed: Invalid username or password";
const AUTHZID_DIFFERS: &str =
    "Authentication failed: Client requested an authorization id that is different from username";

/// Kafka's message for a failed SCRAM exchange (the same whether the user, proof or message was wrong).
pub fn scram_failed(mechanism: Mechanism) -> String {
    format!(
        "Authentication failed during authentication due to invalid credentials with SASL mechanism {}",
        mechanism.name()
    )
}

/// Kafka's SCRAM user names escape ',' and '=' (RFC 5802 `saslname`); the stored name is the plain one.
pub fn scram_username(saslname: &str) -> Option<String> {
    let mut out = String::with_capacity(saslname.len());
    let mut rest = saslname;
    while let Some(i) = rest.find('=') {
        out.push_str(&rest[..i]);
        match rest.get(i..i + 3) {
            Some("=2C") => out.push(','),
            Some("=3D") => out.push('='),
            _ => return None,
        }
        rest = &rest[i + 3..];
    }
    out.push_str(rest);
    Some(out)
}

/// rsasl's validation result: the authenticated user, or the message for the client.
struct KafkaValidation;
impl Validation for KafkaValidation {
    type Value = Result<String, String>;
}

struct Callback {
    plain_users: BTreeMap<String, String>,
    scram: Arc<dyn ScramStore>,
}

fn mechanism_of(session_data: &SessionData) -> Option<Mechanism> {
    Mechanism::from_name(session_data.mechanism().mechanism.as_str())
}

impl SessionCallback for Callback {
    fn callback(
        &self,
        session_data: &SessionData,
        context: &Context,
        request: &mut Request,
    ) -> Result<(), SessionError> {
        if request.is::<ScramStoredPassword>() {
            let mechanism = mechanism_of(session_data).filter(|m| m.is_scram());
            let user = context.get_ref::<AuthId>().and_then(scram_username);
            if let (Some(mechanism), Some(user)) = (mechanism, user) {
                // Not answering means "no such user" (rsasl would run the exchange on with a made-up salt);
                // `MechanismSession::step` fails an unknown user at its first message before, as Kafka does.
                if let Some(c) = self.scram.scram_credential(&user, mechanism) {
                    request.satisfy::<ScramStoredPassword>(&ScramStoredPassword::new(
                        c.iterations,
                        &c.salt,
                        &c.stored_key,
                        &c.server_key,
                    ))?;
                }
            }
        }
        Ok(())
    }

    fn validate(
        &self,
        session_data: &SessionData,
        context: &Context,
        validate: &mut Validate<'_>,
    ) -> Result<(), ValidationError> {
        let authzid = context.get_ref::<AuthzId>().filter(|a| !a.is_empty());
        let verdict = match mechanism_of(session_data) {
            Some(Mechanism::Plain) => {
                let user = context.get_ref::<AuthId>().unwrap_or_default();
                let given = context.get_ref::<Password>().unwrap_or_default();
                // Compare against a dummy when the user is unknown, so timing does not tell users apart.
                let expected = self.plain_users.get(user);
                let matches: bool = expected
                    .map(|p| p.as_bytes())
                    .unwrap_or(b"\0no such user\0")
                    .ct_eq(given)
                    .into();
                if !(matches && expected.is_some()) {
                    Err(PLAIN_FAILED.to_string())
                } else if authzid.is_some_and(|a| a != user) {
                    Err(AUTHZID_DIFFERS.to_string())
                } else {
                    Ok(user.to_string())
                }
            }
            Some(m) => match context.get_ref::<AuthId>().and_then(scram_username) {
                None => Err(scram_failed(m)),
                Some(user)
                    if authzid.is_some_and(|a| scram_username(a).as_deref() != Some(&user)) =>
                {
                    Err(AUTHZID_DIFFERS.to_string())
                }
                Some(user) => Ok(user),
            },
            None => return Ok(()),
        };
        validate.with::<KafkaValidation, _>(|| Ok(verdict))?;
        Ok(())
    }
}

/// A SASL listener, built once at start: its settings, the rsasl configuration and the log budget shared by its
/// connections.
pub struct SaslListener {
    pub settings: SaslSettings,
    config: Arc<SASLConfig>,
    scram: Arc<dyn ScramStore>,
    failure_log: Mutex<LogLimiter>,
}

/// Failed-login WARN lines per listener and window.
const FAILURE_LOG_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);
const FAILURE_LOG_LINES: u32 = 20;

impl SaslListener {
    pub fn new(settings: SaslSettings, scram: Arc<dyn ScramStore>) -> Result<Self, String> {
        let config = SASLConfig::builder()
            .with_defaults()
            .with_callback(Callback {
                plain_users: settings.plain_users.clone(),
                scram: scram.clone(),
            })
            .map_err(|e| format!("SASL listener {}: {e}", settings.listener))?;
        Ok(SaslListener {
            settings,
            config,
            scram,
            failure_log: Mutex::new(LogLimiter::new(FAILURE_LOG_WINDOW, FAILURE_LOG_LINES)),
        })
    }

    /// Starts one exchange for an enabled mechanism.
    pub fn start(&self, mechanism: Mechanism) -> Result<MechanismSession, String> {
        let name = Mechname::parse(mechanism.name().as_bytes()).map_err(|e| e.to_string())?;
        let session = SASLServer::<KafkaValidation>::new(self.config.clone())
            .start_suggested(name)
            .map_err(|e| e.to_string())?;
        Ok(MechanismSession {
            mechanism,
            session,
            scram: self.scram.clone(),
            steps: 0,
            user: None,
        })
    }

    /// Whether a failed-login line may be written now, and how many were dropped before it.
    pub fn admit_failure_log(&self, now: Instant) -> Admit {
        self.failure_log.lock().admit(now)
    }
}

/// What one client token led to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MechStep {
    /// Send `challenge` and wait for the next token.
    Challenge(Vec<u8>),
    /// Authenticated; `final_message` (SCRAM's server signature, empty for PLAIN) goes to the client.
    Success {
        user: String,
        final_message: Vec<u8>,
    },
    /// Refused; `message` is for the client, `user` (when the client named one) for the log.
    Failure {
        message: String,
        user: Option<String>,
    },
}

/// One exchange in progress.
pub struct MechanismSession {
    mechanism: Mechanism,
    session: Session<KafkaValidation>,
    scram: Arc<dyn ScramStore>,
    steps: u32,
    user: Option<String>,
}

impl MechanismSession {
    pub fn mechanism(&self) -> Mechanism {
        self.mechanism
    }

    /// Feeds one client token.
    pub fn step(&mut self, token: &[u8]) -> MechStep {
        let step = self.steps;
        self.steps += 1;
        if self.mechanism.is_scram() {
            match scram_shape(step, token) {
                Ok(Some(user)) => {
                    let known = self.scram.scram_credential(&user, self.mechanism).is_some();
                    self.user = Some(user);
                    if !known {
                        return self.failure(scram_failed(self.mechanism));
                    }
                }
                Ok(None) => {}
                Err(()) => return self.failure(scram_failed(self.mechanism)),
            }
        } else {
            self.user = plain_user(token);
        }
        let mut out = Vec::new();
        let session = &mut self.session;
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            session.step(Some(token), &mut out)
        }));
        match result {
            Ok(Ok(State::Running)) => MechStep::Challenge(out),
            Ok(Ok(State::Finished(_))) => match self.session.validation() {
                Some(Ok(user)) => MechStep::Success {
                    user,
                    final_message: out,
                },
                Some(Err(message)) => self.failure(message),
                None => self.failure(self.generic_failure()),
            },
            Ok(Err(e)) => {
                let message = match self.mechanism {
                    Mechanism::Plain => format!("Invalid SASL/PLAIN response: {e}"),
                    m => scram_failed(m),
                };
                self.failure(message)
            }
            Err(_) => self.failure(self.generic_failure()),
        }
    }

    fn generic_failure(&self) -> String {
        match self.mechanism {
            Mechanism::Plain => PLAIN_FAILED.to_string(),
            m => scram_failed(m),
        }
    }

    fn failure(&self, message: String) -> MechStep {
        MechStep::Failure {
            message,
            user: self.user.clone(),
        }
    }
}

/// The user named by a PLAIN message (`authzid NUL authcid NUL password`), for the log.
fn plain_user(token: &[u8]) -> Option<String> {
    let mut parts = token.split(|b| *b == 0);
    let _authzid = parts.next()?;
    let user = parts.next()?;
    std::str::from_utf8(user).ok().map(str::to_string)
}

/// Checks the shape of a SCRAM client message before rsasl parses it (its parser slices attributes without
/// checking their length), and refuses what Kraftwerk does not serve: delegation-token logins
/// (`tokenauth=true`). Returns the user named by the client-first message.
fn scram_shape(step: u32, token: &[u8]) -> Result<Option<String>, ()> {
    let text = std::str::from_utf8(token).map_err(|_| ())?;
    let parts: Vec<&str> = text.split(',').collect();
    match step {
        0 => {
            // gs2-cbind-flag "," [authzid] "," "n=" user "," "r=" nonce ["," extensions]
            if parts.len() < 4 || !(parts[1].is_empty() || parts[1].starts_with("a=")) {
                return Err(());
            }
            if parts[2..].iter().any(|p| p.len() < 2)
                || parts[3..].iter().any(|p| p.starts_with("tokenauth="))
            {
                return Err(());
            }
            let user = parts[2].strip_prefix("n=").ok_or(())?;
            Ok(Some(
                scram_username(user).unwrap_or_else(|| user.to_string()),
            ))
        }
        _ => {
            if parts.len() < 3 || parts.iter().any(|p| p.len() < 2) {
                return Err(());
            }
            Ok(None)
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use rsasl::prelude::SASLClient;
    use std::io::Cursor;

    /// An in-memory SCRAM store for tests.
    #[derive(Default)]
    pub(crate) struct MemStore(pub BTreeMap<(String, Mechanism), ScramCredential>);
    impl ScramStore for MemStore {
        fn scram_credential(&self, user: &str, m: Mechanism) -> Option<ScramCredential> {
            self.0.get(&(user.to_string(), m)).cloned()
        }
    }

    /// A credential derived as a Kafka client does (PBKDF2 in rsasl's tools).
    pub(crate) fn credential(m: Mechanism, password: &str) -> ScramCredential {
        use rsasl::mechanisms::scram::tools::{derive_keys, hash_password};
        use sha2::Digest;
        let salt = b"0123456789abcdef".to_vec();
        let iterations = 4096;
        match m {
            Mechanism::ScramSha256 => {
                let mut salted = Default::default();
                hash_password::<sha2::Sha256>(password.as_bytes(), iterations, &salt, &mut salted);
                let (client_key, server_key) = derive_keys::<sha2::Sha256>(salted.as_slice());
                ScramCredential {
                    salt,
                    stored_key: sha2::Sha256::digest(client_key).to_vec(),
                    server_key: server_key.to_vec(),
                    iterations,
                }
            }
            Mechanism::ScramSha512 => {
                let mut salted = Default::default();
                hash_password::<sha2::Sha512>(password.as_bytes(), iterations, &salt, &mut salted);
                let (client_key, server_key) = derive_keys::<sha2::Sha512>(salted.as_slice());
                ScramCredential {
                    salt,
                    stored_key: sha2::Sha512::digest(client_key).to_vec(),
                    server_key: server_key.to_vec(),
                    iterations,
                }
            }
            Mechanism::Plain => unreachable!("PLAIN has no stored credential"),
        }
    }

    pub(crate) fn listener(mechanisms: Vec<Mechanism>, store: MemStore) -> SaslListener {
        let settings = SaslSettings {
            listener: "SASL".into(),
            mechanisms,
            plain_users: [("alice".to_string(), "alice-secret".to_string())].into(),
            failed_auth_delay: std::time::Duration::from_millis(100),
            max_receive_size: 524_288,
        };
        SaslListener::new(settings, Arc::new(store)).unwrap()
    }

    /// Runs a whole exchange with rsasl's client; returns the server's last step.
    pub(crate) fn scram_exchange(
        l: &SaslListener,
        m: Mechanism,
        user: &str,
        password: &str,
    ) -> MechStep {
        let mut server = l.start(m).unwrap();
        let client = SASLClient::new(
            SASLConfig::with_credentials(None, user.to_string(), password.to_string()).unwrap(),
        );
        let name = Mechname::parse(m.name().as_bytes()).unwrap();
        let mut client = client.start_suggested(&[name]).unwrap();
        let mut out = Cursor::new(Vec::new());
        client.step(None, &mut out).unwrap();
        loop {
            match server.step(out.get_ref()) {
                MechStep::Challenge(c) => {
                    out = Cursor::new(Vec::new());
                    client.step(Some(&c), &mut out).unwrap();
                }
                done => return done,
            }
        }
    }

    #[test]
    fn plain_accepts_the_configured_password_only() {
        let l = listener(vec![Mechanism::Plain], MemStore::default());
        let mut s = l.start(Mechanism::Plain).unwrap();
        assert_eq!(
            s.step(b"\0alice\0alice-secret"),
            MechStep::Success {
                user: "alice".into(),
                final_message: vec![]
            }
        );
        for token in [
            &b"\0alice\0wrong"[..],
            b"\0bob\0alice-secret",
            b"\0alice\0alice-secre",
        ] {
            let mut s = l.start(Mechanism::Plain).unwrap();
            match s.step(token) {
                MechStep::Failure { message, .. } => assert_eq!(message, PLAIN_FAILED),
                other => panic!("{other:?}"),
            }
        }
        let mut s = l.start(Mechanism::Plain).unwrap();
        match s.step(b"mallory\0alice\0alice-secret") {
            MechStep::Failure { message, user } => {
                assert!(message.contains("authorization id"), "{message}");
                assert_eq!(user.as_deref(), Some("alice"));
            }
            other => panic!("{other:?}"),
        }
        let mut s = l.start(Mechanism::Plain).unwrap();
        assert!(matches!(s.step(b"garbage"), MechStep::Failure { .. }));
    }

    #[test]
    fn scram_logs_in_with_a_stored_credential() {
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let mut store = MemStore::default();
            store
                .0
                .insert(("bob".into(), m), credential(m, "bob-secret"));
            let l = listener(vec![m], store);
            match scram_exchange(&l, m, "bob", "bob-secret") {
                MechStep::Success {
                    user,
                    final_message,
                } => {
                    assert_eq!(user, "bob");
                    assert!(final_message.starts_with(b"v="));
                }
                other => panic!("{other:?}"),
            }
            for (user, password) in [("bob", "wrong"), ("nobody", "bob-secret")] {
                match scram_exchange(&l, m, user, password) {
                    MechStep::Failure { message, user: u } => {
                        assert_eq!(message, scram_failed(m));
                        assert_eq!(u.as_deref(), Some(user));
                    }
                    other => panic!("{other:?}"),
                }
            }
        }
    }

    #[test]
    fn an_unknown_scram_user_fails_at_the_first_message() {
        for m in [Mechanism::ScramSha256, Mechanism::ScramSha512] {
            let mut store = MemStore::default();
            store
                .0
                .insert(("bob".into(), m), credential(m, "bob-secret"));
            let l = listener(vec![m], store);
            let mut s = l.start(m).unwrap();
            assert_eq!(
                s.step(b"n,,n=nobody,r=abcdef"),
                MechStep::Failure {
                    message: scram_failed(m),
                    user: Some("nobody".into())
                }
            );
            // bob's credential is for `m` only.
            let other = if m == Mechanism::ScramSha256 {
                Mechanism::ScramSha512
            } else {
                Mechanism::ScramSha256
            };
            let l = listener(vec![other], MemStore::default());
            let mut s = l.start(other).unwrap();
            assert!(matches!(
                s.step(b"n,,n=bob,r=abcdef"),
                MechStep::Failure { .. }
            ));
            let mut s = {
                let mut store = MemStore::default();
                store
                    .0
                    .insert(("bob".into(), m), credential(m, "bob-secret"));
                listener(vec![m], store).start(m).unwrap()
            };
            assert!(matches!(
                s.step(b"n,,n=bob,r=abcdef"),
                MechStep::Challenge(_)
            ));
        }
    }

    #[test]
    fn malformed_scram_messages_fail_instead_of_panicking() {
        let m = Mechanism::ScramSha256;
        let mut store = MemStore::default();
        store.0.insert(("u".into(), m), credential(m, "u-secret"));
        let l = listener(vec![m], store);
        for token in [
            &b"n,,x"[..],
            b"n,a,n=u,r=abc",
            b"n,,n=u,r=abc,tokenauth=true",
            b"",
            b"\xff\xfe",
        ] {
            let mut s = l.start(Mechanism::ScramSha256).unwrap();
            assert!(
                matches!(s.step(token), MechStep::Failure { .. }),
                "{token:?}"
            );
        }
        let mut s = l.start(Mechanism::ScramSha256).unwrap();
        assert!(matches!(
            s.step(b"n,,n=u,r=abcdefgh"),
            MechStep::Challenge(_)
        ));
        assert!(matches!(s.step(b"c,r"), MechStep::Failure { .. }));
    }

    #[test]
    fn scram_names_are_unescaped() {
        assert_eq!(scram_username("a=2Cb=3Dc").as_deref(), Some("a,b=c"));
        assert_eq!(scram_username("plain").as_deref(), Some("plain"));
        assert_eq!(scram_username("bad=2"), None);
        assert_eq!(scram_username("bad=41"), None);
    }
}
