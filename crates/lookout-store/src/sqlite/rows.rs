//! SQLite's side of `lookout store copy` ([`crate::copy`]): its tables read and written as rows of [`Value`]s.
//!
//! SQLite's values map one to one (booleans are already INTEGER 0/1). Pages are read with a row-value comparison
//! on the primary key (`(a, b) > (?, ?)`), which SQLite answers as a range of the key's index, and each page is
//! written with one prepared INSERT in one transaction. Nothing to do at the end: a new row's id is the largest
//! one plus one.

use rusqlite::types::ValueRef;

use super::SqliteStore;
use crate::Result;
use crate::copy::{Rows, Table, Value};

/// A table or column name in a statement: every name comes from [`crate::copy::TABLES`] or from the store's own
/// catalogue, never from input; quoted all the same.
fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

fn from_sqlite(table: &str, column: &str, v: ValueRef<'_>) -> rusqlite::Result<Value> {
    Ok(match v {
        ValueRef::Null => Value::Null,
        ValueRef::Integer(i) => Value::Int(i),
        ValueRef::Real(f) => Value::Real(f),
        ValueRef::Text(t) => Value::Text(String::from_utf8(t.to_vec()).map_err(|e| {
            rusqlite::Error::FromSqlConversionFailure(
                0,
                rusqlite::types::Type::Text,
                format!("{table}.{column} holds text that is not UTF-8: {e}").into(),
            )
        })?),
        ValueRef::Blob(b) => Value::Bytes(b.to_vec()),
    })
}

fn to_sqlite(v: &Value) -> rusqlite::types::Value {
    use rusqlite::types::Value as V;
    match v {
        Value::Null => V::Null,
        Value::Int(i) => V::Integer(*i),
        Value::Real(f) => V::Real(*f),
        Value::Text(t) => V::Text(t.clone()),
        Value::Bytes(b) => V::Blob(b.clone()),
    }
}

impl Rows for SqliteStore {
    async fn tables(&self) -> Result<Vec<String>> {
        self.with("copy: list tables", |conn| {
            let mut stmt = conn.prepare(
                "SELECT name FROM sqlite_schema WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'
                 ORDER BY name",
            )?;
            let rows = stmt.query_map([], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

    async fn columns(&self, table: &'static str) -> Result<Vec<String>> {
        self.with("copy: list columns", move |conn| {
            let mut stmt = conn.prepare("SELECT name FROM pragma_table_info(?1) ORDER BY cid")?;
            let rows = stmt.query_map([table], |r| r.get(0))?;
            rows.collect()
        })
        .await
    }

    async fn count(&self, table: &'static str) -> Result<u64> {
        self.with("copy: count", move |conn| {
            conn.query_row(&format!("SELECT COUNT(*) FROM {}", ident(table)), [], |r| r.get::<_, i64>(0))
        })
        .await
        .map(|n| n.max(0) as u64)
    }

    async fn read_page(
        &self,
        table: &'static Table,
        after: Option<Vec<Value>>,
        limit: usize,
    ) -> Result<Vec<Vec<Value>>> {
        self.with("copy: read", move |conn| {
            let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
            let key: Vec<String> = table.key.iter().map(|c| ident(c)).collect();
            let filter = match &after {
                Some(_) => {
                    let marks: Vec<String> = (1..=key.len()).map(|i| format!("?{i}")).collect();
                    format!("WHERE ({}) > ({})", key.join(", "), marks.join(", "))
                }
                None => String::new(),
            };
            let sql = format!(
                "SELECT {} FROM {} {filter} ORDER BY {} LIMIT {}",
                columns.join(", "),
                ident(table.name),
                key.join(", "),
                limit
            );
            let mut stmt = conn.prepare(&sql)?;
            let params: Vec<rusqlite::types::Value> = after.iter().flatten().map(to_sqlite).collect();
            let rows = stmt.query_map(rusqlite::params_from_iter(params), |r| {
                table
                    .columns
                    .iter()
                    .enumerate()
                    .map(|(i, c)| from_sqlite(table.name, c, r.get_ref(i)?))
                    .collect::<rusqlite::Result<Vec<Value>>>()
            })?;
            rows.collect()
        })
        .await
    }

    async fn write_page(&self, table: &'static Table, rows: Vec<Vec<Value>>) -> Result<()> {
        self.with("copy: write", move |conn| {
            let columns: Vec<String> = table.columns.iter().map(|c| ident(c)).collect();
            let marks: Vec<String> = (1..=columns.len()).map(|i| format!("?{i}")).collect();
            let sql =
                format!("INSERT INTO {} ({}) VALUES ({})", ident(table.name), columns.join(", "), marks.join(", "));
            let tx = conn.transaction()?;
            {
                let mut stmt = tx.prepare(&sql)?;
                for row in &rows {
                    stmt.execute(rusqlite::params_from_iter(row.iter().map(to_sqlite)))?;
                }
            }
            tx.commit()
        })
        .await
    }

    async fn finish(&self) -> Result<()> {
        Ok(())
    }
}
