//! PostgreSQL row-level security, tested with raw SQL as the application role, with the
//! application layer out of the way: the database alone must keep tenants apart.

use sea_orm::{ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DbBackend, Statement, TransactionTrait};

use crate::common::*;

async fn app_and_conn() -> Option<(TestApp, DatabaseConnection)> {
    let app = TestApp::start(Backend::Postgres).await?;
    let url = app.pg.as_ref().expect("pg").app_url();
    let conn = Database::connect(url).await.expect("app role connection");
    Some((app, conn))
}

async fn scalar_i64(conn: &impl ConnectionTrait, sql: &str) -> i64 {
    let row = conn
        .query_one_raw(Statement::from_string(DbBackend::Postgres, sql.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
        .expect("row");
    row.try_get_by_index::<i64>(0).expect("i64")
}

async fn tenant_id(app: &TestApp, slug: &str) -> String {
    let row = app
        .owner
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT id::text FROM tenants WHERE slug = '{slug}'"),
        ))
        .await
        .expect("q")
        .expect("tenant");
    row.try_get_by_index::<String>(0).expect("id")
}

async fn user_id(app: &TestApp, email: &str) -> String {
    let row = app
        .owner
        .query_one_raw(Statement::from_string(
            DbBackend::Postgres,
            format!("SELECT id::text FROM users WHERE email = '{email}'"),
        ))
        .await
        .expect("q")
        .expect("user");
    row.try_get_by_index::<String>(0).expect("id")
}

/// Every table with a `tenant_id` column.
async fn tenant_tables(app: &TestApp) -> Vec<String> {
    let rows = app
        .owner
        .query_all_raw(Statement::from_string(
            DbBackend::Postgres,
            "SELECT table_name::text FROM information_schema.columns WHERE table_schema = 'public' AND column_name = 'tenant_id' ORDER BY 1",
        ))
        .await
        .expect("q");
    let tables: Vec<String> = rows.iter().map(|r| r.try_get_by_index::<String>(0).expect("name")).collect();
    assert!(tables.len() >= 20, "expected every tenant table, got {tables:?}");
    tables
}

/// The tenant tables the application role may read: every one but the program-metric
/// rollups, which it has no privilege on at all (see `rollups_are_closed_to_the_app_role`).
async fn app_tenant_tables(app: &TestApp) -> Vec<String> {
    let (readable, closed): (Vec<String>, Vec<String>) =
        tenant_tables(app).await.into_iter().partition(|t| !migrations::ROLLUP_TABLES.contains(&t.as_str()));
    assert_eq!(closed.len(), migrations::ROLLUP_TABLES.len(), "{closed:?}");
    readable
}

async fn set_context(conn: &impl ConnectionTrait, tenant: &str, principal: &str, role: &str) {
    conn.execute_unprepared(&format!("SELECT set_tenant_context('{tenant}'::uuid, '{principal}'::uuid, '{role}')"))
        .await
        .expect("set_tenant_context");
}

#[tokio::test]
async fn app_role_is_not_superuser_not_bypassrls_and_owns_nothing() {
    let Some((_app, conn)) = app_and_conn().await else {
        return;
    };
    let bad =
        scalar_i64(&conn, "SELECT count(*) FROM pg_roles WHERE rolname = current_user AND (rolsuper OR rolbypassrls)")
            .await;
    assert_eq!(bad, 0);
    assert_eq!(
        scalar_i64(&conn, "SELECT count(*) FROM pg_roles WHERE rolname = current_user AND rolname = 'coachgraph_app'")
            .await,
        1
    );
    let owned = scalar_i64(
        &conn,
        "SELECT count(*) FROM pg_class c JOIN pg_roles r ON r.oid = c.relowner WHERE r.rolname = current_user",
    )
    .await;
    assert_eq!(owned, 0, "the application role owns no relation");
    let functions_owned = scalar_i64(
        &conn,
        "SELECT count(*) FROM pg_proc p JOIN pg_roles r ON r.oid = p.proowner WHERE r.rolname = current_user",
    )
    .await;
    assert_eq!(functions_owned, 0);
}

