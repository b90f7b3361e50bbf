//! One registry, as the distribution API sees it: the ping that picks the
//! scheme and learns the auth challenge, Basic and Bearer authorization
//! (tokens cached per scope set for the command), bounded 429 backoff,
//! redirects followed by hand (credentials never sent to another host),
//! and the calls pull, push, login and search need.

use std::collections::HashMap;
use std::io::Read;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Deserialize;
use ureq::http::Response;
use ureq::{Agent, Body, SendBody};

use super::challenge;
use super::error::RegistryError;
use super::manifest::{MANIFEST_ACCEPT, MAX_MANIFEST};
use super::name::{DOCKER_HUB, DOCKER_HUB_API};
use super::transport::Transport;
use crate::config::auth::Credentials;
use crate::image::digest::Digest;

/// Redirect hops followed at most.
const MAX_REDIRECTS: usize = 10;
/// 429 answers retried within one request (2 s, 4 s, or `Retry-After`).
const MAX_429_RETRIES: u32 = 2;
/// Longest `Retry-After` honoured.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(10);
/// Error bodies read at most.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// How requests to this registry are authorized.
#[derive(Debug, Clone)]
enum Scheme {
    None,
    Basic,
    Bearer {
        realm: String,
        service: Option<String>,
    },
}

/// A request body.
pub enum ReqBody<'a> {
    Empty,
    Bytes(&'a [u8]),
    /// A stream of exactly this many bytes (not replayable).
    Reader(&'a mut dyn Read, u64),
}

impl ReqBody<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, ReqBody::Reader(..))
    }
}

/// An open blob upload.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadSession {
    /// Where the next request goes.
    pub location: String,
    /// `OCI-Chunk-Min-Length`: the smallest chunk the registry takes.
    pub min_chunk: Option<u64>,
}

/// A manifest as fetched.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub content_type: Option<String>,
    /// sha256 of the bytes.
    pub digest: Digest,
}

/// A connected registry.
pub struct Session<'t> {
    /// The registry as named (`docker.io`, `127.0.0.1:5000`).
    pub registry: String,
    host: String,
    /// `https://host` or `http://host`.
    base: String,
    verify: bool,
    agent: Agent,
    transport: &'t Transport,
    creds: Option<Credentials>,
    scheme: Mutex<Scheme>,
    tokens: Mutex<HashMap<String, (String, Instant)>>,
}

#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

fn method_word(method: &str) -> String {
    let lower = method.to_ascii_lowercase();
    let mut chars = lower.chars();
    match chars.next() {
        Some(c) => c.to_ascii_uppercase().to_string() + chars.as_str(),
        None => lower,
    }
}

fn header<'r>(resp: &'r Response<Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The pull scope of a repository.
pub fn pull_scope(repo: &str) -> String {
    format!("repository:{repo}:pull")
}

/// The push scope of a repository.
pub fn push_scope(repo: &str) -> String {
    format!("repository:{repo}:pull,push")
}

