//! PBKDF2-HMAC-SHA256, 600,000 iterations, 16-byte random salt, PHC string. Hashing is
//! CPU-bound for a good fraction of a second, so it runs on the blocking pool, never on
//! the async runtime's workers.

use std::sync::LazyLock;
use std::sync::atomic::Ordering;

use pbkdf2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use pbkdf2::{Algorithm, Params, Pbkdf2};
use rand::RngCore;

use crate::error::{AppError, AppResult};

pub const ITERATIONS: u32 = 600_000;
pub const MIN_PASSWORD_LEN: usize = 12;
/// The longest password a credential check accepts (older passwords may be longer than a
/// new one may be).
pub const MAX_PASSWORD_LEN: usize = 256;
/// The longest password that may be set.
pub const MAX_NEW_PASSWORD_LEN: usize = 128;

fn hash_sync(password: &str) -> AppResult<String> {
    let mut salt = [0u8; 16];
    rand::rng().fill_bytes(&mut salt);
    let salt = SaltString::encode_b64(&salt).map_err(AppError::internal)?;
    let params = Params { rounds: ITERATIONS, output_length: 32 };
    Pbkdf2
        .hash_password_customized(password.as_bytes(), Some(Algorithm::Pbkdf2Sha256.ident()), None, params, &salt)
        .map(|h| h.to_string())
        .map_err(AppError::internal)
}

fn verify_sync(phc: &str, password: &str) -> bool {
    match PasswordHash::new(phc) {
        Ok(parsed) => Pbkdf2.verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash of nothing anyone knows, verified against when the email is unknown so that an
/// unknown email costs the same time as a wrong password.
static DUMMY_HASH: LazyLock<String> = LazyLock::new(|| {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    hash_sync(&hex::encode(secret)).unwrap_or_default()
});

/// Hashing for requests: PBKDF2 on at most `workers` threads at once (by default half the
/// cores), so that a flood of logins cannot take every core from the requests of people
/// already signed in, with at most `queue` requests waiting their turn. Beyond that the
/// request is refused at once ([`AppError::Busy`]: HTTP 503 with `Retry-After`) instead of
/// piling up. Callers hold no database connection while they wait or hash.
#[derive(Debug)]
pub struct Hashing {
    turns: std::sync::Arc<tokio::sync::Semaphore>,
    waiting: std::sync::atomic::AtomicUsize,
    queue: usize,
    /// How long one verification computes (nanoseconds, a moving average; queueing not
    /// included): what a login without a tenant waits out for each check it does not run.
    check_nanos: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

impl Default for Hashing {
    fn default() -> Self {
        let workers = (std::thread::available_parallelism().map_or(2, usize::from) / 2).max(1);
        Self::new(workers, 8 * workers)
    }
}

impl Hashing {
    pub fn new(workers: usize, queue: usize) -> Self {
        Self {
            turns: std::sync::Arc::new(tokio::sync::Semaphore::new(workers.max(1))),
            waiting: Default::default(),
            queue,
            check_nanos: Default::default(),
        }
    }

    /// A worker's turn. The permit is owned, so the hash that runs on the blocking pool keeps
    /// it until the hash ends, even when the request that asked for it is gone (a client
    /// that disconnects cannot start hashes beyond the pool's size).
    async fn turn(&self) -> AppResult<tokio::sync::OwnedSemaphorePermit> {
        use std::sync::atomic::Ordering;
        if let Ok(permit) = self.turns.clone().try_acquire_owned() {
            return Ok(permit);
        }
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= self.queue {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            return Err(AppError::Busy { retry_after_secs: 1 });
        }
        // Leaves the queue however the wait ends (a request dropped while waiting included).
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let _waiting = Waiting(&self.waiting);
        self.turns.clone().acquire_owned().await.map_err(AppError::internal)
    }

    /// Test seam: takes one worker's turn until the permit is dropped (the tests fill the
    /// pool with it to see what waiting requests do).
    #[doc(hidden)]
    pub async fn occupy(&self) -> tokio::sync::OwnedSemaphorePermit {
        self.turns.clone().acquire_owned().await.expect("the hashing pool is never closed")
    }

    pub async fn hash(&self, password: String) -> AppResult<String> {
        let turn = self.turn().await?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            hash_sync(&password)
        })
        .await
        .map_err(AppError::internal)?
    }

    /// Verifies `password` against `phc`; with `None` verifies against a dummy hash and fails.
    pub async fn verify(&self, phc: Option<String>, password: String) -> AppResult<bool> {
        let turn = self.turn().await?;
        let check_nanos = self.check_nanos.clone();
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let started = std::time::Instant::now();
            let valid = verify_blocking(phc, &password);
            let took = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
            let _ = check_nanos.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |avg| {
                Some(if avg == 0 { took } else { avg - avg / 4 + took / 4 })
            });
            valid
        })
        .await
        .map_err(AppError::internal)
    }

    /// How long one password verification computes, as recently measured (zero before the
    /// first).
    pub fn typical_check(&self) -> std::time::Duration {
        std::time::Duration::from_nanos(self.check_nanos.load(Ordering::Relaxed))
    }
}

