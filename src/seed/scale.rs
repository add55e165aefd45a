//! Scale data for benchmarks: tenants of any size with the shape of the demo data (every
//! kind of coaching content, consents in a mix of states), written fast.
//!
//! - **Deterministic.** Every id is a UUID v5 of the row's indices (`t1/session/17/3`:
//!   tenant 1, coachee 17, session 3) under [`SCALE_NAMESPACE`], the same on every backend
//!   and every run; every account shares one precomputed password hash
//!   ([`SCALE_PASSWORD_HASH`], of [`SCALE_PASSWORD`]), so the data does not depend on a
//!   random salt either. Only the dates follow `now`.
//! - **Accounts.** Per tenant `t`: `coach{n}@t{t}.scale.test` (n = 1..=coaches),
//!   `coachee{n}@t{t}.scale.test` (n = 1..=coaches * coachees_per_coach; coachee n is
//!   assigned to coach `(n - 1) / coachees_per_coach + 1`), `admin{n}@...` (PROGRAM_ADMIN),
//!   `exec{n}@...` (EXECUTIVE) and `ai@t{t}.scale.test` (AI_AGENT).
//! - **Fast.** One transaction; each table is written in multi-row INSERTs as large as the
//!   backend's bind-parameter limit allows (PostgreSQL 65,535, SQLite 32,766).
//! - **Not written:** the logs and the state of running systems: `audit_events` (a hash
//!   chain per tenant, written by the application as things happen), `ai_access_log`,
//!   `access_notices`, break-glass requests and grants, AI action proposals, integration
//!   tokens and auth sessions, as the demo data does not either.

use std::time::Instant;

use chrono::{DateTime, Duration, Utc};
use indicatif::ProgressBar;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbBackend, EntityTrait, IntoActiveModel, Iterable, QueryFilter,
    TransactionTrait,
};
use uuid::Uuid;

use crate::db::Db;
use crate::db::entities::*;
use crate::error::AppResult;
use crate::kinds::*;

/// The password of every scale account.
pub const SCALE_PASSWORD: &str = "coachgraph-scale";

/// PBKDF2-HMAC-SHA256 of [`SCALE_PASSWORD`], 600,000 rounds, salt `coachgraph-scale`:
/// computed once (hashing thousands of passwords at 600,000 rounds would take hours).
pub const SCALE_PASSWORD_HASH: &str =
    "$pbkdf2-sha256$i=600000,l=32$Y29hY2hncmFwaC1zY2FsZQ$9cOSL0mrSpQIQ5axgxbNh6bhYtsiCC4KgKhpnO/5PO0";

/// `system_config` key present when scale data was loaded (production refuses to start on
/// it, as on the demo data: the password is public).
pub const SCALE_MARKER_KEY: &str = "scale_data";

/// The namespace of every scale id (UUID v5).
pub const SCALE_NAMESPACE: Uuid = Uuid::from_u128(0x3c41_9d7e_52a8_4f06_b1e3_7a90_c4d2_58f1);

/// The id of the scale row named `name` (`t1/user/coach3`, `t1/session/17/3`, ...).
pub fn scale_id(name: &str) -> Uuid {
    Uuid::new_v5(&SCALE_NAMESPACE, name.as_bytes())
}

/// How much to write. Per tenant: `coaches` coaches with `coachees_per_coach` coachees
/// each, `sessions_per_coachee` sessions per coachee over about twelve months (the last
/// one still ahead), `admins` program admins, `executives` executives and one AI agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub tenants: usize,
    pub coaches: usize,
    pub coachees_per_coach: usize,
    pub sessions_per_coachee: usize,
    pub admins: usize,
    pub executives: usize,
}

impl Default for Shape {
    /// 10,000 coachees and 200,000 sessions in one tenant.
    fn default() -> Self {
        Shape { tenants: 1, coaches: 400, coachees_per_coach: 25, sessions_per_coachee: 20, admins: 8, executives: 8 }
    }
}

impl Shape {
    /// Coachees per tenant.
    pub fn coachees(&self) -> usize {
        self.coaches * self.coachees_per_coach
    }

    /// Accounts per tenant (coaches, coachees, admins, executives, the AI agent).
    pub fn accounts(&self) -> usize {
        self.coaches + self.coachees() + self.admins + self.executives + 1
    }

