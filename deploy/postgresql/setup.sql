-- The shared store of a multi-machine deployment (docs/operations.md, "Several machines").
-- Run once on the database host as the postgres superuser:
--   sudo -u postgres psql -v password="'$(openssl rand -hex 24)'" -f setup.sql
-- then put the password in ~warmcard/.pgpass on every worker and console host
-- (db.internal:5432:warmcard:warmcard:<password>), never in ingest.toml.
--
-- One role owns the database; every worker and console connects as it. Tables are made by the
-- services themselves (Alembic, at start), so the role needs to create in its own database and
-- nothing else: no superuser, no other databases.

CREATE ROLE warmcard LOGIN PASSWORD :password NOSUPERUSER NOCREATEDB NOCREATEROLE;
CREATE DATABASE warmcard OWNER warmcard ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE warmcard FROM PUBLIC;
\connect warmcard
ALTER SCHEMA public OWNER TO warmcard;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
