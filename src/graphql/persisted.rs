//! Persisted operations: automatic persisted queries (the Apollo APQ protocol) and, for
//! production, a safelist of operations read from a folder of `.graphql` files.
//!
//! APQ: a request whose `extensions.persistedQuery` is `{ "version": 1, "sha256Hash": h }`
//! and whose `query` is empty runs the document registered under `h`, or is answered
//! `PERSISTED_QUERY_NOT_FOUND`; the client then sends the query with the same hash, which
//! registers it once the hash is verified (and the document passed the perimeter). The
//! cache is content-addressed (a hash names one text whoever registered it) and bounded:
//! beyond its capacity the oldest entry goes.
//!
//! Safelist: when a folder is configured, only an operation whose SHA-256 (hex) is that of
//! one of its files runs, sent as text or by hash; anything else is refused with
//! `OPERATION_NOT_SAFELISTED` before any SQL. APQ registration is off in this mode.

use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Mutex};

use async_graphql::Value as ConstValue;
use sha2::{Digest, Sha256};

/// Why a persisted-operation request was refused. Each variant is an `extensions.code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PersistedRefusal {
    /// `PERSISTED_QUERY_NOT_FOUND`: no document registered under this hash (send it again
    /// with its text).
    NotFound,
    /// `PERSISTED_QUERY_HASH_MISMATCH`: the text sent does not have the hash sent with it.
    HashMismatch,
    /// `PERSISTED_QUERY_INVALID`: `persistedQuery` is not `{version: 1, sha256Hash: <64 hex>}`.
    Invalid,
    /// `PERSISTED_QUERY_NOT_SUPPORTED`: automatic persisted queries are off on this server.
    NotSupported,
    /// `OPERATION_NOT_SAFELISTED`: the server runs only its safelisted operations.
    NotSafelisted,
}

impl PersistedRefusal {
    pub fn code(&self) -> &'static str {
        match self {
            PersistedRefusal::NotFound => "PERSISTED_QUERY_NOT_FOUND",
            PersistedRefusal::HashMismatch => "PERSISTED_QUERY_HASH_MISMATCH",
            PersistedRefusal::Invalid => "PERSISTED_QUERY_INVALID",
            PersistedRefusal::NotSupported => "PERSISTED_QUERY_NOT_SUPPORTED",
            PersistedRefusal::NotSafelisted => "OPERATION_NOT_SAFELISTED",
        }
    }

    pub fn message(&self) -> &'static str {
        match self {
            PersistedRefusal::NotFound => "PersistedQueryNotFound: no operation is registered under this hash",
            PersistedRefusal::HashMismatch => "the query does not have the sha256Hash sent with it",
            PersistedRefusal::Invalid => "extensions.persistedQuery must be {version: 1, sha256Hash: <64 hex digits>}",
            PersistedRefusal::NotSupported => "persisted queries are not supported by this server",
            PersistedRefusal::NotSafelisted => "this server runs only registered operations; this one is not",
        }
    }
}

/// What the request runs, once its persisted-operation extension is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resolution {
    /// The request's own text, nothing to remember.
    AsSent,
    /// The registered text under the hash the request named.
    Stored(Arc<str>),
    /// The request's own text, to register under this hash once it passed the perimeter.
    Register(String),
}

/// The lowercase hex SHA-256 of a text.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

#[derive(Debug)]
struct Cache {
    capacity: usize,
    entries: HashMap<String, Arc<str>>,
    order: VecDeque<String>,
}

/// The server's persisted operations.
#[derive(Debug)]
pub struct PersistedOperations {
    /// `None` when APQ is off (or a safelist is in force).
    apq: Option<Mutex<Cache>>,
    /// `Some` in safelist mode: hash -> text.
    safelist: Option<HashMap<String, Arc<str>>>,
}

impl Default for PersistedOperations {
    fn default() -> Self {
        Self::apq(1_000)
    }
}

impl PersistedOperations {
    /// APQ with a cache of at most `capacity` documents (0: APQ off).
    pub fn apq(capacity: usize) -> Self {
        let cache = Cache { capacity, entries: HashMap::new(), order: VecDeque::new() };
        Self { apq: (capacity > 0).then(|| Mutex::new(cache)), safelist: None }
    }

