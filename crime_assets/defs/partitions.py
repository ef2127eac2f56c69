import dagster as dg

# Keys like "2016-03"; months follow Chicago's calendar, and the newest key is the last complete month.
monthly_partitions = dg.MonthlyPartitionsDefinition(
    start_date="2001-01", fmt="%Y-%m", timezone="America/Chicago", end_offset=0
)