    /// The coach (1-based) of coachee `n` (1-based).
    pub fn coach_of(&self, n: usize) -> usize {
        (n - 1) / self.coachees_per_coach.max(1) + 1
    }
}

pub fn tenant_slug(t: usize) -> String {
    format!("scale{t}")
}

pub fn tenant_id(t: usize) -> Uuid {
    scale_id(&format!("t{t}/tenant"))
}

/// `coach{n}@t{t}.scale.test` and the like: `who` is `coach`, `coachee`, `admin`, `exec`
/// with its number, or `ai`.
pub fn email(who: &str, t: usize) -> String {
    format!("{who}@t{t}.scale.test")
}

pub fn user_id(who: &str, t: usize) -> Uuid {
    scale_id(&format!("t{t}/user/{who}"))
}

/// Rows written to one table, and how long it took.
#[derive(Debug, Clone, PartialEq)]
pub struct TableRows {
    pub table: &'static str,
    pub rows: u64,
    pub seconds: f64,
}

/// Rows written per table, in the order they were written.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Report {
    pub tables: Vec<TableRows>,
}

impl Report {
    pub fn rows(&self, table: &str) -> u64 {
        self.tables.iter().filter(|t| t.table == table).map(|t| t.rows).sum()
    }
    pub fn total(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// One session of the plan: coachee `n` (its coach `coach`), its `j`-th session.
#[derive(Debug, Clone, Copy)]
struct Session {
    t: usize,
    n: usize,
    j: usize,
    coach: usize,
    at: DateTime<Utc>,
    status: SessionStatus,
}

impl Session {
    fn name(&self) -> String {
        format!("t{}/{}/{}", self.t, self.n, self.j)
    }
    fn id(&self) -> Uuid {
        scale_id(&format!("t{}/session/{}/{}", self.t, self.n, self.j))
    }
    fn completed(&self) -> bool {
        self.status == SessionStatus::Completed
    }
}

/// The ids of one tenant's people, computed once.
struct Cast {
    tenant: Uuid,
    coaches: Vec<Uuid>,
    coachees: Vec<Uuid>,
    ai: Uuid,
}

impl Cast {
    fn new(shape: &Shape, t: usize) -> Cast {
        Cast {
            tenant: tenant_id(t),
            coaches: (1..=shape.coaches).map(|n| user_id(&format!("coach{n}"), t)).collect(),
            coachees: (1..=shape.coachees()).map(|n| user_id(&format!("coachee{n}"), t)).collect(),
            ai: user_id("ai", t),
        }
    }
    fn coach(&self, n: usize) -> Uuid {
        self.coaches[n - 1]
    }
    fn coachee(&self, n: usize) -> Uuid {
        self.coachees[n - 1]
    }
}

struct Plan {
    shape: Shape,
    now: DateTime<Utc>,
    casts: Vec<Cast>,
}

impl Plan {
    /// Every session: about twelve months, evenly spaced per coachee (a few hours apart
    /// between coachees), the last one two weeks ahead; past sessions are completed except
    /// one in ten, cancelled.
    fn sessions(&self) -> impl Iterator<Item = Session> + '_ {
        let s = self.shape.sessions_per_coachee;
        let spacing = Duration::seconds(360 * 86_400 / s.max(1) as i64);
        (1..=self.shape.tenants).flat_map(move |t| {
            (1..=self.shape.coachees()).flat_map(move |n| {
                (0..s).map(move |j| {
                    let at = self.now + Duration::days(14) - spacing * (s - 1 - j) as i32
                        + Duration::hours((n % 72) as i64)
                        + Duration::seconds(t as i64);
                    let status = if at > self.now {
                        SessionStatus::Scheduled
                    } else if (n + j) % 10 == 3 {
                        SessionStatus::Cancelled
                    } else {
                        SessionStatus::Completed
                    };
                    Session { t, n, j, coach: self.shape.coach_of(n), at, status }
                })
            })
        })
    }

    fn completed(&self) -> impl Iterator<Item = Session> + '_ {
        self.sessions().filter(Session::completed)
    }

    fn cast(&self, t: usize) -> &Cast {
        &self.casts[t - 1]
    }

