//! What a compiled expression is: predicates over operands. AND and OR
//! hold lists, so a long chain is flat rather than deep.

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Operand {
    Property(String),
    Str(String),
    Int(i64),
    Float(f64),
    Bool(bool),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CompareOp {
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
}

impl CompareOp {
    /// `<`, `<=`, `>` and `>=` order numbers; `=` and `<>` compare any two
    /// values of one kind.
    pub(crate) fn orders(self) -> bool {
        matches!(
            self,
            CompareOp::Lt | CompareOp::Le | CompareOp::Gt | CompareOp::Ge
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TextOp {
    Contains,
    StartsWith,
    EndsWith,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Expr {
    Const(bool),
    And(Vec<Expr>),
    Or(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        op: CompareOp,
        left: Operand,
        right: Operand,
    },
    Between {
        negated: bool,
        value: Operand,
        low: Operand,
        high: Operand,
    },
    In {
        negated: bool,
        value: Operand,
        list: Vec<Operand>,
    },
    IsNull {
        negated: bool,
        property: String,
    },
    Text {
        negated: bool,
        op: TextOp,
        value: Operand,
        pattern: String,
    },
    /// A property on its own, read as a boolean (`'true'`/`'false'`).
    Truthy(String),
}
