//! The execution perimeter (issue 9): what a GraphQL document may ask for, decided from
//! the document alone, before the request opens a transaction or runs any SQL.
//!
//! One pass over the parsed document measures its depth, aliases, directives and cost.
//! Cost multiplies by list size: every field costs 1, and what is selected under a
//! connection costs `first` times over (its literal or variable value, [`DEFAULT_PAGE`]
//! when absent); under an unpaged list, [`UNPAGED_LIST_MAX`] times over. Fragments are
//! measured once each and multiplied where they are spread, so no document makes this
//! pass expensive; the text is scanned for nesting and tokens before it is parsed at all.
//!
//! Each refusal carries one of the codes of [`Refusal`].

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet};
use async_graphql::{Name, Value, Variables};

use super::decl::FieldDecl;
use super::paging::DEFAULT_PAGE;
use super::schema::Catalog;

/// The declared maximum of an unpaged list (`goals`, `coachNotes`, a session's
/// `actionItems`, ...): what the cost pass counts it as, whatever it holds today.
pub const UNPAGED_LIST_MAX: u64 = 20;

/// Bracket nesting (`{`, `(`, `[`) the text may have before it is parsed: far above any
/// document within the depth limit, far below what could exhaust the parser's stack.
const MAX_TEXT_NESTING: usize = 64;

/// Fragment spreads nested in fragment spreads, followed before the pass gives up.
const MAX_SPREAD_NESTING: usize = 64;

/// The limits a document must keep (configurable: see `Config`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Longest document text, in bytes.
    pub max_document_bytes: usize,
    /// Most lexical tokens in the document.
    pub max_tokens: usize,
    /// Deepest field nesting (`{ viewer { id } }` is 2).
    pub max_depth: usize,
    /// Most aliased fields in an operation (fragments counted where they are spread).
    pub max_aliases: u64,
    /// Most directives in an operation.
    pub max_directives: u64,
    /// Largest `first` of a connection.
    pub max_first: u64,
    /// Highest cost of an operation (fields times the list sizes above them).
    pub max_cost: u64,
    /// Whether `__schema` and `__type` may be asked for.
    pub introspection: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_document_bytes: 32 * 1024,
            max_tokens: 5_000,
            max_depth: 16,
            max_aliases: 15,
            max_directives: 50,
            max_first: 100,
            max_cost: 100_000,
            introspection: true,
        }
    }
}

/// Why a document was refused. Each variant is an `extensions.code`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// `DOCUMENT_TOO_LARGE`: the document text is longer than `max_document_bytes`.
    DocumentTooLarge { limit: usize },
    /// `TOO_MANY_TOKENS`: the document has more than `max_tokens` tokens.
    TooManyTokens { limit: usize },
    /// `QUERY_TOO_DEEP`: fields nest deeper than `max_depth` (or the text nests absurdly).
    TooDeep { limit: usize },
    /// `TOO_MANY_ALIASES`: more than `max_aliases` aliased fields.
    TooManyAliases { limit: u64 },
    /// `TOO_MANY_DIRECTIVES`: more than `max_directives` directives.
    TooManyDirectives { limit: u64 },
    /// `PAGE_TOO_LARGE`: a connection's `first` is above `max_first` (or negative).
    PageTooLarge { limit: u64 },
    /// `QUERY_TOO_COMPLEX`: the operation's cost is above `max_cost`.
    TooComplex { cost: u64, limit: u64 },
    /// `INTROSPECTION_DISABLED`: `__schema` or `__type` while introspection is off.
    IntrospectionDisabled,
    /// `GRAPHQL_PARSE_FAILED`: the text is not a GraphQL document.
    ParseFailed(String),
    /// `BAD_USER_INPUT`: a credential operation shares its operation with other fields.
    CredentialNotAlone,
}

/// The mutations that check or set a password, or check a refresh token: each must be its
/// operation's only root field, so that a request checks one password at most, and pausing
/// the transaction for the hash (or keeping a refused refresh's session revocation) commits
/// nothing of another field (that field's audit events would still be pending).
pub const CREDENTIAL_FIELDS: &[&str] =
    &["login", "refreshSession", "changePassword", "deleteMyAccount", "acceptInvitation"];