    /// Every coachee of every tenant: (tenant, coachee number).
    fn coachees(&self) -> impl Iterator<Item = (usize, usize)> + '_ {
        (1..=self.shape.tenants).flat_map(move |t| (1..=self.shape.coachees()).map(move |n| (t, n)))
    }
}

/// Writes `rows` in multi-row INSERTs as large as the backend's bind-parameter limit allows.
async fn put<E>(
    conn: &impl ConnectionTrait,
    table: &'static str,
    rows: Vec<E::Model>,
    progress: &ProgressBar,
    report: &mut Report,
) -> AppResult<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel>,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    let limit = match conn.get_database_backend() {
        DbBackend::Sqlite => 32_766,
        _ => 65_535,
    };
    let per_insert = (limit / E::Column::iter().count().max(1)).max(1);
    let total = rows.len() as u64;
    progress.set_message(table);
    progress.set_length(total);
    progress.set_position(0);
    let started = Instant::now();
    let mut rows = rows.into_iter().peekable();
    while rows.peek().is_some() {
        let chunk: Vec<E::ActiveModel> =
            rows.by_ref().take(per_insert).map(|m| m.into_active_model().reset_all()).collect();
        let n = chunk.len() as u64;
        E::insert_many(chunk).exec_without_returning(conn).await?;
        progress.inc(n);
    }
    report.tables.push(TableRows { table, rows: total, seconds: started.elapsed().as_secs_f64() });
    Ok(())
}

/// Whether scale data is present (its first tenant exists).
pub async fn scale_present(db: &Db) -> AppResult<bool> {
    Ok(tenants::Entity::find().filter(tenants::Column::Slug.eq(tenant_slug(1))).one(db.raw()).await?.is_some())
}

/// Loads scale data of `shape` through `db` (the owner connection on PostgreSQL), all or
/// nothing, with `now` anchoring every date; `progress` follows each table (pass
/// `ProgressBar::hidden()` for none). `None` when scale data is already present.
pub async fn seed_scale(
    db: &Db,
    shape: Shape,
    now: DateTime<Utc>,
    progress: &ProgressBar,
) -> AppResult<Option<Report>> {
    if scale_present(db).await? {
        return Ok(None);
    }
    let plan = Plan { shape, now, casts: (1..=shape.tenants).map(|t| Cast::new(&shape, t)).collect() };
    let mut report = Report::default();
    let txn = db.raw().begin().await?;
    let r = &mut report;
    let p = progress;

    put::<tenants::Entity>(&txn, "tenants", tenants(&plan), p, r).await?;
    put::<tenant_settings::Entity>(&txn, "tenant_settings", settings(&plan), p, r).await?;
    put::<users::Entity>(&txn, "users", users(&plan), p, r).await?;
    put::<coach_assignments::Entity>(&txn, "coach_assignments", assignments(&plan), p, r).await?;
    let bulk = db.backend() == DbBackend::Postgres;
    if bulk {
        // PostgreSQL: the rollup triggers are off while the rows go in (a row trigger per
        // row would cost most of the load), and the rollups are built once at the end, in
        // the same transaction, so no one ever sees rows without their rollups.
        for table in migrations::ROLLED_UP_TABLES {
            txn.execute_unprepared(&format!("ALTER TABLE {table} DISABLE TRIGGER USER")).await?;
        }
    }
    put::<consents::Entity>(&txn, "consents", consents(&plan), p, r).await?;
    put::<consent_history::Entity>(&txn, "consent_history", consent_history(&plan), p, r).await?;
    put::<coaching_sessions::Entity>(&txn, "coaching_sessions", sessions(&plan), p, r).await?;
    put::<session_summaries::Entity>(&txn, "session_summaries", summaries(&plan), p, r).await?;
    put::<session_private_notes::Entity>(&txn, "session_private_notes", private_notes(&plan), p, r).await?;
    put::<transcripts::Entity>(&txn, "transcripts", transcripts(&plan), p, r).await?;
    put::<insights::Entity>(&txn, "insights", insights(&plan), p, r).await?;
    put::<evidence_packs::Entity>(&txn, "evidence_packs", evidence_packs(&plan), p, r).await?;
    put::<action_items::Entity>(&txn, "action_items", action_items(&plan), p, r).await?;
    put::<goals::Entity>(&txn, "goals", goals(&plan), p, r).await?;
    put::<coach_notes::Entity>(&txn, "coach_notes", coach_notes(&plan), p, r).await?;
    put::<ai_feedback::Entity>(&txn, "ai_feedback", feedback(&plan), p, r).await?;
    if bulk {
        let slugs: Vec<String> = (1..=shape.tenants).map(|t| format!("'{}'", tenant_slug(t))).collect();
        let scale_tenants = format!("tenant_id IN (SELECT id FROM tenants WHERE slug IN ({}))", slugs.join(", "));
        for statement in migrations::rollup_backfill_where(DbBackend::Postgres, &scale_tenants) {
            txn.execute_unprepared(&statement).await?;
        }
        for table in migrations::ROLLED_UP_TABLES {
            txn.execute_unprepared(&format!("ALTER TABLE {table} ENABLE TRIGGER USER")).await?;
        }
    }
    if system_config::Entity::find_by_id(SCALE_MARKER_KEY.to_owned()).one(&txn).await?.is_none() {
        let marker = system_config::Model {
            key: SCALE_MARKER_KEY.to_owned(),
            value: format!("{shape:?}"),
            updated_at: now,
            updated_by: None,
        };
        put::<system_config::Entity>(&txn, "system_config", vec![marker], p, r).await?;
    }
    txn.commit().await?;
    if db.backend() == DbBackend::Postgres {
        // Fresh statistics, so that the first queries are planned for the data's size.
        db.raw().execute_unprepared("ANALYZE").await?;
    }
    progress.finish_and_clear();
    Ok(Some(report))
}

