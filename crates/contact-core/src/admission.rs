//! Whether an account's new import starts now, waits its turn, or is refused. Each account
//! runs a bounded number of imports at once and keeps a bounded queue behind them, served in
//! request order: one tenant's burst of requests holds none of the capacity (ingest slots,
//! read-ahead, writer turns) the other tenants share, and still loses no request.

/// How many imports one account may have at each stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdmissionLimits {
    /// Imports running at once (those admitted and about to run included).
    pub running: u32,
    /// Requests waiting for their turn behind them.
    pub queued: u32,
}

/// Where the account stands when one of its requests asks for its turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccountLoad {
    /// Imports running or admitted to run.
    pub running: u32,
    /// Requests of the account waiting, this one left out.
    pub waiting: u32,
    /// Of those, the ones that asked before this one.
    pub ahead: u32,
    /// Whether this request already holds a place in the queue.
    pub queued: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// A place among the running imports is this request's.
    Start,
    /// It keeps (or takes) its place in the queue: 1 is next.
    Wait { position: u32 },
    /// The queue is full and this request holds no place in it.
    QueueFull,
}

/// The turn of a request of an account under `load`. The free running places go to the
/// waiting requests in the order they asked, so a request starts only when fewer than the
/// free places have asked before it; a request already in the queue keeps its place however
/// full the queue is.
pub fn turn(load: AccountLoad, limits: AdmissionLimits) -> Turn {
    let free = limits.running.saturating_sub(load.running);
    if load.ahead < free {
        Turn::Start
    } else if !load.queued && load.waiting >= limits.queued {
        Turn::QueueFull
    } else {
        Turn::Wait {
            position: load.ahead.saturating_sub(free) + 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: AdmissionLimits = AdmissionLimits {
        running: 2,
        queued: 3,
    };

    fn load(running: u32, waiting: u32, ahead: u32, queued: bool) -> AccountLoad {
        AccountLoad {
            running,
            waiting,
            ahead,
            queued,
        }
    }

    /// A model written apart from `turn`: requests arrive one by one (none finishes), each
    /// asks once, and the account's state is a list of running and a list of waiting ones.
    #[test]
    fn a_burst_runs_the_first_ones_queues_the_next_and_refuses_the_rest() {
        let mut running = 0u32;
        let mut waiting: Vec<u32> = Vec::new();
        let mut turns = Vec::new();
        for request in 0..8u32 {
            let asked = turn(
                load(running, waiting.len() as u32, waiting.len() as u32, false),
                LIMITS,
            );
            match asked {
                Turn::Start => running += 1,
                Turn::Wait { .. } => waiting.push(request),
                Turn::QueueFull => {}
            }
            turns.push(asked);
        }
        assert_eq!(
            turns,
            [
                Turn::Start,
                Turn::Start,
                Turn::Wait { position: 1 },
                Turn::Wait { position: 2 },
                Turn::Wait { position: 3 },
                Turn::QueueFull,
                Turn::QueueFull,
                Turn::QueueFull,
            ]
        );
    }

    #[test]
    fn a_freed_place_goes_to_the_first_in_the_queue_and_no_one_else() {
        // One of two running imports ended: one place free, three waiting.
        assert_eq!(turn(load(1, 2, 0, true), LIMITS), Turn::Start);
        assert_eq!(
            turn(load(1, 2, 1, true), LIMITS),
            Turn::Wait { position: 1 }
        );
        assert_eq!(
            turn(load(1, 2, 2, true), LIMITS),
            Turn::Wait { position: 2 }
        );
        // Both places free: the first two start.
        assert_eq!(turn(load(0, 2, 1, true), LIMITS), Turn::Start);
        assert_eq!(
            turn(load(0, 2, 2, true), LIMITS),
            Turn::Wait { position: 1 }
        );
    }

    #[test]
    fn a_queued_request_keeps_its_place_when_the_queue_is_full() {
        assert_eq!(
            turn(load(2, 3, 2, true), LIMITS),
            Turn::Wait { position: 3 }
        );
        assert_eq!(turn(load(2, 3, 3, false), LIMITS), Turn::QueueFull);
    }

    #[test]
    fn more_running_than_the_limit_starts_nothing() {
        // The limit was lowered while imports ran.
        assert_eq!(
            turn(load(5, 0, 0, false), LIMITS),
            Turn::Wait { position: 1 }
        );
    }
}
