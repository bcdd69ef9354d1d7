//! Every refusal is an HTTP status with a human-readable text body.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::hub::HubError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> Self {
        ApiError { status, message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = self.message;
        body.push('\n');
        (self.status, [(header::CONTENT_TYPE, "text/plain; charset=utf-8")], body).into_response()
    }
}

impl From<HubError> for ApiError {
    fn from(e: HubError) -> Self {
        let status = match &e {
            HubError::BadOffer(_) | HubError::BadPlacement(_) => StatusCode::BAD_REQUEST,
            HubError::RoomBusy(_) | HubError::NoPublisher(_) => StatusCode::CONFLICT,
            HubError::UnknownSession | HubError::NoRoom(_) | HubError::NoParticipant(_) | HubError::NoTrack(_) => {
                StatusCode::NOT_FOUND
            }
            HubError::Dtls(_) => StatusCode::INTERNAL_SERVER_ERROR,
            HubError::Draining => StatusCode::SERVICE_UNAVAILABLE,
            HubError::TestHooksOff => StatusCode::FORBIDDEN,
            HubError::PreconditionFailed(_) => StatusCode::PRECONDITION_FAILED,
            HubError::Limit(l) if l.per_client => StatusCode::TOO_MANY_REQUESTS,
            HubError::Limit(_) => StatusCode::SERVICE_UNAVAILABLE,
        };
        ApiError::new(status, e.to_string())
    }
}

impl From<crate::cluster::ClusterError> for ApiError {
    /// Placement cannot happen now (Redis down, no node with room): 503, so
    /// clients retry, with the reason in the body.
    fn from(e: crate::cluster::ClusterError) -> Self {
        ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
    }
}
