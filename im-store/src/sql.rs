//! Raw statements that diesel keeps prepared: [`sql`] and [`statements!`].
//!
//! diesel's `sql_query` — and its `UPDATE` and `ON CONFLICT DO UPDATE`
//! builders — mark their statements as not cacheable, so each call is
//! parsed and planned again. The hot paths (`write_batch`, the conversation
//! listing) use these instead: each statement is a type of its own
//! ([`Statement`]), so diesel caches its prepared form under that type, as
//! it does for its own static queries, without even building the SQL text
//! again.
//!
//! The text marks each parameter with `?` (also for PostgreSQL, where diesel
//! writes `$1`, `$2`, ... in its place), and every `?` must get exactly one
//! [`Sql::bind`] / [`Bind::bind`], in order. Values only ever go through
//! the binds.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::result::QueryResult;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};

/// A statement's fixed text; declare with [`statements!`].
pub(crate) trait Statement: 'static {
    /// The SQL, `?` for each parameter.
    const SQL: &'static str;
}

/// Declares [`Statement`] types: `statements! { Name = "SQL"; ... }`.
macro_rules! statements {
    ($($(#[$m:meta])* $name:ident = $sql:expr;)*) => {
        $(
            $(#[$m])*
            pub(crate) struct $name;
            impl crate::sql::Statement for $name {
                const SQL: &'static str = $sql;
            }
        )*
    };
}
pub(crate) use statements;

/// The statement `S`, no parameter bound yet.
pub(crate) fn sql<S: Statement>() -> Sql<S> {
    Sql(PhantomData)
}

/// A statement with no parameter bound yet.
pub(crate) struct Sql<S>(PhantomData<S>);

/// A statement with some parameters bound; the last one is `value`.
pub(crate) struct Bind<Q, V, ST> {
    query: Q,
    value: V,
    /// The text after this parameter, up to the next one.
    text: &'static str,
    /// The text after the next parameter's `?`.
    rest: &'static str,
    _st: PhantomData<ST>,
}

/// Splits at the first `?`: (before, after).
fn cut(s: &'static str) -> (&'static str, &'static str) {
    s.split_once('?').unwrap_or((s, ""))
}

impl<S: Statement> Sql<S> {
    /// Binds the first parameter.
    pub(crate) fn bind<ST, V>(self, value: V) -> Bind<Self, V, ST> {
        let (text, rest) = cut(cut(S::SQL).1);
        Bind {
            query: self,
            value,
            text,
            rest,
            _st: PhantomData,
        }
    }
}

impl<Q, V, ST> Bind<Q, V, ST> {
    /// Binds the next parameter.
    pub(crate) fn bind<ST2, V2>(self, value: V2) -> Bind<Self, V2, ST2> {
        let (text, rest) = cut(self.rest);
        Bind {
            query: self,
            value,
            text,
            rest,
            _st: PhantomData,
        }
    }
}

/// The cache identity of a [`Bind`]: the statement and the bound types.
pub(crate) struct BindId<Q, ST>(PhantomData<(Q, ST)>);

impl<S: Statement> QueryId for Sql<S> {
    type QueryId = S;
    const HAS_STATIC_QUERY_ID: bool = true;
}

impl<Q: QueryId, V, ST: QueryId> QueryId for Bind<Q, V, ST> {
    type QueryId = BindId<Q::QueryId, ST::QueryId>;
    const HAS_STATIC_QUERY_ID: bool = Q::HAS_STATIC_QUERY_ID && ST::HAS_STATIC_QUERY_ID;
}

impl<S: Statement, DB: Backend> QueryFragment<DB> for Sql<S> {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        out.push_sql(cut(S::SQL).0);
        Ok(())
    }
}

impl<DB, Q, V, ST> QueryFragment<DB> for Bind<Q, V, ST>
where
    DB: Backend + HasSqlType<ST>,
    Q: QueryFragment<DB>,
    V: ToSql<ST, DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        out.push_bind_param::<ST, V>(&self.value)?;
        out.push_sql(self.text);
        Ok(())
    }
}

impl<S> Query for Sql<S> {
    type SqlType = Untyped;
}

impl<Q, V, ST> Query for Bind<Q, V, ST> {
    type SqlType = Untyped;
}

impl<Conn, S> RunQueryDsl<Conn> for Sql<S> {}

impl<Conn, Q, V, ST> RunQueryDsl<Conn> for Bind<Q, V, ST> {}
