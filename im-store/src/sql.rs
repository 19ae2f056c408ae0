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
//!
//! ## Backend-generic statements
//! The domain modules write each statement once and run it on any backend.
//! Generic diesel code must prove, for the backend it does not know, that
//! every value it binds and every row it reads converts; Rust only carries
//! such facts through bounds on the backend itself. So they are stated as
//! backend traits: [`Binds`] (a value binds as an SQL type), gathered in
//! [`SqlBackend`] for the value types statements bind, and [`Reads`] (a row
//! type loads), which each domain lists for its rows. Both are blanket
//! implemented from diesel's own `ToSql` / `QueryableByName`, so the
//! compiler checks every statement and row once per backend, where the
//! backend's connection is used. [`Exec`] runs a statement: `run`, `rows`,
//! `row`.

use std::marker::PhantomData;

use diesel::backend::Backend;
use diesel::connection::{Connection, LoadConnection};
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::result::QueryResult;
use diesel::serialize::ToSql;
use diesel::sql_types::{BigInt, Binary, Bool, HasSqlType, Nullable, Text, Untyped};
use diesel::QueryableByName;

/// `V` binds as the SQL type `ST` on this backend.
pub(crate) trait Binds<ST, V>: Backend {
    /// Adds `value` as the next bind parameter.
    fn push_bind<'b>(out: &mut AstPass<'_, 'b, Self>, value: &'b V) -> QueryResult<()>;
}

impl<DB, ST, V> Binds<ST, V> for DB
where
    DB: Backend + HasSqlType<ST>,
    V: ToSql<ST, DB>,
{
    fn push_bind<'b>(out: &mut AstPass<'_, 'b, DB>, value: &'b V) -> QueryResult<()> {
        out.push_bind_param::<ST, V>(value)
    }
}

/// A backend the domain statements run on: it binds every value type they
/// use (`&str`, `i64`, `bool`, their nullable forms, bytes).
pub(crate) trait SqlBackend:
    Backend
    + for<'a> Binds<Text, &'a str>
    + Binds<BigInt, i64>
    + Binds<Bool, bool>
    + for<'a> Binds<Nullable<Text>, Option<&'a str>>
    + Binds<Nullable<BigInt>, Option<i64>>
    + for<'a> Binds<Binary, &'a [u8]>
{
}

#[cfg(feature = "sqlite")]
impl SqlBackend for diesel::sqlite::Sqlite {}

#[cfg(feature = "postgres")]
impl SqlBackend for diesel::pg::Pg {}

/// Rows of type `R` load from this backend.
pub(crate) trait Reads<R>: Backend {
    /// Runs `query` on `conn` and reads every row.
    fn load<C, Q>(conn: &mut C, query: Q) -> QueryResult<Vec<R>>
    where
        C: LoadConnection<Backend = Self>,
        Q: Query<SqlType = Untyped> + QueryFragment<Self> + QueryId + RunQueryDsl<C>;
}

impl<DB, R> Reads<R> for DB
where
    DB: Backend + 'static,
    R: QueryableByName<DB> + 'static,
{
    fn load<C, Q>(conn: &mut C, query: Q) -> QueryResult<Vec<R>>
    where
        C: LoadConnection<Backend = DB>,
        Q: Query<SqlType = Untyped> + QueryFragment<DB> + QueryId + RunQueryDsl<C>,
    {
        query.load(conn)
    }
}

/// A connection the domain statements run on.
pub(crate) trait Conn: LoadConnection<Backend: SqlBackend> {}

impl<C: LoadConnection<Backend: SqlBackend>> Conn for C {}

/// Runs a statement built with [`sql`].
pub(crate) trait Exec: Query<SqlType = Untyped> + QueryId + Sized {
    /// Executes it; the number of rows it changed.
    fn run<C: Connection>(self, conn: &mut C) -> QueryResult<usize>
    where
        Self: QueryFragment<C::Backend> + RunQueryDsl<C>,
    {
        self.execute(conn)
    }

    /// Every row it returns.
    fn rows<R, C>(self, conn: &mut C) -> QueryResult<Vec<R>>
    where
        C: LoadConnection,
        C::Backend: Reads<R>,
        Self: QueryFragment<C::Backend> + RunQueryDsl<C>,
    {
        <C::Backend as Reads<R>>::load(conn, self)
    }

    /// Its first row, if any.
    fn row<R, C>(self, conn: &mut C) -> QueryResult<Option<R>>
    where
        C: LoadConnection,
        C::Backend: Reads<R>,
        Self: QueryFragment<C::Backend> + RunQueryDsl<C>,
    {
        Ok(self.rows(conn)?.into_iter().next())
    }
}

impl<S: Statement> Exec for Sql<S> {}

impl<Q: QueryId, V, ST: QueryId> Exec for Bind<Q, V, ST> {}

/// One TEXT column named `v`.
#[derive(QueryableByName)]
pub(crate) struct TextRow {
    #[diesel(sql_type = Text)]
    pub v: String,
}

/// One BIGINT column named `v`.
#[derive(QueryableByName)]
pub(crate) struct I64Row {
    #[diesel(sql_type = BigInt)]
    pub v: i64,
}

/// One BOOLEAN column named `v`.
#[derive(QueryableByName)]
pub(crate) struct BoolRow {
    #[diesel(sql_type = Bool)]
    pub v: bool,
}

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
    DB: Binds<ST, V>,
    Q: QueryFragment<DB>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, DB>) -> QueryResult<()> {
        self.query.walk_ast(out.reborrow())?;
        DB::push_bind(&mut out, &self.value)?;
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
