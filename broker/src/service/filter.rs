//! What a consumer subscribed to, as a store filter: tags (by the
//! ConsumeQueue's tag hash) or a SQL92 expression over the message's
//! properties (by the message). Expressions are compiled once and kept,
//! so a pull carrying the same text again only looks it up.

use std::sync::Arc;

use dashmap::DashMap;
use mq_common::{FieldError, validate};
use mq_filter::{Properties, SqlFilter};
use mq_store::{MessageFilter, StoredProperties, TagFilter};

/// Compiled expressions kept at most; past it the cache starts over
/// (distinct expressions are few: one per subscription).
const MAX_COMPILED: usize = 4096;

/// A pull's or a pop's filter.
#[derive(Debug, Clone)]
pub enum SubscriptionFilter {
    Tags(TagFilter),
    Sql(Arc<SqlFilter>),
}

impl MessageFilter for SubscriptionFilter {
    fn by_tag_hash(&self, hash: u64) -> bool {
        match self {
            SubscriptionFilter::Tags(tags) => tags.by_tag_hash(hash),
            SubscriptionFilter::Sql(_) => true,
        }
    }

    fn reads_properties(&self) -> bool {
        matches!(self, SubscriptionFilter::Sql(_))
    }

    fn by_properties(&self, properties: &StoredProperties<'_>) -> bool {
        match self {
            SubscriptionFilter::Tags(_) => true,
            SubscriptionFilter::Sql(sql) => sql.matches(&InPlace(properties)),
        }
    }
}

/// A stored message's properties as an expression reads them, in place:
/// the user's and the typed ones under RocketMQ's names (`TAGS`, `KEYS`).
struct InPlace<'a, 'b>(&'a StoredProperties<'b>);

impl Properties for InPlace<'_, '_> {
    fn property(&self, name: &str) -> Option<&str> {
        self.0.get(name)
    }
}

/// The broker's compiled expressions.
#[derive(Debug, Default)]
pub struct SqlFilters {
    compiled: DashMap<String, Arc<SqlFilter>>,
}

impl SqlFilters {
    /// The filter of `tag_expression` or `sql_expression` (one of them);
    /// errors name the field and, for SQL, the position.
    pub fn filter(
        &self,
        tag_field: &str,
        tag_expression: &str,
        sql_field: &str,
        sql_expression: &str,
    ) -> Result<SubscriptionFilter, FieldError> {
        let tags = validate::tag_expression(tag_field, tag_expression)?;
        if sql_expression.is_empty() {
            return Ok(SubscriptionFilter::Tags(TagFilter::parse(&tags.join("||"))));
        }
        if !tags.is_empty() {
            return Err(FieldError::new(
                tag_field,
                format!(
                    "must be empty or \"*\" with {sql_field} (select tags with TAGS in the expression)"
                ),
            ));
        }
        self.compile(sql_field, sql_expression)
            .map(SubscriptionFilter::Sql)
    }

    /// The filter of a pull's or a pop's `tag_expression` and
    /// `sql_expression` fields.
    pub fn of_request(
        &self,
        tag_expression: &str,
        sql_expression: &str,
    ) -> Result<SubscriptionFilter, FieldError> {
        self.filter(
            "tag_expression",
            tag_expression,
            "sql_expression",
            sql_expression,
        )
    }

    /// `text` compiled, from the cache when it was before.
    pub fn compile(&self, field: &str, text: &str) -> Result<Arc<SqlFilter>, FieldError> {
        if let Some(known) = self.compiled.get(text) {
            return Ok(Arc::clone(&known));
        }
        let compiled =
            Arc::new(SqlFilter::compile(text).map_err(|e| FieldError::new(field, e.to_string()))?);
        if self.compiled.len() >= MAX_COMPILED {
            self.compiled.clear();
        }
        self.compiled.insert(text.to_owned(), Arc::clone(&compiled));
        Ok(compiled)
    }
}