#[tokio::test]
async fn every_tenant_table_has_row_level_security_enabled_and_forced() {
    let Some((app, _conn)) = app_and_conn().await else {
        return;
    };
    let mut tables = tenant_tables(&app).await;
    tables.extend(["tenants".to_owned(), "system_config".to_owned()]);
    for table in tables {
        let flags = scalar_i64(
            &app.owner,
            &format!(
                "SELECT (relrowsecurity::int + relforcerowsecurity::int)::bigint FROM pg_class WHERE oid = 'public.{table}'::regclass"
            ),
        )
        .await;
        assert_eq!(flags, 2, "{table}: relrowsecurity and relforcerowsecurity");
    }
}

#[tokio::test]
async fn without_context_every_tenant_table_shows_no_rows() {
    let Some((app, conn)) = app_and_conn().await else {
        return;
    };
    let mut tables = app_tenant_tables(&app).await;
    tables.extend(["tenants".to_owned(), "system_config".to_owned()]);
    let mut nonempty_for_owner = 0;
    for table in &tables {
        if scalar_i64(&app.owner, &format!("SELECT count(*) FROM {table}")).await > 0 {
            nonempty_for_owner += 1;
        }
        assert_eq!(scalar_i64(&conn, &format!("SELECT count(*) FROM {table}")).await, 0, "{table} without context");
        // An empty context (as after a reset) is no context either.
        let tx = conn.begin().await.expect("begin");
        tx.execute_unprepared("SELECT set_tenant_context(NULL, NULL, NULL)").await.expect("ctx");
        assert_eq!(scalar_i64(&tx, &format!("SELECT count(*) FROM {table}")).await, 0, "{table} with empty context");
        tx.rollback().await.expect("rollback");
    }
    assert!(nonempty_for_owner >= 15, "the demo data fills the tables the check looks at");
}

#[tokio::test]
async fn tenant_context_cannot_read_insert_update_or_delete_another_tenants_rows() {
    let Some((app, conn)) = app_and_conn().await else {
        return;
    };
    let acme = tenant_id(&app, "acme").await;
    let globex = tenant_id(&app, "globex").await;
    let admin = user_id(&app, "admin1@acme.test").await;
    let globex_coachee = user_id(&app, "coachee1@globex.test").await;

    let tx = conn.begin().await.expect("begin");
    set_context(&tx, &acme, &admin, "PROGRAM_ADMIN").await;
    // Positive control: its own tenant is visible.
    assert!(scalar_i64(&tx, &format!("SELECT count(*) FROM users WHERE tenant_id = '{acme}'")).await > 10);
    for table in app_tenant_tables(&app).await {
        let n = scalar_i64(&tx, &format!("SELECT count(*) FROM {table} WHERE tenant_id = '{globex}'")).await;
        assert_eq!(n, 0, "{table}: another tenant's rows are invisible");
    }
    let updated = tx
        .execute_unprepared(&format!("UPDATE users SET display_name = 'pwned' WHERE tenant_id = '{globex}'"))
        .await
        .expect("update runs")
        .rows_affected();
    assert_eq!(updated, 0);
    let deleted = tx
        .execute_unprepared(&format!("DELETE FROM goals WHERE tenant_id = '{globex}'"))
        .await
        .expect("delete runs")
        .rows_affected();
    assert_eq!(deleted, 0);
    tx.commit().await.expect("commit");

    // Inserting a row for the other tenant is refused by the policy's WITH CHECK.
    let tx = conn.begin().await.expect("begin");
    set_context(&tx, &acme, &admin, "PROGRAM_ADMIN").await;
    let insert = tx
        .execute_unprepared(&format!(
            "INSERT INTO goals (id, tenant_id, coachee_id, created_by, title, progress_percent, created_at, updated_at) \
             VALUES (gen_random_uuid(), '{globex}', '{globex_coachee}', '{globex_coachee}', 'x', 0, now(), now())"
        ))
        .await;
    assert!(insert.is_err(), "insert into another tenant must fail");
    tx.rollback().await.expect("rollback");

    // Moving one of its own rows into the other tenant is refused too (a coach: its
    // assigned coachees' sessions are rows it may write).
    let coach = user_id(&app, "coach1@acme.test").await;
    let tx = conn.begin().await.expect("begin");
    set_context(&tx, &acme, &coach, "COACH").await;
    assert!(scalar_i64(&tx, "SELECT count(*) FROM coaching_sessions").await > 0, "rows it can see");
    let moved = tx.execute_unprepared(&format!("UPDATE coaching_sessions SET tenant_id = '{globex}'")).await;
    assert!(moved.is_err(), "re-tenanting rows must fail");
    tx.rollback().await.expect("rollback");

    // The other tenant's data is intact.
    assert_eq!(scalar_i64(&app.owner, "SELECT count(*) FROM users WHERE display_name = 'pwned'").await, 0);
    assert!(scalar_i64(&app.owner, &format!("SELECT count(*) FROM goals WHERE tenant_id = '{globex}'")).await > 0);
}

