//! A v2 `FilterExpression` (TAG or SQL92) as the broker's two fields: a
//! tag expression, or a SQL92 expression with the tags left at `*`.

use mq_proto::apache::rocketmq::v2;
use v2::Code;

use crate::status::Refusal;

/// What a pull, a pop or a subscription asks the broker to filter by.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerFilter {
    pub tag_expression: String,
    pub sql_expression: String,
}

impl BrokerFilter {
    /// The expression as sent, unchecked (no expression: every message).
    pub fn from_v2(filter: Option<&v2::FilterExpression>) -> BrokerFilter {
        match filter {
            Some(f) if f.r#type == v2::FilterType::Sql as i32 => BrokerFilter {
                tag_expression: "*".into(),
                sql_expression: f.expression.clone(),
            },
            Some(f) => BrokerFilter {
                tag_expression: f.expression.clone(),
                sql_expression: String::new(),
            },
            None => BrokerFilter {
                tag_expression: "*".into(),
                sql_expression: String::new(),
            },
        }
    }

    /// The expression as sent, refused (ILLEGAL_FILTER_EXPRESSION, with
    /// the position for SQL) when it does not parse.
    pub fn checked(filter: Option<&v2::FilterExpression>) -> Result<BrokerFilter, Refusal> {
        let filter = BrokerFilter::from_v2(filter);
        let illegal = |reason: String| Refusal::new(Code::IllegalFilterExpression, reason);
        if filter.sql_expression.is_empty() {
            mq_common::validate::tag_expression("filter_expression", &filter.tag_expression)
                .map_err(|e| illegal(e.to_string()))?;
        } else {
            mq_filter::SqlFilter::compile(&filter.sql_expression)
                .map_err(|e| illegal(e.to_string()))?;
        }
        Ok(filter)
    }
}
