-- Schemas the views live in: `staging` (per-vendor, renamed and cast) and `billing` (the contract).
CREATE SCHEMA IF NOT EXISTS staging;
CREATE SCHEMA IF NOT EXISTS billing;