#[tokio::test]
async fn context_is_transaction_local_and_does_not_leak_through_a_pooled_connection() {
    let Some(app) = TestApp::start(Backend::Postgres).await else {
        return;
    };
    let mut opts = ConnectOptions::new(app.pg.as_ref().expect("pg").app_url());
    opts.max_connections(1).min_connections(1).sqlx_logging(false);
    let pool = Database::connect(opts).await.expect("pool of one");
    let acme = tenant_id(&app, "acme").await;
    let globex = tenant_id(&app, "globex").await;
    let acme_admin = user_id(&app, "admin1@acme.test").await;
    let globex_admin = user_id(&app, "admin1@globex.test").await;

    // Request 1: tenant A.
    let tx = pool.begin().await.expect("begin");
    set_context(&tx, &acme, &acme_admin, "PROGRAM_ADMIN").await;
    assert!(scalar_i64(&tx, "SELECT count(*) FROM users").await > 10);
    tx.commit().await.expect("commit");

    // Request 2 on the same connection: tenant B sees nothing of A.
    let tx = pool.begin().await.expect("begin");
    set_context(&tx, &globex, &globex_admin, "PROGRAM_ADMIN").await;
    assert_eq!(scalar_i64(&tx, &format!("SELECT count(*) FROM users WHERE tenant_id = '{acme}'")).await, 0);
    assert!(scalar_i64(&tx, "SELECT count(*) FROM users").await > 10);
    tx.commit().await.expect("commit");

    // Request 3: tenant A fails mid-transaction.
    let tx = pool.begin().await.expect("begin");
    set_context(&tx, &acme, &acme_admin, "PROGRAM_ADMIN").await;
    assert!(tx.execute_unprepared("SELECT * FROM no_such_table").await.is_err());
    drop(tx); // rolled back

    // Request 4: no context at all sees nothing; tenant B still sees nothing of A.
    assert_eq!(scalar_i64(&pool, "SELECT count(*) FROM users").await, 0);
    let tx = pool.begin().await.expect("begin");
    set_context(&tx, &globex, &globex_admin, "PROGRAM_ADMIN").await;
    assert_eq!(scalar_i64(&tx, &format!("SELECT count(*) FROM users WHERE tenant_id = '{acme}'")).await, 0);
    tx.commit().await.expect("commit");
}