impl<'t> Session<'t> {
    /// Pings `registry` (`GET /v2/`): https only when secure; when
    /// `insecure`, https without verification and then plain http.
    pub fn connect(
        transport: &'t Transport,
        registry: &str,
        insecure: bool,
        creds: Option<Credentials>,
    ) -> Result<Session<'t>, RegistryError> {
        let host = if registry == DOCKER_HUB {
            DOCKER_HUB_API.to_string()
        } else {
            registry.to_string()
        };
        let attempts: &[(&str, bool)] = if insecure {
            &[("https", false), ("http", false)]
        } else {
            &[("https", true)]
        };
        let mut last = None;
        for (scheme, verify) in attempts {
            let agent = transport.agent(&host, *verify)?;
            let url = format!("{scheme}://{host}/v2/");
            let session = Session {
                registry: registry.to_string(),
                host: host.clone(),
                base: format!("{scheme}://{host}"),
                verify: *verify,
                agent,
                transport,
                creds: creds.clone(),
                scheme: Mutex::new(Scheme::None),
                tokens: Mutex::new(HashMap::new()),
            };
            let context = format!("pinging container registry {registry}: Get \"{url}\"");
            match session.send_raw("GET", &url, &[], None, &mut ReqBody::Empty) {
                Err(cause) => {
                    let mut cause = cause.to_string();
                    if cause.contains("InvalidContentType") {
                        // What a plain-HTTP server looks like to a TLS client.
                        cause = "http: server gave HTTP response to HTTPS client".into();
                    }
                    last = Some(RegistryError::Network { context, cause });
                    continue;
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    if status == 401 {
                        session.learn_challenge(&resp);
                    } else if !(200..300).contains(&status) {
                        return Err(status_error(
                            format!("pinging container registry {registry}"),
                            resp,
                        ));
                    }
                    return Ok(session);
                }
            }
        }
        Err(last.unwrap_or_else(|| RegistryError::Config("no scheme to try".into())))
    }

    /// The URL of `path` (which starts with `/v2/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    fn learn_challenge(&self, resp: &Response<Body>) {
        let values: Vec<&str> = resp
            .headers()
            .get_all("www-authenticate")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        let challenges = challenge::parse(&values);
        let bearer = challenges.iter().find(|c| c.scheme == "bearer");
        let basic = challenges.iter().any(|c| c.scheme == "basic");
        let new = match bearer {
            Some(c) if c.param("realm").is_some() => Scheme::Bearer {
                realm: c.param("realm").unwrap_or_default().to_string(),
                service: c.param("service").map(String::from),
            },
            _ if basic => Scheme::Basic,
            _ => return,
        };
        *self.scheme.lock().unwrap_or_else(|e| e.into_inner()) = new;
    }

    /// The `Authorization` header for a request needing `scopes`.
    fn authorization(
        &self,
        scopes: &[String],
        fresh: bool,
    ) -> Result<Option<String>, RegistryError> {
        let scheme = self
            .scheme
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match scheme {
            Scheme::None => Ok(None),
            Scheme::Basic => Ok(self.creds.as_ref().map(basic)),
            Scheme::Bearer { realm, service } => {
                let key = scopes.join(" ");
                if !fresh {
                    let tokens = self.tokens.lock().unwrap_or_else(|e| e.into_inner());
                    if let Some((token, until)) = tokens.get(&key) {
                        if Instant::now() < *until {
                            return Ok(Some(format!("Bearer {token}")));
                        }
                    }
                }
                let (token, lifetime) = self.fetch_token(&realm, service.as_deref(), scopes)?;
                let until = Instant::now() + lifetime.saturating_sub(Duration::from_secs(10));
                self.tokens
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(key, (token.clone(), until));
                Ok(Some(format!("Bearer {token}")))
            }
        }
    }

    /// A token from the realm for `scopes` (credentials sent as Basic).
    fn fetch_token(
        &self,
        realm: &str,
        service: Option<&str>,
        scopes: &[String],
    ) -> Result<(String, Duration), RegistryError> {
        let mut query: Vec<(&str, &str)> = Vec::new();
        if let Some(creds) = &self.creds {
            query.push(("account", &creds.username));
        }
        for scope in scopes {
            query.push(("scope", scope));
        }
        if let Some(service) = service {
            query.push(("service", service));
        }
        let encoded: Vec<String> = query
            .iter()
            .map(|(k, v)| format!("{k}={}", percent_encode(v)))
            .collect();
        let sep = if realm.contains('?') { '&' } else { '?' };
        let url = if encoded.is_empty() {
            realm.to_string()
        } else {
            format!("{realm}{sep}{}", encoded.join("&"))
        };
        let realm_host = host_of(realm).unwrap_or_default();
        let agent = self.transport.agent(&realm_host, self.verify)?;
        let auth = self.creds.as_ref().map(basic);
        let resp = send_with(
            &agent,
            "GET",
            &url,
            &[],
            auth.as_deref(),
            &mut ReqBody::Empty,
        )
        .map_err(|e| RegistryError::Network {
            context: format!("unable to retrieve auth token: Get \"{realm}\""),
            cause: e.to_string(),
        })?;
        let status = resp.status().as_u16();
        if status == 401 || status == 403 {
            return Err(RegistryError::Http {
                context: "unable to retrieve auth token: invalid username/password".into(),
                status,
                message: render_error_body(resp),
            });
        }
        if !(200..300).contains(&status) {
            return Err(status_error("unable to retrieve auth token".into(), resp));
        }
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_MANIFEST)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Network {
                context: "unable to retrieve auth token".into(),
                cause: e.to_string(),
            })?;
        let parsed: TokenResponse = serde_json::from_slice(&bytes).map_err(|e| {
            RegistryError::Content(format!(
                "unable to retrieve auth token: parsing the answer: {e}"
            ))
        })?;
        let token = parsed
            .token
            .filter(|t| !t.is_empty())
            .or(parsed.access_token)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                RegistryError::Content(
                    "unable to retrieve auth token: no token in the answer".into(),
                )
            })?;
        Ok((
            token,
            Duration::from_secs(parsed.expires_in.unwrap_or(60).max(1)),
        ))
    }

    /// Checks the credentials: a ping with Basic, or a token without scope.
    /// Ok(false) when they are refused.
    pub fn verify_login(&self) -> Result<bool, RegistryError> {
        let scheme = self
            .scheme
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match scheme {
            Scheme::None => Ok(true),
            Scheme::Basic => {
                let url = self.url("/v2/");
                let auth = self.creds.as_ref().map(basic);
                let resp = self
                    .send_raw("GET", &url, &[], auth.as_deref(), &mut ReqBody::Empty)
                    .map_err(|e| RegistryError::Network {
                        context: format!("Get \"{url}\""),
                        cause: e.to_string(),
                    })?;
                match resp.status().as_u16() {
                    401 | 403 => Ok(false),
                    s if (200..300).contains(&s) => Ok(true),
                    _ => Err(status_error(
                        format!("pinging container registry {}", self.registry),
                        resp,
                    )),
                }
            }
            Scheme::Bearer { realm, service } => {
                match self.fetch_token(&realm, service.as_deref(), &[]) {
                    Ok(_) => Ok(true),
                    Err(RegistryError::Http {
                        status: 401 | 403, ..
                    }) => Ok(false),
                    Err(e) => Err(e),
                }
            }
        }
    }

    fn send_raw(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        auth: Option<&str>,
        body: &mut ReqBody,
    ) -> Result<Response<Body>, ureq::Error> {
        send_with(&self.agent, method, url, headers, auth, body)
    }

    /// Sends a request with authorization for `scopes`: a 401 with a cached
    /// token gets one fresh token and one retry; a 429 is retried twice
    /// after 2 s and 4 s (or `Retry-After`, at most 10 s).
    pub fn request(
        &self,
        method: &str,
        url: &str,
        scopes: &[String],
        headers: &[(&str, String)],
        mut body: ReqBody,
    ) -> Result<Response<Body>, RegistryError> {
        let mut fresh = false;
        let mut tries_429 = 0;
        loop {
            let auth = self.authorization(scopes, fresh)?;
            let resp = self
                .send_raw(method, url, headers, auth.as_deref(), &mut body)
                .map_err(|e| RegistryError::Network {
                    context: format!("{} \"{url}\"", method_word(method)),
                    cause: e.to_string(),
                })?;
            let status = resp.status().as_u16();
            if status == 401 && !fresh && body.replayable() {
                let before = format!(
                    "{:?}",
                    self.scheme.lock().unwrap_or_else(|e| e.into_inner())
                );
                self.learn_challenge(&resp);
                let after = format!(
                    "{:?}",
                    self.scheme.lock().unwrap_or_else(|e| e.into_inner())
                );
                if auth.as_deref().is_some_and(|a| a.starts_with("Bearer")) || before != after {
                    fresh = true;
                    continue;
                }
            }
            if status == 429 && tries_429 < MAX_429_RETRIES && body.replayable() {
                let wait = header(&resp, "retry-after")
                    .and_then(|v| v.trim().parse::<u64>().ok())
                    .map(Duration::from_secs)
                    .unwrap_or(Duration::from_secs(2 << tries_429))
                    .min(MAX_RETRY_AFTER);
                tries_429 += 1;
                std::thread::sleep(wait);
                continue;
            }
            return Ok(resp);
        }
    }

    /// GET (or HEAD) following redirects by hand; Authorization is only sent
    /// to this registry's host.
    /// `method` (GET or HEAD) on a manifest, with pull scope and every
    /// manifest type accepted; also the context its errors are named with.
    fn manifest_request(
        &self,
        method: &str,
        repo: &str,
        reference: &str,
    ) -> Result<(Response<Body>, String), RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let context = format!("reading manifest {reference} in {}/{repo}", self.registry);
        let resp = self
            .get_following(
                method,
                &url,
                &[pull_scope(repo)],
                &[("Accept", MANIFEST_ACCEPT.to_string())],
            )
            .map_err(|e| e.within(&context))?;
        Ok((resp, context))
    }

    fn get_following(
        &self,
        method: &str,
        url: &str,
        scopes: &[String],
        headers: &[(&str, String)],
    ) -> Result<Response<Body>, RegistryError> {
        let mut resp = self.request(method, url, scopes, headers, ReqBody::Empty)?;
        let mut current = url.to_string();
        for _ in 0..MAX_REDIRECTS {
            let status = resp.status().as_u16();
            if !matches!(status, 301 | 302 | 303 | 307 | 308) {
                return Ok(resp);
            }
            let Some(location) = header(&resp, "location") else {
                return Ok(resp);
            };
            let next = resolve_url(&current, location);
            let same_host = host_of(&next).as_deref() == Some(self.host.as_str());
            resp = if same_host {
                self.request(method, &next, scopes, headers, ReqBody::Empty)?
            } else {
                let agent = self
                    .transport
                    .agent(&host_of(&next).unwrap_or_default(), self.verify)?;
                send_with(&agent, method, &next, headers, None, &mut ReqBody::Empty).map_err(
                    |e| RegistryError::Network {
                        context: format!("{} \"{next}\"", method_word(method)),
                        cause: e.to_string(),
                    },
                )?
            };
            current = next;
        }
        Err(RegistryError::Content(format!(
            "{} \"{url}\": stopped after {MAX_REDIRECTS} redirects",
            method_word(method)
        )))
    }

    /// `GET /v2/REPO/manifests/REF`; verifies the digest when REF is one.
    pub fn get_manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<FetchedManifest, RegistryError> {
        let (resp, context) = self.manifest_request("GET", repo, reference)?;
        if resp.status().as_u16() != 200 {
            return Err(status_error(context, resp));
        }
        let content_type = header(&resp, "content-type").map(String::from);
        if let Some(len) = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok()) {
            if len > MAX_MANIFEST {
                return Err(RegistryError::Content(format!(
                    "{context}: manifest is larger than {MAX_MANIFEST} bytes"
                )));
            }
        }
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .map_err(|e| RegistryError::Network {
                context: context.clone(),
                cause: e.to_string(),
            })?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::Content(format!(
                "{context}: manifest is larger than {MAX_MANIFEST} bytes"
            )));
        }
        let digest = Digest::of(&bytes);
        if let Ok(wanted) = Digest::parse(reference) {
            if wanted != digest {
                return Err(RegistryError::Content(format!(
                    "{context}: digest mismatch: expected {wanted}, content has {digest}"
                )));
            }
        }
        Ok(FetchedManifest {
            bytes,
            content_type,
            digest,
        })
    }

    /// `HEAD /v2/REPO/manifests/REF`: the digest the registry has for REF.
    pub fn manifest_digest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<Option<Digest>, RegistryError> {
        let (resp, context) = self.manifest_request("HEAD", repo, reference)?;
        match resp.status().as_u16() {
            200 => Ok(header(&resp, "docker-content-digest").and_then(|d| Digest::parse(d).ok())),
            404 => Ok(None),
            _ => Err(status_error(context, resp)),
        }
    }

    /// Opens blob `digest` of `repo` for reading; the declared length if any.
    pub fn open_blob(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<(Box<dyn Read + Send>, Option<u64>), RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let context = format!("reading blob {digest}");
        let resp = self
            .get_following("GET", &url, &[pull_scope(repo)], &[])
            .map_err(|e| e.within(&context))?;
        if resp.status().as_u16() != 200 {
            return Err(status_error(context, resp));
        }
        let len = header(&resp, "content-length").and_then(|l| l.parse::<u64>().ok());
        Ok((Box::new(resp.into_body().into_reader()), len))
    }

    /// Does `repo` have blob `digest`? (`HEAD`.)
    pub fn blob_exists(
        &self,
        repo: &str,
        digest: &Digest,
        scopes: &[String],
    ) -> Result<bool, RegistryError> {
        let url = self.url(&format!("/v2/{repo}/blobs/{digest}"));
        let context = format!(
            "checking whether a blob {digest} exists in {}/{repo}",
            self.registry
        );
        let resp = self
            .get_following("HEAD", &url, scopes, &[])
            .map_err(|e| e.within(&context))?;
        match resp.status().as_u16() {
            200 => Ok(true),
            404 => Ok(false),
            _ => Err(status_error(context, resp)),
        }
    }

    /// Tries a cross-repository mount of `digest` from `from` into `repo`.
    /// Ok(None) when mounted; Ok(Some(session)) is an upload session to
    /// continue on.
    pub fn start_upload(
        &self,
        repo: &str,
        scopes: &[String],
        mount: Option<(&Digest, &str)>,
    ) -> Result<Option<UploadSession>, RegistryError> {
        let path = match mount {
            Some((digest, from)) => format!(
                "/v2/{repo}/blobs/uploads/?mount={}&from={}",
                percent_encode(&digest.to_string()),
                percent_encode(from)
            ),
            None => format!("/v2/{repo}/blobs/uploads/"),
        };
        let url = self.url(&path);
        let context = format!("initiating an upload to {}/{repo}", self.registry);
        let resp = self
            .request(
                "POST",
                &url,
                scopes,
                &[("Content-Length", "0".to_string())],
                ReqBody::Empty,
            )
            .map_err(|e| e.within(&context))?;
        match resp.status().as_u16() {
            201 if mount.is_some() => Ok(None),
            202 => {
                let location = header(&resp, "location").ok_or_else(|| {
                    RegistryError::Content(format!("{context}: no Location in the answer"))
                })?;
                let min_chunk = header(&resp, "oci-chunk-min-length")
                    .and_then(|v| v.trim().parse::<u64>().ok());
                Ok(Some(UploadSession {
                    location: resolve_url(&url, location),
                    min_chunk,
                }))
            }
            _ => Err(status_error(context, resp)),
        }
    }

    /// Sends one chunk of an upload session: `PATCH <location>` with
    /// `Content-Range: START-END` (inclusive), `len` bytes from `reader`.
    /// The registry's next location (Distribution's upload state moves
    /// with every request); its `Range` must end where this chunk ends.
    pub fn upload_chunk(
        &self,
        location: &str,
        scopes: &[String],
        reader: &mut dyn Read,
        start: u64,
        len: u64,
    ) -> Result<String, RegistryError> {
        let end = start + len - 1;
        let context = format!(
            "uploading bytes {start}-{end} of a blob to {}",
            self.registry
        );
        let resp = self
            .request(
                "PATCH",
                location,
                scopes,
                &[
                    ("Content-Type", "application/octet-stream".to_string()),
                    ("Content-Range", format!("{start}-{end}")),
                ],
                ReqBody::Reader(reader, len),
            )
            .map_err(|e| e.within(&context))?;
        if resp.status().as_u16() != 202 {
            return Err(status_error(context, resp));
        }
        // `Range: 0-END` (Distribution) or `bytes=0-END`.
        let received = header(&resp, "range")
            .and_then(|r| r.trim().trim_start_matches("bytes=").split_once('-'))
            .and_then(|(_, e)| e.trim().parse::<u64>().ok());
        if received.is_some_and(|e| e != end) {
            return Err(RegistryError::Content(format!(
                "{context}: the registry says it has bytes up to {}",
                received.unwrap_or_default()
            )));
        }
        let next = header(&resp, "location").unwrap_or(location);
        Ok(resolve_url(location, next))
    }

    /// Finishes an upload session: `PUT <location>&digest=D` with the
    /// whole blob streamed from `reader` (monolithic), or with an empty
    /// body after the chunks (`size` 0).
    pub fn finish_upload(
        &self,
        location: &str,
        scopes: &[String],
        digest: &Digest,
        reader: &mut dyn Read,
        size: u64,
    ) -> Result<(), RegistryError> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!(
            "{location}{sep}digest={}",
            percent_encode(&digest.to_string())
        );
        let context = format!("uploading blob {digest}");
        let resp = self
            .request(
                "PUT",
                &url,
                scopes,
                &[("Content-Type", "application/octet-stream".to_string())],
                ReqBody::Reader(reader, size),
            )
            .map_err(|e| e.within(&context))?;
        match resp.status().as_u16() {
            201 | 204 => Ok(()),
            _ => Err(status_error(context, resp)),
        }
    }

    /// `PUT /v2/REPO/manifests/REF`.
    pub fn put_manifest(
        &self,
        repo: &str,
        reference: &str,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), RegistryError> {
        let url = self.url(&format!("/v2/{repo}/manifests/{reference}"));
        let context = format!("writing manifest {reference} to {}/{repo}", self.registry);
        let resp = self
            .request(
                "PUT",
                &url,
                &[push_scope(repo)],
                &[("Content-Type", media_type.to_string())],
                ReqBody::Bytes(bytes),
            )
            .map_err(|e| e.within(&context))?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            _ => Err(status_error(context, resp)),
        }
    }

    /// Follows `Link: <...>; rel="next"` pages of a JSON list, collecting
    /// `field` (at most `limit` entries, at most 1000 pages).
    fn paged_list(
        &self,
        first: String,
        scopes: &[String],
        field: &str,
        context: &str,
        limit: usize,
    ) -> Result<Vec<String>, RegistryError> {
        let mut out = Vec::new();
        let mut next = Some(first);
        let mut pages = 0;
        while let Some(url) = next.take() {
            pages += 1;
            let resp = self
                .get_following("GET", &url, scopes, &[])
                .map_err(|e| e.within(context))?;
            if resp.status().as_u16() != 200 {
                return Err(status_error(context.to_string(), resp));
            }
            if let Some(link) = header(&resp, "link") {
                if link.contains("rel=\"next\"") {
                    if let Some(target) = link.split('<').nth(1).and_then(|s| s.split('>').next()) {
                        next = Some(resolve_url(&url, target));
                    }
                }
            }
            let mut bytes = Vec::new();
            resp.into_body()
                .into_reader()
                .take(MAX_MANIFEST)
                .read_to_end(&mut bytes)
                .map_err(|e| RegistryError::Network {
                    context: context.to_string(),
                    cause: e.to_string(),
                })?;
            let value: serde_json::Value = serde_json::from_slice(&bytes)
                .map_err(|e| RegistryError::Content(format!("{context}: {e}")))?;
            if let Some(items) = value.get(field).and_then(|v| v.as_array()) {
                out.extend(items.iter().filter_map(|v| v.as_str().map(String::from)));
            }
            if out.len() >= limit || pages >= 1000 {
                out.truncate(limit);
                break;
            }
        }
        Ok(out)
    }

    /// The tags of `repo`, in server order.
    pub fn tags(&self, repo: &str, limit: usize) -> Result<Vec<String>, RegistryError> {
        let context = format!("fetching tags list of {}/{repo}", self.registry);
        self.paged_list(
            self.url(&format!("/v2/{repo}/tags/list")),
            &[pull_scope(repo)],
            "tags",
            &context,
            limit,
        )
    }

    /// The repositories of the catalog.
    pub fn catalog(&self, limit: usize) -> Result<Vec<String>, RegistryError> {
        let context = format!("couldn't search registry {:?}", self.registry);
        self.paged_list(
            self.url("/v2/_catalog"),
            &["registry:catalog:*".to_string()],
            "repositories",
            &context,
            limit,
        )
    }
}

