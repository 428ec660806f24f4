//! The admin password's argon2 hashing: the parameters Tidings hashes with,
//! the cap on what a configured hash may cost, and verification.
//!
//! Tidings hashes with argon2id, m = 19 MiB, t = 2, p = 1 (OWASP's first
//! recommended setting). A check uses the parameters written in the hash
//! (a hash made elsewhere keeps working), so a configured hash may cost at
//! most `MAX_MEMORY_KIB` and `MAX_TIME`: together with the few checks the
//! server runs at once, that bounds the memory sign-in can take.

use std::sync::{Arc, Mutex, mpsc};

use argon2::password_hash::{PasswordHasher, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use subtle::ConstantTimeEq;
use tokio::sync::oneshot;

use crate::mail::token::random_hex;

/// Memory of one hash, in KiB (19 MiB).
pub(crate) const MEMORY_KIB: u32 = 19 * 1024;
/// Passes over that memory.
pub(crate) const TIME: u32 = 2;
/// Lanes.
pub(crate) const LANES: u32 = 1;

/// The most memory a configured hash may ask for, in KiB (64 MiB).
pub(crate) const MAX_MEMORY_KIB: u32 = 64 * 1024;
/// The most passes a configured hash may ask for.
pub(crate) const MAX_TIME: u32 = 10;
/// The most lanes a configured hash may ask for.
pub(crate) const MAX_LANES: u32 = 8;

fn hasher() -> Result<Argon2<'static>, String> {
    let params = Params::new(MEMORY_KIB, TIME, LANES, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// `password` as an argon2id PHC string with a random salt.
pub fn hash(password: &str) -> Result<String, String> {
    let salt_hex = random_hex(16).map_err(|e| e.to_string())?;
    let salt = SaltString::encode_b64(salt_hex.as_bytes()).map_err(|e| e.to_string())?;
    hasher()?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Why a PHC string cannot be the admin password's hash: not argon2, or
/// costlier than the caps. `None` when it can.
pub(crate) fn hash_problem(phc: &str) -> Option<String> {
    let Ok(parsed) = PasswordHash::new(phc) else {
        return Some("is not an argon2 PHC string such as $argon2id$v=19$m=19456,t=2,p=1$…".into());
    };
    if Algorithm::try_from(parsed.algorithm).is_err() {
        return Some(format!(
            "uses {}, not argon2id, argon2i or argon2d",
            parsed.algorithm
        ));
    }
    let params = match Params::try_from(&parsed) {
        Ok(params) => params,
        Err(e) => return Some(format!("has unusable argon2 parameters: {e}")),
    };
    if params.m_cost() > MAX_MEMORY_KIB {
        return Some(format!(
            "asks for m={} KiB of memory per check; at most {MAX_MEMORY_KIB} KiB is allowed (tidings hashes with m={MEMORY_KIB})",
            params.m_cost()
        ));
    }
    if params.t_cost() > MAX_TIME {
        return Some(format!(
            "asks for t={} passes; at most {MAX_TIME} are allowed (tidings hashes with t={TIME})",
            params.t_cost()
        ));
    }
    if params.p_cost() > MAX_LANES {
        return Some(format!(
            "asks for p={} lanes; at most {MAX_LANES} are allowed (tidings hashes with p={LANES})",
            params.p_cost()
        ));
    }
    None
}

/// True when `password` matches `phc`, checked with the hash's own
/// parameters; false for any hash over the caps. Slow on purpose: call it
/// off the async threads.
pub fn verify(phc: &str, password: &str) -> bool {
    verify_in(&mut Vec::new(), phc, password)
}

/// `verify` computing in `memory`, grown to the hash's memory cost when it
/// is smaller and kept for the next check: the allocator is asked once per
/// thread, not once per check (glibc keeps each freed 19 MiB block
/// resident, and RSS grew by that much per check).
fn verify_in(memory: &mut Vec<Block>, phc: &str, password: &str) -> bool {
    if hash_problem(phc).is_some() {
        return false;
    }
    let Ok(parsed) = PasswordHash::new(phc) else {
        return false;
    };
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        return false;
    };
    let Ok(algorithm) = Algorithm::try_from(parsed.algorithm) else {
        return false;
    };
    let version = match parsed.version.map(Version::try_from).transpose() {
        Ok(version) => version.unwrap_or_default(),
        Err(_) => return false,
    };
    let Ok(params) = Params::try_from(&parsed) else {
        return false;
    };
    let mut salt_bytes = [0u8; 64];
    let Ok(salt) = salt.decode_b64(&mut salt_bytes) else {
        return false;
    };
    let blocks = params.block_count();
    if memory.len() < blocks {
        memory.resize(blocks, Block::default());
    }
    let mut computed = vec![0u8; expected.len()];
    let argon2 = Argon2::new(algorithm, version, params);
    argon2
        .hash_password_into_with_memory(
            password.as_bytes(),
            salt,
            &mut computed,
            &mut memory[..blocks],
        )
        .is_ok()
        && bool::from(computed.ct_eq(expected.as_bytes()))
}

/// Password checks on a fixed set of threads of their own, each with one
/// block of argon2 memory it reuses: sign-in holds threads × `m`, however
/// many checks it makes.
#[derive(Debug)]
pub struct Checker {
    jobs: mpsc::Sender<Job>,
}

type Job = (String, String, oneshot::Sender<bool>);

impl Checker {
    /// Starts `threads` checking threads; they end when the checker is dropped.
    pub fn start(threads: usize) -> Self {
        let (jobs, queue) = mpsc::channel::<Job>();
        let queue = Arc::new(Mutex::new(queue));
        for i in 0..threads {
            let queue = queue.clone();
            let spawned = std::thread::Builder::new()
                .name(format!("password-check-{i}"))
                .spawn(move || {
                    let mut memory = Vec::new();
                    loop {
                        let job = match queue.lock() {
                            Ok(queue) => queue.recv(),
                            Err(_) => return,
                        };
                        let Ok((phc, password, answer)) = job else {
                            return;
                        };
                        let _ = answer.send(verify_in(&mut memory, &phc, &password));
                    }
                });
            if let Err(e) = spawned {
                tracing::error!(error = %e, "could not start a password-check thread");
            }
        }
        Self { jobs }
    }

    /// True when `password` matches `phc`; false also when no thread could run the check.
    pub async fn check(&self, phc: String, password: String) -> bool {
        let (answer, answered) = oneshot::channel();
        if self.jobs.send((phc, password, answer)).is_err() {
            return false;
        }
        answered.await.unwrap_or(false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_use_the_documented_parameters_and_verify() {
        let phc = hash("correct horse").unwrap();
        assert!(phc.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{phc}");
        assert_eq!(hash_problem(&phc), None);
        assert!(verify(&phc, "correct horse"));
        assert!(!verify(&phc, "correct horsE"));
    }

    #[test]
    fn hashes_over_the_caps_are_refused_without_being_computed() {
        let salt = "c29tZXNhbHQxMjM0NTY3OA";
        let hash_part = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        let costly = format!("$argon2id$v=19$m=4194304,t=2,p=1${salt}${hash_part}");
        let problem = hash_problem(&costly).unwrap();
        assert!(problem.contains("m=4194304 KiB"), "{problem}");
        assert!(problem.contains("at most 65536 KiB"), "{problem}");
        // Refused before argon2 would allocate 4 GiB.
        assert!(!verify(&costly, "anything"));
        let slow = format!("$argon2id$v=19$m=19456,t=50,p=1${salt}${hash_part}");
        assert!(hash_problem(&slow).unwrap().contains("t=50"));
        assert!(hash_problem("$2b$12$abcdefghijklmnopqrstuv").is_some());
    }
}
