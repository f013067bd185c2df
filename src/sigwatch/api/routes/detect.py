"""POST /api/v1/detect: what a text would fire with the current watchlist, and why."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter

from sigwatch.alerts.record import Detector, alert_threshold
from sigwatch.api.alert_schemas import DetectionOut, DetectRequest, DetectResponse
from sigwatch.api.deps import CurrentPrincipal, RuntimeDep, SessionDep
from sigwatch.api.routes import API_PREFIX
from sigwatch.detect import PostInput, analysed_text, detect
from sigwatch.detect.sentiment import sentiment_score

router = APIRouter(prefix=f"{API_PREFIX}/detect", tags=["detect"])


@router.post("")
async def detect_text(
    body: DetectRequest, _principal: CurrentPrincipal, runtime: RuntimeDep, session: SessionDep
) -> DetectResponse:
    """Run the detector on a text; nothing is stored or sent."""
    detector: Detector = await runtime.detectors.get(session)
    threshold = (
        body.min_confidence
        if body.min_confidence is not None
        else alert_threshold(runtime.settings)
    )
    post = PostInput(
        id="request",
        text=body.text,
        title=body.title,
        author=body.author,
        published=body.published,
    )
    found = detect(post, detector.index)
    return DetectResponse(
        min_confidence=threshold,
        sentiment=sentiment_score(analysed_text(post)),
        detections=[
            DetectionOut(
                entity=item.entity,
                event=item.event,
                confidence=item.confidence,
                urgency=item.urgency,
                event_time=item.event_time,
                would_alert=item.confidence >= detector.index.threshold(item.event, threshold),
                spans=[dataclasses.asdict(span) for span in item.spans],
                features=dict(item.features),
                trade=dataclasses.asdict(item.trade) if item.trade else None,
            )
            for item in found
        ],
    )
