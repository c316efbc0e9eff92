-- First start of the compose PostgreSQL: FerretDB's database and PostGIS.
CREATE DATABASE ferretdb OWNER panic;
\connect panic_alert
CREATE EXTENSION IF NOT EXISTS postgis;
