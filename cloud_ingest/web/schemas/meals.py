"""A meal recorded by hand in the console (补录): the JSON in and out."""

from __future__ import annotations

from datetime import date

from pydantic import BaseModel, Field

from cloud_ingest.console.hand_meals import MAX_REASON


class HandMealIn(BaseModel):
    person_id: str = Field(min_length=1, max_length=64, examples=["P0001"])
    meal_period: str | None = Field(
        None, max_length=16, description="breakfast, lunch or dinner; default the current one"
    )
    day: date | None = Field(None, description="the canteen's local date; default today")
    reason: str = Field(max_length=MAX_REASON, examples=["忘带卡 forgot the card"])


class HandMealOut(BaseModel):
    seq: int = Field(description="the point's seq on device console:hand")
    event_id: str
    person_id: str
    site_id: str
    day: str
    meal_period: str
    reason: str
    recorded_by: str
    witness: str = Field(examples=["user:li.canteen"])
    recorded_local: str = Field(description="when it was recorded, the site's local time")
