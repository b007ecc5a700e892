"""What the JSON API takes and answers: pydantic models, query parameters and request limits."""
