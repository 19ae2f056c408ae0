//! [`Sql`]: fixed SQL text with bind parameters that diesel keeps prepared.
//!
//! diesel's `sql_query` — and its `UPDATE` and `ON CONFLICT DO UPDATE`
//! builders — mark their statements as not cacheable, so each call is
//! parsed and planned again. The hot paths (`write_batch`, the conversation
//! listing) use this instead: the statement is cached by its SQL text and
//! bind types, like any static diesel query.
//!
//! The text marks each parameter with `?` (also for PostgreSQL, where diesel
//! writes `$1`, `$2`, ... in its place), and every `?` must get exactly one
//! [`Sql::bind`] / [`Bind::bind`], in order. Only ever give it constant
//! text: values go through the binds.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::result::QueryResult;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// A statement of fixed text; see the module docs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sql<'a>(pub &'a str);

/// A statement with its first `k` parameters bound.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bind<'a, Q, V, ST> {
    query: Q,
    value: V,
    sql: &'a str,
    /// This bind is the `k`-th `?` (from 1); the text after it is piece `k`.
    k: usize,
    _st: PhantomData<ST>,
}

/// The `k`-th piece of `sql` split at `?`.
fn piece(sql: &str, k: usize) -> &str {
    sql.split('?').nth(k).unwrap_or("")
}

impl<'a> Sql<'a> {
    /// Binds the first parameter.
    pub(crate) fn bind<ST, V>(self, value: V) -> Bind<'a, Sql<'a>, V, ST> {
        Bind {
            query: self,
            value,
            sql: self.0,
            k: 1,
            _st: PhantomData,
        }
    }
}

impl<'a, Q, V, ST> Bind<'a, Q, V, ST> {
    /// Binds the next parameter.
    pub(crate) fn bind<ST2, V2>(self, value: V2) -> Bind<'a, Self, V2, ST2> {
        let (sql, k) = (self.sql, self.k + 1);
        Bind {
            query: self,
            value,
            sql,
            k,
            _st: PhantomData,
        }
    }
}

impl QueryId for Sql<'_> {
    type QueryId = ();
    // Not static: diesel keys the statement cache on the SQL text instead.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<Q, V, ST> QueryId for Bind<'_, Q, V, ST> {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl<DB: Backend> QueryFragment<DB> for Sql<'_> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(piece(self.0, 0));
        Ok(())
    }
}

impl<DB, Q, V, ST> QueryFragment<DB> for Bind<'_, Q, V, ST>
where
    DB: Backend + HasSqlType<ST>,
    Q: QueryFragment<DB>,
    V: ToSql<ST, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_bind_param::<ST, V>(&self.value)?;
        out.push_sql(piece(self.sql, self.k));
        Ok(())
    }
}

impl Query for Sql<'_> {
    type SqlType = Untyped;
}

impl<Q, V, ST> Query for Bind<'_, Q, V, ST> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Sql<'_> {}

impl<Conn, Q, V, ST> RunQueryDsl<Conn> for Bind<'_, Q, V, ST> {}
