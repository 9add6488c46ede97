//! SQL92 property filters, as RocketMQ's message selector: a consumer
//! subscribes with `a > 5 AND region IN ('eu', 'us') AND NOT (b IS NULL)`
//! and receives only the messages whose properties make it TRUE.
//!
//! - Comparisons `=`, `<>` (or `!=`), `<`, `<=`, `>`, `>=`; `[NOT] BETWEEN
//!   low AND high`; `[NOT] IN ('a', 'b')`; `IS [NOT] NULL`; `[NOT]
//!   CONTAINS | STARTSWITH | ENDSWITH 'text'`; AND, OR, NOT, parentheses.
//! - Literals: 'strings' (`''` is a quote), integers (64-bit), decimals
//!   (`1.5`, `2e3`), TRUE, FALSE. Keywords in any case; property names
//!   are case-sensitive (letters, digits, `_`, `$`, `.`).
//! - Three-valued logic: a missing property is NULL, a comparison with
//!   NULL or between values of different kinds is UNKNOWN, `NOT UNKNOWN`
//!   is UNKNOWN, and a message matches only when the whole is TRUE.
//!
//! [`SqlFilter::compile`] parses and checks an expression once (per
//! subscription); a mistake is reported with its position.
//! [`SqlFilter::matches`] evaluates it per message without allocating.

mod ast;
mod error;
mod eval;
mod lexer;
mod parser;

use std::collections::{BTreeMap, HashMap};

pub use error::SqlError;

/// The longest expression accepted, in characters.
pub const MAX_EXPRESSION_CHARS: usize = 16 * 1024;

/// A message's properties as the filter reads them.
pub trait Properties {
    /// The value of `name`, or `None` (NULL).
    fn property(&self, name: &str) -> Option<&str>;
}

impl Properties for BTreeMap<String, String> {
    fn property(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

impl Properties for HashMap<String, String> {
    fn property(&self, name: &str) -> Option<&str> {
        self.get(name).map(String::as_str)
    }
}

/// A compiled SQL92 filter.
#[derive(Debug, Clone)]
pub struct SqlFilter {
    text: String,
    expr: ast::Expr,
}

impl SqlFilter {
    /// Parses and checks `text`; the error names the position (1-based,
    /// in characters) and what is wrong there.
    pub fn compile(text: &str) -> Result<SqlFilter, SqlError> {
        let chars = text.chars().count();
        if chars > MAX_EXPRESSION_CHARS {
            return Err(SqlError::at(
                MAX_EXPRESSION_CHARS + 1,
                format!("the expression is longer than {MAX_EXPRESSION_CHARS} characters"),
            ));
        }
        let tokens = lexer::tokens(text)?;
        let expr = parser::Parser::new(tokens, chars).parse()?;
        Ok(SqlFilter {
            text: text.to_owned(),
            expr,
        })
    }

    /// Whether a message with these properties matches (the expression
    /// is TRUE for it; FALSE and UNKNOWN do not match).
    pub fn matches(&self, properties: &dyn Properties) -> bool {
        eval::evaluate(&self.expr, properties) == eval::Truth::True
    }

    /// The expression as it was given.
    pub fn text(&self) -> &str {
        &self.text
    }
}
