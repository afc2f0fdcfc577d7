//! Who may call: users with passwords (Basic credentials in a Handshake,
//! answered with a bearer token) and static bearer tokens, from a TOML file
//! or the environment (never the command line, where `ps` shows them).
//!
//! The checks are the same for every server; each server maps an
//! [`AccessError`] to its protocol's answer (a gRPC status, an HTTP code).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::throttle::LoginThrottle;
use base64::Engine;
use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use rand::RngCore;
use serde::Deserialize;
use sha2::{Digest, Sha256};

/// Why a caller is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessError {
    /// No credentials, or wrong ones.
    Unauthenticated(String),
    /// Too many failed logins from the caller's address: retry later.
    Throttled(String),
}

impl AccessError {
    pub fn message(&self) -> &str {
        match self {
            AccessError::Unauthenticated(m) | AccessError::Throttled(m) => m,
        }
    }
}

impl std::fmt::Display for AccessError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for AccessError {}

fn unauthenticated(message: impl Into<String>) -> AccessError {
    AccessError::Unauthenticated(message.into())
}

/// How callers prove who they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// Anyone (allowed only on a loopback address).
    None,
    /// Static bearer tokens only.
    Token,
    /// Usernames and passwords (Handshake issues a bearer token); static
    /// tokens are accepted too.
    Basic,
}

impl std::str::FromStr for AuthMode {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(AuthMode::None),
            "token" => Ok(AuthMode::Token),
            "basic" => Ok(AuthMode::Basic),
            other => Err(format!(
                "unknown auth mode {other:?} (token, basic or none)"
            )),
        }
    }
}

/// The authenticated caller, as the service sees it (in the request's
/// extensions).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User(pub String);

type Digest32 = [u8; 32];

fn sha256(bytes: &[u8]) -> Digest32 {
    Sha256::digest(bytes).into()
}