#[tokio::test]
async fn audit_events_cannot_be_updated_or_deleted_by_the_app_role() {
    let Some((app, conn)) = app_and_conn().await else {
        return;
    };
    // Produce an audit event through the API (a login).
    app.login(&email("coach1", "acme")).await;
    let acme = tenant_id(&app, "acme").await;
    let admin = user_id(&app, "admin1@acme.test").await;
    let tx = conn.begin().await.expect("begin");
    set_context(&tx, &acme, &admin, "PROGRAM_ADMIN").await;
    assert!(scalar_i64(&tx, "SELECT count(*) FROM audit_events").await >= 1);
    assert!(tx.execute_unprepared("UPDATE audit_events SET action = 'x'").await.is_err());
    tx.rollback().await.expect("rollback");
    let tx = conn.begin().await.expect("begin");
    set_context(&tx, &acme, &admin, "PROGRAM_ADMIN").await;
    assert!(tx.execute_unprepared("DELETE FROM audit_events").await.is_err());
    tx.rollback().await.expect("rollback");
}

/// The program-metric rollups are written by triggers and read by `app_program_month_stats`,
/// both as the owner: the application role has no privilege on them, whatever its context.
/// How many table privileges the application role holds on `table`.
async fn app_role_privileges(app: &TestApp, table: &str) -> i64 {
    scalar_i64(
        &app.owner,
        &format!(
            "SELECT count(*) FROM unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) p \
             WHERE has_table_privilege('{}', 'public.{table}', p)",
            migrations::APP_ROLE
        ),
    )
    .await
}

#[tokio::test]
async fn rollups_are_closed_to_the_app_role() {
    let Some((app, conn)) = app_and_conn().await else {
        return;
    };
    let acme = tenant_id(&app, "acme").await;
    let exec = user_id(&app, "exec1@acme.test").await;
    for table in migrations::ROLLUP_TABLES {
        assert!(scalar_i64(&app.owner, &format!("SELECT count(*) FROM {table}")).await > 0, "{table} is filled");
        let privileges = app_role_privileges(&app, table).await;
        assert_eq!(privileges, 0, "{table}: the application role has no privilege");
        for sql in [
            format!("SELECT count(*) FROM {table}"),
            format!("DELETE FROM {table}"),
            format!("UPDATE {table} SET tenant_id = tenant_id"),
        ] {
            let tx = conn.begin().await.expect("begin");
            set_context(&tx, &acme, &exec, "EXECUTIVE").await;
            let err = tx.execute_unprepared(&sql).await.expect_err(&sql).to_string();
            assert!(err.contains("permission denied"), "{sql}: {err}");
            tx.rollback().await.expect("rollback");
        }
    }
}

/// Rows of `table` visible inside a transaction with the given context.
async fn visible(conn: &DatabaseConnection, ctx: (&str, &str, &str), sql: &str) -> i64 {
    let tx = conn.begin().await.expect("begin");
    set_context(&tx, ctx.0, ctx.1, ctx.2).await;
    let n = scalar_i64(&tx, sql).await;
    tx.rollback().await.expect("rollback");
    n
}

