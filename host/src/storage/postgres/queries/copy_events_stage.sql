-- COPY's text format: tab-separated, \N for NULL.
COPY events_stage FROM STDIN (FORMAT text)
