//! Memory tables carried inside a plan sent to a cluster.
//!
//! Ballista's codec sends a table as where its files are, which a memory
//! table has not: it lives in the client. `risk.publication` (the client's
//! view of what is published) and small tables an analyst makes in the
//! shell are such tables. Up to [`MAX_BYTES`], their rows travel with the
//! plan as Arrow IPC, so the scheduler and executors scan exactly what the
//! client sees (not their own, possibly older, copy).

use std::io::Cursor;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::catalog::TableProvider;
use datafusion::datasource::MemTable;
use datafusion::error::{DataFusionError, Result};

/// What begins an encoded memory table; Ballista's own table encodings
/// (Protocol Buffers messages of its listing options) never begin so.
const TAG: &[u8] = b"aduana memory table v1\n";

/// The most a memory table may hold to travel in a plan: plans go through
/// gRPC messages, and a big table belongs in Parquet files.
pub const MAX_BYTES: usize = 8 << 20;

/// Encodes `table` into `buf` when it is a memory table; `Ok(false)` for
/// any other table.
pub fn encode(name: &str, table: &dyn TableProvider, buf: &mut Vec<u8>) -> Result<bool> {
    let Some(memory) = table.downcast_ref::<MemTable>() else {
        return Ok(false);
    };
    let mut partitions: Vec<Vec<RecordBatch>> = Vec::with_capacity(memory.batches.len());
    for partition in &memory.batches {
        let batches = partition.try_read().map_err(|_| {
            DataFusionError::Plan(format!(
                "memory table {name} is being written: try again when it is done"
            ))
        })?;
        partitions.push(batches.clone());
    }
    let bytes: usize = partitions
        .iter()
        .flatten()
        .map(RecordBatch::get_array_memory_size)
        .sum();
    if bytes > MAX_BYTES {
        return Err(DataFusionError::Plan(format!(
            "memory table {name} holds {} MiB, more than the {} MiB a plan may carry to a \
             cluster: write it to Parquet (COPY ... TO) and query the files",
            bytes >> 20,
            MAX_BYTES >> 20
        )));
    }
    buf.extend_from_slice(TAG);
    buf.extend_from_slice(&(partitions.len() as u32).to_le_bytes());
    for batches in &partitions {
        let mut part = Vec::new();
        let mut writer = StreamWriter::try_new(&mut part, &table.schema())?;
        for batch in batches {
            writer.write(batch)?;
        }
        writer.finish()?;
        drop(writer);
        buf.extend_from_slice(&(part.len() as u64).to_le_bytes());
        buf.extend_from_slice(&part);
    }
    Ok(true)
}

/// The memory table `buf` holds, when [`encode`] wrote it.
pub fn decode(name: &str, buf: &[u8], schema: SchemaRef) -> Result<Option<Arc<MemTable>>> {
    let Some(mut rest) = buf.strip_prefix(TAG) else {
        return Ok(None);
    };
    let broken = || DataFusionError::Plan(format!("memory table {name}: a truncated encoding"));
    let mut take = |n: usize| -> Result<&[u8]> {
        if rest.len() < n {
            return Err(broken());
        }
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Ok(head)
    };
    let count = u32::from_le_bytes(take(4)?.try_into().expect("4 bytes"));
    let mut partitions = Vec::new();
    for _ in 0..count {
        let len = u64::from_le_bytes(take(8)?.try_into().expect("8 bytes"));
        let bytes = take(usize::try_from(len).map_err(|_| broken())?)?;
        let reader = StreamReader::try_new(Cursor::new(bytes), None)?;
        partitions.push(reader.collect::<std::result::Result<Vec<_>, _>>()?);
    }
    Ok(Some(Arc::new(MemTable::try_new(schema, partitions)?)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::datasource::empty::EmptyTable;
    use datafusion::prelude::SessionContext;

    fn table(rows: usize) -> (SchemaRef, MemTable) {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|i| (i % 3 != 0).then(|| format!("n{i}"))),
                )),
            ],
        )
        .unwrap();
        let empty = RecordBatch::new_empty(schema.clone());
        let table = MemTable::try_new(
            schema.clone(),
            vec![vec![batch.clone(), batch], vec![empty]],
        )
        .unwrap();
        (schema, table)
    }

    #[tokio::test]
    async fn a_memory_table_travels_whole() {
        let (schema, original) = table(1_000);
        let mut buf = Vec::new();
        assert!(encode("t", &original, &mut buf).unwrap());
        let decoded = decode("t", &buf, schema).unwrap().expect("a memory table");
        let ctx = SessionContext::new();
        let rows = |t: Arc<dyn TableProvider>| {
            let ctx = ctx.clone();
            async move {
                let frame = ctx.read_table(t).unwrap();
                let sorted = frame.sort_by(vec![datafusion::prelude::col("id")]).unwrap();
                datafusion::arrow::util::pretty::pretty_format_batches(
                    &sorted.collect().await.unwrap(),
                )
                .unwrap()
                .to_string()
            }
        };
        assert_eq!(decoded.batches.len(), 2);
        assert_eq!(rows(decoded).await, rows(Arc::new(original)).await);
    }

    #[test]
    fn other_tables_big_tables_and_broken_bytes() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true)]));
        let mut buf = Vec::new();
        assert!(!encode("e", &EmptyTable::new(schema.clone()), &mut buf).unwrap());
        assert!(buf.is_empty());
        assert!(decode("e", b"\x0a\x03abc", schema).unwrap().is_none());

        let (schema, big) = table(600_000);
        let error = encode("big", &big, &mut Vec::new())
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("memory table big holds") && error.contains("COPY"),
            "{error}"
        );

        let (_, small) = table(10);
        let mut buf = Vec::new();
        encode("t", &small, &mut buf).unwrap();
        buf.truncate(buf.len() - 5);
        let error = decode("t", &buf, schema).unwrap_err().to_string();
        assert!(error.contains("memory table t"), "{error}");
    }
}
