//! Replay refusal: each `jti` gets credentials once within its token's lifetime. The store is
//! bounded; when it is full of live entries the gate refuses new tokens (fails closed) rather
//! than forgetting one that could then be replayed.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::jwt::TokenError;

/// Why a jti could not be recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayError {
    /// The jti was already used and has not expired yet (HTTP 401).
    Replayed(String),
    /// Every slot holds a live token (HTTP 503).
    Full(usize),
}

impl From<ReplayError> for crate::verify::VerifyError {
    fn from(e: ReplayError) -> Self {
        match e {
            ReplayError::Replayed(j) => crate::verify::VerifyError::Token(TokenError::Replayed(j)),
            ReplayError::Full(n) => crate::verify::VerifyError::ReplayStoreFull(n),
        }
    }
}

/// Seen jtis and when each may be forgotten (its `exp` plus the leeway).
#[derive(Debug)]
pub struct ReplayGuard {
    capacity: usize,
    seen: Mutex<HashMap<String, i64>>,
}

impl ReplayGuard {
    /// A guard holding at most `capacity` live jtis (at least one).
    pub fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// Records `jti` until `forget_after`, or refuses it if it is already recorded.
    pub fn record(&self, jti: &str, forget_after: i64, now: i64) -> Result<(), ReplayError> {
        let mut seen = self
            .seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if seen.get(jti).is_some_and(|&until| until >= now) {
            return Err(ReplayError::Replayed(crate::shown(jti)));
        }
        if seen.len() >= self.capacity {
            seen.retain(|_, until| *until >= now);
            if seen.len() >= self.capacity {
                return Err(ReplayError::Full(self.capacity));
            }
        }
        seen.insert(jti.to_owned(), forget_after);
        Ok(())
    }

    /// Forgets `jti` again: the gate calls this when STS failed after the token was accepted,
    /// so the job's retry is not refused as a replay of a token that got nothing.
    pub fn release(&self, jti: &str) {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(jti);
    }

    /// How many jtis are held, expired ones included until they are swept.
    pub fn len(&self) -> usize {
        self.seen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    /// Whether no jti is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_a_replay_until_the_token_expires_and_fails_closed_when_full() {
        let g = ReplayGuard::new(2);
        assert_eq!(g.record("a", 100, 0), Ok(()));
        assert_eq!(
            g.record("a", 100, 50),
            Err(ReplayError::Replayed("a".into()))
        );
        assert_eq!(g.record("b", 100, 50), Ok(()));
        assert_eq!(g.record("c", 100, 50), Err(ReplayError::Full(2)));
        // Past a's and b's lifetime their slots are reused.
        assert_eq!(g.record("c", 300, 101), Ok(()));
        g.release("c");
        assert_eq!(g.record("c", 300, 102), Ok(()));
    }
}
