"""The response shapes, as Pydantic models for the OpenAPI document (/docs).

They describe the result schema of ``picinspector analyze --json`` (README, "Result schema"); the
server sends the rows exactly as `Report.to_dict` makes them, so these models document, they do not
filter.
"""

from __future__ import annotations

from typing import Any, Optional, Union

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    kind: str = Field(description="Machine-readable kind, e.g. not_an_image, upload_too_large, busy")
    message: str = Field(description="What went wrong, in plain words")


class ErrorResponse(BaseModel):
    error: ErrorBody
    results: Optional[list["ErrorRow"]] = Field(None, description="When every photo failed: their error rows")


class Finding(BaseModel):
    kind: str
    severity: str = Field(description="info, minor, moderate or severe")
    message: str
    suggestion: str


class Scene(BaseModel):
    label: str = Field(description="One of the nine SPAQ categories")
    probabilities: dict[str, float]
    method: str
    confidence: float


class Scores(BaseModel):
    quality: Optional[float] = None
    brightness: Optional[float] = None
    colorfulness: Optional[float] = None
    contrast: Optional[float] = None
    noisiness: Optional[float] = Field(None, description="100 = clean")
    sharpness: Optional[float] = None


class View(BaseModel):
    thumb: str = Field(description="data: URL of a thumbnail (WebP, or JPEG)")
    w: int
    h: int
    clip: Optional[str] = Field(None, description="data: URL of a PNG mask: red clipped highlights, blue crushed "
                                                  "shadows; null when there are none")
    focus: Optional[dict[str, Any]] = Field(None, description="{rows, cols, grid}: focus 0-1 per tile, null = flat")
    checked: bool = Field(description="The overlays were computed (so a null clip means nothing is clipped)")


class ResultRow(BaseModel):
    path: Optional[str] = Field(description="The uploaded file's name")
    width: int
    height: int
    format: str
    exif: dict[str, Any]
    scores: Scores
    scene: Scene
    findings: list[Finding]
    feedback: str
    measures: dict[str, Any] = Field(description="Units: GET /v1/measures")
    engine: str
    version: str
    view: Optional[View] = Field(None, description="Only with ?overlays=true")


class ErrorRow(BaseModel):
    path: Optional[str]
    error: ErrorBody


class AnalyzeResponse(BaseModel):
    results: list[Union[ResultRow, ErrorRow]]


class HealthResponse(BaseModel):
    status: str
    version: str
    engine: str
    feedback: str
    limits: dict[str, Any]
    analyses: dict[str, int] = Field(description="running, waiting, capacity")


class MeasureInfo(BaseModel):
    unit: str
    description: str


class MeasuresResponse(BaseModel):
    measures: dict[str, MeasureInfo]


ErrorResponse.model_rebuild()
