//! Real clients and servers: pyarrow reads what the generator writes, and
//! the warehouse works from an S3-compatible server (moto) on 127.0.0.1.

use std::process::Command;

use crate::support::*;

#[test]
fn pyarrow_reads_the_generated_warehouse() {
    let Some(python) = python_with("pyarrow") else {
        return;
    };
    let wh = generate(10_000, 2);
    let script = r#"
import sys, pyarrow.dataset as ds, pyarrow.parquet as pq
root = sys.argv[1]
d = ds.dataset(root + "/declarations", format="parquet", partitioning="hive").to_table()
i = ds.dataset(root + "/inspections", format="parquet", partitioning="hive").to_table()
t = ds.dataset(root + "/_truth", format="parquet", partitioning="hive").to_table()
tariff = pq.read_table(root + "/reference/tariff.parquet")
print(d.num_rows, i.num_rows, t.num_rows, tariff.num_rows)
print(d.schema.field("customs_value").type, d.schema.field("declaration_date").type, d.schema.field("item_no").type)
print(sorted(set(d.column("lane").to_pylist())))
"#;
    let out = Command::new(python)
        .args(["-c", script, &wh.uri()])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    let s = &wh.summary;
    assert_eq!(
        lines[0],
        format!("{} {} {} {}", s.rows, s.inspections, s.rows, s.tariff_lines)
    );
    assert_eq!(lines[1], "decimal128(18, 2) date32[day] int32");
    assert_eq!(lines[2], "['blue', 'green', 'red', 'yellow']");
}

#[test]
fn s3_compatible_warehouse() {
    let Some(python) = python_with("moto") else {
        return;
    };
    let server = start_moto(&python);
    let wh = generate(8_000, 2);
    upload(&python, &server, &wh.path(), "customs", "gt/wh");

    let aws = |c: &mut Command| {
        c.env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE");
    };
    let mut command = aduana();
    aws(&mut command);
    command.args([
        "sql", "-w", "s3://customs/gt/wh", "--s3-endpoint", &server.endpoint, "--s3-path-style", "--format", "csv", "-c",
        "SELECT COUNT(*) AS items, SUM(CASE WHEN year = 2026 AND month = 10 THEN 1 ELSE 0 END) AS october FROM declarations; \
         SELECT COUNT(*) AS lines FROM reference.tariff",
    ]);
    let out = run(&mut command);
    assert!(out.status.success(), "{}", stderr(&out));
    let october: u64 = runtime().block_on(async {
        let s = session(&wh.uri()).await;
        query_i64(&s, "SELECT COUNT(*) FROM declarations WHERE month = 10").await as u64
    });
    assert_eq!(
        stdout(&out),
        format!(
            "items,october\n{},{october}\nlines\n{}\n",
            wh.summary.rows, wh.summary.tariff_lines
        )
    );

    // Errors on S3 name the object at fault.
    let mut command = aduana();
    aws(&mut command);
    command.args([
        "check",
        "-w",
        "s3://customs/elsewhere",
        "--s3-endpoint",
        &server.endpoint,
        "--s3-path-style",
    ]);
    let out = run(&mut command);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("s3://customs/elsewhere/declarations/"),
        "{}",
        stderr(&out)
    );
}