impl Refusal {
    pub fn code(&self) -> &'static str {
        match self {
            Refusal::DocumentTooLarge { .. } => "DOCUMENT_TOO_LARGE",
            Refusal::TooManyTokens { .. } => "TOO_MANY_TOKENS",
            Refusal::TooDeep { .. } => "QUERY_TOO_DEEP",
            Refusal::TooManyAliases { .. } => "TOO_MANY_ALIASES",
            Refusal::TooManyDirectives { .. } => "TOO_MANY_DIRECTIVES",
            Refusal::PageTooLarge { .. } => "PAGE_TOO_LARGE",
            Refusal::TooComplex { .. } => "QUERY_TOO_COMPLEX",
            Refusal::IntrospectionDisabled => "INTROSPECTION_DISABLED",
            Refusal::ParseFailed(_) => "GRAPHQL_PARSE_FAILED",
            Refusal::CredentialNotAlone => "BAD_USER_INPUT",
        }
    }

    /// A plain message: what was exceeded and the limit, never an echo of the document.
    pub fn message(&self) -> String {
        match self {
            Refusal::DocumentTooLarge { limit } => format!("the query document is longer than {limit} bytes"),
            Refusal::TooManyTokens { limit } => format!("the query document has more than {limit} tokens"),
            Refusal::TooDeep { limit } => format!("the query nests deeper than {limit} levels"),
            Refusal::TooManyAliases { limit } => format!("the operation has more than {limit} aliases"),
            Refusal::TooManyDirectives { limit } => format!("the operation has more than {limit} directives"),
            Refusal::PageTooLarge { limit } => format!("first must be between 0 and {limit}"),
            Refusal::TooComplex { cost, limit } => {
                format!("the operation's cost is {cost}, above the limit of {limit}; ask for fewer or smaller pages")
            }
            Refusal::IntrospectionDisabled => "introspection is disabled on this server".to_owned(),
            Refusal::ParseFailed(why) => why.clone(),
            Refusal::CredentialNotAlone => format!(
                "{} must each be the only field of their operation (no aliases, no other fields)",
                CREDENTIAL_FIELDS.join(", ")
            ),
        }
    }
}

/// What the cost pass knows of a field: the type it returns and how many of them.
#[derive(Debug, Clone, Copy)]
struct FieldShape {
    ty: &'static str,
    list: bool,
    paged: bool,
}

/// Every object type's fields, from the catalog (the contract: a role's schema has a subset;
/// a field outside it is left to validation, which rejects it).
#[derive(Debug, Clone, Default)]
pub struct TypeIndex {
    types: HashMap<&'static str, TypeShape>,
}

#[derive(Debug, Clone, Default)]
struct TypeShape {
    /// A connection: its `nodes` list is as long as the `first` above it.
    connection: bool,
    fields: HashMap<&'static str, FieldShape>,
}

impl TypeIndex {
    pub fn of(catalog: &Catalog) -> Self {
        let shape = |f: &FieldDecl| FieldShape {
            ty: f.ty.name(),
            list: f.ty.is_list(),
            paged: f.args.iter().any(|a| a.name == "first"),
        };
        let mut types: HashMap<&'static str, TypeShape> = HashMap::new();
        for o in &catalog.objects {
            let t = types.entry(o.name).or_default();
            t.connection = o.structural && o.fields.iter().any(|f| f.name == "nodes");
            for f in &o.fields {
                t.fields.entry(f.name).or_insert_with(|| shape(f));
            }
        }
        for (root, fields) in [("Query", &catalog.query), ("Mutation", &catalog.mutation)] {
            let t = types.entry(root).or_default();
            for f in fields {
                t.fields.entry(f.name).or_insert_with(|| shape(f));
            }
        }
        Self { types }
    }

    fn field(&self, ty: Option<&str>, name: &str) -> Option<(FieldShape, bool)> {
        let t = self.types.get(ty?)?;
        t.fields.get(name).map(|f| (*f, t.connection))
    }
}

