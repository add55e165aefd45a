//! Parsed documents, kept by their text. Clients send the same few operations over and
//! over (a dashboard's landing query, an app's home screen), and parsing one was 7% of the
//! server's CPU for the client app's home screen: a cached document is cloned instead.
//!
//! Only documents that parse are kept, and the cache is bounded by the bytes of text it
//! holds, so a client sending endless distinct documents only churns it. What is decided
//! per request (the perimeter's checks against the variables, validation against the
//! caller's schema) still runs on every request: the cache saves the parse, nothing else.

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;

/// Texts of cached documents, in bytes, at most: with [`crate::graphql::perimeter::Limits`]'s
/// 32 KiB documents, at least 64 of the largest, thousands of usual ones.
const TEXT_BUDGET: u64 = 2 * 1024 * 1024;

/// How many documents the cache expects to hold (sizes its tables, not a bound).
const EXPECTED_DOCUMENTS: usize = 512;

/// A document's weight in the cache: its text's length (never 0, which the cache would
/// never evict).
#[derive(Debug, Clone, Copy)]
struct TextLength;

impl quick_cache::Weighter<String, Arc<ExecutableDocument>> for TextLength {
    fn weight(&self, text: &String, _: &Arc<ExecutableDocument>) -> u64 {
        (text.len() as u64).max(1)
    }
}

/// The server's parsed documents.
pub struct ParsedDocuments {
    cache: quick_cache::sync::Cache<String, Arc<ExecutableDocument>, TextLength>,
}

impl std::fmt::Debug for ParsedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedDocuments").field("documents", &self.cache.len()).finish()
    }
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self { cache: quick_cache::sync::Cache::with_weighter(EXPECTED_DOCUMENTS, TEXT_BUDGET, TextLength) }
    }
}

impl ParsedDocuments {
    /// `text` parsed: from the cache when this text was parsed before, else parsed now (and
    /// kept if it parses).
    pub fn parse(&self, text: &str) -> async_graphql::parser::Result<ExecutableDocument> {
        if let Some(doc) = self.cache.get(text) {
            return Ok(doc.as_ref().clone());
        }
        let doc = async_graphql::parser::parse_query(text)?;
        self.cache.insert(text.to_owned(), Arc::new(doc.clone()));
        Ok(doc)
    }

    /// Documents held.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn operation_names(doc: &ExecutableDocument) -> Vec<String> {
        match &doc.operations {
            async_graphql::parser::types::DocumentOperations::Single(_) => vec![String::new()],
            async_graphql::parser::types::DocumentOperations::Multiple(ops) => {
                let mut names: Vec<String> = ops.keys().map(|n| n.to_string()).collect();
                names.sort();
                names
            }
        }
    }

    #[test]
    fn a_cached_document_is_the_document_its_text_parses_to() {
        let documents = ParsedDocuments::default();
        let text = "query Home($n: Int) { viewer { id role } coachees(first: $n) { totalCount } }";
        let first = documents.parse(text).expect("parses");
        let again = documents.parse(text).expect("parses");
        assert_eq!(documents.len(), 1, "kept once");
        let fresh = async_graphql::parser::parse_query(text).expect("parses");
        assert_eq!(format!("{first:?}"), format!("{fresh:?}"));
        assert_eq!(format!("{again:?}"), format!("{fresh:?}"));
    }

    #[test]
    fn a_cached_document_keeps_every_operation() {
        let documents = ParsedDocuments::default();
        let text = "query A { viewer { id } } query B { viewer { role } }";
        documents.parse(text).expect("parses");
        assert_eq!(operation_names(&documents.parse(text).expect("parses")), vec!["A", "B"]);
    }

    #[test]
    fn distinct_texts_are_distinct_documents() {
        let documents = ParsedDocuments::default();
        let a = documents.parse("query A { viewer { id } }").expect("parses");
        let b = documents.parse("query B { viewer { id } }").expect("parses");
        assert_eq!((operation_names(&a), operation_names(&b)), (vec!["A".to_owned()], vec!["B".to_owned()]));
        assert_eq!(documents.len(), 2);
    }

    #[test]
    fn a_text_that_does_not_parse_is_refused_every_time_and_never_kept() {
        let documents = ParsedDocuments::default();
        for _ in 0..2 {
            assert!(documents.parse("query { viewer { id }").is_err());
        }
        assert!(documents.is_empty());
    }

    #[test]
    fn the_cache_holds_at_most_its_budget_of_text() {
        let documents = ParsedDocuments::default();
        let padding = "x".repeat(30 * 1024);
        for i in 0..200 {
            documents.parse(&format!("query Q{i} {{ viewer {{ id }} }} # {padding}")).expect("parses");
        }
        let held = documents.len() as u64 * (30 * 1024);
        assert!(documents.len() < 200 && held <= TEXT_BUDGET, "{} documents held", documents.len());
    }
}