#[tokio::test]
async fn relationship_policies_confine_coaches_coachees_ai_and_admins_inside_the_tenant() {
    let Some((app, conn)) = app_and_conn().await else { return };
    let acme = tenant_id(&app, "acme").await;
    let coach1 = user_id(&app, "coach1@acme.test").await;
    let coachee1 = user_id(&app, "coachee1@acme.test").await;
    let coachee7 = user_id(&app, "coachee7@acme.test").await;
    let ai = user_id(&app, "ai@acme.test").await;
    let admin = user_id(&app, "admin1@acme.test").await;
    let exec = user_id(&app, "exec1@acme.test").await;
    let goals_of = |c: &str| format!("SELECT count(*) FROM goals WHERE coachee_id = '{c}'");

    // Coach: assigned coachees only, own notes only.
    let coach = (acme.as_str(), coach1.as_str(), "COACH");
    assert!(visible(&conn, coach, &goals_of(&coachee1)).await > 0, "assigned coachee's goals");
    assert_eq!(visible(&conn, coach, &goals_of(&coachee7)).await, 0, "another coach's coachee");
    assert_eq!(
        visible(&conn, coach, &format!("SELECT count(*) FROM coach_notes WHERE coach_id <> '{coach1}'")).await,
        0
    );
    assert!(visible(&conn, coach, "SELECT count(*) FROM coach_notes").await > 0);

    // Coachee: its own rows only.
    let me = (acme.as_str(), coachee1.as_str(), "COACHEE");
    assert!(visible(&conn, me, &goals_of(&coachee1)).await > 0);
    assert_eq!(visible(&conn, me, &goals_of(&coachee7)).await, 0);
    assert_eq!(visible(&conn, me, "SELECT count(*) FROM coach_notes").await, 0, "never coach notes");

    // AI: only coachees with a SASHA consent and no coach switching it off. Demo: coachee3
    // grants nothing of SASHA (3 % 3 == 0, odd) ; coachee2 grants OBSERVE and ANALYZE with
    // coach level ANALYZE.
    let coachee2 = user_id(&app, "coachee2@acme.test").await;
    let coachee3 = user_id(&app, "coachee3@acme.test").await;
    let ai_ctx = (acme.as_str(), ai.as_str(), "AI_AGENT");
    assert!(visible(&conn, ai_ctx, &goals_of(&coachee2)).await > 0);
    assert_eq!(visible(&conn, ai_ctx, &goals_of(&coachee3)).await, 0);
    // Withdrawal counts from the next statement.
    app.owner
        .execute_unprepared(&format!("UPDATE consents SET granted = false WHERE coachee_id = '{coachee2}'"))
        .await
        .expect("withdraw");
    assert_eq!(visible(&conn, ai_ctx, &goals_of(&coachee2)).await, 0, "withdrawn consent closes the rows");

    // Program admin: session metadata (its matrix cell), never content, not even a session's
    // private notes or summary. Executive: no row at all (its figures come from
    // `app_program_month_stats`, counts only).
    let admin_ctx = (acme.as_str(), admin.as_str(), "PROGRAM_ADMIN");
    assert!(visible(&conn, admin_ctx, "SELECT count(*) FROM coaching_sessions").await > 0);
    let exec_ctx = (acme.as_str(), exec.as_str(), "EXECUTIVE");
    assert_eq!(visible(&conn, exec_ctx, "SELECT count(*) FROM coaching_sessions").await, 0);
    for ctx in [admin_ctx, exec_ctx] {
        for table in [
            "goals",
            "coach_notes",
            "transcripts",
            "insights",
            "evidence_packs",
            "session_private_notes",
            "session_summaries",
            "action_items",
            "ai_feedback",
        ] {
            assert_eq!(visible(&conn, ctx, &format!("SELECT count(*) FROM {table}")).await, 0, "{table} for {}", ctx.2);
        }
    }

    // A coach cannot write a goal for a coachee it is not assigned to.
    let tx = conn.begin().await.expect("begin");
    set_context(&tx, &acme, &coach1, "COACH").await;
    let insert = tx
        .execute_unprepared(&format!(
            "INSERT INTO goals (id, tenant_id, coachee_id, created_by, title, progress_percent, created_at, updated_at) \
             VALUES (gen_random_uuid(), '{acme}', '{coachee7}', '{coach1}', 'x', 0, now(), now())"
        ))
        .await;
    assert!(insert.is_err(), "write for an unassigned coachee must fail");
    tx.rollback().await.expect("rollback");
}

