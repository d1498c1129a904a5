-- The component stored under SHA-256 ?1.
SELECT bytes FROM plugin_components WHERE sha256 = ?1
