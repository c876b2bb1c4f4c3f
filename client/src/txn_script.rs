//! The line-based transaction script read by `aegisctl txn`.
//!
//! ```text
//! # Comments and blank lines are ignored.
//! # Compares first, one per line: TARGET("KEY") OP VALUE. All must hold for `success:`.
//! value("config/mode") = "blue"
//! version("config/new") = 0          # 0: the key does not exist
//! mod("config/mode") < 120
//! create("config/mode") != 0
//! lock("deploy") = 57                # current fencing token of lock "deploy"
//! success:
//! put "config/mode" "green"
//! put config/owner me --session 42   # bind to a session
//! put config/x y --guard deploy:57   # fencing guard
//! del "config/old"
//! del --prefix "tmp/"
//! range "config/" 10                 # limit is optional
//! failure:
//! range "config/mode"
//! ```
//!
//! Targets: `value`/`val`, `version`/`ver`, `mod`/`mod_revision`, `create`/`create_revision`,
//! `lock`/`lock_token`. Operators: `=` (or `==`), `!=`, `>`, `<`. Keys and values are a bare
//! word or a double-quoted string with `\"` and `\\` escapes. Numeric targets take a decimal
//! number.

use crate::txn::{Compare, CompareOp, PutOptions, Txn, TxnOp};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("txn script line {line}: {message}")]
pub struct ScriptError {
    pub line: usize,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    Word(String),
    Str(String),
    LParen,
    RParen,
    Op(String),
}

impl Tok {
    /// A key or value: bare words and quoted strings alike.
    fn text(&self) -> Option<&str> {
        match self {
            Tok::Word(s) | Tok::Str(s) => Some(s),
            _ => None,
        }
    }
}

fn lex(line: &str) -> Result<Vec<Tok>, String> {
    let mut out = Vec::new();
    let mut chars = line.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            '#' => break,
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' => {
                chars.next();
                out.push(Tok::LParen);
            }
            ')' => {
                chars.next();
                out.push(Tok::RParen);
            }
            '"' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        None => return Err("unterminated string".into()),
                        Some('"') => break,
                        Some('\\') => match chars.next() {
                            Some(e @ ('"' | '\\')) => s.push(e),
                            Some('n') => s.push('\n'),
                            Some(o) => return Err(format!("unknown escape \\{o}")),
                            None => return Err("unterminated string".into()),
                        },
                        Some(o) => s.push(o),
                    }
                }
                out.push(Tok::Str(s));
            }
            '=' | '!' | '<' | '>' => {
                let mut op = String::new();
                while let Some(&o) = chars.peek() {
                    if matches!(o, '=' | '!' | '<' | '>') {
                        op.push(o);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Tok::Op(op));
            }
            _ => {
                let mut w = String::new();
                while let Some(&o) = chars.peek() {
                    if o.is_whitespace() || matches!(o, '(' | ')' | '"' | '#') {
                        break;
                    }
                    w.push(o);
                    chars.next();
                }
                out.push(Tok::Word(w));
            }
        }
    }
    Ok(out)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Section {
    Compares,
    Success,
    Failure,
}

/// Parses a whole script into a transaction.
pub fn parse(script: &str) -> Result<Txn, ScriptError> {
    let mut txn = Txn::new();
    let mut section = Section::Compares;
    let mut seen_success = false;
    let mut seen_failure = false;
    for (i, raw) in script.lines().enumerate() {
        let line = i + 1;
        let err = |message: String| ScriptError { line, message };
        let toks = lex(raw).map_err(err)?;
        if toks.is_empty() {
            continue;
        }
        match toks.as_slice() {
            [Tok::Word(w)] if w == "success:" => {
                if seen_success || seen_failure {
                    return Err(err("`success:` must come once, before `failure:`".into()));
                }
                seen_success = true;
                section = Section::Success;
                continue;
            }
            [Tok::Word(w)] if w == "failure:" => {
                if seen_failure {
                    return Err(err("`failure:` must come once".into()));
                }
                seen_failure = true;
                section = Section::Failure;
                continue;
            }
            _ => {}
        }
        txn = match section {
            Section::Compares => txn.when(parse_compare(&toks).map_err(err)?),
            Section::Success => txn.and_then(parse_op(&toks).map_err(err)?),
            Section::Failure => txn.or_else(parse_op(&toks).map_err(err)?),
        };
    }
    Ok(txn)
}

fn parse_compare(toks: &[Tok]) -> Result<Compare, String> {
    let [Tok::Word(target), Tok::LParen, key, Tok::RParen, Tok::Op(op), value] = toks else {
        return Err("expected a compare like value(\"KEY\") = \"VALUE\", or `success:`".into());
    };
    let key = key.text().ok_or("expected a key inside the parentheses")?;
    let op = match op.as_str() {
        "=" | "==" => CompareOp::Equal,
        "!=" => CompareOp::NotEqual,
        ">" => CompareOp::Greater,
        "<" => CompareOp::Less,
        o => return Err(format!("unknown operator {o:?} (use =, !=, >, <)")),
    };
    let value = value.text().ok_or("expected a value after the operator")?;
    let number = || {
        value
            .parse::<u64>()
            .map_err(|_| format!("{target} compares a number, got {value:?}"))
    };
    Ok(match target.as_str() {
        "value" | "val" => Compare::value(key, op, value),
        "version" | "ver" => Compare::version(key, op, number()?),
        "mod" | "mod_revision" => Compare::mod_revision(key, op, number()?),
        "create" | "create_revision" => Compare::create_revision(key, op, number()?),
        "lock" | "lock_token" => Compare::lock_token(key, op, number()?),
        t => return Err(format!("unknown compare target {t:?}")),
    })
}