// ------------------------------------------------------------------------ rows per table

fn tenants(plan: &Plan) -> Vec<tenants::Model> {
    (1..=plan.shape.tenants)
        .map(|t| tenants::Model {
            id: tenant_id(t),
            slug: tenant_slug(t),
            name: format!("Scale Tenant {t}"),
            created_at: plan.now - Duration::days(400),
        })
        .collect()
}

fn settings(plan: &Plan) -> Vec<tenant_settings::Model> {
    (1..=plan.shape.tenants)
        .map(|t| tenant_settings::Model {
            tenant_id: tenant_id(t),
            session_timeout_minutes: 30,
            audit_retention_days: 90,
            data_retention_days: Some(730),
            device_session_days: crate::identity::device::DEFAULT_DEVICE_SESSION_DAYS,
            updated_at: plan.now - Duration::days(400),
        })
        .collect()
}

fn users(plan: &Plan) -> Vec<users::Model> {
    let shape = &plan.shape;
    let mut out = Vec::with_capacity(shape.tenants * shape.accounts());
    let at = plan.now - Duration::days(400);
    for t in 1..=shape.tenants {
        let mut people: Vec<(String, String, Role)> = Vec::with_capacity(shape.accounts());
        people.extend((1..=shape.coaches).map(|n| (format!("coach{n}"), format!("Coach {n}"), Role::Coach)));
        people.extend((1..=shape.coachees()).map(|n| (format!("coachee{n}"), format!("Coachee {n}"), Role::Coachee)));
        people.extend(
            (1..=shape.admins).map(|n| (format!("admin{n}"), format!("Program admin {n}"), Role::ProgramAdmin)),
        );
        people.extend((1..=shape.executives).map(|n| (format!("exec{n}"), format!("Executive {n}"), Role::Executive)));
        people.push(("ai".to_owned(), "Sasha".to_owned(), Role::AiAgent));
        out.extend(people.into_iter().map(|(who, name, role)| users::Model {
            id: user_id(&who, t),
            tenant_id: Some(tenant_id(t)),
            email: email(&who, t),
            display_name: format!("{name} (Scale {t})"),
            role,
            status: UserStatus::Active,
            password_hash: Some(SCALE_PASSWORD_HASH.to_owned()),
            failed_login_count: 0,
            locked_until: None,
            last_login_at: None,
            password_changed_at: None,
            created_at: at,
            updated_at: at,
        }));
    }
    out
}

/// The coach's per-relationship AI level for coachee `n`.
fn ai_level(n: usize) -> AiLevel {
    [AiLevel::Off, AiLevel::Observe, AiLevel::Analyze, AiLevel::Act][n % 4]
}

