//! Tokens to an expression tree, checking operand kinds on the way:
//!
//! ```text
//! expr      := and (OR and)*
//! and       := not (AND not)*
//! not       := NOT not | '(' expr ')' | predicate
//! predicate := operand [ compare operand
//!                      | [NOT] BETWEEN operand AND operand
//!                      | [NOT] IN '(' literal (',' literal)* ')'
//!                      | IS [NOT] NULL
//!                      | [NOT] (CONTAINS | STARTSWITH | ENDSWITH) string ]
//! operand   := property | string | [+|-] number | TRUE | FALSE
//! ```

use crate::ast::{CompareOp, Expr, Operand, TextOp};
use crate::error::SqlError;
use crate::lexer::Token;

/// Parentheses and NOTs nested deeper than this are refused, so that no
/// expression can exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 64;

pub(crate) struct Parser {
    tokens: Vec<(usize, Token)>,
    next: usize,
    /// Where the text ends: the position reported for a missing token.
    end: usize,
    depth: usize,
}

impl Parser {
    pub(crate) fn new(tokens: Vec<(usize, Token)>, text_chars: usize) -> Self {
        Parser {
            tokens,
            next: 0,
            end: text_chars + 1,
            depth: 0,
        }
    }

    /// The whole token list as one expression.
    pub(crate) fn parse(mut self) -> Result<Expr, SqlError> {
        if self.tokens.is_empty() {
            return Err(SqlError::at(1, "the expression is empty"));
        }
        let expr = self.or()?;
        match self.tokens.get(self.next) {
            None => Ok(expr),
            Some((position, token)) => Err(SqlError::at(
                *position,
                format!(
                    "unexpected {} (expected AND, OR or the end)",
                    token.describe()
                ),
            )),
        }
    }

    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.next).map(|(_, t)| t)
    }

    fn position(&self) -> usize {
        self.tokens.get(self.next).map_or(self.end, |(p, _)| *p)
    }

    fn advance(&mut self) -> Option<Token> {
        let token = self.tokens.get(self.next).map(|(_, t)| t.clone());
        self.next += 1;
        token
    }

    fn eat_keyword(&mut self, keyword: &str) -> bool {
        if matches!(self.peek(), Some(Token::Keyword(k)) if *k == keyword) {
            self.next += 1;
            true
        } else {
            false
        }
    }

    fn unexpected(&self, expected: &str) -> SqlError {
        let found = match self.peek() {
            Some(token) => token.describe(),
            None => "the end".into(),
        };
        SqlError::at(
            self.position(),
            format!("expected {expected}, found {found}"),
        )
    }

    fn deeper(&mut self) -> Result<(), SqlError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(SqlError::at(
                self.position(),
                format!("nested more than {MAX_DEPTH} deep"),
            ));
        }
        Ok(())
    }

    fn or(&mut self) -> Result<Expr, SqlError> {
        let mut terms = vec![self.and()?];
        while self.eat_keyword("OR") {
            terms.push(self.and()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Expr::Or(terms)
        })
    }

    fn and(&mut self) -> Result<Expr, SqlError> {
        let mut terms = vec![self.not()?];
        while self.eat_keyword("AND") {
            terms.push(self.not()?);
        }
        Ok(if terms.len() == 1 {
            terms.pop().expect("one term")
        } else {
            Expr::And(terms)
        })
    }

    fn not(&mut self) -> Result<Expr, SqlError> {
        if self.eat_keyword("NOT") {
            self.deeper()?;
            let inner = self.not()?;
            self.depth -= 1;
            return Ok(Expr::Not(Box::new(inner)));
        }
        if self.peek() == Some(&Token::LParen) {
            self.next += 1;
            self.deeper()?;
            let inner = self.or()?;
            self.depth -= 1;
            if self.advance() != Some(Token::RParen) {
                self.next -= 1;
                return Err(self.unexpected("')'"));
            }
            return Ok(inner);
        }
        self.predicate()
    }

    fn predicate(&mut self) -> Result<Expr, SqlError> {
        let start = self.position();
        let value = self.operand()?;
        let compare = match self.peek() {
            Some(Token::Eq) => Some(CompareOp::Eq),
            Some(Token::Ne) => Some(CompareOp::Ne),
            Some(Token::Lt) => Some(CompareOp::Lt),
            Some(Token::Le) => Some(CompareOp::Le),
            Some(Token::Gt) => Some(CompareOp::Gt),
            Some(Token::Ge) => Some(CompareOp::Ge),
            _ => None,
        };
        if let Some(op) = compare {
            self.next += 1;
            let right_at = self.position();
            let right = self.operand()?;
            if op.orders() {
                numeric(&value, start)?;
                numeric(&right, right_at)?;
            }
            return Ok(Expr::Compare {
                op,
                left: value,
                right,
            });
        }
        let negated = self.eat_keyword("NOT");
        if self.eat_keyword("BETWEEN") {
            numeric(&value, start)?;
            let low_at = self.position();
            let low = self.operand()?;
            numeric(&low, low_at)?;
            if !self.eat_keyword("AND") {
                return Err(self.unexpected("AND (BETWEEN low AND high)"));
            }
            let high_at = self.position();
            let high = self.operand()?;
            numeric(&high, high_at)?;
            return Ok(Expr::Between {
                negated,
                value,
                low,
                high,
            });
        }
        if self.eat_keyword("IN") {
            return Ok(Expr::In {
                negated,
                value,
                list: self.in_list()?,
            });
        }
        let text = if self.eat_keyword("CONTAINS") {
            Some(TextOp::Contains)
        } else if self.eat_keyword("STARTSWITH") {
            Some(TextOp::StartsWith)
        } else if self.eat_keyword("ENDSWITH") {
            Some(TextOp::EndsWith)
        } else {
            None
        };
        if let Some(op) = text {
            return match self.advance() {
                Some(Token::Str(pattern)) => Ok(Expr::Text {
                    negated,
                    op,
                    value,
                    pattern,
                }),
                _ => {
                    self.next -= 1;
                    Err(self.unexpected("a string"))
                }
            };
        }
        if negated {
            return Err(self.unexpected("BETWEEN, IN, CONTAINS, STARTSWITH or ENDSWITH after NOT"));
        }
        if self.eat_keyword("IS") {
            let negated = self.eat_keyword("NOT");
            if !self.eat_keyword("NULL") {
                return Err(self.unexpected("NULL"));
            }
            let Operand::Property(property) = value else {
                return Err(SqlError::at(start, "IS NULL applies to a property name"));
            };
            return Ok(Expr::IsNull { negated, property });
        }
        match value {
            Operand::Property(name) => Ok(Expr::Truthy(name)),
            Operand::Bool(b) => Ok(Expr::Const(b)),
            _ => Err(self.unexpected("a comparison")),
        }
    }

    fn in_list(&mut self) -> Result<Vec<Operand>, SqlError> {
        if self.advance() != Some(Token::LParen) {
            self.next -= 1;
            return Err(self.unexpected("'(' opening the IN list"));
        }
        let mut list = Vec::new();
        loop {
            let at = self.position();
            match self.operand()? {
                Operand::Property(name) => {
                    return Err(SqlError::at(
                        at,
                        format!("IN lists literals, not the property '{name}'"),
                    ));
                }
                literal => list.push(literal),
            }
            match self.advance() {
                Some(Token::Comma) => continue,
                Some(Token::RParen) => return Ok(list),
                _ => {
                    self.next -= 1;
                    return Err(self.unexpected("',' or ')' in the IN list"));
                }
            }
        }
    }

    fn operand(&mut self) -> Result<Operand, SqlError> {
        let sign = match self.peek() {
            Some(Token::Minus) => Some(-1),
            Some(Token::Plus) => Some(1),
            _ => None,
        };
        if sign.is_some() {
            self.next += 1;
        }
        let operand = match (self.advance(), sign) {
            (Some(Token::Int(n)), Some(-1)) => Operand::Int(-n),
            (Some(Token::Float(x)), Some(-1)) => Operand::Float(-x),
            (Some(Token::Int(n)), _) => Operand::Int(n),
            (Some(Token::Float(x)), _) => Operand::Float(x),
            (Some(Token::Ident(name)), None) => Operand::Property(name),
            (Some(Token::Str(text)), None) => Operand::Str(text),
            (Some(Token::Keyword("TRUE")), None) => Operand::Bool(true),
            (Some(Token::Keyword("FALSE")), None) => Operand::Bool(false),
            (_, Some(_)) => {
                self.next -= 1;
                return Err(self.unexpected("a number after the sign"));
            }
            _ => {
                self.next -= 1;
                return Err(self.unexpected("a property name or a literal"));
            }
        };
        Ok(operand)
    }
}

/// Ordering compares numbers: a string or boolean literal there is a
/// mistake found now rather than a filter that never matches.
fn numeric(operand: &Operand, at: usize) -> Result<(), SqlError> {
    let kind = match operand {
        Operand::Str(text) => format!("string '{text}'"),
        Operand::Bool(b) => b.to_string().to_uppercase(),
        _ => return Ok(()),
    };
    Err(SqlError::at(
        at,
        format!("{kind} where a number is needed (<, <=, >, >= and BETWEEN compare numbers)"),
    ))
}
