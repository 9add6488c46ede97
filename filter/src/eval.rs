//! Evaluating a compiled expression against one message's properties,
//! with SQL's three-valued logic: a missing property is NULL, anything
//! compared with NULL is UNKNOWN, and only TRUE matches.
//!
//! Properties are strings. Compared with a number they are read as one
//! (`'10' > 5`), with TRUE/FALSE as `true`/`false` (any case); a value
//! that does not read as the other side's kind makes the comparison
//! UNKNOWN, for `=` and `<>` alike.

use std::cmp::Ordering;

use crate::Properties;
use crate::ast::{CompareOp, Expr, Operand, TextOp};

/// SQL's truth values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Truth {
    True,
    False,
    Unknown,
}

impl Truth {
    fn of(b: bool) -> Truth {
        if b { Truth::True } else { Truth::False }
    }

    fn not(self) -> Truth {
        match self {
            Truth::True => Truth::False,
            Truth::False => Truth::True,
            Truth::Unknown => Truth::Unknown,
        }
    }

    fn negated_if(self, negated: bool) -> Truth {
        if negated { self.not() } else { self }
    }
}

#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Null,
    Str(&'a str),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy)]
enum Number {
    Int(i64),
    Float(f64),
}

impl Value<'_> {
    fn number(self) -> Option<Number> {
        match self {
            Value::Int(n) => Some(Number::Int(n)),
            Value::Float(x) => Some(Number::Float(x)),
            Value::Str(text) => match text.parse::<i64>() {
                Ok(n) => Some(Number::Int(n)),
                Err(_) => text
                    .parse::<f64>()
                    .ok()
                    .filter(|x| x.is_finite())
                    .map(Number::Float),
            },
            Value::Null | Value::Bool(_) => None,
        }
    }

    fn boolean(self) -> Option<bool> {
        match self {
            Value::Bool(b) => Some(b),
            Value::Str(text) if text.eq_ignore_ascii_case("true") => Some(true),
            Value::Str(text) if text.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        }
    }
}

fn order(a: Number, b: Number) -> Option<Ordering> {
    match (a, b) {
        (Number::Int(a), Number::Int(b)) => Some(a.cmp(&b)),
        (a, b) => as_f64(a).partial_cmp(&as_f64(b)),
    }
}

fn as_f64(n: Number) -> f64 {
    match n {
        Number::Int(n) => n as f64,
        Number::Float(x) => x,
    }
}

fn value<'a>(operand: &'a Operand, properties: &'a dyn Properties) -> Value<'a> {
    match operand {
        Operand::Property(name) => properties.property(name).map_or(Value::Null, Value::Str),
        Operand::Str(text) => Value::Str(text),
        Operand::Int(n) => Value::Int(*n),
        Operand::Float(x) => Value::Float(*x),
        Operand::Bool(b) => Value::Bool(*b),
    }
}

/// `=` between two values: by the kind of the literal side (number,
/// boolean), else as strings.
fn equal(a: Value<'_>, b: Value<'_>) -> Truth {
    match (a, b) {
        (Value::Null, _) | (_, Value::Null) => Truth::Unknown,
        (Value::Str(a), Value::Str(b)) => Truth::of(a == b),
        (Value::Bool(_), _) | (_, Value::Bool(_)) => match (a.boolean(), b.boolean()) {
            (Some(a), Some(b)) => Truth::of(a == b),
            _ => Truth::Unknown,
        },
        _ => match (a.number(), b.number()) {
            (Some(a), Some(b)) => {
                order(a, b).map_or(Truth::Unknown, |o| Truth::of(o == Ordering::Equal))
            }
            _ => Truth::Unknown,
        },
    }
}

fn compare(op: CompareOp, a: Value<'_>, b: Value<'_>) -> Truth {
    match op {
        CompareOp::Eq => equal(a, b),
        CompareOp::Ne => equal(a, b).not(),
        _ => {
            let Some(ordering) = a.number().zip(b.number()).and_then(|(a, b)| order(a, b)) else {
                return Truth::Unknown;
            };
            Truth::of(match op {
                CompareOp::Lt => ordering == Ordering::Less,
                CompareOp::Le => ordering != Ordering::Greater,
                CompareOp::Gt => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            })
        }
    }
}

fn all(truths: impl Iterator<Item = Truth>) -> Truth {
    let mut result = Truth::True;
    for truth in truths {
        match truth {
            Truth::False => return Truth::False,
            Truth::Unknown => result = Truth::Unknown,
            Truth::True => {}
        }
    }
    result
}

fn any(truths: impl Iterator<Item = Truth>) -> Truth {
    let mut result = Truth::False;
    for truth in truths {
        match truth {
            Truth::True => return Truth::True,
            Truth::Unknown => result = Truth::Unknown,
            Truth::False => {}
        }
    }
    result
}

pub(crate) fn evaluate(expr: &Expr, properties: &dyn Properties) -> Truth {
    match expr {
        Expr::Const(b) => Truth::of(*b),
        Expr::And(terms) => all(terms.iter().map(|t| evaluate(t, properties))),
        Expr::Or(terms) => any(terms.iter().map(|t| evaluate(t, properties))),
        Expr::Not(inner) => evaluate(inner, properties).not(),
        Expr::Compare { op, left, right } => {
            compare(*op, value(left, properties), value(right, properties))
        }
        Expr::Between {
            negated,
            value: operand,
            low,
            high,
        } => {
            let v = value(operand, properties);
            let within = all([
                compare(CompareOp::Ge, v, value(low, properties)),
                compare(CompareOp::Le, v, value(high, properties)),
            ]
            .into_iter());
            within.negated_if(*negated)
        }
        Expr::In {
            negated,
            value: operand,
            list,
        } => {
            let v = value(operand, properties);
            any(list.iter().map(|item| equal(v, value(item, properties)))).negated_if(*negated)
        }
        Expr::IsNull { negated, property } => {
            Truth::of(properties.property(property).is_none()).negated_if(*negated)
        }
        Expr::Text {
            negated,
            op,
            value: operand,
            pattern,
        } => match value(operand, properties) {
            Value::Str(text) => Truth::of(match op {
                TextOp::Contains => text.contains(pattern.as_str()),
                TextOp::StartsWith => text.starts_with(pattern.as_str()),
                TextOp::EndsWith => text.ends_with(pattern.as_str()),
            })
            .negated_if(*negated),
            _ => Truth::Unknown,
        },
        Expr::Truthy(name) => match properties.property(name).map(Value::Str) {
            Some(v) => v.boolean().map_or(Truth::Unknown, Truth::of),
            None => Truth::Unknown,
        },
    }
}