/// The gaps by which the database once admitted what the application refused: the AI at
/// OBSERVE, a coach without TRANSCRIPT_SHARING, and a tenant context writing the platform
/// audit chain.
#[tokio::test]
async fn the_database_refuses_what_the_application_refuses() {
    let Some((app, conn)) = app_and_conn().await else {
        return;
    };
    let acme = tenant_id(&app, "acme").await;
    let ai = user_id(&app, "ai@acme.test").await;
    let coach1 = user_id(&app, "coach1@acme.test").await;
    let coachee1 = user_id(&app, "coachee1@acme.test").await;
    // The AI at OBSERVE: session metadata and transcripts, nothing that needs ANALYZE.
    app.owner
        .execute_unprepared(&format!(
            "UPDATE consents SET granted = (kind = 'SASHA_OBSERVE') WHERE coachee_id = '{coachee1}';\n\
             UPDATE coach_assignments SET ai_level = 'ACT' WHERE coachee_id = '{coachee1}';\n\
             INSERT INTO consents (id, tenant_id, coachee_id, kind, granted, changed_at) \
             VALUES (gen_random_uuid(), '{acme}', '{coachee1}', 'SASHA_OBSERVE', true, now()) \
             ON CONFLICT DO NOTHING;"
        ))
        .await
        .expect("observe only");
    let ai_ctx = (acme.as_str(), ai.as_str(), "AI_AGENT");
    let of = |table: &str| format!("SELECT count(*) FROM {table} WHERE coachee_id = '{coachee1}'");
    assert!(visible(&conn, ai_ctx, &of("coaching_sessions")).await > 0, "OBSERVE opens session metadata");
    for table in ["coach_notes", "session_private_notes", "goals", "insights", "evidence_packs", "action_items"] {
        assert_eq!(visible(&conn, ai_ctx, &of(table)).await, 0, "{table} needs ANALYZE");
    }
    // A coach without TRANSCRIPT_SHARING reads no transcript of its coachee.
    app.owner
        .execute_unprepared(&format!(
            "UPDATE consents SET granted = false WHERE coachee_id = '{coachee1}' AND kind = 'TRANSCRIPT_SHARING'"
        ))
        .await
        .expect("no sharing");
    let coach_ctx = (acme.as_str(), coach1.as_str(), "COACH");
    assert!(visible(&conn, coach_ctx, &of("coaching_sessions")).await > 0, "an assigned coachee");
    assert_eq!(visible(&conn, coach_ctx, &of("transcripts")).await, 0, "transcripts need sharing");
    // No tenant context may append to the platform chain (the same row into its own chain is
    // accepted, so the refusal is the policy's).
    let append = |tenant: String| {
        format!(
            "INSERT INTO audit_events (id, tenant_id, seq, at, action, resource, outcome, prev_hash, hash) \
             VALUES (gen_random_uuid(), {tenant}, 999999, now(), 'FORGED', 'x', 'ALLOWED', 'x', 'x')"
        )
    };
    for (tenant, allowed) in [(format!("'{acme}'"), true), ("NULL".to_owned(), false)] {
        let tx = conn.begin().await.expect("begin");
        set_context(&tx, &acme, &coach1, "COACH").await;
        let res = tx.execute_unprepared(&append(tenant.clone())).await;
        assert_eq!(res.is_ok(), allowed, "append to chain {tenant}: {res:?}");
        tx.rollback().await.expect("rollback");
    }
}

/// One statement under one principal's context: `Some(rows changed)`, or `None` if refused.
async fn try_write(conn: &DatabaseConnection, ctx: (&str, &str, &str), sql: &str) -> Option<u64> {
    let tx = conn.begin().await.expect("begin");
    set_context(&tx, ctx.0, ctx.1, ctx.2).await;
    let res = tx.execute_unprepared(sql).await.ok().map(|r| r.rows_affected());
    tx.rollback().await.expect("rollback");
    res
}

