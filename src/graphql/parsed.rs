//! Parsed documents, kept by their text. Clients send the same few operations over and
//! over (a dashboard's landing query, an app's home screen), and parsing one was 7% of the
//! server's CPU for the client app's home screen: a cached document is cloned instead.
//!
//! What is kept: query documents (never mutations, whose text may carry a password or an
//! invitation token inline) that passed the perimeter's checks. The cache is bounded by an
//! estimate of the parsed documents' size, so a client sending endless distinct documents
//! only churns it. What is decided per request (the perimeter's checks against the
//! variables, validation against the caller's schema) still runs on every request: the
//! cache saves the parse, nothing else.

use std::sync::Arc;

use async_graphql::parser::types::{DocumentOperations, ExecutableDocument, OperationType};

/// Estimated size of the parsed documents held, in bytes, at most. (The cache splits it
/// into shards of at most 8; a document larger than a shard's part, over 4,000 tokens, is
/// parsed every time.)
const PARSED_BUDGET: u64 = 8 * 1024 * 1024;

/// A parsed document's size per token of its text, over-estimated: a field node with its
/// name is about 200 bytes, and a token is at most one node (`{a a a ...}`).
const BYTES_PER_TOKEN: u64 = 256;

/// How many documents the cache expects to hold (sizes its tables, not a bound).
const EXPECTED_DOCUMENTS: usize = 256;

/// A document as the cache holds it, with its estimated size.
#[derive(Clone)]
struct Kept {
    doc: Arc<ExecutableDocument>,
    weight: u64,
}

#[derive(Debug, Clone, Copy)]
struct EstimatedSize;

impl quick_cache::Weighter<String, Kept> for EstimatedSize {
    fn weight(&self, _: &String, kept: &Kept) -> u64 {
        kept.weight
    }
}

/// The server's parsed documents.
pub struct ParsedDocuments {
    cache: quick_cache::sync::Cache<String, Kept, EstimatedSize>,
}

impl std::fmt::Debug for ParsedDocuments {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ParsedDocuments").field("documents", &self.cache.len()).finish()
    }
}

impl Default for ParsedDocuments {
    fn default() -> Self {
        Self { cache: quick_cache::sync::Cache::with_weighter(EXPECTED_DOCUMENTS, PARSED_BUDGET, EstimatedSize) }
    }
}

impl ParsedDocuments {
    /// The document `text` parses to, if it is held.
    pub fn get(&self, text: &str) -> Option<ExecutableDocument> {
        self.cache.get(text).map(|kept| kept.doc.as_ref().clone())
    }

    /// Keeps `doc`, parsed from `text` of `tokens` tokens, if it holds queries only.
    pub fn keep(&self, text: &str, doc: &ExecutableDocument, tokens: usize) {
        let queries_only = match &doc.operations {
            DocumentOperations::Single(op) => op.node.ty == OperationType::Query,
            DocumentOperations::Multiple(ops) => ops.values().all(|op| op.node.ty == OperationType::Query),
        };
        if !queries_only {
            return;
        }
        let weight = (tokens as u64).saturating_mul(BYTES_PER_TOKEN).max(text.len() as u64).max(1);
        self.cache.insert(text.to_owned(), Kept { doc: Arc::new(doc.clone()), weight });
    }

    /// The estimated size of the documents held, in bytes.
    pub fn estimated_bytes(&self) -> u64 {
        self.cache.weight()
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
    use crate::graphql::perimeter::{Limits, check_text};

    /// As the HTTP edge does: the held document, or the text checked, parsed and kept.
    fn parse(documents: &ParsedDocuments, text: &str) -> ExecutableDocument {
        if let Some(doc) = documents.get(text) {
            return doc;
        }
        let tokens = check_text(text, &Limits::default()).expect("within the limits");
        let doc = async_graphql::parser::parse_query(text).expect("parses");
        documents.keep(text, &doc, tokens);
        doc
    }

    fn operation_names(doc: &ExecutableDocument) -> Vec<String> {
        match &doc.operations {
            DocumentOperations::Single(_) => vec![String::new()],
            DocumentOperations::Multiple(ops) => {
                let mut names: Vec<String> = ops.keys().map(|n| n.to_string()).collect();
                names.sort();
                names
            }
        }
    }

    #[test]
    fn a_held_document_is_the_document_its_text_parses_to() {
        let documents = ParsedDocuments::default();
        let text = "query Home($n: Int) { viewer { id role } coachees(first: $n) { totalCount } }";
        let first = parse(&documents, text);
        let again = documents.get(text).expect("held");
        assert_eq!(documents.len(), 1, "kept once");
        let fresh = async_graphql::parser::parse_query(text).expect("parses");
        assert_eq!(format!("{first:?}"), format!("{fresh:?}"));
        assert_eq!(format!("{again:?}"), format!("{fresh:?}"));
    }

    #[test]
    fn a_held_document_keeps_every_operation() {
        let documents = ParsedDocuments::default();
        let text = "query A { viewer { id } } query B { viewer { role } }";
        parse(&documents, text);
        assert_eq!(operation_names(&documents.get(text).expect("held")), vec!["A", "B"]);
    }

    #[test]
    fn distinct_texts_are_distinct_documents() {
        let documents = ParsedDocuments::default();
        parse(&documents, "query A { viewer { id } }");
        parse(&documents, "query B { viewer { id } }");
        assert_eq!(operation_names(&documents.get("query A { viewer { id } }").expect("held")), vec!["A"]);
        assert_eq!(operation_names(&documents.get("query B { viewer { id } }").expect("held")), vec!["B"]);
        assert_eq!(documents.len(), 2);
    }

    #[test]
    fn documents_with_a_mutation_are_never_kept() {
        let documents = ParsedDocuments::default();
        for text in [
            r#"mutation { login(email: "a@b.c", password: "secret") { token } }"#,
            r#"query Q { viewer { id } } mutation M { acceptInvitation(token: "t", password: "secret") { token } }"#,
        ] {
            parse(&documents, text);
            assert!(documents.get(text).is_none(), "{text}");
        }
        assert!(documents.is_empty());
    }

    #[test]
    fn the_cache_holds_at_most_its_budget_of_estimated_parsed_size() {
        let documents = ParsedDocuments::default();
        // Documents whose parsed form is two orders of magnitude larger than their text:
        // hundreds of one-letter fields.
        let fields = "a ".repeat(1_000);
        for i in 0..200 {
            parse(&documents, &format!("query Q{i} {{ {fields} }}"));
        }
        let held = documents.len() as u64;
        assert!(held > 0, "some are held");
        assert!(held * 1_000 * BYTES_PER_TOKEN <= PARSED_BUDGET, "{held} documents held");
        assert!(documents.estimated_bytes() <= PARSED_BUDGET);
    }
}
