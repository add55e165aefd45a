//! PostgreSQL: what every server on one database shares and no tenant owns (issue 10, item 9:
//! two replicas behave as one).
//!
//! - `rate_buckets(scope, key, tokens, at, refusing)`: the token buckets of the rate limits
//!   (`ai`: one per tenant, POLICY.md section 5; `credential`: one per source address), taken
//!   by `app_take_rate_token(scope, key, per_minute, now)` in one call: refill at
//!   `per_minute` a minute of the application's clock (`now`, never the database's), capped at
//!   `per_minute`, take one token or refuse, saying whether this is the first refusal of an
//!   episode (audited once) and the whole seconds until the next token. A call also deletes a
//!   few buckets idle for over a minute (full again, so forgetting them changes nothing), so
//!   the table holds about the keys seen in the last minute.
//! - `development_signing_key`: one row, the token key of development mode without
//!   `COACHGRAPH_JWT_SECRET`, created once by the first server to ask
//!   (`app_development_key(candidate)`: `INSERT .. ON CONFLICT DO NOTHING`, then read), so every
//!   replica on the database signs and verifies with the same key.
//!
//! The application role has no privilege on either table: it reaches them through these two
//! SECURITY DEFINER functions only (fixed `search_path`): it cannot write a bucket's state
//! directly, nor replace the development key. The token function takes the caller's clock and
//! limit (the application's clock decides, and tests move it), so a compromised application
//! role could loosen its own rate limits through it; it opens no data.
//! SQLite (one process owns the file) keeps its buckets in the process and its key in a file
//! beside the database: nothing here.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::{ConnectionTrait, DbBackend};

use crate::APP_ROLE;

pub struct Migration;

impl MigrationName for Migration {
    fn name(&self) -> &str {
        "m20261203_000011_shared_state"
    }
}

/// Idle buckets one call deletes at most: a call adds at most one, so the table stays about
/// the size of the last minute's keys.
const PRUNE_PER_CALL: u32 = 16;

fn up_sql() -> String {
    format!(
        r#"
CREATE TABLE IF NOT EXISTS rate_buckets (
  scope text NOT NULL,
  key text NOT NULL,
  tokens double precision NOT NULL,
  at timestamptz NOT NULL,
  refusing boolean NOT NULL DEFAULT false,
  PRIMARY KEY (scope, key)
);
CREATE INDEX IF NOT EXISTS idx_rate_buckets_at ON rate_buckets (at);
REVOKE ALL ON TABLE rate_buckets FROM PUBLIC;
REVOKE ALL ON TABLE rate_buckets FROM {APP_ROLE};

-- The bucket row is locked for the arithmetic only (the caller runs this as a statement of
-- its own, not in a request's transaction). Idle buckets are pruned after the take, with
-- SKIP LOCKED: a call waits for no lock but its own bucket's, so calls cannot deadlock.
CREATE OR REPLACE FUNCTION app_take_rate_token(
  p_scope text, p_key text, p_per_minute integer, p_now timestamptz,
  OUT admitted boolean, OUT first_refusal boolean, OUT retry_after_secs integer)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
DECLARE
  -- At most the largest limit the server reads (rate_limit::MAX_PER_MINUTE).
  v_cap double precision := least(greatest(p_per_minute, 0), 1000000);
  v_tokens double precision;
  v_at timestamptz;
  v_refusing boolean;
BEGIN
  LOOP
    SELECT b.tokens, b.at, b.refusing INTO v_tokens, v_at, v_refusing
      FROM rate_buckets b WHERE b.scope = p_scope AND b.key = p_key FOR UPDATE;
    EXIT WHEN FOUND;
    INSERT INTO rate_buckets (scope, key, tokens, at, refusing) VALUES (p_scope, p_key, v_cap, p_now, false)
      ON CONFLICT (scope, key) DO NOTHING;
  END LOOP;
  -- A clock that goes backwards (another replica's, a little behind) refills nothing.
  IF p_now > v_at THEN
    v_tokens := v_tokens + extract(epoch FROM p_now - v_at)::double precision * v_cap / 60;
    v_at := p_now;
  END IF;
  v_tokens := least(v_tokens, v_cap);
  IF p_per_minute > 0 AND v_tokens >= 1 THEN
    v_tokens := v_tokens - 1;
    v_refusing := false;
    admitted := true;
    first_refusal := false;
    retry_after_secs := 0;
  ELSE
    admitted := false;
    first_refusal := NOT v_refusing;
    v_refusing := true;
    retry_after_secs := CASE WHEN p_per_minute <= 0 THEN 60
                             ELSE greatest(1, ceil((1 - v_tokens) * 60 / v_cap))::integer END;
  END IF;
  UPDATE rate_buckets SET tokens = v_tokens, at = v_at, refusing = v_refusing
    WHERE scope = p_scope AND key = p_key;
  DELETE FROM rate_buckets WHERE (scope, key) IN (
    SELECT b.scope, b.key FROM rate_buckets b WHERE b.at < p_now - interval '1 minute'
    ORDER BY b.at LIMIT {PRUNE_PER_CALL} FOR UPDATE SKIP LOCKED);
END
$$;
REVOKE ALL ON FUNCTION app_take_rate_token(text, text, integer, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_take_rate_token(text, text, integer, timestamptz) TO {APP_ROLE};

CREATE TABLE IF NOT EXISTS development_signing_key (
  id boolean PRIMARY KEY DEFAULT true CHECK (id),
  key bytea NOT NULL CHECK (octet_length(key) >= 32),
  created_at timestamptz NOT NULL DEFAULT now()
);
REVOKE ALL ON TABLE development_signing_key FROM PUBLIC;
REVOKE ALL ON TABLE development_signing_key FROM {APP_ROLE};

-- Race-free: of servers starting together, one inserts its candidate; the others' inserts
-- wait for it and do nothing, and every one returns the key that was kept.
CREATE OR REPLACE FUNCTION app_development_key(p_candidate bytea) RETURNS bytea
LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = pg_catalog, public, pg_temp AS $$
BEGIN
  INSERT INTO development_signing_key (id, key) VALUES (true, p_candidate) ON CONFLICT (id) DO NOTHING;
  RETURN (SELECT k.key FROM development_signing_key k WHERE k.id);
END
$$;
REVOKE ALL ON FUNCTION app_development_key(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_development_key(bytea) TO {APP_ROLE};
"#
    )
}

const DOWN_SQL: &str = "
DROP FUNCTION IF EXISTS app_development_key(bytea);
DROP TABLE IF EXISTS development_signing_key;
DROP FUNCTION IF EXISTS app_take_rate_token(text, text, integer, timestamptz);
DROP TABLE IF EXISTS rate_buckets;
";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(&up_sql()).await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        if manager.get_database_backend() == DbBackend::Postgres {
            manager.get_connection().execute_unprepared(DOWN_SQL).await?;
        }
        Ok(())
    }
}