/// The text checks, before parsing: size, tokens and bracket nesting (so a pathological
/// text never reaches the recursive parser). Returns the number of tokens.
pub fn check_text(text: &str, limits: &Limits) -> Result<usize, Refusal> {
    if text.len() > limits.max_document_bytes {
        return Err(Refusal::DocumentTooLarge { limit: limits.max_document_bytes });
    }
    let bytes = text.as_bytes();
    let (mut i, mut tokens, mut nesting) = (0usize, 0usize, 0usize);
    while i < bytes.len() {
        let b = bytes[i];
        match b {
            b' ' | b'\t' | b'\n' | b'\r' | b',' => {
                i += 1;
                continue;
            }
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'"' if bytes[i..].starts_with(b"\"\"\"") => {
                i += 3;
                while i < bytes.len() && !bytes[i..].starts_with(b"\"\"\"") {
                    i += if bytes[i..].starts_with(b"\\\"\"\"") { 4 } else { 1 };
                }
                i += 3;
            }
            b'"' => {
                i += 1;
                while i < bytes.len() && bytes[i] != b'"' && bytes[i] != b'\n' {
                    i += if bytes[i] == b'\\' { 2 } else { 1 };
                }
                i += 1;
            }
            b'{' | b'(' | b'[' => {
                nesting += 1;
                if nesting > MAX_TEXT_NESTING {
                    return Err(Refusal::TooDeep { limit: limits.max_depth });
                }
                i += 1;
            }
            b'}' | b')' | b']' => {
                nesting = nesting.saturating_sub(1);
                i += 1;
            }
            b'.' if bytes[i..].starts_with(b"...") => i += 3,
            c if c.is_ascii_alphanumeric() || c == b'_' || c == b'-' => {
                while i < bytes.len()
                    && (bytes[i].is_ascii_alphanumeric() || matches!(bytes[i], b'_' | b'.' | b'-' | b'+'))
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
        tokens += 1;
        if tokens > limits.max_tokens {
            return Err(Refusal::TooManyTokens { limit: limits.max_tokens });
        }
    }
    Ok(tokens)
}

/// What one selection set (a fragment, an operation) amounts to.
#[derive(Debug, Clone, Copy, Default)]
struct Measure {
    depth: usize,
    aliases: u64,
    directives: u64,
    /// Cost of one instance (multiplied by the list sizes above it).
    cost: u64,
    introspection: bool,
}

impl Measure {
    fn add(&mut self, other: Measure) {
        self.depth = self.depth.max(other.depth);
        self.aliases = self.aliases.saturating_add(other.aliases);
        self.directives = self.directives.saturating_add(other.directives);
        self.cost = self.cost.saturating_add(other.cost);
        self.introspection |= other.introspection;
    }
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    index: &'a TypeIndex,
    variables: &'a Variables,
    defaults: HashMap<&'a str, &'a Value>,
    limits: &'a Limits,
    fragments: HashMap<&'a str, Option<Measure>>,
}

impl<'a> Walk<'a> {
    /// `first` of a field: its literal, its variable's value or default, else the default page.
    fn first(&self, field: &async_graphql::parser::types::Field) -> Result<u64, Refusal> {
        let Some((_, value)) = field.arguments.iter().find(|(n, _)| n.node.as_str() == "first") else {
            return Ok(DEFAULT_PAGE);
        };
        let resolved = value.node.clone().into_const_with(|name| {
            Ok::<_, std::convert::Infallible>(
                self.variables
                    .get(&name)
                    .or_else(|| self.defaults.get(name.as_str()).copied())
                    .cloned()
                    .unwrap_or_default(),
            )
        });
        let number = match resolved {
            Ok(Value::Number(n)) => n.as_i64(),
            // Null or absent: the default page. Not a number: validation answers that.
            _ => return Ok(DEFAULT_PAGE),
        };
        match number {
            Some(n) if n >= 0 && n as u64 <= self.limits.max_first => Ok(n as u64),
            _ => Err(Refusal::PageTooLarge { limit: self.limits.max_first }),
        }
    }

    fn selection_set(&mut self, set: &'a SelectionSet, ty: Option<&'a str>, level: usize) -> Result<Measure, Refusal> {
        if level > MAX_SPREAD_NESTING + self.limits.max_depth {
            return Err(Refusal::TooDeep { limit: self.limits.max_depth });
        }
        let mut total = Measure::default();
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let field = &field.node;
                    let name = field.name.node.as_str();
                    let mut own = Measure {
                        aliases: u64::from(field.alias.is_some()),
                        directives: field.directives.len() as u64,
                        cost: 1,
                        introspection: matches!(name, "__schema" | "__type"),
                        depth: 1,
                    };
                    let shape = self.index.field(ty, name);
                    let times = match shape {
                        Some((f, _)) if f.paged => self.first(field)?,
                        Some((f, in_connection)) if f.list && !in_connection => UNPAGED_LIST_MAX,
                        _ => 1,
                    };
                    if !field.selection_set.node.items.is_empty() {
                        let child_ty = shape.map(|(f, _)| f.ty);
                        let inner = self.selection_set(&field.selection_set.node, child_ty, level + 1)?;
                        own.depth = inner.depth + 1;
                        own.aliases = own.aliases.saturating_add(inner.aliases);
                        own.directives = own.directives.saturating_add(inner.directives);
                        own.cost = own.cost.saturating_add(inner.cost.saturating_mul(times));
                        own.introspection |= inner.introspection;
                    }
                    total.add(own);
                }
                Selection::InlineFragment(fragment) => {
                    let fragment = &fragment.node;
                    let on = fragment.type_condition.as_ref().map(|t| t.node.on.node.as_str()).or(ty);
                    let mut inner = self.selection_set(&fragment.selection_set.node, on, level + 1)?;
                    inner.directives = inner.directives.saturating_add(fragment.directives.len() as u64);
                    total.add(inner);
                }
                Selection::FragmentSpread(spread) => {
                    let spread = &spread.node;
                    let mut inner = self.fragment(&spread.fragment_name.node, level + 1)?;
                    inner.directives = inner.directives.saturating_add(spread.directives.len() as u64);
                    total.add(inner);
                }
            }
        }
        Ok(total)
    }

    /// A fragment's measure, computed once. A fragment that spreads itself (validation
    /// refuses it) or that does not exist counts as nothing here.
    fn fragment(&mut self, name: &Name, level: usize) -> Result<Measure, Refusal> {
        let Some((key, definition)) = self.doc.fragments.get_key_value(name) else { return Ok(Measure::default()) };
        match self.fragments.get(key.as_str()) {
            Some(Some(done)) => return Ok(*done),
            Some(None) => return Ok(Measure::default()),
            None => {}
        }
        self.fragments.insert(key.as_str(), None);
        let on = definition.node.type_condition.node.on.node.as_str();
        let mut measure = self.selection_set(&definition.node.selection_set.node, Some(on), level)?;
        measure.directives = measure.directives.saturating_add(definition.node.directives.len() as u64);
        self.fragments.insert(key.as_str(), Some(measure));
        Ok(measure)
    }
}