fn verify_blocking(phc: Option<String>, password: &str) -> bool {
    match phc {
        Some(phc) => verify_sync(&phc, password),
        None => {
            let _ = verify_sync(&DUMMY_HASH, password);
            false
        }
    }
}

/// Hashes on the blocking pool (commands and seeding; requests go through [`Hashing`]).
pub async fn hash(password: String) -> AppResult<String> {
    tokio::task::spawn_blocking(move || hash_sync(&password)).await.map_err(AppError::internal)?
}

/// Verifies on the blocking pool; with `None` verifies against a dummy hash and fails.
pub async fn verify(phc: Option<String>, password: String) -> AppResult<bool> {
    tokio::task::spawn_blocking(move || verify_blocking(phc, &password)).await.map_err(AppError::internal)
}

/// Computes the dummy hash ahead of the first login (at start-up).
pub fn warm_up() {
    LazyLock::force(&DUMMY_HASH);
}

pub fn check_new_password(password: &str) -> AppResult<()> {
    let len = password.chars().count();
    if len < MIN_PASSWORD_LEN {
        return Err(AppError::bad_input(format!("newPassword must have at least {MIN_PASSWORD_LEN} characters")));
    }
    if len > MAX_NEW_PASSWORD_LEN {
        return Err(AppError::bad_input(format!("newPassword must have at most {MAX_NEW_PASSWORD_LEN} characters")));
    }
    Ok(())
}

/// The rules for a password being set on `email`'s account: [`check_new_password`], and not
/// the email address itself (nor its part before the `@`), in any case.
pub fn check_new_password_for(password: &str, email: &str) -> AppResult<()> {
    check_new_password(password)?;
    let candidate = password.trim().to_lowercase();
    let email = email.to_lowercase();
    let local = email.split('@').next().unwrap_or_default();
    if candidate == email || candidate == local {
        return Err(AppError::bad_input("the password must not be the email address"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_a_pbkdf2_sha256_phc_string_with_600k_rounds_and_verifies() {
        let h = hash_sync("correct horse battery").expect("hash");
        assert!(h.starts_with("$pbkdf2-sha256$i=600000,l=32$"), "{h}");
        let salt_b64 = h.split('$').nth(3).expect("salt");
        assert!(salt_b64.len() >= 22, "salt of at least 16 bytes: {salt_b64}");
        assert!(verify_sync(&h, "correct horse battery"));
        assert!(!verify_sync(&h, "correct horse batterz"));
    }

    #[test]
    fn same_password_hashes_differently() {
        assert_ne!(hash_sync("same password").expect("a"), hash_sync("same password").expect("b"));
    }

    #[test]
    fn garbage_hash_never_verifies() {
        assert!(!verify_sync("not a phc string", "x"));
    }
}