fn parse_op(toks: &[Tok]) -> Result<TxnOp, String> {
    let Some(Tok::Word(verb)) = toks.first() else {
        return Err("expected put, del or range".into());
    };
    let args: Vec<&str> = toks[1..]
        .iter()
        .map(|t| t.text().ok_or("unexpected punctuation"))
        .collect::<Result<_, _>>()?;
    match verb.as_str() {
        "put" => {
            let [key, value, flags @ ..] = args.as_slice() else {
                return Err("put needs KEY VALUE".into());
            };
            let mut o = PutOptions::default();
            let mut rest = flags.iter();
            while let Some(flag) = rest.next() {
                match *flag {
                    "--session" => {
                        let id = rest.next().ok_or("--session needs an id")?;
                        o = o.session(id.parse().map_err(|_| format!("bad session id {id:?}"))?);
                    }
                    "--guard" => {
                        let g = rest.next().ok_or("--guard needs LOCK:TOKEN")?;
                        let (lock, token) = parse_guard(g)?;
                        o = o.guard(lock, token);
                    }
                    "--prev-kv" => o = o.prev_kv(),
                    f => return Err(format!("unknown put flag {f:?}")),
                }
            }
            Ok(TxnOp::put_with(*key, *value, &o))
        }
        "del" | "delete" => match args.as_slice() {
            ["--prefix", p] => Ok(TxnOp::delete_prefix(*p)),
            [k] => Ok(TxnOp::delete(*k)),
            _ => Err("del needs KEY or --prefix PREFIX".into()),
        },
        "range" => match args.as_slice() {
            [p] => Ok(TxnOp::range(*p, 0)),
            [p, limit] => Ok(TxnOp::range(
                *p,
                limit.parse().map_err(|_| format!("bad limit {limit:?}"))?,
            )),
            _ => Err("range needs PREFIX [LIMIT]".into()),
        },
        v => Err(format!("unknown op {v:?} (use put, del or range)")),
    }
}

/// Parses `LOCK:TOKEN`; the lock name may itself contain colons, the token is after the last.
pub fn parse_guard(s: &str) -> Result<(String, u64), String> {
    let (lock, token) = s
        .rsplit_once(':')
        .ok_or_else(|| format!("guard {s:?} is not LOCK:TOKEN"))?;
    if lock.is_empty() {
        return Err(format!("guard {s:?} has an empty lock name"));
    }
    let token = token
        .parse()
        .map_err(|_| format!("guard {s:?} has a bad token"))?;
    Ok((lock.to_owned(), token))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aegis_proto::v1 as pb;

    #[test]
    fn full_script() {
        let t = parse(
            r#"
            # a comment
            value("a b") = "x \"y\""
            version(k) = 0
            mod("k") < 120
            create("k") != 3
            lock("deploy") > 56   # trailing comment
            success:
            put "k" "v"
            put k2 v2 --session 42 --guard deploy:57 --prev-kv
            del old
            del --prefix "tmp/"
            range "config/" 10
            failure:
            range k
            "#,
        )
        .unwrap();
        let r = t.to_request();
        assert_eq!(r.compare.len(), 5);
        assert_eq!(r.compare[0].key, b"a b");
        assert_eq!(r.compare[0].value, b"x \"y\"");
        assert_eq!(r.compare[2].result, pb::compare::Result::Less as i32);
        assert_eq!(r.compare[2].number, 120);
        assert_eq!(r.compare[3].result, pb::compare::Result::NotEqual as i32);
        assert_eq!(r.compare[4].target, pb::compare::Target::LockToken as i32);
        assert_eq!(r.success.len(), 5);
        match &r.success[1].op {
            Some(pb::txn_op::Op::Put(p)) => {
                assert_eq!(p.session_id, 42);
                assert!(p.prev_kv);
                assert_eq!(p.guard.as_ref().unwrap().token, 57);
            }
            o => panic!("{o:?}"),
        }
        match &r.success[3].op {
            Some(pb::txn_op::Op::Delete(d)) => assert!(d.prefix),
            o => panic!("{o:?}"),
        }
        match &r.success[4].op {
            Some(pb::txn_op::Op::Range(g)) => assert_eq!(g.limit, 10),
            o => panic!("{o:?}"),
        }
        assert_eq!(r.failure.len(), 1);
    }

    #[test]
    fn only_ops_without_compares() {
        let t = parse("success:\nput a b\n").unwrap();
        assert!(t.compares().is_empty());
        assert_eq!(t.success_ops().len(), 1);
    }

    #[test]
    fn errors_name_the_line() {
        let cases = [
            ("value(\"k\") <> 1", 1, "operator"),
            ("\nversion(k) = abc", 2, "number"),
            ("bogus(k) = 1", 1, "target"),
            ("success:\nput onlykey", 2, "KEY VALUE"),
            ("success:\nfrob x", 2, "unknown op"),
            ("failure:\nsuccess:", 2, "once"),
            ("value(\"k) = 1", 1, "unterminated"),
            ("success:\nput a b --guard nocolon", 2, "LOCK:TOKEN"),
            ("success:\nput a b --session x", 2, "session"),
            ("put a b", 1, "compare"),
        ];
        for (script, line, needle) in cases {
            let e = parse(script).unwrap_err();
            assert_eq!(e.line, line, "{script:?}: {e}");
            assert!(e.message.contains(needle), "{script:?}: {e}");
        }
    }

    #[test]
    fn guard_parsing() {
        assert_eq!(parse_guard("a:b:7").unwrap(), ("a:b".into(), 7));
        assert!(parse_guard(":7").is_err());
        assert!(parse_guard("a:").is_err());
        assert!(parse_guard("a").is_err());
    }
}
