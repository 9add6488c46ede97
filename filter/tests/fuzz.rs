//! Arbitrary text never panics the compiler, and a compiled expression
//! never panics on any message; what compiles evaluates the same way
//! after a round of whitespace changes.

use std::collections::BTreeMap;

use mq_filter::SqlFilter;
use proptest::prelude::*;

/// Pieces that make mostly well-formed expressions, to reach the
/// evaluator and not only the lexer.
fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("a".to_string()),
        Just("b".to_string()),
        Just("'x'".to_string()),
        Just("'10'".to_string()),
        Just("5".to_string()),
        Just("-2.5".to_string()),
        Just("1e3".to_string()),
        Just("TRUE".to_string()),
        Just("NULL".to_string()),
        Just("=".to_string()),
        Just("<>".to_string()),
        Just(">=".to_string()),
        Just("<".to_string()),
        Just("AND".to_string()),
        Just("OR".to_string()),
        Just("NOT".to_string()),
        Just("BETWEEN".to_string()),
        Just("IN".to_string()),
        Just("IS".to_string()),
        Just("CONTAINS".to_string()),
        Just("(".to_string()),
        Just(")".to_string()),
        Just(",".to_string()),
        "[ -&(-~]{0,3}",
    ]
}

fn properties() -> impl Strategy<Value = BTreeMap<String, String>> {
    proptest::collection::btree_map(
        prop_oneof![Just("a".to_string()), Just("b".to_string())],
        prop_oneof![
            Just("10".to_string()),
            Just("x".to_string()),
            Just("true".to_string()),
            "\\PC{0,4}"
        ],
        0..3,
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn any_text_compiles_or_is_refused_without_panicking(text in "\\PC{0,64}") {
        if let Err(e) = SqlFilter::compile(&text) {
            prop_assert!(e.position >= 1 && e.position <= text.chars().count() + 1, "{e} for {text:?}");
        }
    }

    #[test]
    fn token_soup_never_panics_and_spacing_does_not_change_the_answer(
        pieces in proptest::collection::vec(piece(), 1..16),
        message in properties(),
    ) {
        let text = pieces.join(" ");
        if let Ok(filter) = SqlFilter::compile(&text) {
            let answer = filter.matches(&message);
            let spaced = SqlFilter::compile(&pieces.join("   ")).expect("same tokens compile");
            prop_assert_eq!(spaced.matches(&message), answer, "{}", text);
        }
    }
}