fn assignments(plan: &Plan) -> Vec<coach_assignments::Model> {
    plan.coachees()
        .map(|(t, n)| {
            let cast = plan.cast(t);
            let coach = plan.shape.coach_of(n);
            coach_assignments::Model {
                id: scale_id(&format!("t{t}/assignment/{n}")),
                tenant_id: cast.tenant,
                coach_id: cast.coach(coach),
                coachee_id: cast.coachee(n),
                active: true,
                ai_level: ai_level(n),
                created_at: plan.now - Duration::days(380) + Duration::seconds(n as i64),
                ended_at: None,
            }
        })
        .collect()
}

/// Coachee `n`'s consents, as in the demo mix: OBSERVE unless n % 3 == 0, ANALYZE when even,
/// ACT when n % 4 == 0, TRANSCRIPT_SHARING when odd; one in seventeen withdrew OBSERVE.
/// (kind, granted now, ever granted).
fn consent_states(n: usize) -> [(ConsentKind, bool, bool); 4] {
    let withdrew = n % 17 == 5;
    [
        (ConsentKind::SashaObserve, !n.is_multiple_of(3) && !withdrew, !n.is_multiple_of(3) || withdrew),
        (ConsentKind::SashaAnalyze, n.is_multiple_of(2) && !withdrew, n.is_multiple_of(2)),
        (ConsentKind::SashaAct, n.is_multiple_of(4) && !withdrew, n.is_multiple_of(4)),
        (ConsentKind::TranscriptSharing, n % 2 == 1, n % 2 == 1),
    ]
}

fn consent_changed_at(plan: &Plan, n: usize) -> DateTime<Utc> {
    plan.now - Duration::days(20 + (n % 30) as i64)
}

fn consents(plan: &Plan) -> Vec<consents::Model> {
    let mut out = Vec::new();
    for (t, n) in plan.coachees() {
        let cast = plan.cast(t);
        for (kind, granted, ever) in consent_states(n) {
            if ever {
                out.push(consents::Model {
                    id: scale_id(&format!("t{t}/consent/{n}/{kind:?}")),
                    tenant_id: cast.tenant,
                    coachee_id: cast.coachee(n),
                    kind,
                    granted,
                    changed_at: consent_changed_at(plan, n),
                });
            }
        }
    }
    out
}

fn consent_history(plan: &Plan) -> Vec<consent_history::Model> {
    let mut out = Vec::new();
    for (t, n) in plan.coachees() {
        let cast = plan.cast(t);
        let changed_at = consent_changed_at(plan, n);
        for (kind, granted, ever) in consent_states(n) {
            if !ever {
                continue;
            }
            let row = |state: &str, granted: bool, at: DateTime<Utc>| consent_history::Model {
                id: scale_id(&format!("t{t}/consent-history/{n}/{kind:?}/{state}")),
                tenant_id: cast.tenant,
                coachee_id: cast.coachee(n),
                kind,
                granted,
                changed_at: at,
                changed_by: cast.coachee(n),
            };
            out.push(row("granted", true, changed_at - Duration::days(300)));
            if !granted {
                out.push(row("withdrawn", false, changed_at));
            }
        }
    }
    out
}

fn sessions(plan: &Plan) -> Vec<coaching_sessions::Model> {
    plan.sessions()
        .map(|s| {
            let cast = plan.cast(s.t);
            coaching_sessions::Model {
                id: s.id(),
                tenant_id: cast.tenant,
                coach_id: cast.coach(s.coach),
                coachee_id: cast.coachee(s.n),
                scheduled_at: s.at,
                duration_minutes: 45 + 15 * (s.j as i32 % 2),
                status: s.status,
                created_at: s.at - Duration::days(21),
                updated_at: if s.at > plan.now { s.at - Duration::days(21) } else { s.at + Duration::hours(2) },
            }
        })
        .collect()
}

fn summaries(plan: &Plan) -> Vec<session_summaries::Model> {
    plan.completed()
        .map(|s| {
            let cast = plan.cast(s.t);
            session_summaries::Model {
                id: scale_id(&format!("{}/summary", s.name())),
                tenant_id: cast.tenant,
                session_id: s.id(),
                coachee_id: cast.coachee(s.n),
                coach_id: cast.coach(s.coach),
                body: format!(
                    "Summary of session {} with coachee {}: progress on delegation; next, clearer priorities.",
                    s.j + 1,
                    s.n
                ),
                created_at: s.at + Duration::hours(2),
                updated_at: s.at + Duration::hours(2),
            }
        })
        .collect()
}

