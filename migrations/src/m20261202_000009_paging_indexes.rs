//! Indexes in the exact order of the paged lists: a coachee's sessions newest first and
//! its action items newest first, ties broken by id. A page of a nested connection
//! (`coachees { sessions(first: 5) }`) is then an index range read that stops after the
//! page, per coachee, instead of reading and sorting every row of each coachee.

use sea_orm_migration::prelude::*;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261202_000009_paging_indexes"
    }
}

/// (index, table, key column) of each paged list; the key descends, the id ascends.
const PAGED: &[(&str, &str, &str)] = &[
    ("coaching_sessions_page_by_coachee", "coaching_sessions", "scheduled_at"),
    ("action_items_page_by_coachee", "action_items", "created_at"),
];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, key) in PAGED {
            let index = Index::create()
                .name(*name)
                .table(Alias::new(*table))
                .col(Alias::new("tenant_id"))
                .col(Alias::new("coachee_id"))
                .col((Alias::new(*key), IndexOrder::Desc))
                .col(Alias::new("id"))
                .to_owned();
            manager.create_index(index).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table, _) in PAGED {
            manager.drop_index(Index::drop().name(*name).table(Alias::new(*table)).to_owned()).await?;
        }
        Ok(())
    }
}
