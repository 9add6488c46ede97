//! Expression text to tokens, each with its 1-based character position.

use crate::error::SqlError;

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Token {
    Ident(String),
    Str(String),
    Int(i64),
    Float(f64),
    /// A keyword, upper-cased: AND, OR, NOT, BETWEEN, IN, IS, NULL,
    /// TRUE, FALSE, CONTAINS, STARTSWITH, ENDSWITH.
    Keyword(&'static str),
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    LParen,
    RParen,
    Comma,
    Minus,
    Plus,
}

const KEYWORDS: [&str; 12] = [
    "AND",
    "OR",
    "NOT",
    "BETWEEN",
    "IN",
    "IS",
    "NULL",
    "TRUE",
    "FALSE",
    "CONTAINS",
    "STARTSWITH",
    "ENDSWITH",
];

impl Token {
    /// How the token reads in an error message.
    pub(crate) fn describe(&self) -> String {
        match self {
            Token::Ident(name) => format!("'{name}'"),
            Token::Str(text) => format!("string '{text}'"),
            Token::Int(n) => n.to_string(),
            Token::Float(x) => x.to_string(),
            Token::Keyword(k) => (*k).to_owned(),
            Token::Eq => "'='".into(),
            Token::Ne => "'<>'".into(),
            Token::Lt => "'<'".into(),
            Token::Le => "'<='".into(),
            Token::Gt => "'>'".into(),
            Token::Ge => "'>='".into(),
            Token::LParen => "'('".into(),
            Token::RParen => "')'".into(),
            Token::Comma => "','".into(),
            Token::Minus => "'-'".into(),
            Token::Plus => "'+'".into(),
        }
    }
}

/// The tokens of `text` with their positions, or the first bad character.
pub(crate) fn tokens(text: &str) -> Result<Vec<(usize, Token)>, SqlError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let position = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        let two = |second: char| chars.get(i + 1) == Some(&second);
        let (token, len) = match c {
            '(' => (Token::LParen, 1),
            ')' => (Token::RParen, 1),
            ',' => (Token::Comma, 1),
            '-' => (Token::Minus, 1),
            '+' => (Token::Plus, 1),
            '=' => (Token::Eq, 1),
            '<' if two('>') => (Token::Ne, 2),
            '<' if two('=') => (Token::Le, 2),
            '<' => (Token::Lt, 1),
            '>' if two('=') => (Token::Ge, 2),
            '>' => (Token::Gt, 1),
            '!' if two('=') => (Token::Ne, 2),
            '\'' => string(&chars, i)?,
            c if c.is_ascii_digit()
                || (c == '.' && chars.get(i + 1).is_some_and(char::is_ascii_digit)) =>
            {
                number(&chars, i)?
            }
            c if c.is_alphabetic() || c == '_' || c == '$' => {
                let len = chars[i..]
                    .iter()
                    .take_while(|c| c.is_alphanumeric() || matches!(c, '_' | '$' | '.'))
                    .count();
                let word: String = chars[i..i + len].iter().collect();
                let upper = word.to_ascii_uppercase();
                let token = match KEYWORDS.iter().find(|k| **k == upper) {
                    Some(keyword) => Token::Keyword(keyword),
                    None => Token::Ident(word),
                };
                (token, len)
            }
            other => {
                return Err(SqlError::at(
                    position,
                    format!("unexpected character {other:?}"),
                ));
            }
        };
        out.push((position, token));
        i += len;
    }
    Ok(out)
}

/// A single-quoted string from `chars[start]`; `''` is a quote inside it.
fn string(chars: &[char], start: usize) -> Result<(Token, usize), SqlError> {
    let mut text = String::new();
    let mut i = start + 1;
    loop {
        match chars.get(i) {
            None => {
                return Err(SqlError::at(
                    start + 1,
                    "string is not closed (a ' is missing)",
                ));
            }
            Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                text.push('\'');
                i += 2;
            }
            Some('\'') => return Ok((Token::Str(text), i + 1 - start)),
            Some(&c) => {
                text.push(c);
                i += 1;
            }
        }
    }
}

/// A decimal number from `chars[start]`: an integer (64-bit) or, with a
/// fraction or an exponent, a floating-point number.
fn number(chars: &[char], start: usize) -> Result<(Token, usize), SqlError> {
    let mut i = start;
    let digits = |i: &mut usize| {
        while chars.get(*i).is_some_and(char::is_ascii_digit) {
            *i += 1;
        }
    };
    digits(&mut i);
    let mut float = false;
    if chars.get(i) == Some(&'.') {
        float = true;
        i += 1;
        digits(&mut i);
    }
    if matches!(chars.get(i), Some('e' | 'E')) {
        float = true;
        i += 1;
        if matches!(chars.get(i), Some('+' | '-')) {
            i += 1;
        }
        let before = i;
        digits(&mut i);
        if i == before {
            return Err(SqlError::at(
                start + 1,
                "number has an exponent without digits",
            ));
        }
    }
    if chars
        .get(i)
        .is_some_and(|c| c.is_alphanumeric() || *c == '_')
    {
        return Err(SqlError::at(start + 1, "a number runs into letters"));
    }
    let text: String = chars[start..i].iter().collect();
    let token = if float {
        match text.parse::<f64>() {
            Ok(x) if x.is_finite() => Token::Float(x),
            _ => {
                return Err(SqlError::at(
                    start + 1,
                    format!("number {text} is out of range"),
                ));
            }
        }
    } else {
        match text.parse::<i64>() {
            Ok(n) => Token::Int(n),
            Err(_) => {
                return Err(SqlError::at(
                    start + 1,
                    format!("integer {text} is out of range (64-bit)"),
                ));
            }
        }
    };
    Ok((token, i - start))
}