fn measure(
    doc: &ExecutableDocument,
    op: &OperationDefinition,
    variables: &Variables,
    index: &TypeIndex,
    limits: &Limits,
) -> Result<Measure, Refusal> {
    let root = match op.ty {
        OperationType::Query => "Query",
        OperationType::Mutation => "Mutation",
        OperationType::Subscription => "Subscription",
    };
    let defaults = op
        .variable_definitions
        .iter()
        .filter_map(|v| v.node.default_value.as_ref().map(|d| (v.node.name.node.as_str(), &d.node)))
        .collect();
    let mut walk = Walk { doc, index, variables, defaults, limits, fragments: HashMap::new() };
    let mut measure = walk.selection_set(&op.selection_set.node, Some(root), 0)?;
    measure.directives = measure.directives.saturating_add(op.directives.len() as u64);
    Ok(measure)
}

/// The document checks: every operation of `doc` must keep every limit.
pub fn check_document(
    doc: &ExecutableDocument,
    variables: &Variables,
    index: &TypeIndex,
    limits: &Limits,
) -> Result<(), Refusal> {
    for (_, operation) in doc.operations.iter() {
        credential_alone(doc, &operation.node)?;
        let measure = measure(doc, &operation.node, variables, index, limits)?;
        if measure.depth > limits.max_depth {
            return Err(Refusal::TooDeep { limit: limits.max_depth });
        }
        if measure.aliases > limits.max_aliases {
            return Err(Refusal::TooManyAliases { limit: limits.max_aliases });
        }
        if measure.directives > limits.max_directives {
            return Err(Refusal::TooManyDirectives { limit: limits.max_directives });
        }
        if measure.introspection && !limits.introspection {
            return Err(Refusal::IntrospectionDisabled);
        }
        if measure.cost > limits.max_cost {
            return Err(Refusal::TooComplex { cost: measure.cost, limit: limits.max_cost });
        }
    }
    Ok(())
}