/// Writes the matrix refuses are refused by the database too (or change no row), while the
/// same statements by the role that may make them go through.
#[tokio::test]
async fn the_database_refuses_the_writes_the_matrix_refuses() {
    let Some((app, conn)) = app_and_conn().await else {
        return;
    };
    let acme = tenant_id(&app, "acme").await;
    let id = |email: &'static str| user_id(&app, email);
    let (coach1, coachee1, coachee7) =
        (id("coach1@acme.test").await, id("coachee1@acme.test").await, id("coachee7@acme.test").await);
    let (ai, admin1) = (id("ai@acme.test").await, id("admin1@acme.test").await);
    let coach = (acme.as_str(), coach1.as_str(), "COACH");
    let coachee = (acme.as_str(), coachee1.as_str(), "COACHEE");
    let ai_ctx = (acme.as_str(), ai.as_str(), "AI_AGENT");
    let admin = (acme.as_str(), admin1.as_str(), "PROGRAM_ADMIN");
    let assign = format!(
        "INSERT INTO coach_assignments (id, tenant_id, coach_id, coachee_id, active, ai_level, created_at) \
         VALUES (gen_random_uuid(), '{acme}', '{coach1}', '{coachee7}', true, 'ACT', now())"
    );
    let item = format!(
        "INSERT INTO action_items (id, tenant_id, coachee_id, created_by, title, created_at) \
         VALUES (gen_random_uuid(), '{acme}', '{coachee1}', '{coachee1}', 'x', now())"
    );
    let request = |approved_by: &str, approved_at: &str| {
        format!(
            "INSERT INTO break_glass_requests (id, tenant_id, coachee_id, requested_by, reason, minutes, created_at, approved_by, approved_at) \
             VALUES (gen_random_uuid(), '{acme}', '{coachee1}', '{admin1}', 'x', 30, now(), {approved_by}, {approved_at})"
        )
    };
    let refused: Vec<(&str, (&str, &str, &str), String)> = vec![
        ("a coach assigns itself a coachee", coach, assign.clone()),
        ("the AI raises coaches' AI levels", ai_ctx, "UPDATE coach_assignments SET ai_level = 'ACT'".to_owned()),
        ("the AI approves evidence", ai_ctx, "UPDATE evidence_packs SET approved = true".to_owned()),
        ("the AI deletes drafts", ai_ctx, "DELETE FROM insights".to_owned()),
        ("the AI confirms proposals", ai_ctx, "UPDATE ai_action_proposals SET confirmed_at = now()".to_owned()),
        ("the AI erases its access log", ai_ctx, "DELETE FROM ai_access_log".to_owned()),
        (
            "a coachee renames its action items",
            coachee,
            format!("UPDATE action_items SET title = 'x' WHERE coachee_id = '{coachee1}'"),
        ),
        ("a coachee creates action items", coachee, item.clone()),
        (
            "a coach edits approved insights",
            coach,
            "UPDATE insights SET body = 'x' WHERE status = 'APPROVED'".to_owned(),
        ),
        ("a coach deletes approved insights", coach, "DELETE FROM insights WHERE status = 'APPROVED'".to_owned()),
        ("an admin approves its own request", admin, request(&format!("'{admin1}'"), "now()")),
    ];
    for (what, ctx, sql) in &refused {
        let changed = try_write(&conn, *ctx, sql).await;
        assert!(changed.is_none_or(|n| n == 0), "{what}: the database let it change {changed:?} rows");
    }
    // The same kinds of statement by the role that may make them.
    let allowed: Vec<(&str, (&str, &str, &str), String)> = vec![
        ("an admin assigns a coach", admin, assign),
        (
            "a coach sets its AI levels",
            coach,
            format!("UPDATE coach_assignments SET ai_level = 'ANALYZE' WHERE coach_id = '{coach1}'"),
        ),
        (
            "a coachee completes its action items",
            coachee,
            format!("UPDATE action_items SET completed_at = now() WHERE coachee_id = '{coachee1}'"),
        ),
        ("a coach edits its drafts", coach, "UPDATE insights SET body = 'x' WHERE status = 'DRAFT'".to_owned()),
        ("an admin files a request", admin, request("NULL", "NULL")),
    ];
    for (what, ctx, sql) in &allowed {
        let changed = try_write(&conn, *ctx, sql).await;
        assert!(changed.is_some_and(|n| n > 0), "{what}: refused or changed nothing ({changed:?})");
    }
    // The audit log is the admins': a coachee sees only its own events.
    app.login("coachee2@acme.test").await;
    let others = format!("SELECT count(*) FROM audit_events WHERE actor_id IS DISTINCT FROM '{coachee1}'");
    assert_eq!(visible(&conn, coachee, &others).await, 0, "a coachee reads others' audit events");
    assert!(visible(&conn, admin, &others).await > 0, "the admin reads its tenant's");
}

