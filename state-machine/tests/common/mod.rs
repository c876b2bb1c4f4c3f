//! Drives a state machine the way the Raft glue does: consecutive log
//! indexes, each command stamped with a leader timestamp.
#![allow(dead_code)]

use aegis_state_machine::*;

pub struct Harness {
    pub sm: StateMachine,
    pub index: u64,
    /// The timestamp the next command is stamped with.
    pub clock_ms: u64,
}

impl Default for Harness {
    fn default() -> Self {
        Harness {
            sm: StateMachine::new(),
            index: 0,
            clock_ms: 1_000,
        }
    }
}

impl Harness {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn apply_at(&mut self, leader_ts_ms: u64, op: Op) -> Applied {
        self.index += 1;
        let applied = self.sm.apply(self.index, &Command { leader_ts_ms, op });
        assert_eq!(applied.index, self.index);
        assert_eq!(self.sm.applied_index(), self.index);
        applied
    }

    pub fn apply(&mut self, op: Op) -> Applied {
        self.apply_at(self.clock_ms, op)
    }

    pub fn ok(&mut self, op: Op) -> Reply {
        let applied = self.apply(op);
        match applied.result {
            Ok(reply) => reply,
            Err(e) => panic!("command at {} refused: {e:?}", applied.index),
        }
    }

    pub fn err(&mut self, op: Op) -> SmError {
        let applied = self.apply(op);
        match applied.result {
            Err(e) => e,
            Ok(reply) => panic!("command at {} accepted: {reply:?}", applied.index),
        }
    }

    pub fn advance(&mut self, ms: u64) {
        self.clock_ms += ms;
    }

    pub fn marker(&mut self, new_leader: bool) {
        self.index += 1;
        self.sm.apply_marker(self.index, new_leader);
    }

    pub fn open(&mut self, ttl_ms: u64) -> u64 {
        match self.ok(Op::OpenSession { ttl_ms }) {
            Reply::SessionOpened {
                session_id,
                ttl_ms: t,
            } => {
                assert_eq!(t, ttl_ms);
                assert_eq!(session_id, self.index);
                session_id
            }
            other => panic!("unexpected reply {other:?}"),
        }
    }

    pub fn acquire(&mut self, name: &str, session_id: u64, wait: bool) -> Applied {
        self.apply(Op::Acquire {
            name: name.into(),
            session_id,
            wait,
        })
    }

    /// Acquires a free lock and returns its token.
    pub fn must_acquire(&mut self, name: &str, session_id: u64) -> u64 {
        match self.acquire(name, session_id, false).result {
            Ok(Reply::Acquired { token }) => token,
            other => panic!("acquire refused: {other:?}"),
        }
    }

    pub fn release(&mut self, name: &str, session_id: u64, token: u64) -> Applied {
        self.apply(Op::Release {
            name: name.into(),
            session_id,
            token,
        })
    }

    pub fn put(&mut self, key: &str, value: &str) -> Applied {
        self.apply(put_op(key, value))
    }
}

pub fn put_op(key: &str, value: &str) -> Op {
    Op::Put(PutOp {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        session_id: 0,
        prev_kv: false,
        guard: None,
    })
}

pub fn put_full(key: &str, value: &str, session_id: u64, guard: Option<(&str, u64)>) -> PutOp {
    PutOp {
        key: key.as_bytes().to_vec(),
        value: value.as_bytes().to_vec(),
        session_id,
        prev_kv: true,
        guard: guard.map(|(lock, token)| FencingGuard {
            lock: lock.into(),
            token,
        }),
    }
}

pub fn del_op(key: &str, prefix: bool) -> Op {
    Op::Delete(DeleteOp {
        key: key.as_bytes().to_vec(),
        prefix,
        prev_kv: true,
    })
}
