//! The run's time budget, handed to every layer. A leaf type: layers take it from here,
//! never from the engine that creates it.

use std::time::Duration;

use tokio::time::Instant;

/// Time left in a run. Layers ask it for their limit so a layer timeout can never push a
/// run past its deadline, and so a timeout caused by the deadline is reported as
/// `deadline`, not blamed on the layer.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    deadline: Instant,
}

impl Budget {
    pub fn until(deadline: Instant) -> Self {
        Budget { deadline }
    }

    /// The instant the run must end by.
    pub fn deadline(&self) -> Instant {
        self.deadline
    }

    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// The limit for a layer whose own timeout is `timeout`, and whether the run
    /// deadline (not the layer timeout) is what binds.
    pub fn limit(&self, timeout: Duration) -> (Duration, bool) {
        let left = self.remaining();
        if timeout >= left {
            (left, true)
        } else {
            (timeout, false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budget_arithmetic() {
        let b = Budget::until(Instant::now() + Duration::from_secs(10));
        // (layer timeout, elapsed before asking) -> (limit, cut by deadline)
        let table = [
            (2, 0, 2, false),
            (10, 0, 10, true),
            (30, 0, 10, true),
            (2, 7, 2, false),
            (5, 7, 3, true),
            (5, 12, 0, true),
        ];
        let mut elapsed = 0;
        for (timeout, at, want, cut) in table {
            tokio::time::advance(Duration::from_secs(at - elapsed)).await;
            elapsed = at;
            let (limit, c) = b.limit(Duration::from_secs(timeout));
            assert_eq!(
                (limit, c),
                (Duration::from_secs(want), cut),
                "timeout {timeout} at {at}s"
            );
        }
    }
}
