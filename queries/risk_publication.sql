-- title: Risk publication
-- description: What the published risk tables are: the refresh run that published them, when, the model version that scored them, the months they cover and the rows scored and rejected; and the model this session loaded. No row before the first refresh. Needs a risk model.
-- needs: model
-- columns: run_id, published_at, model_version, as_of, partitions, first_partition, last_partition, rows_in, scored, rejected, session_model_version, model_built_at, model_window_start, model_window_end
SELECT p.run_id, p.published_at, p.model_version, p.as_of, p.partitions,
       p.first_partition, p.last_partition, p.rows_in, p.scored, p.rejected,
       m.version AS session_model_version, m.built_at AS model_built_at,
       m.window_start AS model_window_start, m.window_end AS model_window_end
FROM risk.publication p CROSS JOIN risk_model_info() m;
