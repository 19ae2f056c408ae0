//! [`Db`]: what a backend provides to the domain modules, which are written
//! once against it: connections to read and write on, transactions, and
//! the two things whose SQL differs between backends (locking a
//! conversation's counter row, and the group commit's set-based steps,
//! [`crate::batch::BatchOps`]).

use im_core::store::{CursorUpdate, NewMessage};

use crate::accounts::AccountsConn;
use crate::batch::BatchResult;
use crate::changes::ChangesConn;
use crate::contacts::ContactsConn;
use crate::error::DbError;
use crate::files::FilesConn;
use crate::messages::MessagesConn;
use crate::rooms::RoomsConn;

/// A backend's connections, as the domain modules use them. Each method
/// runs off the async threads (the core calls stores only there).
pub(crate) trait Db {
    /// The backend's connection; it runs every domain's statements.
    type Conn: AccountsConn + ContactsConn + MessagesConn + RoomsConn + FilesConn + ChangesConn;

    /// Runs `f` on a connection for reading (SQLite: a pooled read-only
    /// connection beside the writer).
    fn read<T>(&self, f: impl FnOnce(&mut Self::Conn) -> Result<T, DbError>) -> Result<T, DbError>;

    /// Runs `f` on a connection for writing, outside a transaction (SQLite:
    /// the writer).
    fn write<T>(&self, f: impl FnOnce(&mut Self::Conn) -> Result<T, DbError>)
        -> Result<T, DbError>;

    /// Runs `f` in a write transaction, committed when it returns `Ok`.
    fn txn<T>(&self, f: impl FnOnce(&mut Self::Conn) -> Result<T, DbError>) -> Result<T, DbError>;

    /// Inside a transaction, locks a conversation's counter row as
    /// `write_batch` does and returns its id and `last_seq` (`None`: no
    /// such conversation).
    fn lock_conv(conn: &mut Self::Conn, name: &str) -> Result<Option<(i64, i64)>, DbError>;

    /// One group commit: [`crate::batch::write_batch`] with this backend's
    /// [`crate::batch::BatchOps`], in a transaction of its own.
    fn batch(
        &self,
        messages: &[NewMessage],
        cursors: &[CursorUpdate],
    ) -> Result<BatchResult, DbError>;
}
