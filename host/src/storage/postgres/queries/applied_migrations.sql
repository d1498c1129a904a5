SELECT version, checksum, success FROM _sqlx_migrations
