//! Demo data: two tenants with a full cast, every kind of coaching content, and consents
//! in a mix of states. Idempotent: does nothing when the `acme` tenant exists.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, IntoActiveModel, QueryFilter, TransactionTrait,
};
use uuid::Uuid;

use crate::db::Db;
use crate::db::entities::*;
use crate::error::{AppError, AppResult};
use crate::identity::password;
use crate::kinds::*;

pub mod scale;

pub const DEMO_PASSWORD: &str = "coachgraph-demo";
pub const DEMO_MARKER_KEY: &str = "demo_data";
pub const TENANTS: [&str; 2] = ["acme", "globex"];
pub const SYSTEM_ADMIN_EMAIL: &str = "root@coachgraph.test";

/// The namespace of every demo id (UUID v5).
pub const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x5f0e_6c1a_3b7d_4c2e_9a8f_2d4b_6e8c_0a1e);

/// The id of the demo row named `name` (`acme/user/coach1`, `acme/session/coachee1/2`, ...):
/// a UUID v5, the same in every database and on every run.
pub fn demo_id(name: &str) -> Uuid {
    Uuid::new_v5(&DEMO_NAMESPACE, name.as_bytes())
}

/// One PBKDF2 hash per demo account per process: every account has its own salt, and a
/// test binary that seeds many databases pays for the hashes once.
static HASHES: LazyLock<Mutex<HashMap<String, String>>> = LazyLock::new(|| Mutex::new(HashMap::new()));

async fn demo_hashes(emails: &[String]) -> AppResult<HashMap<String, String>> {
    let missing: Vec<String> = {
        let cache = HASHES.lock().unwrap_or_else(|p| p.into_inner());
        emails.iter().filter(|e| !cache.contains_key(*e)).cloned().collect()
    };
    let mut tasks = Vec::new();
    for email in missing {
        tasks.push(tokio::spawn(async move { (email, password::hash(DEMO_PASSWORD.to_owned()).await) }));
    }
    for task in tasks {
        let (email, hash) = task.await.map_err(AppError::internal)?;
        HASHES.lock().unwrap_or_else(|p| p.into_inner()).insert(email, hash?);
    }
    let cache = HASHES.lock().unwrap_or_else(|p| p.into_inner());
    Ok(emails.iter().filter_map(|e| cache.get(e).map(|h| (e.clone(), h.clone()))).collect())
}

async fn put<E>(conn: &impl ConnectionTrait, rows: Vec<E::Model>) -> AppResult<()>
where
    E: EntityTrait,
    E::Model: IntoActiveModel<E::ActiveModel> + Clone,
    E::ActiveModel: ActiveModelTrait<Entity = E> + Send,
{
    for chunk in rows.chunks(100) {
        let models = chunk.iter().cloned().map(|m| m.into_active_model().reset_all());
        E::insert_many(models).exec_without_returning(conn).await?;
    }
    Ok(())
}

fn user(
    id: Uuid,
    tenant_id: Option<Uuid>,
    email: String,
    name: String,
    role: Role,
    hash: Option<String>,
    now: DateTime<Utc>,
) -> users::Model {
    users::Model {
        id,
        tenant_id,
        email,
        display_name: name,
        role,
        status: UserStatus::Active,
        password_hash: hash,
        failed_login_count: 0,
        locked_until: None,
        last_login_at: None,
        password_changed_at: None,
        created_at: now,
        updated_at: now,
    }
}

fn title_case(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().collect::<String>() + c.as_str()).unwrap_or_default()
}

/// Every demo email, for hashing up front.
fn demo_emails() -> Vec<String> {
    let mut out = vec![SYSTEM_ADMIN_EMAIL.to_owned()];
    for t in TENANTS {
        for name in account_names() {
            out.push(format!("{name}@{t}.test"));
        }
    }
    out
}

fn account_names() -> Vec<String> {
    let mut names = vec!["coach1".to_owned(), "coach2".to_owned()];
    names.extend((1..=12).map(|i| format!("coachee{i}")));
    names.extend(["admin1", "admin2", "exec1", "ai"].map(str::to_owned));
    names
}

fn role_of(name: &str) -> Role {
    match name {
        n if n.starts_with("coachee") => Role::Coachee,
        n if n.starts_with("coach") => Role::Coach,
        n if n.starts_with("admin") => Role::ProgramAdmin,
        "exec1" => Role::Executive,
        _ => Role::AiAgent,
    }
}

/// Every demo account as (tenant slug, email, role); the platform's SYSTEM_ADMIN has no
/// tenant. Their password is [`DEMO_PASSWORD`]. For the development playground's list.
pub fn demo_accounts() -> Vec<(Option<&'static str>, String, Role)> {
    let mut out = Vec::new();
    for t in TENANTS {
        for name in account_names() {
            out.push((Some(t), format!("{name}@{t}.test"), role_of(&name)));
        }
    }
    out.push((None, SYSTEM_ADMIN_EMAIL.to_owned(), Role::SystemAdmin));
    out
}

