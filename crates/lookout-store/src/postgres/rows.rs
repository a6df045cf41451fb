//! PostgreSQL's side of `lookout store copy` ([`crate::copy`]): its tables read and written as rows of
//! [`Value`]s.
//!
//! - Reading converts by the column's type (BOOLEAN to 0/1, SMALLINT/INTEGER/BIGINT to integers, BYTEA to bytes),
//!   paging with a row-value comparison on the primary key (`(a, b) > ($1, $2)`), one range of its index.
//! - Writing sends a page as one JSON array and lets the server turn it into rows of the table's own type
//!   (`json_populate_recordset(NULL::t, …)`): one statement and one round trip per page, whatever the columns'
//!   types, and the server converts 0/1 to BOOLEAN and `\x…` hex to BYTEA by the same input rules as for text.
//!   Why not COPY: it needs each value encoded in the column's exact binary type by hand, for a gain that matters
//!   little next to the time a page takes to read. `OVERRIDING SYSTEM VALUE` keeps the copied ids of identity
//!   columns (`targets.id`).
//! - At the end every table's id sequence (BIGSERIAL or identity) is set past its largest id, so the next row
//!   lookout writes gets a fresh id instead of colliding with a copied one.

use std::fmt::Write as _;

use deadpool_postgres::GenericClient;
use tokio_postgres::types::{ToSql, Type};

use super::{PgStore, get, q};
use crate::copy::{Rows, Table, Value};
use crate::{Result, StoreError};

/// A table or column name in a statement: every name comes from [`crate::copy::TABLES`], never from input;
/// quoted all the same.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn unreadable(table: &str, column: &str, what: impl std::fmt::Display) -> StoreError {
    StoreError::Query { op: "copy: read", message: format!("{table}.{column}: {what}") }
}

/// Column `i` of a row as a [`Value`], by the column's type.
fn value(table: &str, row: &tokio_postgres::Row, i: usize) -> Result<Value> {
    let column = row.columns().get(i).map(|c| (c.name().to_string(), c.type_().clone()));
    let Some((name, ty)) = column else { return Err(unreadable(table, "?", format!("no column {i}"))) };
    let bad = |e: tokio_postgres::Error| unreadable(table, &name, e);
    let v = if ty == Type::BOOL {
        row.try_get::<_, Option<bool>>(i).map_err(bad)?.map(|b| Value::Int(i64::from(b)))
    } else if ty == Type::INT2 {
        row.try_get::<_, Option<i16>>(i).map_err(bad)?.map(|n| Value::Int(n.into()))
    } else if ty == Type::INT4 {
        row.try_get::<_, Option<i32>>(i).map_err(bad)?.map(|n| Value::Int(n.into()))
    } else if ty == Type::INT8 {
        row.try_get::<_, Option<i64>>(i).map_err(bad)?.map(Value::Int)
    } else if ty == Type::FLOAT4 {
        row.try_get::<_, Option<f32>>(i).map_err(bad)?.map(|f| Value::Real(f.into()))
    } else if ty == Type::FLOAT8 {
        row.try_get::<_, Option<f64>>(i).map_err(bad)?.map(Value::Real)
    } else if ty == Type::TEXT || ty == Type::VARCHAR || ty == Type::BPCHAR || ty == Type::NAME {
        row.try_get::<_, Option<String>>(i).map_err(bad)?.map(Value::Text)
    } else if ty == Type::BYTEA {
        row.try_get::<_, Option<Vec<u8>>>(i).map_err(bad)?.map(Value::Bytes)
    } else {
        return Err(unreadable(table, &name, format!("type {ty} is not one lookout's schema uses")));
    };
    Ok(v.unwrap_or(Value::Null))
}

/// A key value as a statement parameter, with the cast that gives the parameter its type (the key column may be
/// INTEGER or BIGINT; PostgreSQL compares across them and still uses the index).
fn key_param(v: &Value) -> Result<(Box<dyn ToSql + Sync + Send>, &'static str)> {
    Ok(match v {
        Value::Int(n) => (Box::new(*n), "BIGINT"),
        Value::Real(f) => (Box::new(*f), "FLOAT8"),
        Value::Text(t) => (Box::new(t.clone()), "TEXT"),
        Value::Bytes(b) => (Box::new(b.clone()), "BYTEA"),
        Value::Null => {
            return Err(StoreError::Query { op: "copy: read", message: "a primary key value is NULL".into() });
        }
    })
}

/// A value in the JSON page `json_populate_recordset` reads: numbers, strings, `\x…` hex for bytes.
fn to_json(table: &str, column: &str, v: &Value) -> Result<serde_json::Value> {
    Ok(match v {
        Value::Null => serde_json::Value::Null,
        Value::Int(n) => (*n).into(),
        Value::Real(f) => serde_json::Number::from_f64(*f).map(serde_json::Value::Number).ok_or_else(|| {
            StoreError::Query { op: "copy: write", message: format!("{table}.{column} holds {f}, not a number") }
        })?,
        Value::Text(t) => t.clone().into(),
        Value::Bytes(b) => {
            let mut hex = String::with_capacity(2 + 2 * b.len());
            hex.push_str("\\x");
            for byte in b {
                let _ = write!(hex, "{byte:02x}");
            }
            hex.into()
        }
    })
}

