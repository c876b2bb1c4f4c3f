//! Command decoding and apply: arbitrary bytes are split into
//! length-prefixed postcard commands and applied at increasing indexes.
//! Nothing may panic, and a replica restored from a snapshot taken halfway
//! must end with the same digest as one that applied everything.
#![no_main]

use aegis_state_machine::{Command, StateMachine};
use libfuzzer_sys::fuzz_target;

fn commands(mut data: &[u8]) -> Vec<Command> {
    let mut out = Vec::new();
    while let Some((&len, rest)) = data.split_first() {
        let len = usize::from(len).min(rest.len());
        let (chunk, tail) = rest.split_at(len);
        if let Ok(cmd) = postcard::from_bytes::<Command>(chunk) {
            out.push(cmd);
        }
        data = tail;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let cmds = commands(data);
    let mut a = StateMachine::new();
    let mut b: Option<StateMachine> = None;
    let half = cmds.len() / 2;
    for (i, cmd) in cmds.iter().enumerate() {
        let index = i as u64 + 1;
        if i == half {
            let snap = a.to_snapshot().expect("snapshot encodes");
            b = Some(StateMachine::from_snapshot(&snap).expect("own snapshot restores"));
        }
        let ra = a.apply(index, cmd);
        if let Some(b) = b.as_mut() {
            let rb = b.apply(index, cmd);
            assert_eq!(ra, rb, "replicas answered differently at {index}");
        }
    }
    if let Some(b) = b {
        assert_eq!(a.digest(), b.digest(), "replicas diverged");
    }
});