    /// Safelist mode: the `.graphql` files of `dir` (not recursive). A file is registered
    /// under the hash of its exact text and, when that differs, of its text trimmed of
    /// surrounding whitespace (an editor's final newline is not part of what clients send).
    pub fn safelist(dir: &Path) -> std::io::Result<Self> {
        let mut list = HashMap::new();
        for entry in std::fs::read_dir(dir)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "graphql") && path.is_file() {
                let text = std::fs::read_to_string(&path)?;
                let trimmed = text.trim();
                list.insert(sha256_hex(trimmed), Arc::<str>::from(trimmed));
                list.insert(sha256_hex(&text), Arc::<str>::from(text.as_str()));
            }
        }
        Ok(Self { apq: None, safelist: Some(list) })
    }

    pub fn is_safelist(&self) -> bool {
        self.safelist.is_some()
    }

    /// Number of safelisted texts (by hash).
    pub fn safelisted(&self) -> usize {
        self.safelist.as_ref().map_or(0, HashMap::len)
    }

    /// Reads the request's `persistedQuery` extension (if any) against its `query`.
    pub fn resolve(&self, query: &str, extension: Option<&ConstValue>) -> Result<Resolution, PersistedRefusal> {
        let Some(extension) = extension else {
            return match &self.safelist {
                Some(list) if !list.contains_key(&sha256_hex(query)) => Err(PersistedRefusal::NotSafelisted),
                _ => Ok(Resolution::AsSent),
            };
        };
        let hash = requested_hash(extension).ok_or(PersistedRefusal::Invalid)?;
        if query.is_empty() {
            if let Some(list) = &self.safelist {
                return list.get(&hash).cloned().map(Resolution::Stored).ok_or(PersistedRefusal::NotSafelisted);
            }
            let cache = self.apq.as_ref().ok_or(PersistedRefusal::NotSupported)?;
            let cache = cache.lock().unwrap_or_else(|p| p.into_inner());
            return cache.entries.get(&hash).cloned().map(Resolution::Stored).ok_or(PersistedRefusal::NotFound);
        }
        if sha256_hex(query) != hash {
            return Err(PersistedRefusal::HashMismatch);
        }
        match (&self.safelist, &self.apq) {
            (Some(list), _) if list.contains_key(&hash) => Ok(Resolution::AsSent),
            (Some(_), _) => Err(PersistedRefusal::NotSafelisted),
            (None, Some(_)) => Ok(Resolution::Register(hash)),
            (None, None) => Err(PersistedRefusal::NotSupported),
        }
    }

    /// Remembers `text` under `hash` (verified by [`Self::resolve`]).
    pub fn register(&self, hash: String, text: &str) {
        let Some(cache) = &self.apq else { return };
        let mut cache = cache.lock().unwrap_or_else(|p| p.into_inner());
        if cache.entries.contains_key(&hash) {
            return;
        }
        while cache.entries.len() >= cache.capacity {
            let Some(oldest) = cache.order.pop_front() else { break };
            cache.entries.remove(&oldest);
        }
        cache.order.push_back(hash.clone());
        cache.entries.insert(hash, Arc::from(text));
    }
}

/// `{ version: 1, sha256Hash: "<64 hex>" }` -> the hash, lowercase.
fn requested_hash(extension: &ConstValue) -> Option<String> {
    let ConstValue::Object(fields) = extension else { return None };
    let version = fields.get("version").and_then(|v| match v {
        ConstValue::Number(n) => n.as_i64(),
        _ => None,
    });
    let Some(ConstValue::String(hash)) = fields.get("sha256Hash") else { return None };
    (version == Some(1) && hash.len() == 64 && hash.bytes().all(|b| b.is_ascii_hexdigit()))
        .then(|| hash.to_ascii_lowercase())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ext(hash: &str) -> ConstValue {
        let mut fields = async_graphql::indexmap::IndexMap::new();
        fields.insert(async_graphql::Name::new("version"), ConstValue::from(1));
        fields.insert(async_graphql::Name::new("sha256Hash"), ConstValue::from(hash));
        ConstValue::Object(fields)
    }

    #[test]
    fn the_cache_is_bounded_and_content_addressed() {
        let store = PersistedOperations::apq(2);
        let texts = ["{ a }", "{ b }", "{ c }"];
        for t in texts {
            let h = sha256_hex(t);
            assert_eq!(store.resolve("", Some(&ext(&h))), Err(PersistedRefusal::NotFound));
            assert_eq!(store.resolve(t, Some(&ext(&h))), Ok(Resolution::Register(h.clone())));
            store.register(h, t);
        }
        assert_eq!(store.resolve("", Some(&ext(&sha256_hex("{ a }")))), Err(PersistedRefusal::NotFound), "evicted");
        assert_eq!(store.resolve("", Some(&ext(&sha256_hex("{ c }")))), Ok(Resolution::Stored(Arc::from("{ c }"))));
        assert_eq!(store.resolve("{ x }", Some(&ext(&sha256_hex("{ c }")))), Err(PersistedRefusal::HashMismatch));
        assert_eq!(store.resolve("", Some(&ext("abc"))), Err(PersistedRefusal::Invalid));
    }
}
