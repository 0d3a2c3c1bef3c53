//! Mailed flows: password reset (request a link, confirm it with a new password) and email
//! verification (ask for a new link, confirm it). The links point at the front end
//! (`AUTH_PUBLIC_URL` + a page + `?token=`), whose page posts the token here.

use auth_core::CoreError;
use auth_core::domain::{Email, LoginName, Password, TenantId};
use auth_proto::{
    Accepted, PasswordResetConfirm, PasswordResetRequest, Problem, VerifyEmailRequest,
};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use utoipa_axum::routes;

use super::error::ApiError;
use super::extract::{ApiJson, Caller, Client};
use super::limit::admit;
use super::respond::no_store;
use super::route::{Group, Needs};
use crate::limits::Limit;
use crate::state::AppState;

pub fn groups() -> Vec<Group> {
    vec![
        Group::new(Needs::WRITES.limited(Limit::ResetIp))
            .routes(routes!(request_reset))
            .routes(routes!(request_verification)),
        Group::new(Needs::WRITES)
            .routes(routes!(confirm_reset))
            .routes(routes!(verify_email)),
    ]
}

/// The one answer of a request whose outcome is mailed.
fn accepted() -> Response {
    no_store((StatusCode::ACCEPTED, Json(Accepted::new())).into_response())
}

/// Checks the per-account limit of the mailed flows (`AUTH_RATE_RESET_ACCOUNT`) for an
/// address, whether or not an account has it: an unknown address is counted the same way.
async fn admit_account(state: &AppState, tenant: &TenantId, email: &Email) -> Result<(), ApiError> {
    let name = LoginName::Email(email.clone());
    admit(
        state
            .limits
            .check_account(Limit::ResetAccount, tenant, &name)
            .await,
    )
    .map(drop)
}

/// Mail a password-reset link to the account of an address. Answered `202` with the same body
/// whether or not an account has the address (nothing is mailed for an unknown or disabled
/// account). Limited per client IP and per address (`AUTH_RATE_RESET_IP`,
/// `AUTH_RATE_RESET_ACCOUNT`), known or not.
#[utoipa::path(post, path = "/auth/password-reset/request", tag = "auth",
    request_body = PasswordResetRequest,
    responses(
        (status = 202, description = "Accepted; if an enabled account has the address, a link was mailed to it", body = Accepted),
        (status = 422, description = "`validation_failed`: `email` is not one string of 1 to 254 characters, or `tenant` not a tenant id", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn request_reset(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<PasswordResetRequest>,
) -> Result<Response, ApiError> {
    let tenant = match body.tenant.as_deref() {
        Some(t) => TenantId::parse(t).map_err(|m| CoreError::invalid("tenant", m))?,
        None => TenantId::default_tenant(),
    };
    if !(1..=254).contains(&body.email.chars().count()) {
        return Err(CoreError::invalid("email", "must be 1 to 254 characters").into());
    }
    let email = Email::for_lookup(&body.email);
    if let Some(email) = &email {
        admit_account(&state, &tenant, email).await?;
    }
    state
        .accounts
        .request_password_reset(&tenant, email.as_ref(), &client)
        .await?;
    Ok(accepted())
}

/// Set a new password with the token of a reset link. Every session of the account is
/// revoked, failed logins are cleared, an unverified address becomes verified (the link
/// proved the mailbox) and a `password_changed` mail is sent. A refused password leaves the
/// link usable.
#[utoipa::path(post, path = "/auth/password-reset/confirm", tag = "auth",
    request_body = PasswordResetConfirm,
    responses(
        (status = 204, description = "Password set; every session revoked"),
        (status = 400, description = "`token_invalid` (unknown, used, replaced by a newer link, or for an address the account no longer has), `token_expired`, or `malformed_request` (not JSON)", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, or `weak_password` (too short, over 1024 characters, common, containing the email's name or the username, or one of the last `AUTH_PASSWORD_HISTORY` passwords)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn confirm_reset(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<PasswordResetConfirm>,
) -> Result<StatusCode, ApiError> {
    let new = Password::new(body.new_password);
    state
        .accounts
        .confirm_password_reset(&body.token, new, &client)
        .await
        .map_err(|e| ApiError::from(e).rename_field("password", "new_password"))?;
    Ok(StatusCode::NO_CONTENT)
}

/// Mail the caller a new verification link (earlier links stop working). An address verified
/// already gets nothing, with the same answer. Limited per client IP and per account
/// (`AUTH_RATE_RESET_IP`, `AUTH_RATE_RESET_ACCOUNT`).
#[utoipa::path(post, path = "/auth/verify-email/request", tag = "auth",
    security(("bearer" = [])),
    responses(
        (status = 202, description = "Accepted; a link was mailed unless the address is verified already (`GET /auth/me` says `email_verified`)", body = Accepted),
        (status = 401, description = "`token_invalid`, `token_expired` or `token_revoked`", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "`account_disabled`", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn request_verification(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let who = caller.identity();
    if let Some(email) = Email::for_lookup(&who.email) {
        admit_account(&state, &who.tenant, &email).await?;
    }
    state.accounts.request_verification(who).await?;
    Ok(accepted())
}

/// Verify an address with the token of a verification link. Only the address the account has
/// now is verified: a link mailed to an earlier address is refused.
#[utoipa::path(post, path = "/auth/verify-email", tag = "auth",
    request_body = VerifyEmailRequest,
    responses(
        (status = 204, description = "The address is verified"),
        (status = 400, description = "`token_invalid` (unknown, used, replaced by a newer link, or for an address the account no longer has), `token_expired`, or `malformed_request` (not JSON)", body = Problem, content_type = "application/problem+json"),
    ))]
pub async fn verify_email(
    State(state): State<AppState>,
    Client(client): Client,
    ApiJson(body): ApiJson<VerifyEmailRequest>,
) -> Result<StatusCode, ApiError> {
    state.accounts.verify_email(&body.token, &client).await?;
    Ok(StatusCode::NO_CONTENT)
}
