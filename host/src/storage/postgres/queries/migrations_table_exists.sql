-- Whether sqlx has ever migrated this database.
SELECT to_regclass('_sqlx_migrations') IS NOT NULL