/// Equality that takes the same time wherever the first difference is.
fn same(a: &Digest32, b: &Digest32) -> bool {
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn parse_hex(text: &str) -> Option<Digest32> {
    let text = text.trim();
    if text.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, byte) in out.iter_mut().enumerate() {
        *byte = u8::from_str_radix(text.get(2 * i..2 * i + 2)?, 16).ok()?;
    }
    Some(out)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The credentials file (`--auth-file`):
///
/// ```toml
/// [[users]]
/// name = "analyst"
/// password_sha256 = "9f86d08..."   # or: password = "..."
///
/// [[tokens]]
/// user = "superset"
/// token_sha256 = "..."             # or: token = "..."
/// ```
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CredentialsFile {
    #[serde(default)]
    users: Vec<UserEntry>,
    #[serde(default)]
    tokens: Vec<TokenEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct UserEntry {
    name: String,
    password: Option<String>,
    password_sha256: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    user: String,
    token: Option<String>,
    token_sha256: Option<String>,
}

/// What is wrong with a secret given in the credentials file.
enum SecretProblem {
    /// `*_sha256` is not 64 hex digits.
    BadHash,
    /// Neither or both of the secret and its hash.
    NotExactlyOne,
}

impl SecretProblem {
    fn describe(&self, file: &impl std::fmt::Display, owner: &str, secret: &str) -> String {
        match self {
            SecretProblem::BadHash => {
                format!("credentials file {file}: {secret}_sha256 of {owner} is not 64 hex digits")
            }
            SecretProblem::NotExactlyOne => format!(
                "credentials file {file}: {owner} needs exactly one of {secret}, {secret}_sha256"
            ),
        }
    }
}

/// The SHA-256 of a secret given in clear or already hashed.
fn secret_digest(
    plain: &Option<String>,
    hashed: &Option<String>,
) -> Result<Digest32, SecretProblem> {
    match (plain, hashed) {
        (Some(p), None) => Ok(sha256(p.as_bytes())),
        (None, Some(h)) => parse_hex(h).ok_or(SecretProblem::BadHash),
        _ => Err(SecretProblem::NotExactlyOne),
    }
}

/// Users (name → SHA-256 of the password) and static tokens (SHA-256 of
/// the token → user).
#[derive(Debug, Default, Clone)]
pub struct Credentials {
    users: HashMap<String, Digest32>,
    tokens: Vec<(Digest32, String)>,
}

impl Credentials {
    /// Reads `path` (TOML, see [`CredentialsFile`]), then adds
    /// `ADUANA_FLIGHT_USERS` (`name:password,...`) and
    /// `ADUANA_FLIGHT_TOKENS` (`token=user,...`) from `env`.
    pub fn load(
        path: Option<&Path>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Credentials, String> {
        let mut credentials = Credentials::default();
        if let Some(path) = path {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read credentials file {}: {e}", path.display()))?;
            let file: CredentialsFile = toml::from_str(&text)
                .map_err(|e| format!("credentials file {}: {e}", path.display()))?;
            let file_name = path.display();
            for user in file.users {
                let digest =
                    secret_digest(&user.password, &user.password_sha256).map_err(|problem| {
                        let owner = format!("user {:?}", user.name);
                        problem.describe(&file_name, &owner, "password")
                    })?;
                credentials.add_user(&user.name, digest)?;
            }
            for token in file.tokens {
                let digest =
                    secret_digest(&token.token, &token.token_sha256).map_err(|problem| {
                        let owner = format!("the token of user {:?}", token.user);
                        problem.describe(&file_name, &owner, "token")
                    })?;
                credentials.tokens.push((digest, token.user));
            }
        }
        if let Some(users) = env("ADUANA_FLIGHT_USERS") {
            for entry in users.split(',').filter(|e| !e.trim().is_empty()) {
                let (name, password) = entry.split_once(':').ok_or_else(|| {
                    "ADUANA_FLIGHT_USERS: each entry is name:password, separated by commas"
                        .to_string()
                })?;
                credentials.add_user(name.trim(), sha256(password.as_bytes()))?;
            }
        }
        if let Some(tokens) = env("ADUANA_FLIGHT_TOKENS") {
            for entry in tokens.split(',').filter(|e| !e.trim().is_empty()) {
                let (token, user) = entry.split_once('=').ok_or_else(|| {
                    "ADUANA_FLIGHT_TOKENS: each entry is token=user, separated by commas"
                        .to_string()
                })?;
                credentials
                    .tokens
                    .push((sha256(token.trim().as_bytes()), user.trim().to_string()));
            }
        }
        Ok(credentials)
    }

    fn add_user(&mut self, name: &str, digest: Digest32) -> Result<(), String> {
        if name.is_empty() || name.contains(':') {
            return Err(format!("invalid user name {name:?}"));
        }
        if self.users.insert(name.to_string(), digest).is_some() {
            return Err(format!("user {name:?} is defined twice"));
        }
        Ok(())
    }

    pub fn has_users(&self) -> bool {
        !self.users.is_empty()
    }

    pub fn has_tokens(&self) -> bool {
        !self.tokens.is_empty()
    }
}

/// Checks credentials and keeps the tokens issued by Handshake.
pub struct Authenticator {
    mode: AuthMode,
    credentials: Credentials,
    /// SHA-256 of issued tokens → (user, expiry).
    issued: Mutex<HashMap<Digest32, (String, Instant)>>,
    token_lifetime: Duration,
    pub(crate) throttle: LoginThrottle,
}

/// What the `authorization` header holds.
pub(crate) enum Presented {
    Basic { user: String, password: String },
    Bearer(String),
    Nothing,
}

/// Base64 with or without padding: Go's Flight client (under the ADBC
/// driver) sends Basic credentials unpadded.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

pub(crate) fn presented(metadata: &http::HeaderMap) -> Result<Presented, AccessError> {
    let Some(value) = metadata.get(http::header::AUTHORIZATION) else {
        return Ok(Presented::Nothing);
    };
    let value = value
        .to_str()
        .map_err(|_| unauthenticated("the authorization header is not text"))?;
    let (scheme, rest) = value.split_once(' ').unwrap_or((value, ""));
    if scheme.eq_ignore_ascii_case("basic") {
        let decoded = BASE64
            .decode(rest.trim())
            .ok()
            .and_then(|b| String::from_utf8(b).ok())
            .ok_or_else(|| unauthenticated("malformed Basic credentials"))?;
        let (user, password) = decoded
            .split_once(':')
            .ok_or_else(|| unauthenticated("malformed Basic credentials"))?;
        Ok(Presented::Basic {
            user: user.to_string(),
            password: password.to_string(),
        })
    } else if scheme.eq_ignore_ascii_case("bearer") {
        Ok(Presented::Bearer(rest.trim().to_string()))
    } else {
        Err(unauthenticated(format!(
            "unsupported authorization scheme {scheme:?} (use Basic or Bearer)"
        )))
    }
}

impl Authenticator {
    pub fn new(mode: AuthMode, credentials: Credentials) -> Result<Authenticator, String> {
        match mode {
            AuthMode::Basic if !credentials.has_users() => {
                return Err("--auth basic needs users: set ADUANA_FLIGHT_USERS or give --auth-file with [[users]]".into());
            }
            AuthMode::Token if !credentials.has_tokens() => {
                return Err("--auth token needs tokens: set ADUANA_FLIGHT_TOKENS or give --auth-file with [[tokens]]".into());
            }
            _ => {}
        }
        Ok(Authenticator {
            mode,
            credentials,
            issued: Mutex::new(HashMap::new()),
            token_lifetime: Duration::from_secs(12 * 3600),
            throttle: LoginThrottle::default(),
        })
    }

    pub fn mode(&self) -> AuthMode {
        self.mode
    }

    /// Handshake: Basic credentials get a new bearer token; a valid bearer
    /// token is handed back. Returns the user and the token to answer with.
    pub fn handshake(&self, headers: &http::HeaderMap) -> Result<(User, String), AccessError> {
        match (self.mode, presented(headers)?) {
            (AuthMode::None, Presented::Basic { user, .. }) => {
                Ok((User(user.clone()), self.issue(&user)))
            }
            (AuthMode::None, Presented::Nothing) => {
                Ok((User("anonymous".into()), self.issue("anonymous")))
            }
            (_, Presented::Bearer(token)) => {
                let user = self.bearer(&token)?;
                Ok((user, token))
            }
            (AuthMode::Basic, Presented::Basic { user, password }) => {
                let user = self.basic(&user, &password)?;
                let token = self.issue(&user.0);
                Ok((user, token))
            }
            (AuthMode::Token, Presented::Basic { .. }) => Err(unauthenticated(
                "this server accepts bearer tokens only (--auth token)",
            )),
            (_, Presented::Nothing) => Err(unauthenticated(
                "credentials required: Basic username and password, or a bearer token",
            )),
        }
    }

    /// Any call but Handshake: the bearer token (or Basic credentials sent
    /// with the call itself).
    pub fn authenticate(&self, headers: &http::HeaderMap) -> Result<User, AccessError> {
        match (self.mode, presented(headers)?) {
            (AuthMode::None, Presented::Basic { user, .. }) => Ok(User(user)),
            (AuthMode::None, _) => Ok(User("anonymous".into())),
            (_, Presented::Bearer(token)) => self.bearer(&token),
            (AuthMode::Basic, Presented::Basic { user, password }) => self.basic(&user, &password),
            (AuthMode::Token, Presented::Basic { .. }) => Err(unauthenticated(
                "this server accepts bearer tokens only (--auth token)",
            )),
            (_, Presented::Nothing) => Err(unauthenticated(
                "no credentials: call Handshake with Basic credentials, or send `authorization: Bearer TOKEN`",
            )),
        }
    }

    fn basic(&self, user: &str, password: &str) -> Result<User, AccessError> {
        let given = sha256(password.as_bytes());
        match self.credentials.users.get(user) {
            Some(expected) if same(expected, &given) => Ok(User(user.to_string())),
            // One message for unknown users and wrong passwords: the reply
            // must not tell which user names exist.
            _ => Err(unauthenticated("invalid username or password")),
        }
    }

    fn bearer(&self, token: &str) -> Result<User, AccessError> {
        let digest = sha256(token.as_bytes());
        let mut found = None;
        for (expected, user) in &self.credentials.tokens {
            if same(expected, &digest) {
                found = Some(user.clone());
            }
        }
        if let Some(user) = found {
            return Ok(User(user));
        }
        let mut issued = self.issued.lock().unwrap();
        let now = Instant::now();
        issued.retain(|_, (_, expires)| *expires > now);
        match issued.get(&digest) {
            Some((user, _)) => Ok(User(user.clone())),
            None => Err(unauthenticated(
                "invalid or expired bearer token: call Handshake again",
            )),
        }
    }

    fn issue(&self, user: &str) -> String {
        let mut bytes = [0u8; 32];
        rand::rng().fill_bytes(&mut bytes);
        let token = hex(&bytes);
        self.issued.lock().unwrap().insert(
            sha256(token.as_bytes()),
            (user.to_string(), Instant::now() + self.token_lifetime),
        );
        token
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(vars: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
        move |k| {
            vars.iter()
                .find(|(n, _)| *n == k)
                .map(|(_, v)| v.to_string())
        }
    }

    fn headers(value: &str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert(http::header::AUTHORIZATION, value.parse().unwrap());
        h
    }

    #[test]
    fn basic_then_bearer() {
        let creds =
            Credentials::load(None, env(&[("ADUANA_FLIGHT_USERS", "ana:s3cret,bo:pw")])).unwrap();
        let auth = Authenticator::new(AuthMode::Basic, creds).unwrap();
        let basic = format!("Basic {}", BASE64.encode("ana:s3cret"));
        let (user, token) = auth.handshake(&headers(&basic)).unwrap();
        assert_eq!(user, User("ana".into()));
        // Unpadded, as Go's client sends it.
        let unpadded = format!("Basic {}", BASE64.encode("bo:pw").trim_end_matches('='));
        assert_eq!(
            auth.authenticate(&headers(&unpadded)).unwrap(),
            User("bo".into())
        );
        assert_eq!(
            auth.authenticate(&headers(&format!("Bearer {token}")))
                .unwrap(),
            User("ana".into())
        );
        let wrong = format!("Basic {}", BASE64.encode("ana:nope"));
        let err = auth.authenticate(&headers(&wrong)).unwrap_err();
        assert_eq!(
            err,
            AccessError::Unauthenticated("invalid username or password".into())
        );
        let unknown = format!("Basic {}", BASE64.encode("eve:s3cret"));
        assert_eq!(
            auth.authenticate(&headers(&unknown)).unwrap_err().message(),
            "invalid username or password"
        );
        assert!(auth.authenticate(&headers("Bearer forged")).is_err());
        assert!(auth.authenticate(&http::HeaderMap::new()).is_err());
    }

    #[test]
    fn static_tokens_from_file_and_env() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds.toml");
        std::fs::write(
            &file,
            format!(
                "[[tokens]]\nuser = \"superset\"\ntoken_sha256 = \"{}\"\n",
                hex(&sha256(b"tok-1"))
            ),
        )
        .unwrap();
        let creds =
            Credentials::load(Some(&file), env(&[("ADUANA_FLIGHT_TOKENS", "tok-2=bi")])).unwrap();
        let auth = Authenticator::new(AuthMode::Token, creds).unwrap();
        assert_eq!(
            auth.authenticate(&headers("Bearer tok-1")).unwrap(),
            User("superset".into())
        );
        assert_eq!(
            auth.authenticate(&headers("Bearer tok-2")).unwrap(),
            User("bi".into())
        );
        let basic = format!("Basic {}", BASE64.encode("superset:tok-1"));
        assert!(auth.authenticate(&headers(&basic)).is_err());
    }

    #[test]
    fn bad_configurations() {
        assert!(Authenticator::new(AuthMode::Basic, Credentials::default()).is_err());
        assert!(Authenticator::new(AuthMode::Token, Credentials::default()).is_err());
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("creds.toml");
        std::fs::write(&file, "[[users]]\nname = \"x\"\n").unwrap();
        let err = Credentials::load(Some(&file), env(&[])).unwrap_err();
        assert!(err.contains("exactly one of password"), "{err}");
        let err =
            Credentials::load(None, env(&[("ADUANA_FLIGHT_USERS", "nopassword")])).unwrap_err();
        assert!(err.contains("name:password"), "{err}");
    }
}