/// Program metrics' per-month counts leave the database only above the anonymity floor, even
/// to a caller that asks the function directly for one small month.
#[tokio::test]
async fn month_statistics_below_the_floor_never_leave_the_database() {
    let Some((app, conn)) = app_and_conn().await else {
        return;
    };
    let acme = tenant_id(&app, "acme").await;
    let exec = user_id(&app, "exec1@acme.test").await;
    let (coach1, coachee1) = (user_id(&app, "coach1@acme.test").await, user_id(&app, "coachee1@acme.test").await);
    app.owner
        .execute_unprepared(&format!(
            "INSERT INTO coaching_sessions (id, tenant_id, coach_id, coachee_id, scheduled_at, duration_minutes, status, created_at, updated_at) \
             VALUES (gen_random_uuid(), '{acme}', '{coach1}', '{coachee1}', '2020-01-15T10:00:00Z', 60, 'COMPLETED', now(), now())"
        ))
        .await
        .expect("one lone session");
    let ctx = (acme.as_str(), exec.as_str(), "EXECUTIVE");
    let small = "SELECT count(*) FROM app_program_month_stats('2020-01', '2020-01') WHERE source <> 'suppressed'";
    assert_eq!(visible(&conn, ctx, small).await, 0, "one coachee's month is suppressed in the database");
    let whole = "SELECT count(*) FROM app_program_month_stats(NULL, NULL) WHERE source = 'suppressed'";
    assert_eq!(visible(&conn, ctx, whole).await, 1, "a range holding that month is suppressed whole");
}

/// What replicas share (migration 000011): the rate buckets and the development signing key.
/// The application role has no privilege on either table; it takes tokens and reads the key
/// through their SECURITY DEFINER functions only, so it can neither refill nor empty a bucket
/// nor replace the key.
#[tokio::test]
async fn shared_state_is_closed_to_the_app_role_but_for_its_functions() {
    let Some((app, conn)) = app_and_conn().await else {
        return;
    };
    for table in ["rate_buckets", "development_signing_key"] {
        let privileges = app_role_privileges(&app, table).await;
        assert_eq!(privileges, 0, "{table}: the application role has no privilege");
    }
    let taken = "SELECT count(*) FROM app_take_rate_token('test', 'k', 1, '2026-11-02T09:00:00Z') WHERE admitted";
    assert_eq!(scalar_i64(&conn, taken).await, 1);
    assert_eq!(scalar_i64(&conn, taken).await, 0, "one a minute");
    for sql in [
        "SELECT count(*) FROM rate_buckets",
        "UPDATE rate_buckets SET tokens = 100",
        "DELETE FROM rate_buckets",
        "INSERT INTO development_signing_key (key) VALUES (decode(repeat('00', 32), 'hex'))",
    ] {
        let err = conn.execute_unprepared(sql).await.expect_err(sql).to_string();
        assert!(err.contains("permission denied"), "{sql}: {err}");
    }
    for function in ["app_take_rate_token", "app_development_key"] {
        let fixed = scalar_i64(
            &app.owner,
            &format!(
                "SELECT count(*) FROM pg_proc WHERE proname = '{function}' AND prosecdef \
                 AND proconfig @> ARRAY['search_path=pg_catalog, public, pg_temp']"
            ),
        )
        .await;
        assert_eq!(fixed, 1, "{function}: SECURITY DEFINER with a fixed search_path");
    }
}
