COPY (SELECT * FROM declarations LIMIT 3) TO 'file:/tmp/x.parquet' STORED AS PARQUET
