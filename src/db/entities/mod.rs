//! One SeaORM entity per table of the data model (`migrations` creates them).

pub mod access_notices;
pub mod action_items;
pub mod ai_access_log;
pub mod ai_action_proposals;
pub mod ai_feedback;
pub mod audit_events;
pub mod auth_sessions;
pub mod break_glass_grants;
pub mod break_glass_requests;
pub mod coach_assignments;
pub mod coach_notes;
pub mod coaching_sessions;
pub mod consent_history;
pub mod consents;
pub mod evidence_packs;
pub mod goals;
pub mod insights;
pub mod integration_tokens;
pub mod login_throttles;
pub mod session_private_notes;
pub mod session_summaries;
pub mod system_config;
pub mod tenant_settings;
pub mod tenants;
pub mod transcripts;
pub mod users;