impl Rows for PgStore {
    async fn tables(&self) -> Result<Vec<String>> {
        const OP: &str = "copy: list tables";
        let sql = "SELECT table_name::TEXT FROM information_schema.tables
                   WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY 1";
        self.rows(OP, sql, &[], |r| get(OP, r, 0)).await
    }

    async fn columns(&self, table: &'static str) -> Result<Vec<String>> {
        const OP: &str = "copy: list columns";
        let sql = "SELECT column_name::TEXT FROM information_schema.columns
                   WHERE table_schema = current_schema() AND table_name = $1 ORDER BY ordinal_position";
        self.rows(OP, sql, &[&table], |r| get(OP, r, 0)).await
    }

    async fn count(&self, table: &'static str) -> Result<u64> {
        const OP: &str = "copy: count";
        let sql = format!("SELECT COUNT(*) FROM {}", ident(table));
        let n = self.rows(OP, &sql, &[], |r| get::<i64>(OP, r, 0)).await?;
        Ok(n.first().copied().unwrap_or(0).max(0) as u64)
    }

    async fn read_page(
        &self,
        table: &'static Table,
        after: Option<Vec<Value>>,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>> {
        const OP: &str = "copy: read";
        let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
        let key: Vec<String> = table.key.iter().map(|c| ident(c)).collect();
        let mut params = Vec::new();
        let mut marks = Vec::new();
        for (i, v) in after.iter().flatten().enumerate() {
            let (param, ty) = key_param(v)?;
            params.push(param);
            marks.push(format!("${}::{ty}", i + 1));
        }
        let filter = if marks.is_empty() {
            String::new()
        } else {
            format!("WHERE ({}) > ({})", key.join(", "), marks.join(", "))
        };
        let sql = format!(
            "SELECT {} FROM {} {filter} ORDER BY {} LIMIT {limit}",
            columns.join(", "),
            ident(table.name),
            key.join(", ")
        );
        let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p.as_ref() as &(dyn ToSql + Sync)).collect();
        let client = self.client(OP).await?;
        let stmt = client.prepare_cached(&sql).await.map_err(q(OP))?;
        let rows = client.query(&stmt, &refs).await.map_err(q(OP))?;
        rows.iter().map(|row| (0..table.columns.len()).map(|i| value(table.name, row, i)).collect()).collect()
    }

    async fn write_page(&self, table: &'static Table, rows: Vec<Vec<Value>>) -> Result<()> {
        const OP: &str = "copy: write";
        let mut page = Vec::with_capacity(rows.len());
        for row in &rows {
            let mut object = serde_json::Map::with_capacity(table.columns.len());
            for (column, v) in table.columns.iter().zip(row) {
                object.insert((*column).to_string(), to_json(table.name, column, v)?);
            }
            page.push(serde_json::Value::Object(object));
        }
        let page = serde_json::Value::Array(page).to_string();
        let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
        let columns = columns.join(", ");
        let name = ident(table.name);
        let sql = format!(
            "INSERT INTO {name} ({columns}) OVERRIDING SYSTEM VALUE
             SELECT {columns} FROM json_populate_recordset(NULL::{name}, $1::TEXT::JSON)"
        );
        let mut client = self.client(OP).await?;
        let tx = client.transaction().await.map_err(q(OP))?;
        let stmt = tx.prepare_cached(&sql).await.map_err(q(OP))?;
        tx.execute(&stmt, &[&page]).await.map_err(|e| match q(OP)(e) {
            StoreError::Query { op, message } => {
                StoreError::Query { op, message: format!("{}: {message}", table.name) }
            }
            other => other,
        })?;
        tx.commit().await.map_err(q(OP))
    }

    async fn finish(&self) -> Result<()> {
        const OP: &str = "copy: set id sequences";
        let client = self.client(OP).await?;
        for table in crate::copy::TABLES.iter().filter(|t| t.columns.contains(&"id")) {
            let row = client
                .query_one("SELECT pg_get_serial_sequence($1, 'id')", &[&ident(table.name)])
                .await
                .map_err(q(OP))?;
            let Some(sequence) = get::<Option<String>>(OP, &row, 0)? else { continue };
            let sql = format!(
                "SELECT setval($1::TEXT::REGCLASS, COALESCE((SELECT MAX(id) FROM {}), 0) + 1, false)",
                ident(table.name)
            );
            client.execute(&sql, &[&sequence]).await.map_err(q(OP))?;
        }
        Ok(())
    }
}
