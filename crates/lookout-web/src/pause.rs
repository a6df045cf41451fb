//! `POST /api/v1/targets/{name}/pause` and `/resume` (with a token, like every change): the dashboard's Pause and
//! Resume buttons. The rules are `lookout_app::pause`'s; this maps its refusals to statuses (404 no such target,
//! 409 already paused / not paused).

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use lookout_app::pause::PauseError;
use lookout_store::Store;

use super::pages::DashboardCache;
use super::{ApiResult, SafeJson, WebState, err, who};

fn refused(e: PauseError) -> super::ApiError {
    match e {
        PauseError::NotFound(_) => err(StatusCode::NOT_FOUND, e.to_string()),
        PauseError::AlreadyPaused(..) | PauseError::NotPaused(_) => err(StatusCode::CONFLICT, e.to_string()),
        PauseError::Store(s) => s.into(),
    }
}

pub(super) async fn pause<S: Store>(
    State(state): State<WebState<S>>,
    Extension(cache): Extension<DashboardCache>,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> ApiResult<SafeJson<lookout_store::Silence>> {
    let w = who(&body)?;
    let known: Vec<&str> = state.config.targets.iter().map(|t| t.name.as_str()).collect();
    let comment = w.note.as_deref().or(w.text.as_deref());
    let silence =
        lookout_app::pause::pause(state.store.as_ref(), &known, &name, &w.by(), comment).await.map_err(refused)?;
    cache.forget().await;
    Ok(SafeJson(silence))
}

pub(super) async fn resume<S: Store>(
    State(state): State<WebState<S>>,
    Extension(cache): Extension<DashboardCache>,
    Path(name): Path<String>,
) -> ApiResult<StatusCode> {
    lookout_app::pause::resume(state.store.as_ref(), &name).await.map_err(refused)?;
    cache.forget().await;
    Ok(StatusCode::NO_CONTENT)
}
