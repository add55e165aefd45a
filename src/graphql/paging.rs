//! Relay-style connections: `first`/`after`, `nodes`, `pageInfo`, `totalCount`, with a
//! maximum page size (smaller for the AI principal, whose list queries are capped).
//! Cursors are sealed keyset positions (see [`crate::domain::paging`]); `totalCount` and
//! `hasNextPage` cost nothing unless the selection asks for them.

use crate::graphql::decl::Ty;
use crate::graphql::decl::ty;
use std::any::Any;
use std::sync::Arc;

use async_graphql::Value;
use async_graphql::dynamic::{FieldFuture, FieldValue};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::decl::{FieldDecl, ObjectDecl};
use super::mutation::Args;
use super::schema::{leaf, resolver};
use crate::domain::paging::{SortKey, Window};
use crate::error::{AppError, AppResult};
use crate::identity::token::TokenKeys;
use crate::kinds::Role;
use serde::{Deserialize, Serialize};

pub const DEFAULT_PAGE: u64 = 20;
pub const MAX_PAGE: u64 = 100;
/// POLICY.md section 5: the AI principal's list queries are capped.
pub const MAX_PAGE_AI: u64 = 25;

/// Longest cursor accepted (a name-ordered list's cursor holds the name).
const MAX_CURSOR: usize = 1024;
/// The furthest position a positional cursor may name (the database takes a signed offset).
pub const MAX_SKIP: u64 = 1 << 40;
/// Length of a cursor's integrity tag (HMAC-SHA256).
const TAG_LEN: usize = 32;

/// Where a page of a list starts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Position {
    /// Keyset lists: after the row with this key.
    After(SortKey),
    /// The logs (audit, AI access), paged by position: after this many rows.
    Skip(u64),
}

/// A validated page request of the list named `list`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page {
    pub list: &'static str,
    pub limit: u64,
    pub after: Option<Position>,
    /// The selection asks for `pageInfo.hasNextPage`.
    pub probe_next: bool,
    /// The selection asks for `totalCount`.
    pub count: bool,
}

impl Page {
    /// `first` and `after` of a field's arguments; `after` must be a cursor this server
    /// issued for the same list, unaltered.
    pub fn from(args: &Args, role: Option<Role>, list: &'static str) -> AppResult<Page> {
        let max = if role == Some(Role::AiAgent) { MAX_PAGE_AI } else { MAX_PAGE };
        let limit = match args.opt_int("first", i64::MIN..=i64::MAX)? {
            None => DEFAULT_PAGE.min(max),
            Some(n) if n < 0 => return Err(AppError::bad_input("first must not be negative")),
            Some(n) if n as u64 > max => {
                return Err(AppError::bad_input(format!("first must be at most {max}")));
            }
            Some(n) => n as u64,
        };
        let after = match args.opt_text("after", MAX_CURSOR)? {
            None => None,
            Some(cursor) => Some(
                open_cursor(args.keys()?, list, &cursor)
                    .ok_or_else(|| AppError::bad_input("after is not a valid cursor of this list"))?,
            ),
        };
        let wants = args.wants();
        Ok(Page { list, limit, after, probe_next: wants.next_page, count: wants.total_count })
    }

    /// The window of a keyset list.
    pub fn window(&self) -> AppResult<Window> {
        let after = match &self.after {
            None => None,
            Some(Position::After(key)) => Some(key.clone()),
            Some(Position::Skip(_)) => return Err(AppError::bad_input("after is not a valid cursor of this list")),
        };
        Ok(Window { limit: self.limit, after, probe_next: self.probe_next, count: self.count })
    }

    /// Rows to skip in a positional list.
    pub fn skip(&self) -> AppResult<u64> {
        match &self.after {
            None => Ok(0),
            Some(Position::Skip(n)) if *n <= MAX_SKIP => Ok(*n),
            // Only a cursor sealed with the server's key gets here; no list is this long.
            Some(Position::Skip(_)) => Err(AppError::bad_input("after is out of range")),
            Some(Position::After(_)) => Err(AppError::bad_input("after is not a valid cursor of this list")),
        }
    }
}

/// `base64url(payload || HMAC(payload))`, the payload naming the list: opaque to clients,
/// and refused when forged, edited or taken from another list.
fn seal_cursor(keys: &TokenKeys, list: &str, position: &Position) -> String {
    let mut bytes = serde_json::to_vec(&(list, position)).unwrap_or_default();
    let tag = keys.cursor_tag(&bytes);
    bytes.extend_from_slice(&tag);
    URL_SAFE_NO_PAD.encode(bytes)
}

fn open_cursor(keys: &TokenKeys, list: &str, cursor: &str) -> Option<Position> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    let split = raw.len().checked_sub(TAG_LEN)?;
    let (payload, tag) = raw.split_at(split);
    if !keys.cursor_tag_matches(payload, tag) {
        return None;
    }
    let (named, position): (String, Position) = serde_json::from_slice(payload).ok()?;
    (named == list).then_some(position)
}