/// Whether the demo data or scale data ([`scale`]) is present: accounts with a public
/// password (production refuses to start then).
pub async fn demo_present(db: &Db) -> AppResult<bool> {
    for key in [DEMO_MARKER_KEY, scale::SCALE_MARKER_KEY] {
        if system_config::Entity::find_by_id(key.to_owned()).one(db.raw()).await?.is_some() {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Loads the demo data unless present. `now` anchors every date (sessions in the past and
/// the future of it). Returns whether anything was written.
pub async fn seed_demo(db: &Db, now: DateTime<Utc>) -> AppResult<bool> {
    if tenants::Entity::find().filter(tenants::Column::Slug.eq("acme")).one(db.raw()).await?.is_some() {
        return Ok(false);
    }
    let hashes = demo_hashes(&demo_emails()).await?;
    let txn = db.raw().begin().await?;
    let root = user(
        demo_id("user/root"),
        None,
        SYSTEM_ADMIN_EMAIL.to_owned(),
        "Platform Root".to_owned(),
        Role::SystemAdmin,
        hashes.get(SYSTEM_ADMIN_EMAIL).cloned(),
        now,
    );
    put::<users::Entity>(&txn, vec![root]).await?;
    for (tenant_index, slug) in TENANTS.iter().enumerate() {
        seed_tenant(&txn, slug, tenant_index, &hashes, now).await?;
    }
    put::<system_config::Entity>(
        &txn,
        vec![
            system_config::Model {
                key: DEMO_MARKER_KEY.to_owned(),
                value: "true".to_owned(),
                updated_at: now,
                updated_by: None,
            },
            system_config::Model {
                key: "maintenance_mode".to_owned(),
                value: "off".to_owned(),
                updated_at: now,
                updated_by: None,
            },
            system_config::Model {
                key: "ai.rate_limit_per_minute".to_owned(),
                value: "120".to_owned(),
                updated_at: now,
                updated_by: None,
            },
        ],
    )
    .await?;
    txn.commit().await?;
    Ok(true)
}

async fn seed_tenant(
    txn: &impl ConnectionTrait,
    slug: &str,
    tenant_index: usize,
    hashes: &HashMap<String, String>,
    now: DateTime<Utc>,
) -> AppResult<()> {
    let tenant_id = demo_id(&format!("{slug}/tenant"));
    let id = |name: String| demo_id(&format!("{slug}/{name}"));
    let company = title_case(slug);
    put::<tenants::Entity>(
        txn,
        vec![tenants::Model { id: tenant_id, slug: slug.to_owned(), name: format!("{company} Corp"), created_at: now }],
    )
    .await?;
    // `device_session_days` (migration 000013) keeps its column default, the same 30 days:
    // tests of earlier migrations load the demo data into a database migrated part of the way.
    let mut settings = tenant_settings::Model {
        tenant_id,
        session_timeout_minutes: 30,
        audit_retention_days: 90,
        data_retention_days: Some(730),
        device_session_days: crate::identity::device::DEFAULT_DEVICE_SESSION_DAYS,
        updated_at: now,
    }
    .into_active_model()
    .reset_all();
    settings.device_session_days = sea_orm::ActiveValue::NotSet;
    tenant_settings::Entity::insert(settings).exec_without_returning(txn).await?;

    let mut by_name: HashMap<String, users::Model> = HashMap::new();
    let mut people = Vec::new();
    for name in account_names() {
        let email = format!("{name}@{slug}.test");
        let role = role_of(&name);
        let display = match role {
            Role::AiAgent => format!("Sasha ({company})"),
            _ => format!("{} ({company})", title_case(&name)),
        };
        let u = user(
            id(format!("user/{name}")),
            Some(tenant_id),
            email.clone(),
            display,
            role,
            hashes.get(&email).cloned(),
            now,
        );
        by_name.insert(name, u.clone());
        people.push(u);
    }
    put::<users::Entity>(txn, people).await?;

    let coach_of = |i: usize| {
        if i <= 6 { ("coach1", &by_name["coach1"]) } else { ("coach2", &by_name["coach2"]) }
    };
    let ai = &by_name["ai"];
    let mut assignments = Vec::new();
    let mut sessions = Vec::new();
    let mut summaries = Vec::new();
    let mut private_notes = Vec::new();
    let mut transcripts = Vec::new();
    let mut insights = Vec::new();
    let mut packs = Vec::new();
    let mut items = Vec::new();
    let mut goals = Vec::new();
    let mut notes = Vec::new();
    let mut consents = Vec::new();
    let mut history = Vec::new();
    let mut feedback = Vec::new();

    for i in 1..=12usize {
        let coachee = &by_name[&format!("coachee{i}")];
        let (coach_name, coach) = coach_of(i);
        let who = format!("coachee{i}");
        // Rows of every coachee share their `created_at` with the same rows of the other
        // coachees (and of the other tenant): they are spread a second apart, so lists the
        // API sorts by time never fall back to the id: rank of the coachee, then tenant,
        // then the row's place in its session.
        let spread = |per_coachee: usize, place: usize| {
            Duration::seconds((((i - 1) * 2 + tenant_index) * per_coachee + place) as i64)
        };
        let ai_level = [AiLevel::Off, AiLevel::Observe, AiLevel::Analyze, AiLevel::Act][i % 4];
        assignments.push(coach_assignments::Model {
            id: id(format!("assignment/{coach_name}/{who}")),
            tenant_id,
            coach_id: coach.id,
            coachee_id: coachee.id,
            active: true,
            ai_level,
            created_at: now - Duration::days(120),
            ended_at: None,
        });
        let label = format!("{company} coachee {i}");
        // Two completed sessions and one scheduled, per coachee.
        for (k, (days, status)) in
            [(-28i64, SessionStatus::Completed), (-7, SessionStatus::Completed), (7, SessionStatus::Scheduled)]
                .into_iter()
                .enumerate()
        {
            let session = format!("{who}/{}", k + 1);
            let session_id = id(format!("session/{session}"));
            let completed = status == SessionStatus::Completed;
            sessions.push(coaching_sessions::Model {
                id: session_id,
                tenant_id,
                coach_id: coach.id,
                coachee_id: coachee.id,
                scheduled_at: now + Duration::days(days) + Duration::hours(i as i64),
                duration_minutes: 45 + 15 * (k as i32 % 2),
                status,
                created_at: now - Duration::days(60),
                updated_at: now - Duration::days(1),
            });
            let text = |kind: &str, body: String| session_private_notes::Model {
                id: id(format!("{kind}/{session}")),
                tenant_id,
                session_id,
                coachee_id: coachee.id,
                coach_id: coach.id,
                body,
                created_at: now - Duration::days(60),
                updated_at: now - Duration::days(1),
            };
            private_notes.push(text(
                "private-note",
                format!("Private note of {} on session {} with {label}.", coach.display_name, k + 1),
            ));
            if completed {
                let s = text("summary", format!("Summary {} for {label}: progress on delegation and focus.", k + 1));
                summaries.push(session_summaries::Model {
                    id: s.id,
                    tenant_id,
                    session_id,
                    coachee_id: s.coachee_id,
                    coach_id: s.coach_id,
                    body: s.body,
                    created_at: s.created_at,
                    updated_at: s.updated_at,
                });
            }
            if !completed {
                continue;
            }
            transcripts.push(transcripts::Model {
                id: id(format!("transcript/{session}")),
                tenant_id,
                session_id,
                coachee_id: coachee.id,
                body: format!(
                    "Transcript of session {} with {label}. Coach: How did the week go? Coachee: Better.",
                    k + 1
                ),
                created_at: now + Duration::days(days),
            });
            let approved_id = id(format!("insight/{session}/approved"));
            insights.push(insights::Model {
                id: approved_id,
                tenant_id,
                session_id,
                coachee_id: coachee.id,
                author_id: coach.id,
                author_role: Role::Coach,
                body: format!("Approved insight {} for {label}: energy rises when priorities are explicit.", k + 1),
                status: InsightStatus::Approved,
                approved_at: Some(now + Duration::days(days + 1)),
                approved_by: Some(coach.id),
                created_at: now + Duration::days(days),
                updated_at: now + Duration::days(days + 1),
            });
            // The draft is written a second after the approved insight of the session.
            insights.push(insights::Model {
                id: id(format!("insight/{session}/draft")),
                tenant_id,
                session_id,
                coachee_id: coachee.id,
                author_id: if k == 0 { ai.id } else { coach.id },
                author_role: if k == 0 { Role::AiAgent } else { Role::Coach },
                body: format!("Draft insight {} for {label}: possible avoidance of conflict.", k + 1),
                status: InsightStatus::Draft,
                approved_at: None,
                approved_by: None,
                created_at: now + Duration::days(days) + Duration::seconds(1),
                updated_at: now + Duration::days(days) + Duration::seconds(1),
            });
            for (p, (level, approved)) in
                [(EvidenceLevel::L0, true), (EvidenceLevel::L1, k == 0), (EvidenceLevel::L1, false)]
                    .into_iter()
                    .enumerate()
            {
                let state = if approved { "approved" } else { "pending" };
                packs.push(evidence_packs::Model {
                    id: id(format!("pack/{session}/{}-{level:?}-{state}", p + 1)),
                    tenant_id,
                    session_id,
                    coachee_id: coachee.id,
                    author_id: coach.id,
                    author_role: Role::Coach,
                    level,
                    content: format!(
                        "{level:?} evidence ({}) for {label}, session {}.",
                        if approved { "approved" } else { "pending" },
                        k + 1
                    ),
                    approved,
                    approved_at: approved.then_some(now + Duration::days(days + 1)),
                    created_at: now + Duration::days(days) + spread(3, p),
                });
            }
            for n in 0..2 {
                items.push(action_items::Model {
                    id: id(format!("item/{session}/{}", n + 1)),
                    tenant_id,
                    coachee_id: coachee.id,
                    session_id: Some(session_id),
                    created_by: coach.id,
                    title: format!("Action {} of session {} for {label}", n + 1, k + 1),
                    due_on: Some((now + Duration::days(days + 14)).date_naive()),
                    completed_at: (n == 0 && (k == 0 || i % 2 == 0)).then_some(now + Duration::days(days + 3)),
                    created_at: now + Duration::days(days) + spread(2, n),
                });
            }
            if k == 0 {
                feedback.push(ai_feedback::Model {
                    id: id(format!("feedback/{who}")),
                    tenant_id,
                    insight_id: approved_id,
                    coachee_id: coachee.id,
                    helpful: i % 3 != 0,
                    comment: (i % 2 == 0).then(|| format!("Feedback from {label}")),
                    created_at: now + Duration::days(days + 2),
                });
            }
        }
        for (g, title) in ["Delegate more", "Lead calmer meetings"].iter().enumerate() {
            goals.push(goals::Model {
                id: id(format!("goal/{who}/{}", g + 1)),
                tenant_id,
                coachee_id: coachee.id,
                created_by: coach.id,
                title: format!("{title} ({label})"),
                progress_percent: ((i * 7 + g * 30) % 101) as i32,
                created_at: now - Duration::days(90) + spread(2, g),
                updated_at: now - Duration::days(3),
            });
        }
        notes.push(coach_notes::Model {
            id: id(format!("note/{coach_name}/{who}")),
            tenant_id,
            coach_id: coach.id,
            coachee_id: coachee.id,
            body: format!("Coach note by {} about {label}: watch for overcommitment.", coach.display_name),
            created_at: now - Duration::days(10),
            updated_at: now - Duration::days(10),
        });
        // Consents in a mix of states: coachee i grants OBSERVE when i%3 != 0, ANALYZE when
        // i%2 == 0, ACT when i%4 == 0, TRANSCRIPT_SHARING when i is odd; coachee 5 withdrew OBSERVE.
        let states = [
            (ConsentKind::SashaObserve, i % 3 != 0 && i != 5),
            (ConsentKind::SashaAnalyze, i % 2 == 0),
            (ConsentKind::SashaAct, i % 4 == 0),
            (ConsentKind::TranscriptSharing, i % 2 == 1),
        ];
        for (kind, granted) in states {
            let changed_at = now - Duration::days(20 + tenant_index as i64);
            if granted || i == 5 {
                consents.push(consents::Model {
                    id: id(format!("consent/{who}/{kind:?}")),
                    tenant_id,
                    coachee_id: coachee.id,
                    kind,
                    granted,
                    changed_at,
                });
                history.push(consent_history::Model {
                    id: id(format!("consent-history/{who}/{kind:?}/granted")),
                    tenant_id,
                    coachee_id: coachee.id,
                    kind,
                    granted: true,
                    changed_at: changed_at - Duration::days(30),
                    changed_by: coachee.id,
                });
                if !granted {
                    history.push(consent_history::Model {
                        id: id(format!("consent-history/{who}/{kind:?}/withdrawn")),
                        tenant_id,
                        coachee_id: coachee.id,
                        kind,
                        granted: false,
                        changed_at,
                        changed_by: coachee.id,
                    });
                }
            }
        }
    }
    put::<coach_assignments::Entity>(txn, assignments).await?;
    put::<coaching_sessions::Entity>(txn, sessions).await?;
    put::<session_summaries::Entity>(txn, summaries).await?;
    put::<session_private_notes::Entity>(txn, private_notes).await?;
    put::<transcripts::Entity>(txn, transcripts).await?;
    put::<insights::Entity>(txn, insights).await?;
    put::<evidence_packs::Entity>(txn, packs).await?;
    put::<action_items::Entity>(txn, items).await?;
    put::<goals::Entity>(txn, goals).await?;
    put::<coach_notes::Entity>(txn, notes).await?;
    put::<consents::Entity>(txn, consents).await?;
    put::<consent_history::Entity>(txn, history).await?;
    put::<ai_feedback::Entity>(txn, feedback).await?;
    Ok(())
}
