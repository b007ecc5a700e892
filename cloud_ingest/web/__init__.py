"""The web app: FastAPI, JSON API, SSE streams, the console's pages, templates and static files."""