fn private_notes(plan: &Plan) -> Vec<session_private_notes::Model> {
    plan.completed()
        .map(|s| {
            let cast = plan.cast(s.t);
            session_private_notes::Model {
                id: scale_id(&format!("{}/private-note", s.name())),
                tenant_id: cast.tenant,
                session_id: s.id(),
                coachee_id: cast.coachee(s.n),
                coach_id: cast.coach(s.coach),
                body: format!("Private note of coach {} on session {} with coachee {}.", s.coach, s.j + 1, s.n),
                created_at: s.at + Duration::hours(1),
                updated_at: s.at + Duration::hours(1),
            }
        })
        .collect()
}

fn transcripts(plan: &Plan) -> Vec<transcripts::Model> {
    plan.completed()
        .filter(|s| s.j % 2 == 0)
        .map(|s| {
            let cast = plan.cast(s.t);
            transcripts::Model {
                id: scale_id(&format!("{}/transcript", s.name())),
                tenant_id: cast.tenant,
                session_id: s.id(),
                coachee_id: cast.coachee(s.n),
                body: format!(
                    "Transcript of session {} with coachee {}. Coach: How did the week go? Coachee: Better; \
                     the team meeting was calmer.",
                    s.j + 1,
                    s.n
                ),
                created_at: s.at + Duration::hours(1),
            }
        })
        .collect()
}

fn approved_insight_id(s: &Session) -> Uuid {
    scale_id(&format!("{}/insight/approved", s.name()))
}

/// An approved insight per completed session; a draft (the AI's when the coachee granted
/// SASHA_ANALYZE, else the coach's) on every third.
fn insights(plan: &Plan) -> Vec<insights::Model> {
    let mut out = Vec::new();
    for s in plan.completed() {
        let cast = plan.cast(s.t);
        let coach = cast.coach(s.coach);
        out.push(insights::Model {
            id: approved_insight_id(&s),
            tenant_id: cast.tenant,
            session_id: s.id(),
            coachee_id: cast.coachee(s.n),
            author_id: coach,
            author_role: Role::Coach,
            body: format!(
                "Approved insight {} for coachee {}: energy rises when priorities are explicit.",
                s.j + 1,
                s.n
            ),
            status: InsightStatus::Approved,
            approved_at: Some(s.at + Duration::days(1)),
            approved_by: Some(coach),
            created_at: s.at + Duration::hours(3),
            updated_at: s.at + Duration::days(1),
        });
        if s.j % 3 == 0 {
            let by_ai = s.n % 2 == 0 && s.j % 2 == 0;
            out.push(insights::Model {
                id: scale_id(&format!("{}/insight/draft", s.name())),
                tenant_id: cast.tenant,
                session_id: s.id(),
                coachee_id: cast.coachee(s.n),
                author_id: if by_ai { cast.ai } else { coach },
                author_role: if by_ai { Role::AiAgent } else { Role::Coach },
                body: format!("Draft insight {} for coachee {}: possible avoidance of conflict.", s.j + 1, s.n),
                status: InsightStatus::Draft,
                approved_at: None,
                approved_by: None,
                created_at: s.at + Duration::hours(3) + Duration::seconds(1),
                updated_at: s.at + Duration::hours(3) + Duration::seconds(1),
            });
        }
    }
    out
}

/// Every fourth completed session: an approved L0 pack and an L1 pack, approved on every
/// eighth.
fn evidence_packs(plan: &Plan) -> Vec<evidence_packs::Model> {
    let mut out = Vec::new();
    for s in plan.completed().filter(|s| s.j % 4 == 0) {
        let cast = plan.cast(s.t);
        for (p, (level, approved)) in
            [(EvidenceLevel::L0, true), (EvidenceLevel::L1, s.j % 8 == 0)].into_iter().enumerate()
        {
            let state = if approved { "approved" } else { "pending" };
            out.push(evidence_packs::Model {
                id: scale_id(&format!("{}/pack/{level:?}", s.name())),
                tenant_id: cast.tenant,
                session_id: s.id(),
                coachee_id: cast.coachee(s.n),
                author_id: cast.coach(s.coach),
                author_role: Role::Coach,
                level,
                content: format!("{level:?} evidence ({state}) for coachee {}, session {}.", s.n, s.j + 1),
                approved,
                approved_at: approved.then_some(s.at + Duration::days(1)),
                created_at: s.at + Duration::hours(4) + Duration::seconds(p as i64),
            });
        }
    }
    out
}