fn basic(creds: &Credentials) -> String {
    format!("Basic {}", creds.encode())
}

fn send_with(
    agent: &Agent,
    method: &str,
    url: &str,
    headers: &[(&str, String)],
    auth: Option<&str>,
    body: &mut ReqBody,
) -> Result<Response<Body>, ureq::Error> {
    let mut builder = ureq::http::Request::builder()
        .method(method)
        .uri(url)
        .header("Docker-Distribution-Api-Version", "registry/2.0");
    for (name, value) in headers {
        builder = builder.header(*name, value.as_str());
    }
    if let Some(auth) = auth {
        builder = builder.header("Authorization", auth);
    }
    match body {
        ReqBody::Empty => agent.run(builder.body(())?),
        ReqBody::Bytes(bytes) => agent.run(builder.body(*bytes)?),
        ReqBody::Reader(reader, size) => {
            let builder = builder.header("Content-Length", size.to_string());
            agent.run(builder.body(SendBody::from_reader(*reader))?)
        }
    }
}

/// `code: message` for each error of a registry error body, else the status.
fn render_error_body(resp: Response<Body>) -> String {
    let status = resp.status();
    let mut bytes = Vec::new();
    let _ = resp
        .into_body()
        .into_reader()
        .take(MAX_ERROR_BODY)
        .read_to_end(&mut bytes);
    let parsed: Option<ErrorBody> = serde_json::from_slice(&bytes).ok();
    let lines: Vec<String> = parsed
        .map(|b| {
            b.errors
                .iter()
                .map(|e| {
                    format!(
                        "{}: {}",
                        e.code.to_ascii_lowercase().replace('_', " "),
                        e.message
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    if lines.is_empty() {
        match status.as_u16() {
            401 => "unauthorized: authentication required".into(),
            404 => "manifest unknown: manifest unknown".into(),
            _ => format!(
                "received unexpected HTTP status: {} {}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ),
        }
    } else {
        lines.join("\n")
    }
}

fn status_error(context: String, resp: Response<Body>) -> RegistryError {
    let status = resp.status().as_u16();
    RegistryError::Http {
        context,
        status,
        message: render_error_body(resp),
    }
}

/// Percent-encodes everything but unreserved characters.
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// `host[:port]` of an absolute URL.
fn host_of(url: &str) -> Option<String> {
    let rest = url.split_once("://")?.1;
    Some(rest.split(['/', '?']).next()?.to_string())
}

/// Resolves a `Location` (absolute, host-relative or path-relative) against
/// the URL it came from.
pub fn resolve_url(base: &str, location: &str) -> String {
    if location.starts_with("http://") || location.starts_with("https://") {
        return location.to_string();
    }
    let (scheme, rest) = base.split_once("://").unwrap_or(("https", base));
    let host = rest.split(['/', '?']).next().unwrap_or(rest);
    if location.starts_with('/') {
        return format!("{scheme}://{host}{location}");
    }
    let path = &rest[host.len()..];
    let path = path.split('?').next().unwrap_or(path);
    let dir = match path.rfind('/') {
        Some(i) => &path[..=i],
        None => "/",
    };
    format!("{scheme}://{host}{dir}{location}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_resolve_like_browsers() {
        let base = "http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=1";
        assert_eq!(resolve_url(base, "/v2/b"), "http://127.0.0.1:5000/v2/b");
        assert_eq!(resolve_url(base, "https://h/x"), "https://h/x");
        assert_eq!(
            resolve_url(base, "y?z"),
            "http://127.0.0.1:5000/v2/a/blobs/uploads/y?z"
        );
        assert_eq!(host_of(base).unwrap(), "127.0.0.1:5000");
        assert_eq!(
            percent_encode("repository:a/b:pull"),
            "repository%3Aa%2Fb%3Apull"
        );
        assert_eq!(method_word("HEAD"), "Head");
    }
}