/// A mutation naming a credential field (directly or through a fragment) has exactly one
/// root selection: that field.
fn credential_alone(doc: &ExecutableDocument, operation: &OperationDefinition) -> Result<(), Refusal> {
    if operation.ty != OperationType::Mutation {
        return Ok(());
    }
    fn names_credential(doc: &ExecutableDocument, set: &SelectionSet, depth: usize) -> bool {
        depth < 8
            && set.items.iter().any(|item| match &item.node {
                Selection::Field(f) => CREDENTIAL_FIELDS.contains(&f.node.name.node.as_str()),
                Selection::InlineFragment(i) => names_credential(doc, &i.node.selection_set.node, depth + 1),
                Selection::FragmentSpread(s) => doc
                    .fragments
                    .get(&s.node.fragment_name.node)
                    .is_some_and(|f| names_credential(doc, &f.node.selection_set.node, depth + 1)),
            })
    }
    let root = &operation.selection_set.node;
    if !names_credential(doc, root, 0) {
        return Ok(());
    }
    match root.items.as_slice() {
        [only] if matches!(only.node, Selection::Field(_)) => Ok(()),
        _ => Err(Refusal::CredentialNotAlone),
    }
}

/// The cost of a document (its most expensive operation), without the other limits: for
/// tests and benches that show how far below the limit a workload is.
pub fn cost_of(doc: &ExecutableDocument, variables: &Variables, index: &TypeIndex) -> Result<u64, Refusal> {
    let limits = Limits { max_cost: u64::MAX, max_depth: 1_000, max_first: u64::MAX, ..Limits::default() };
    let mut worst = 0;
    for (_, operation) in doc.operations.iter() {
        worst = worst.max(measure(doc, &operation.node, variables, index, &limits)?.cost);
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn index() -> TypeIndex {
        TypeIndex::of(&crate::graphql::catalog())
    }

    fn cost(query: &str) -> u64 {
        let doc = async_graphql::parser::parse_query(query).expect("parses");
        cost_of(&doc, &Variables::default(), &index()).expect("measured")
    }

    #[test]
    fn cost_multiplies_by_first_and_by_the_unpaged_maximum() {
        assert_eq!(cost("{ viewer { id } }"), 2);
        // coachees: 1, nodes: 10 x (1 + id 1) = 20 under first: 10.
        assert_eq!(cost("{ coachees(first: 10) { nodes { id } } }"), 1 + 10 * 2);
        assert_eq!(cost("{ coachees { nodes { id } } }"), 1 + DEFAULT_PAGE * 2);
        assert_eq!(cost("{ me { goals { id } } }"), 1 + 1 + UNPAGED_LIST_MAX);
        // A fragment costs what its fields cost, where it is spread.
        assert_eq!(cost("{ coachees(first: 10) { ...N } } fragment N on UserConnection { nodes { id } }"), 21);
    }

    #[test]
    fn the_text_scan_counts_tokens_and_nesting_outside_strings() {
        let limits = Limits { max_tokens: 6, ..Limits::default() };
        assert!(check_text("{ a { b } }", &limits).is_ok());
        // `{ a ( s : "..." ) }`: eight tokens, the string one of them, its braces none.
        let eight = Limits { max_tokens: 8, ..Limits::default() };
        assert!(check_text("{ a(s: \"{{{{{{{{ many words here }}}}\") }", &eight).is_ok());
        assert!(check_text("{ a(s: \"\"\"{{{{ \\\"\"\" }}}}\"\"\") }", &eight).is_ok());
        assert_eq!(check_text("{ a b c d e f }", &limits), Err(Refusal::TooManyTokens { limit: 6 }));
        let deep = format!("{}{}", "{a".repeat(100), "}".repeat(100));
        assert_eq!(check_text(&deep, &Limits::default()), Err(Refusal::TooDeep { limit: 16 }));
    }
}