/// One page of rows.
#[derive(Debug, Clone)]
pub struct Connection<T> {
    pub nodes: Vec<T>,
    pub has_next_page: bool,
    /// The page's end, sealed into a cursor only when `endCursor` is selected (a dashboard
    /// has a nested connection per coachee and asks for none of their cursors).
    end: Option<EndOf>,
    pub total_count: Option<u64>,
}

/// Where a page ends, in the list named `list`.
#[derive(Debug, Clone)]
struct EndOf {
    list: &'static str,
    position: Position,
}

impl<T> Connection<T> {
    /// A keyset page: the end cursor is the last node's key.
    pub fn keyset(
        page: &Page,
        nodes: Vec<T>,
        has_next: Option<bool>,
        total: Option<u64>,
        key_of: impl Fn(&T) -> SortKey,
    ) -> Self {
        let end = nodes.last().map(|last| EndOf { list: page.list, position: Position::After(key_of(last)) });
        Self { nodes, has_next_page: has_next.unwrap_or(false), end, total_count: total }
    }

    /// A positional page (the logs), with the list's length known.
    pub fn positional(page: &Page, skipped: u64, nodes: Vec<T>, total: u64) -> Self {
        let end = skipped + nodes.len() as u64;
        Self {
            has_next_page: end < total,
            end: (!nodes.is_empty()).then_some(EndOf { list: page.list, position: Position::Skip(end) }),
            nodes,
            total_count: Some(total),
        }
    }
}

#[derive(Debug, Clone)]
struct PageInfoView {
    has_next_page: bool,
    end: Option<EndOf>,
}

pub fn declare_page_info(c: &mut super::Catalog) {
    c.object(
        ObjectDecl::structural("PageInfo")
            .field(FieldDecl::structural(
                "hasNextPage",
                ty::req("Boolean"),
                leaf(|_, p: &PageInfoView| Ok(Some(Value::Boolean(p.has_next_page)))),
            ))
            .field(FieldDecl::structural(
                "endCursor",
                ty::opt("String"),
                resolver(|rc| {
                    FieldFuture::new(async move {
                        let p = rc.parent_value.try_downcast_ref::<PageInfoView>()?;
                        let Some(end) = &p.end else { return Ok(None) };
                        let keys = rc.data::<Arc<TokenKeys>>()?;
                        Ok(Some(FieldValue::value(Value::String(seal_cursor(keys, end.list, &end.position)))))
                    })
                }),
            )),
    );
}

/// Declares `<Name>Connection { nodes: [<Node>!]! pageInfo totalCount }` for node values of
/// Rust type `T` (each node is passed on as `FieldValue::owned_any(T)`).
pub fn connection_decl<T: Any + Clone + Send + Sync>(name: &'static str, nodes_ty: Ty) -> ObjectDecl {
    ObjectDecl::structural(name)
        .field(FieldDecl::structural(
            "nodes",
            nodes_ty,
            resolver(|rc| {
                FieldFuture::new(async move {
                    let c = rc.parent_value.try_downcast_ref::<Connection<T>>()?;
                    Ok(Some(FieldValue::list(c.nodes.iter().cloned().map(FieldValue::owned_any))))
                })
            }),
        ))
        .field(FieldDecl::structural(
            "pageInfo",
            ty::req("PageInfo"),
            resolver(|rc| {
                FieldFuture::new(async move {
                    let c = rc.parent_value.try_downcast_ref::<Connection<T>>()?;
                    Ok(Some(FieldValue::owned_any(PageInfoView { has_next_page: c.has_next_page, end: c.end.clone() })))
                })
            }),
        ))
        .field(FieldDecl::structural(
            "totalCount",
            ty::opt("Int"),
            leaf(|_, c: &Connection<T>| Ok(c.total_count.map(|t| Value::from(t as i64)))),
        ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> TokenKeys {
        TokenKeys::new(&[7u8; 32], "iss", "aud").expect("keys")
    }

    #[test]
    fn cursors_open_only_for_their_own_list_and_unaltered() {
        let keys = keys();
        let at = SortKey::At(chrono::DateTime::<chrono::Utc>::MIN_UTC, uuid::Uuid::nil());
        let cursor = seal_cursor(&keys, "sessions", &Position::After(at.clone()));
        assert_eq!(open_cursor(&keys, "sessions", &cursor), Some(Position::After(at)));
        assert_eq!(open_cursor(&keys, "actionItems", &cursor), None, "another list's cursor");
        let mut raw = URL_SAFE_NO_PAD.decode(&cursor).expect("base64");
        raw[3] ^= 1;
        assert_eq!(open_cursor(&keys, "sessions", &URL_SAFE_NO_PAD.encode(&raw)), None, "edited payload");
        let other = TokenKeys::new(&[8u8; 32], "iss", "aud").expect("keys");
        assert_eq!(open_cursor(&other, "sessions", &cursor), None, "another server's key");
        for garbage in ["", "garbage", "bzoxMA", &"A".repeat(300)] {
            assert_eq!(open_cursor(&keys, "sessions", garbage), None, "{garbage}");
        }
    }
}
