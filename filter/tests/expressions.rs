//! The filter's semantics as a table: expressions, the properties of a
//! message, and whether it matches; bad expressions and where they fail.

use std::collections::BTreeMap;

use mq_filter::{SqlError, SqlFilter};

fn message(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn matches(expression: &str, pairs: &[(&str, &str)]) -> bool {
    let filter = SqlFilter::compile(expression)
        .unwrap_or_else(|e| panic!("{expression:?} should compile: {e}"));
    filter.matches(&message(pairs))
}

#[test]
fn expressions_match_as_sql92_says() {
    let m = [
        ("a", "10"),
        ("b", "2.5"),
        ("region", "eu"),
        ("flag", "TRUE"),
        ("name", "it's"),
    ];
    let table: &[(&str, bool)] = &[
        // Numbers: properties read as numbers against numeric literals.
        ("a > 5", true),
        ("a >= 10", true),
        ("a < 10", false),
        ("a <= 10", true),
        ("a = 10", true),
        ("a = 10.0", true),
        ("a <> 10", false),
        ("a != 9", true),
        ("b > 2", true),
        ("b < 2.6", true),
        ("b = 2.5", true),
        ("a > -5", true),
        ("a < +11", true),
        ("a > 1e1", false),
        ("a >= 1E1", true),
        ("a BETWEEN 10 AND 20", true),
        ("a BETWEEN 11 AND 20", false),
        ("a NOT BETWEEN 11 AND 20", true),
        ("a NOT BETWEEN 0 AND 10", false),
        ("b between 2 and 3", true),
        // Strings.
        ("region = 'eu'", true),
        ("region = 'EU'", false),
        ("region <> 'us'", true),
        ("region IN ('eu', 'us')", true),
        ("region IN ('us', 'ap')", false),
        ("region NOT IN ('us', 'ap')", true),
        ("region NOT IN ('eu')", false),
        ("name = 'it''s'", true),
        ("region CONTAINS 'u'", true),
        ("region STARTSWITH 'e'", true),
        ("region ENDSWITH 'x'", false),
        ("region NOT ENDSWITH 'x'", true),
        ("region NOT CONTAINS 'e'", false),
        ("a IN (10, 20)", true),
        ("a IN ('10')", true),
        // Booleans.
        ("TRUE", true),
        ("FALSE", false),
        ("flag", true),
        ("flag = TRUE", true),
        ("flag = false", false),
        ("flag <> FALSE", true),
        // Logic and precedence: NOT > AND > OR.
        (
            "a > 5 AND region IN ('eu','us') AND NOT (missing IS NULL)",
            false,
        ),
        ("a > 5 AND region IN ('eu','us') AND NOT (b IS NULL)", true),
        ("a > 50 OR region = 'eu'", true),
        ("a > 50 OR region = 'us' AND a = 10", false),
        ("(a > 50 OR region = 'eu') AND a = 10", true),
        ("NOT a > 50 AND a = 10", true),
        ("NOT NOT a = 10", true),
        ("a > 5 and REGION = 'eu'", false),
        // NULL: missing properties.
        ("missing IS NULL", true),
        ("missing IS NOT NULL", false),
        ("a IS NOT NULL", true),
        ("a is null", false),
        ("missing = 1", false),
        ("missing <> 1", false),
        ("NOT (missing = 1)", false),
        ("NOT (missing > 1)", false),
        ("missing IN ('x')", false),
        ("missing NOT IN ('x')", false),
        ("missing BETWEEN 1 AND 2", false),
        ("missing NOT BETWEEN 1 AND 2", false),
        ("missing CONTAINS 'x'", false),
        ("missing", false),
        ("NOT missing", false),
        // UNKNOWN in AND/OR: FALSE AND UNKNOWN is FALSE, TRUE OR UNKNOWN TRUE.
        ("missing = 1 OR a = 10", true),
        ("missing = 1 AND a = 10", false),
        ("NOT (missing = 1 AND a = 11)", true),
        ("NOT (missing = 1 OR a = 11)", false),
        // Type mismatches are UNKNOWN, never an error at run time.
        ("region > 5", false),
        ("region = 5", false),
        ("region <> 5", false),
        ("region = TRUE", false),
        ("NOT (region = 5)", false),
        ("a = 'ten'", false),
        ("region", false),
        ("a CONTAINS '1'", true),
    ];
    let mut wrong = Vec::new();
    for (expression, expected) in table {
        if matches(expression, &m) != *expected {
            wrong.push(format!("{expression:?} should be {expected}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn property_values_that_are_not_numbers_never_order() {
    for value in ["NaN", "inf", "-infinity", "", " 5", "5 ", "0x10", "1,5"] {
        let m = [("a", value)];
        assert!(!matches("a > 0", &m), "a = {value:?} > 0");
        assert!(!matches("a < 0", &m), "a = {value:?} < 0");
        assert!(!matches("a = 0", &m), "a = {value:?} = 0");
    }
    // 64-bit integers compare exactly.
    let big = [("a", "9007199254740993")];
    assert!(matches("a > 9007199254740992", &big));
    assert!(!matches("a = 9007199254740992", &big));
}

fn error(expression: &str) -> SqlError {
    match SqlFilter::compile(expression) {
        Ok(filter) => panic!("{expression:?} compiled: {filter:?}"),
        Err(e) => e,
    }
}

#[test]
fn bad_expressions_are_refused_with_the_position_and_the_reason() {
    let table: &[(&str, usize, &str)] = &[
        ("", 1, "empty"),
        ("   ", 1, "empty"),
        (
            "a >",
            4,
            "expected a property name or a literal, found the end",
        ),
        ("a > 5 AND", 10, "found the end"),
        ("a > 5 b = 1", 7, "unexpected 'b'"),
        ("a = 'open", 5, "not closed"),
        ("a # 1", 3, "unexpected character '#'"),
        ("(a > 5", 7, "expected ')'"),
        ("a > 5)", 6, "unexpected ')'"),
        ("a > 'x'", 5, "string 'x' where a number is needed"),
        ("'x' < a", 1, "string 'x' where a number is needed"),
        ("a > TRUE", 5, "TRUE where a number is needed"),
        ("a BETWEEN 1 OR 2", 13, "expected AND"),
        ("a BETWEEN 'x' AND 2", 11, "where a number is needed"),
        ("a IN 'x'", 6, "'(' opening the IN list"),
        ("a IN ('x' 'y')", 11, "',' or ')'"),
        ("a IN (b)", 7, "not the property 'b'"),
        ("a IN ()", 7, "a property name or a literal"),
        ("a NOT = 1", 7, "BETWEEN, IN, CONTAINS"),
        ("a IS 5", 6, "expected NULL"),
        ("5 IS NULL", 1, "applies to a property name"),
        ("5", 2, "expected a comparison"),
        ("'x'", 4, "expected a comparison"),
        ("a CONTAINS 5", 12, "expected a string"),
        ("a > 99999999999999999999", 5, "out of range"),
        ("a > 1e999", 5, "out of range"),
        ("a > 1e", 5, "exponent without digits"),
        ("a > 12abc", 5, "runs into letters"),
        ("a > - b", 7, "a number after the sign"),
        ("AND a = 1", 1, "a property name or a literal, found AND"),
        ("région = 'é' AND x ~ 1", 20, "unexpected character '~'"),
    ];
    let mut wrong = Vec::new();
    for (expression, position, reason) in table {
        let e = error(expression);
        if e.position != *position || !e.reason.contains(reason) {
            wrong.push(format!(
                "{expression:?}: got {e} (wanted position {position}, {reason:?})"
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert_eq!(
        error("a >").to_string(),
        "invalid SQL filter at position 4: expected a property name or a literal, found the end"
    );
}

#[test]
fn deep_nesting_and_huge_expressions_are_refused_not_overflowed() {
    let deep = format!("{}a = 1{}", "(".repeat(100_000), ")".repeat(100_000));
    // Longer than the limit: refused before parsing.
    assert!(error(&deep).reason.contains("longer than"));
    let nested = format!("{}a = 1{}", "(".repeat(65), ")".repeat(65));
    assert!(error(&nested).reason.contains("nested more than 64"));
    let nots = format!("{}a = 1", "NOT ".repeat(65));
    assert!(error(&nots).reason.contains("nested more than 64"));
    let fine = format!("{}a = 1{}", "(".repeat(64), ")".repeat(64));
    assert!(matches(&fine, &[("a", "1")]));
    // A long flat chain is fine: AND and OR are lists, not deep trees.
    let chain = vec!["a = 1"; 1500].join(" AND ");
    assert!(matches(&chain, &[("a", "1")]));
    assert!(!matches(&chain, &[("a", "2")]));
}

#[test]
fn keywords_are_case_insensitive_and_properties_are_not() {
    assert!(matches("a between 1 and 2 or B is null", &[("a", "5")]));
    assert!(!matches("A = 1", &[("a", "1")]));
    assert!(matches(
        "user.id = 'x' AND $v = 1 AND _u IS NULL",
        &[("user.id", "x"), ("$v", "1")]
    ));
}
