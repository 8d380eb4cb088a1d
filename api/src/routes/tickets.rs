//! Tickets: my tickets, one ticket with its code, and its QR code.

use axum::{
    Json,
    extract::{Path, State},
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use eventsys_messages::{Action, TicketId, TicketRef};

use super::{events::may_scan, orders::may_act_for};
use crate::{
    AppState,
    auth::Caller,
    input::{CommandHeaders, CommandRequest, Paging, path_id},
    problem::{
        BadCommand, BadPage, KeyReused, Problem, ProblemDocument, ReadProblems, WriteProblems,
    },
    submit::SubmitAnswers,
    views::{self, PageOf, TicketView},
};

/// List my tickets
///
/// The caller's tickets, with their codes, a page at a time.
#[utoipa::path(
    get,
    path = "/v1/me/tickets",
    tag = "tickets",
    security(("bearer" = [])),
    params(Paging),
    responses(
        (status = 200, description = "A page of the caller's tickets", body = PageOf<TicketView<'static>>),
        BadPage,
        ReadProblems,
    ),
)]
pub async fn mine(
    State(state): State<AppState>,
    caller: Caller,
    paging: Paging,
) -> Result<Response, Problem> {
    let list = format!("tickets:{}", caller.user);
    let request = paging.request(&state.cursors, &list)?;
    let page = state.store.tickets_of(&caller.user, &request).await?;
    let tickets = views::page(&page, &state.cursors, &list, |t| {
        views::ticket(t, Some(state.codes.of(t)))
    });
    Ok(Json(tickets).into_response())
}

/// Read a ticket
///
/// For its holder, and for whoever may scan at its event (its organizer,
/// its door staff, admins), with its code.
#[utoipa::path(
    get,
    path = "/v1/tickets/{ticket_id}",
    tag = "tickets",
    security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path, description = "The ticket")),
    responses(
        (status = 200, description = "The ticket", body = TicketView<'static>),
        (status = 404, description = "`not_found`: no such ticket the caller may see",
            body = ProblemDocument, content_type = "application/problem+json"),
        ReadProblems,
    ),
)]
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(ticket_id): Path<String>,
) -> Result<Response, Problem> {
    let ticket = visible_ticket(&state, &caller, &ticket_id).await?;
    let code = state.codes.of(&ticket);
    Ok(Json(views::ticket(&ticket, Some(code))).into_response())
}

/// A ticket's QR code
///
/// `GET /v1/tickets/{id}/qr.svg`: the ticket's code as a QR code, for
/// whoever may see the code.
#[utoipa::path(
    get,
    path = "/v1/tickets/{ticket_id}/qr.svg",
    tag = "tickets",
    security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path, description = "The ticket")),
    responses(
        (status = 200, description = "An SVG image of at least 256 by 256", body = String, content_type = "image/svg+xml"),
        (status = 404, description = "`not_found`: no such ticket the caller may see",
            body = ProblemDocument, content_type = "application/problem+json"),
        ReadProblems,
        (status = 500, description = "`internal_error`: the store failed on our side, or the code does not fit a QR code",
            body = ProblemDocument, content_type = "application/problem+json"),
    ),
)]
pub async fn qr(
    State(state): State<AppState>,
    caller: Caller,
    Path(ticket_id): Path<String>,
) -> Result<Response, Problem> {
    let ticket = visible_ticket(&state, &caller, &ticket_id).await?;
    let code = state.codes.of(&ticket);
    let svg = qrcode::QrCode::new(code.as_bytes())
        .map_err(|_| {
            Problem::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "internal_error",
                "the code does not fit a QR code",
            )
        })?
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(256, 256)
        .build();
    Ok(([(header::CONTENT_TYPE, "image/svg+xml")], svg).into_response())
}

/// Cancel a ticket
///
/// `POST /v1/tickets/{id}/cancel`: its holder or the event's organizer
/// cancels one ticket; its seat goes back on sale.
#[utoipa::path(
    post,
    path = "/v1/tickets/{ticket_id}/cancel",
    tag = "tickets",
    security(("bearer" = [])),
    params(("ticket_id" = TicketId, Path, description = "The ticket"), CommandHeaders),
    responses(
        SubmitAnswers,
        BadCommand,
        (status = 404, description = "`not_found`: no such ticket the caller may cancel",
            body = ProblemDocument, content_type = "application/problem+json"),
        KeyReused,
        WriteProblems,
    ),
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    Path(ticket_id): Path<String>,
    request: CommandRequest,
) -> Result<Response, Problem> {
    let ticket_id: TicketId = path_id(&ticket_id, "ticket")?;
    let ticket = state
        .store
        .ticket(ticket_id)
        .await?
        .ok_or_else(|| Problem::not_found("ticket"))?;
    if !may_act_for(&state, &caller, &ticket.holder_id, ticket.event_id).await? {
        return Err(Problem::not_found("ticket"));
    }
    let action = Action::CancelTicket(TicketRef { ticket_id });
    state.submit(&caller, request, action).await
}

/// The ticket `raw` names, if `caller` may see it and its code: its
/// holder, or whoever may scan at its event; anyone else is told it does
/// not exist.
async fn visible_ticket(
    state: &AppState,
    caller: &Caller,
    raw: &str,
) -> Result<eventsys_store::TicketRecord, Problem> {
    let ticket_id: TicketId = path_id(raw, "ticket")?;
    let ticket = state
        .store
        .ticket(ticket_id)
        .await?
        .ok_or_else(|| Problem::not_found("ticket"))?;
    let allowed = ticket.holder_id == caller.user
        || caller.is_admin()
        || state
            .store
            .event_record(ticket.event_id)
            .await?
            .is_some_and(|event| may_scan(caller, &event));
    if !allowed {
        return Err(Problem::not_found("ticket"));
    }
    Ok(ticket)
}
