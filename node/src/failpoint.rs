//! Fault injection sites for the chaos harness.
//!
//! `failpoint!("name")` compiles to nothing unless the `failpoints` feature
//! is on, so default builds carry no trace of it. With the feature, the
//! sites are configured once at start from `AEGIS_FAILPOINTS`, written as
//! `name=actions;name=actions` in the `fail` crate's action syntax, e.g.
//! `log_store::append::before=sleep(200)` (a slow fsync) or
//! `state_machine::apply::before=1%panic` (a crash now and then).
//!
//! Sites: `log_store::append::before`, `log_store::append::after`,
//! `state_machine::apply::before`, `network::append_entries::before`,
//! `network::vote::before` (votes and pre-votes),
//! `state_machine::install_snapshot`.

/// The environment variable read by [`setup`].
pub const ENV: &str = "AEGIS_FAILPOINTS";

#[cfg(feature = "failpoints")]
macro_rules! failpoint {
    ($name:literal) => {
        $crate::failpoint::hit($name)
    };
}

#[cfg(not(feature = "failpoints"))]
macro_rules! failpoint {
    ($name:literal) => {};
}

#[derive(Debug, thiserror::Error)]
pub enum FailpointError {
    #[error("{ENV}: entry {0:?} is not name=actions")]
    Malformed(String),
    #[error("{ENV}: failpoint {name}: {reason}")]
    Action { name: String, reason: String },
}

/// Evaluates one site. A `sleep` or `delay` action blocks the calling
/// thread, as a slow disk would; on a multi-threaded runtime the worker is
/// handed off first so other tasks keep running.
#[cfg(feature = "failpoints")]
pub fn hit(name: &str) {
    let multi = tokio::runtime::Handle::try_current()
        .map(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread)
        .unwrap_or(false);
    let eval = || {
        fail::eval(name, |_| {
            panic!("failpoint {name}: the return action is not supported here")
        });
    };
    if multi {
        tokio::task::block_in_place(eval);
    } else {
        eval();
    }
}

/// Splits `name=actions;name=actions` (blank entries ignored).
pub fn parse(spec: &str) -> Result<Vec<(String, String)>, FailpointError> {
    spec.split(';')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(|entry| match entry.split_once('=') {
            Some((name, actions)) if !name.trim().is_empty() && !actions.trim().is_empty() => {
                Ok((name.trim().to_owned(), actions.trim().to_owned()))
            }
            _ => Err(FailpointError::Malformed(entry.to_owned())),
        })
        .collect()
}

/// Configures the sites from [`ENV`]; returns how many were set. A crash
/// injected with `panic` must take the whole process down, as a real crash
/// would, so once any site is configured every panic aborts.
#[cfg(feature = "failpoints")]
pub fn setup() -> Result<usize, FailpointError> {
    let spec = std::env::var(ENV).unwrap_or_default();
    let entries = parse(&spec)?;
    for (name, actions) in &entries {
        fail::cfg(name.as_str(), actions).map_err(|reason| FailpointError::Action {
            name: name.clone(),
            reason,
        })?;
    }
    if !entries.is_empty() {
        let default = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            default(info);
            std::process::abort();
        }));
        // Printed, not traced: the harness reads it from the node log to
        // confirm that the faults it asked for are armed.
        eprintln!("failpoints armed: {spec}");
    }
    Ok(entries.len())
}

/// Without the `failpoints` feature there is nothing to configure.
#[cfg(not(feature = "failpoints"))]
pub fn setup() -> Result<usize, FailpointError> {
    Ok(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_entries_and_rejects_malformed_ones() {
        let e = parse(" a::b=sleep(200) ; c=1%panic;; ").unwrap();
        assert_eq!(
            e,
            vec![
                ("a::b".to_owned(), "sleep(200)".to_owned()),
                ("c".to_owned(), "1%panic".to_owned())
            ]
        );
        assert!(parse("").unwrap().is_empty());
        assert!(matches!(
            parse("nothing"),
            Err(FailpointError::Malformed(_))
        ));
        assert!(matches!(parse("=panic"), Err(FailpointError::Malformed(_))));
        assert!(matches!(parse("x="), Err(FailpointError::Malformed(_))));
    }

    #[cfg(feature = "failpoints")]
    #[test]
    fn a_configured_site_takes_its_action() {
        fail::cfg("test::site", "panic").unwrap();
        let r = std::panic::catch_unwind(|| hit("test::site"));
        fail::remove("test::site");
        assert!(r.is_err(), "the panic action fired");
        hit("test::site");
    }
}