/// One action item per completed session, done for two in three once a few days passed.
fn action_items(plan: &Plan) -> Vec<action_items::Model> {
    plan.completed()
        .map(|s| {
            let cast = plan.cast(s.t);
            let done = s.at + Duration::days(3) < plan.now && (s.n + s.j) % 3 != 0;
            action_items::Model {
                id: scale_id(&format!("{}/item", s.name())),
                tenant_id: cast.tenant,
                coachee_id: cast.coachee(s.n),
                session_id: Some(s.id()),
                created_by: cast.coach(s.coach),
                title: format!("Action of session {} for coachee {}", s.j + 1, s.n),
                due_on: Some((s.at + Duration::days(14)).date_naive()),
                completed_at: done.then_some(s.at + Duration::days(3)),
                created_at: s.at + Duration::hours(2),
            }
        })
        .collect()
}

fn goals(plan: &Plan) -> Vec<goals::Model> {
    let mut out = Vec::new();
    for (t, n) in plan.coachees() {
        let cast = plan.cast(t);
        for (g, title) in ["Delegate more", "Lead calmer meetings", "Plan the quarter"].iter().enumerate() {
            out.push(goals::Model {
                id: scale_id(&format!("t{t}/goal/{n}/{}", g + 1)),
                tenant_id: cast.tenant,
                coachee_id: cast.coachee(n),
                created_by: cast.coach(plan.shape.coach_of(n)),
                title: format!("{title} (coachee {n})"),
                progress_percent: ((n * 7 + g * 30) % 101) as i32,
                created_at: plan.now - Duration::days(350) + Duration::seconds(g as i64),
                updated_at: plan.now - Duration::days((n % 30) as i64),
            });
        }
    }
    out
}

fn coach_notes(plan: &Plan) -> Vec<coach_notes::Model> {
    let mut out = Vec::new();
    for (t, n) in plan.coachees() {
        let cast = plan.cast(t);
        let coach = plan.shape.coach_of(n);
        for k in 1..=2 {
            let at = plan.now - Duration::days(10 * k as i64 + (n % 10) as i64);
            out.push(coach_notes::Model {
                id: scale_id(&format!("t{t}/note/{n}/{k}")),
                tenant_id: cast.tenant,
                coach_id: cast.coach(coach),
                coachee_id: cast.coachee(n),
                body: format!("Coach note {k} by coach {coach} about coachee {n}: watch for overcommitment."),
                created_at: at,
                updated_at: at,
            });
        }
    }
    out
}

/// Feedback on the approved insight of every fifth completed session.
fn feedback(plan: &Plan) -> Vec<ai_feedback::Model> {
    plan.completed()
        .filter(|s| s.j % 5 == 0)
        .map(|s| {
            let cast = plan.cast(s.t);
            ai_feedback::Model {
                id: scale_id(&format!("{}/feedback", s.name())),
                tenant_id: cast.tenant,
                insight_id: approved_insight_id(&s),
                coachee_id: cast.coachee(s.n),
                helpful: (s.n + s.j) % 3 != 0,
                comment: (s.n % 2 == 0).then(|| format!("Feedback from coachee {} on session {}", s.n, s.j + 1)),
                created_at: s.at + Duration::days(2),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_shared_hash_is_of_the_documented_password() {
        let ok = crate::identity::password::verify(Some(SCALE_PASSWORD_HASH.to_owned()), SCALE_PASSWORD.to_owned())
            .await
            .expect("verify");
        assert!(ok, "SCALE_PASSWORD_HASH does not verify {SCALE_PASSWORD:?}");
    }

    #[test]
    fn coachees_are_spread_over_their_coaches() {
        let shape = Shape { coaches: 3, coachees_per_coach: 4, ..Shape::default() };
        assert_eq!(shape.coach_of(1), 1);
        assert_eq!(shape.coach_of(4), 1);
        assert_eq!(shape.coach_of(5), 2);
        assert_eq!(shape.coach_of(12), 3);
        assert_eq!(Shape::default().coachees(), 10_000);
    }
}
